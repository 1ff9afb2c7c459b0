"""The shipped config's models by name, for tests that build a model the way a run does."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from harness.config import load_config
from harness.registry import build_configured, make_config, model_class
from rkn.interface import SequenceModel

ROOT = Path(__file__).resolve().parents[1]


@cache
def shipped_models() -> dict[str, dict[str, Any]]:
    """The models section of config/config.yaml (validated)."""
    return load_config([ROOT / "config" / "config.yaml"])["models"]


def named_params(name: str, extra: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(class, params) of a model of the shipped config, ``extra`` params on top."""
    entry = shipped_models()[name]
    return entry["class"], {**entry.get("params", {}), **(extra or {})}


def build_named(name: str, extra: dict[str, Any] | None = None) -> SequenceModel:
    """Build the shipped config's model ``name`` with ``extra`` params on top."""
    return build_configured({"models": shipped_models()}, name, extra)


def named_config(name: str, extra: dict[str, Any] | None = None) -> Any:
    """The config dataclass of the shipped model ``name``."""
    class_name, params = named_params(name, extra)
    return make_config(model_class(class_name), params)

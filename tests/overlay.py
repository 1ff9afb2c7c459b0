"""Config overlays written by tests into their temporary folders."""

from __future__ import annotations

from pathlib import Path

import yaml


def overlay(tmp_path: Path, content: dict, name: str = "overlay.yaml") -> Path:
    """Write a config overlay into the test's temporary folder; returns its path."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content))
    return path

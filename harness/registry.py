"""Model classes by name, their validated configs, and checkpoints that rebuild a trained model.

The config's models section names a class for every model: a family of ``FAMILIES`` (``rkn``,
``lstm``, ...) or a user's own ``"package.module:ClassName"`` (a subclass of
``rkn.interface.SequenceModel``; README, "Compare your own model"). ``make_config`` builds the
class's config dataclass from the model's params, checking every key and type, so a user model is
validated exactly like ours.

    build_model("lstm", {"latent_obs_dim": 6})    # the E1 parameter-matched LSTM
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import types
import typing
from collections.abc import Mapping
from typing import Any

import torch

from baselines.dks import DKS
from baselines.e2c import E2C
from baselines.gru import GRUBaseline
from baselines.kvae import KVAE
from baselines.lstm import LSTMBaseline
from baselines.reference import ReferencePredictor
from harness.io import load_tensors
from rkn.full_cov import FullCovRKN
from rkn.interface import SequenceModel
from rkn.model import RKN

# The model families of this project (the `class` of the config's models section).
FAMILIES: dict[str, type[SequenceModel]] = {
    "rkn": RKN,
    "rkn_full_cov": FullCovRKN,     # E8: full 2m x 2m belief covariance, exact Kalman update
    "lstm": LSTMBaseline,
    "gru": GRUBaseline,
    "kvae": KVAE,                   # E2/E5 generative baselines (docs/baselines.md#kvae)
    "e2c": E2C,
    "dks": DKS,
    "reference": ReferencePredictor,  # untrained rows (docs/baselines.md#reference-predictors)
}


def model_class(name: str) -> type[SequenceModel]:
    """The class of a family name or of ``"package.module:ClassName"``.

    Raises:
        ValueError: unknown family, module that cannot be imported or raises while it loads,
            missing class, or a class that is not a ``SequenceModel`` with a dataclass
            ``config_class``; the message says why.
    """
    if ":" not in name:
        if name not in FAMILIES:
            raise ValueError(f"unknown model class {name!r}; valid families: "
                             f"{', '.join(sorted(FAMILIES))}, or 'package.module:ClassName'")
        return FAMILIES[name]
    module_name, _, class_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import module {module_name!r} of model class {name!r} ({err}); "
                         "install your package or put its folder on PYTHONPATH") from None
    except Exception as err:  # noqa: BLE001 (a user's module may raise anything while it loads)
        raise ValueError(f"importing module {module_name!r} of model class {name!r} raised "
                         f"{type(err).__name__}: {err}; fix the module (python -c 'import "
                         f"{module_name}' shows the traceback)") from err
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, SequenceModel)):
        raise ValueError(f"{name!r} is not a subclass of rkn.interface.SequenceModel "
                         "(README, 'Compare your own model')")
    if not dataclasses.is_dataclass(getattr(cls, "config_class", None)):
        raise ValueError(f"{name!r} has no dataclass config_class; set config_class = YourConfig")
    return cls


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` as the field type ``hint`` wants it (lists become tuples, ints floats), or
    TypeError naming the key, the value and the expected type. Unsupported hints pass as is."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        ok = isinstance(value, (list, tuple))
        if ok:
            return tuple(_coerce(item, args[0], f"{key}[{i}]") for i, item in enumerate(value))
    elif origin in (typing.Union, types.UnionType) and type(None) in args and value is None:
        return None
    else:
        return value
    if not ok:
        name = getattr(hint, "__name__", str(hint))
        hint_text = "a list of " + getattr(args[0], "__name__", str(args[0])) if origin is tuple \
            else name
        extra = (" (YAML 1.1 reads 1e-3 as a string: write 1.0e-3)"
                 if isinstance(value, str) and hint is float else "")
        raise TypeError(f"{key} must be {hint_text}, got {value!r}{extra}")
    return value


def make_config(cls: type[SequenceModel], params: Mapping[str, Any] | None = None, *,
                where: str = "") -> Any:
    """The config dataclass of ``cls`` built from ``params`` (defaults for the other fields).

    Raises:
        ValueError: an unknown key (the message lists the valid keys), a value of the wrong type,
            or a value the dataclass refuses (its ``__post_init__``); prefixed with ``where``.
    """
    config_cls = cls.config_class
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    prefix = f"{where}: " if where else ""
    values = {}
    for key, value in (params or {}).items():
        if key not in fields:
            raise ValueError(f"{prefix}unknown config key {key!r} of {config_cls.__name__}; "
                             f"valid keys: {', '.join(fields)}")
        try:
            values[key] = _coerce(value, hints[key], key)
        except TypeError as err:
            raise ValueError(f"{prefix}{err}") from None
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{prefix}{err}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """All fields of a config dataclass as a plain dict (tuples stay tuples; JSON makes lists)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def build_model(class_name: str, params: Mapping[str, Any] | None = None) -> SequenceModel:
    """Build a model of ``class_name`` (family or ``"package.module:ClassName"``).

    Args:
        class_name: see ``model_class``.
        params: config fields to set (e.g. a full ``config_to_dict`` from a checkpoint).

    Returns:
        The model; ``model.config`` holds its frozen config.

    Raises:
        ValueError: unknown class, unknown config key, wrong type or invalid option value.
    """
    cls = model_class(class_name)
    return cls(make_config(cls, params))


def build_configured(config: Mapping[str, Any], name: str,
                     extra: Mapping[str, Any] | None = None) -> SequenceModel:
    """Build the model ``name`` of a config's models section, ``extra`` params on top.

    Raises:
        KeyError: ``name`` is not in the config's models section.
        ValueError: as ``build_model``.
    """
    entry = config["models"][name]
    return build_model(entry["class"], {**entry.get("params", {}), **(extra or {})})


def read_model_file(path: str | os.PathLike[str], map_location: str | torch.device = "cpu",
                    *, shown_as: str | None = None) -> dict[str, Any]:
    """A run's ``model.pt`` as its dict (model, class, config, state_dict, epoch), read with
    ``torch.load(weights_only=True)``: a model file is untrusted input (it travels between
    machines), and anything but tensors and plain data in it is refused without running it.
    ``shown_as`` names the file in messages (default: ``path``).

    Raises:
        ValueError: the file cannot be read safely, or lacks class, config or state_dict; the
            message names the file and says it was not used.
    """
    name = shown_as or str(path)
    try:
        payload = load_tensors(path, map_location)
    except ValueError as err:
        raise ValueError(f"model file {name} cannot be read safely: it is damaged or holds more "
                         f"than tensors and plain data ({err}); it was not used") from None
    if not (isinstance(payload, dict) and isinstance(payload.get("class"), str)
            and isinstance(payload.get("config"), dict)
            and isinstance(payload.get("state_dict"), dict)):
        raise ValueError(f"model file {name} lacks its class, config or state_dict (it is not a "
                         "run's model.pt); it was not used")
    return payload


def load_checkpoint(path: str | os.PathLike[str],
                    map_location: str | torch.device = "cpu") -> SequenceModel:
    """Rebuild a trained model from a run's ``model.pt`` alone (it carries its class and config).

    Raises:
        ValueError: as ``read_model_file``, or as ``build_model``.
    """
    payload = read_model_file(path, map_location)
    model = build_model(payload["class"], payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()

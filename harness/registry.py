"""Model registry: names -> (model class, config class, default overrides), plus config helpers.

``build_model("lstm_small")`` gives the E1 parameter-matched LSTM, ``build_model("rkn",
{"bandwidth": 15})`` the full-transition ablation. Configs round-trip through plain dicts
(``config_to_dict`` / ``config_from_dict``), so checkpoints and JSON files can embed them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from baselines.dks import DKS, DKSConfig
from baselines.e2c import E2C, E2CConfig
from baselines.gru import GRUBaseline, GRUConfig
from baselines.kvae import KVAE, KVAEConfig
from baselines.lstm import LSTMBaseline, LSTMConfig
from baselines.reference import ReferenceConfig, ReferencePredictor
from rkn.full_cov import FullCovRKN
from rkn.model import RKN, RKNConfig


class ModelSpec(NamedTuple):
    """One registry entry: how to build a named model."""

    model_cls: type[nn.Module]
    config_cls: type
    defaults: Mapping[str, Any]


MODELS: dict[str, ModelSpec] = {
    # E1 RKN: m = 15, K = 15, b = 3 (the RKNConfig defaults).
    "rkn": ModelSpec(RKN, RKNConfig, {"latent_obs_dim": 15, "num_basis": 15, "bandwidth": 3}),
    # Ignores the valid flags: black frames are treated as observations (TF never_invalid=True).
    "rkn_uninformed": ModelSpec(
        RKN,
        RKNConfig,
        {"latent_obs_dim": 15, "num_basis": 15, "bandwidth": 3, "use_obs_valid": False},
    ),
    "lstm": ModelSpec(LSTMBaseline, LSTMConfig, {"latent_obs_dim": 50}),
    "lstm_small": ModelSpec(LSTMBaseline, LSTMConfig, {"latent_obs_dim": 6}),  # E1 matched
    "gru": ModelSpec(GRUBaseline, GRUConfig, {"latent_obs_dim": 50}),
    "gru_small": ModelSpec(GRUBaseline, GRUConfig, {"latent_obs_dim": 8}),  # E1 matched
    # E2 generative baselines (paper.md §5.2); KVAE filter and smoother share training.
    "kvae_filter": ModelSpec(KVAE, KVAEConfig, {"imputation": "filter"}),
    "kvae_smooth": ModelSpec(KVAE, KVAEConfig, {"imputation": "smooth"}),
    "e2c": ModelSpec(E2C, E2CConfig, {}),
    "dks": ModelSpec(DKS, DKSConfig, {"direction": "backward"}),          # ST-R smoother
    "dks_filter": ModelSpec(DKS, DKSConfig, {"direction": "forward"}),    # ST-L filter
    # E2 reference rows (paper.md §5.3): evaluated without training.
    "hold_last_frame": ModelSpec(ReferencePredictor, ReferenceConfig, {"predictor": "hold_last_frame"}),
    "mean_image": ModelSpec(ReferencePredictor, ReferenceConfig, {"predictor": "mean_image"}),
    "entropy_floor": ModelSpec(ReferencePredictor, ReferenceConfig, {"predictor": "entropy_floor"}),
    # E4 large baselines (m = 100, 400 units); the quad-link encoder comes from the experiment's
    # model_overrides like for every other model of E4/E5.
    "lstm_m100": ModelSpec(LSTMBaseline, LSTMConfig, {"latent_obs_dim": 100}),
    "gru_m100": ModelSpec(GRUBaseline, GRUConfig, {"latent_obs_dim": 100}),
    # E8 ablations of the E1 RKN: bandwidth b (15 = full blocks), number of bases K, and the full
    # 2m x 2m belief covariance with the exact Kalman update (rkn/full_cov.py).
    **{f"rkn_b{b}": ModelSpec(RKN, RKNConfig,
                              {"latent_obs_dim": 15, "num_basis": 15, "bandwidth": b})
       for b in (0, 1, 5, 15)},
    **{f"rkn_k{k}": ModelSpec(RKN, RKNConfig,
                              {"latent_obs_dim": 15, "num_basis": k, "bandwidth": 3})
       for k in (1, 3)},
    "rkn_full_cov": ModelSpec(
        FullCovRKN, RKNConfig, {"latent_obs_dim": 15, "num_basis": 15, "bandwidth": 3}),
}


def _spec(name: str) -> ModelSpec:
    """Registry entry by name; ValueError lists the valid names."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def config_from_dict(name: str, data: Mapping[str, Any] | None = None) -> Any:
    """The config of model ``name``: registry defaults, then ``data`` on top.

    Lists (from JSON) become tuples. Raises ValueError for an unknown model name, or for an
    unknown key (naming it and listing the valid keys).
    """
    spec = _spec(name)
    valid = [f.name for f in dataclasses.fields(spec.config_cls)]
    data = dict(data or {})
    for key in data:
        if key not in valid:
            raise ValueError(
                f"unknown config key {key!r} for model {name!r}; valid keys: {', '.join(valid)}"
            )
    values = {**spec.defaults, **data}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return spec.config_cls(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """All fields of a config dataclass as a plain dict (tuples stay tuples; JSON makes lists)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def build_model(name: str, overrides: Mapping[str, Any] | None = None) -> nn.Module:
    """Build model ``name`` with registry defaults updated by ``overrides``.

    Args:
        name: a key of ``MODELS``.
        overrides: config fields to change (e.g. a full ``config_to_dict`` from a checkpoint).

    Returns:
        The model (``model.config`` holds its frozen config).

    Raises:
        ValueError: unknown name, unknown config key, or invalid option value.
    """
    return _spec(name).model_cls(config_from_dict(name, overrides))


def count_parameters(model: nn.Module, include_masked: bool = False) -> int:
    """Number of trainable parameters.

    Transition-basis entries outside the band are stored (as in TF) but fixed at zero by the mask
    and never trained; they are excluded unless ``include_masked`` (Keras ``count_params``
    would include them).
    """
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not include_masked:
        total -= sum(m.num_masked() for m in model.modules() if hasattr(m, "num_masked"))
    return total


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a trained model from a run's ``model.pt`` alone (it carries its name and config)."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    model = build_model(payload["model"], payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()

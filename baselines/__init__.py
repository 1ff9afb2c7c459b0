"""Baseline sequence models with the RKN's interface (LSTM, GRU; docs/baselines.md#lstm-and-gru).

The other baselines (KVAE, E2C, DKS, reference predictors) are imported from their modules. Model
families by name (name -> class) are ``harness.registry.FAMILIES``; each model's settings are an
entry of the ``models:`` section of ``config/config.yaml``.
"""

from baselines.gru import GRUBaseline, GRUConfig
from baselines.lstm import LSTMBaseline, LSTMConfig
from baselines.recurrent import RecurrentBaseline, RecurrentConfig

__all__ = [
    "GRUBaseline",
    "GRUConfig",
    "LSTMBaseline",
    "LSTMConfig",
    "RecurrentBaseline",
    "RecurrentConfig",
]

"""Baseline sequence models with the RKN's interface (LSTM, GRU; paper.md §5).

The full model registry (names -> class, config, defaults) is ``harness.registry.MODELS``.
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

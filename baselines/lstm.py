"""LSTM baseline (docs/baselines.md#lstm-and-gru): the RKN with its filter replaced by an LSTM of
4m units."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from baselines.recurrent import RecurrentBaseline, RecurrentConfig


@dataclass(frozen=True)
class LSTMConfig(RecurrentConfig):
    """LSTM baseline configuration (shared fields: ``baselines.recurrent.RecurrentConfig``).

    Attributes:
        forget_bias: added to the forget-gate bias at init (Keras ``unit_forget_bias``; TF-1
            LSTMCell adds 1.0 to the pre-activation). 1.0 default; PT (nn.LSTM defaults) 0.0.
    """

    forget_bias: float = 1.0


class LSTMBaseline(RecurrentBaseline):
    """LSTM baseline: encoder -> nn.LSTM(4m) over the sequence -> RKN decoders.

    PyTorch's LSTM has two bias vectors (input and recurrent) where TF has one; this adds 4 x
    units parameters to the count and does not change the function class.
    """

    config_class = LSTMConfig
    config: LSTMConfig

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)

    def _make_rnn(self, in_size: int, units: int) -> nn.LSTM:
        """One-layer batch-first LSTM."""
        return nn.LSTM(in_size, units, batch_first=True)

    def _init_gate_biases(self, bias_ih: Tensor, units: int) -> None:
        """Add ``forget_bias`` to the forget gate (PyTorch gate order i, f, g, o)."""
        bias_ih[units : 2 * units] += self.config.forget_bias

"""GRU baseline (docs/baselines.md#lstm-and-gru): the RKN with its filter replaced by a GRU of 4m
units.

Known framework difference (recorded, not an option): PyTorch's nn.GRU applies the reset gate
after the recurrent matmul, n = tanh(W_n x + b_in + r * (U_n h + b_hn)) (Keras
``reset_after=True``), while TF-1 ``GRUCell`` (TF-icml) applies it before, n = tanh(W_n x +
U_n (r * h) + b). Both are standard GRU variants with the same parameter shapes (PyTorch has an
extra recurrent bias).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from baselines.recurrent import RecurrentBaseline, RecurrentConfig


@dataclass(frozen=True)
class GRUConfig(RecurrentConfig):
    """GRU baseline configuration (shared fields: ``baselines.recurrent.RecurrentConfig``).

    Attributes:
        gate_bias: added to the reset/update gate biases at init. 0.0 (Keras GRUCell, default);
            TF-1's block GRU documents a 1.0 gate-bias init (set 1.0 to mimic it).
    """

    gate_bias: float = 0.0


class GRUBaseline(RecurrentBaseline):
    """GRU baseline: encoder -> nn.GRU(4m) over the sequence -> RKN decoders."""

    config_class = GRUConfig
    config: GRUConfig

    def __init__(self, config: GRUConfig) -> None:
        super().__init__(config)

    def _make_rnn(self, in_size: int, units: int) -> nn.GRU:
        """One-layer batch-first GRU."""
        return nn.GRU(in_size, units, batch_first=True)

    def _init_gate_biases(self, bias_ih: Tensor, units: int) -> None:
        """Add ``gate_bias`` to the reset and update gates (PyTorch gate order r, z, n)."""
        bias_ih[: 2 * units] += self.config.gate_bias

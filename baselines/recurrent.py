"""Shared code of the LSTM and GRU baselines (docs/baselines.md#lstm-and-gru).

The RKN's transition/filter is replaced by a generic recurrent network; encoder and decoders are
the RKN's (``rkn.nets``). The recurrent core runs fused over the whole sequence (nn.LSTM / nn.GRU).

Variants (``rnn_variant``):
- "paper" (TF-icml = ICLR text, default): 4m units fed with [w_t, sigma^obs_t, v_t]; the first 2m
  units go to the mean decoder, the last 2m are a log-variance: exp -> variance decoder.
- "tf_master": 4m units, same input; split like an RKN state with m' = floor(4m / 5): the first
  2m' units -> mean decoder, the remaining 4m - 2m' -> variance decoder, no exp.
- "pt": 5m units fed with [w_t, sigma^obs_t] only (no valid flag); first 2m -> mean decoder,
  last 3m -> variance decoder, no exp. (PT has no GRU; for the GRU this layout is an analogue.)
The image (Bernoulli) decoder reads the units that feed the mean decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rkn.interface import BernoulliPrediction, GaussianPrediction, SequenceModel, WindowState
from rkn.decoders import build_decoder
from rkn.nets import (
    EncoderDecoderConfig,
    apply_init,
    build_encoder,
    check_choice,
    images_to_batch,
)

RNN_VARIANTS = ("paper", "tf_master", "pt")


@dataclass(frozen=True)
class RecurrentConfig(EncoderDecoderConfig):
    """Fields shared by ``LSTMConfig`` and ``GRUConfig``.

    Inherits the encoder/decoder fields of ``rkn.nets.EncoderDecoderConfig`` (same meaning and
    defaults as for the RKN). ``latent_obs_dim`` (m) sets the encoder output size and the number
    of recurrent units (4m, or 5m for "pt").

    Attributes:
        latent_obs_dim: m (default 50; E1 parameter-matched sizes: LSTM 6, GRU 8).
        rnn_variant: "paper" (default) | "tf_master" | "pt"; see the module docstring.
        zero_missing_inputs: replace the encoder outputs [w_t, sigma^obs_t] of frames whose valid
            flag is False by zeros (a select), so a missing frame's pixels never reach the core
            (E2 config). False (default, TF): the core sees the encoding of the black frame.
    """

    latent_obs_dim: int = 50
    rnn_variant: str = "paper"
    zero_missing_inputs: bool = False

    def __post_init__(self) -> None:
        """Validate option values (ValueError names the valid values)."""
        super().__post_init__()
        check_choice("rnn_variant", self.rnn_variant, RNN_VARIANTS)


def split_sizes(latent_obs_dim: int, variant: str) -> tuple[int, int, int, int]:
    """(input size, units, mean-decoder input size, variance-decoder input size) of a variant."""
    m = latent_obs_dim
    if variant == "paper":
        return 2 * m + 1, 4 * m, 2 * m, 2 * m
    if variant == "tf_master":
        m_state = (4 * m) // 5
        return 2 * m + 1, 4 * m, 2 * m_state, 4 * m - 2 * m_state
    check_choice("rnn_variant", variant, RNN_VARIANTS)
    return 2 * m, 5 * m, 2 * m, 3 * m


class RecurrentBaseline(SequenceModel):
    """Encoder -> fused LSTM/GRU over the sequence -> RKN decoders. Subclasses pick the core.

    With ``init="keras"`` the core gets Keras' defaults: Glorot-uniform input kernel, orthogonal
    recurrent kernel, zero biases; subclasses then set their gate biases.
    """

    config: RecurrentConfig

    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__(config)
        sizes = split_sizes(config.latent_obs_dim, config.rnn_variant)
        in_size, units, self.mean_in, var_in = sizes
        self.encoder = build_encoder(config)
        self.rnn = self._make_rnn(in_size, units)
        self.decoder = build_decoder(config, mean_in=self.mean_in, var_in=var_in)
        apply_init(self, self.encoder, config.init)
        if config.init == "keras":
            nn.init.xavier_uniform_(self.rnn.weight_ih_l0)
            nn.init.orthogonal_(self.rnn.weight_hh_l0)
            nn.init.zeros_(self.rnn.bias_ih_l0)
            nn.init.zeros_(self.rnn.bias_hh_l0)
        with torch.no_grad():
            self._init_gate_biases(self.rnn.bias_ih_l0, units)

    def recurrent_core(self) -> nn.Module:
        """The fused LSTM/GRU layer."""
        return self.rnn

    def _make_rnn(self, in_size: int, units: int) -> nn.LSTM | nn.GRU:
        """The recurrent core (batch_first, one layer)."""
        raise NotImplementedError

    def _init_gate_biases(self, bias_ih: Tensor, units: int) -> None:
        """Adjust gate biases after init (in place, under no_grad)."""

    def forward(
        self, images: Tensor, obs_valid: Tensor | None = None
    ) -> GaussianPrediction | BernoulliPrediction:
        """Predict targets of every step.

        Args:
            images: (B, T, H, W, C) raw pixels (uint8 or float, 0..255).
            obs_valid: (B, T) bool or None. Fed to the core as the flag v_t (all ones when None
                or when ``use_obs_valid`` is False); not used by the "pt" variant.

        Returns:
            GaussianPrediction (B, T, target_dim) or BernoulliPrediction (B, T, H, W, C).
        """
        return self.forward_window(images, obs_valid, None)[0]

    def forward_window(
        self, images: Tensor, obs_valid: Tensor | None, state: WindowState
    ) -> tuple[GaussianPrediction | BernoulliPrediction, WindowState]:
        """``forward`` over one window, continuing from the recurrent core's state.

        The state is what nn.LSTM / nn.GRU return after the window's last step: (h, c), each
        (1, B, units), for the LSTM, h (1, B, units) for the GRU, whatever the ``rnn_variant``
        (the variants differ in the core's inputs and in how its outputs are split, not in its
        state). None: the zero initial state of ``forward``.
        """
        cfg = self.config
        batch, steps = images.shape[:2]
        dtype = self.encoder.mean_head.weight.dtype
        w, var = self.encoder(images_to_batch(images, cfg.input_scale, dtype))
        parts = [w.view(batch, steps, -1), var.view(batch, steps, -1)]
        if cfg.zero_missing_inputs and cfg.use_obs_valid and obs_valid is not None:
            keep = obs_valid.to(torch.bool).view(batch, steps, 1)
            parts = [torch.where(keep, part, torch.zeros_like(part)) for part in parts]
        if cfg.rnn_variant != "pt":
            if cfg.use_obs_valid and obs_valid is not None:
                flag = obs_valid.to(dtype).view(batch, steps, 1)
            else:
                flag = w.new_ones(batch, steps, 1)
            parts.append(flag)
        out, state = self.rnn(torch.cat(parts, -1), state)  # (B, T, units); None: zero state
        mean_part = out[..., : self.mean_in]
        if cfg.decoder == "bernoulli":
            probs = self.decoder(mean_part.reshape(batch * steps, -1))
            return BernoulliPrediction(probs=probs.reshape(batch, steps, *probs.shape[1:])), state
        var_part = out[..., self.mean_in :]
        if cfg.rnn_variant == "paper":
            var_part = torch.exp(var_part)  # second half is a log-variance (TF-icml)
        mean, var_out = self.decoder(mean_part, var_part)
        return GaussianPrediction(mean=mean, var=var_out), state

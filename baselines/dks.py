"""Deep Kalman smoother / structured inference network (Krishnan et al., AAAI 2017;
docs/baselines.md#dks).

Deep Markov model with the RKN's encoder and Bernoulli image decoder, written fresh:

- Gated transition p(z_t | z_{t-1}): g = sigmoid(MLP_g(z)), h = MLP_h(z);
  loc = (1 - g) * Linear(z) + g * h (Linear initialised to the identity);
  scale = softplus(Linear(ReLU(h))) + 1e-4. z_0 is a learned vector.
- Inference q(z_t | z_{t-1}, x): a GRU over [w_t, sigma^obs_t, v_t] with the encoder outputs of
  missing frames replaced by zeros (a select), then the combiner
  c = 0.5 (tanh(W z_{t-1} + b) + h_t), loc = Linear(c), scale = softplus(Linear(c)) + 1e-4.
  ``direction="backward"`` (ST-R, the "DKS": h_t summarises x_{t:T}, a smoother) or "forward"
  (ST-L: h_t summarises x_{1:t}, a filter with the RKN's information set).
- Loss: minus the ELBO per frame, sum_t E_q log p(x_t | z_t) - beta sum_t KL(q || p) (analytic
  KL, one sample), beta annealed linearly from ``kl_start`` to 1 over ``kl_anneal_steps``
  optimiser steps. Inputs are the masked training frames with their valid flags, the likelihood
  covers every clean target frame: the RKN's training information (an ELBO for any q). Training on
  clean frames only would never show the inference network a missing frame.
- Prediction (deterministic): z_t = loc of q given the previous loc; decode every frame.
- Truncated BPTT (``training.bptt_length``): the chain state (the last z and, for ST-L, the
  inference GRU's state) carries over from one window to the next; the ST-R inference network
  runs backwards over its window only, so within a window it cannot see the later windows' frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rkn.interface import BernoulliPrediction, SequenceModel, WindowState
from rkn.losses import bernoulli_nll
from rkn.decoders import build_decoder
from rkn.nets import EncoderDecoderConfig, apply_init, build_encoder, check_choice, images_to_batch

DIRECTIONS = ("backward", "forward")
SCALE_FLOOR = 1e-4


@dataclass(frozen=True)
class DKSConfig(EncoderDecoderConfig):
    """DKS / DMM settings (docs/baselines.md#dks); shared encoder/decoder fields.

    Attributes:
        latent_obs_dim: size of the encoder output w_t fed to the inference GRU (16).
        state_dim: size of z_t (8).
        transition_hidden: hidden width of the gated transition's MLPs (64).
        rnn_units: units of the inference GRU (64).
        direction: "backward" (ST-R, smoother, default) or "forward" (ST-L, filter).
        kl_start: KL weight at the first step (0.2).
        kl_anneal_steps: optimiser steps to reach KL weight 1 (1000; 0 = no annealing).
    """

    latent_obs_dim: int = 16
    decoder: str = "bernoulli"
    state_dim: int = 8
    transition_hidden: int = 64
    rnn_units: int = 64
    direction: str = "backward"
    kl_start: float = 0.2
    kl_anneal_steps: int = 1000

    def __post_init__(self) -> None:
        """Validate option values."""
        super().__post_init__()
        check_choice("decoder", self.decoder, ("bernoulli",))
        check_choice("direction", self.direction, DIRECTIONS)
        if not 0.0 <= self.kl_start <= 1.0 or self.kl_anneal_steps < 0:
            raise ValueError("kl_start must lie in [0, 1] and kl_anneal_steps be >= 0")


def gaussian_kl(*, loc_q: Tensor, scale_q: Tensor, loc_p: Tensor, scale_p: Tensor) -> Tensor:
    """KL(N(loc_q, scale_q^2) || N(loc_p, scale_p^2)) of diagonal Gaussians, summed over the last axis.

    sum [log(s_p / s_q) + (s_q^2 + (m_q - m_p)^2) / (2 s_p^2) - 1/2].
    """
    ratio = (scale_q**2 + (loc_q - loc_p) ** 2) / (2.0 * scale_p**2)
    return (torch.log(scale_p / scale_q) + ratio - 0.5).sum(-1)


class GatedTransition(nn.Module):
    """p(z_t | z_{t-1}) of the deep Markov model: (loc, scale), each (..., n)."""

    def __init__(self, state_dim: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, state_dim))
        self.proposal = nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, state_dim))
        self.linear = nn.Linear(state_dim, state_dim)
        self.scale = nn.Linear(state_dim, state_dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(state_dim))
            self.linear.bias.zero_()

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Gated mix of a linear and a nonlinear proposal; softplus scale."""
        gate = torch.sigmoid(self.gate(z))
        proposal = self.proposal(z)
        loc = (1.0 - gate) * self.linear(z) + gate * proposal
        return loc, F.softplus(self.scale(F.relu(proposal))) + SCALE_FLOOR


class DKSState(NamedTuple):
    """What the DKS carries from one window to the next (truncated BPTT).

    z: the last latent, sampled (training) or the posterior loc (prediction), (B, n);
    rnn: the forward inference GRU's state (1, B, rnn_units), None for the backward variant.
    """

    z: Tensor
    rnn: Tensor | None


class DKS(SequenceModel):
    """Deep Kalman smoother (ST-R) or filter (ST-L): images (B, T, H, W, C) -> BernoulliPrediction."""

    config_class = DKSConfig
    config: DKSConfig

    def __init__(self, config: DKSConfig) -> None:
        super().__init__(config)
        m, n, units = config.latent_obs_dim, config.state_dim, config.rnn_units
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config, mean_in=n, var_in=0)
        apply_init(self, self.encoder, config.init)
        self.rnn = nn.GRU(2 * m + 1, units, batch_first=True)
        self.combine_z = nn.Linear(n, units)
        self.combine_loc = nn.Linear(units, n)
        self.combine_scale = nn.Linear(units, n)
        self.transition = GatedTransition(n, config.transition_hidden)
        self.z0 = nn.Parameter(torch.zeros(n))
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long), persistent=False)

    def infer(self, images: Tensor, obs_valid: Tensor | None, sample: bool) -> tuple[Tensor, Tensor]:
        """Run q over the sequence.

        Args:
            images: (B, T, H, W, C) raw pixels; missing frames' pixels never reach the result.
            obs_valid: (B, T) bool or None (all observed).
            sample: draw z_t ~ q (training) or take its loc (prediction).

        Returns:
            z (B, T, n) and KL(q(z_t | .) || p(z_t | z_{t-1})) per step (B, T).
        """
        z, kl, _ = self.infer_window(images, obs_valid, sample, None)
        return z, kl

    def infer_window(self, images: Tensor, obs_valid: Tensor | None, sample: bool,
                     state: DKSState | None) -> tuple[Tensor, Tensor, DKSState]:
        """``infer`` over one window of L steps, continuing from ``state`` (None: z_0 and a
        zero GRU state).

        The chain z_{t-1} -> z_t (prior transition and combiner) continues from the carried z.
        The forward inference GRU (ST-L) continues from its carried state, so its h_t still
        summarises x_{1:t}. The backward GRU (ST-R, the smoother) runs over the window only: its
        h_t summarises x_{t:end of window}, not x_{t:T}; no later frame can reach an earlier
        window.

        Returns:
            z (B, L, n), the per-step KL (B, L) and the ``DKSState`` after the window.
        """
        batch, steps = images.shape[:2]
        dtype = self.encoder.mean_head.weight.dtype
        w, var = self.encoder(images_to_batch(images, self.config.input_scale, dtype))
        feats = torch.cat([w.view(batch, steps, -1), var.view(batch, steps, -1)], -1)
        valid = (torch.ones(batch, steps, 1, dtype=torch.bool, device=images.device) if obs_valid is None
                 else obs_valid.to(torch.bool)[..., None])
        feats = torch.cat([torch.where(valid, feats, torch.zeros_like(feats)), valid.to(dtype)], -1)
        rnn_state = None
        if self.config.direction == "backward":
            hidden = self.rnn(feats.flip(1))[0].flip(1)   # h_t: x_{t:T} (window: x_{t:end})
        else:
            hidden, rnn_state = self.rnn(feats, None if state is None else state.rnn)  # x_{1:t}
        z = self.z0.expand(batch, -1) if state is None else state.z
        latents, kls = [], []
        for t in range(steps):
            loc_p, scale_p = self.transition(z)
            combined = 0.5 * (torch.tanh(self.combine_z(z)) + hidden[:, t])
            loc_q = self.combine_loc(combined)
            scale_q = F.softplus(self.combine_scale(combined)) + SCALE_FLOOR
            kls.append(gaussian_kl(loc_q=loc_q, scale_q=scale_q, loc_p=loc_p, scale_p=scale_p))
            z = loc_q + scale_q * torch.randn_like(loc_q) if sample else loc_q
            latents.append(z)
        return torch.stack(latents, 1), torch.stack(kls, 1), DKSState(z, rnn_state)

    def decode(self, z: Tensor) -> BernoulliPrediction:
        """z (B, T, n) -> Bernoulli means (B, T, H, W, C)."""
        batch, steps = z.shape[:2]
        probs = self.decoder(z.reshape(batch * steps, -1))
        return BernoulliPrediction(probs=probs.reshape(batch, steps, *probs.shape[1:]))

    def forward(self, images: Tensor, obs_valid: Tensor | None = None) -> BernoulliPrediction:
        """Deterministic imputation of every frame from the posterior locs."""
        return self.decode(self.infer(images, obs_valid, sample=False)[0])

    def forward_window(self, images: Tensor, obs_valid: Tensor | None,
                       state: WindowState) -> tuple[BernoulliPrediction, WindowState]:
        """``forward`` over one window, continuing from the ``DKSState`` (``infer_window``: the
        backward variant's inference network sees only the window)."""
        z, _, state = self.infer_window(images, obs_valid, False, state)
        return self.decode(z), state

    def kl_weight(self) -> float:
        """Annealed KL weight beta for the current optimiser step."""
        cfg = self.config
        if cfg.kl_anneal_steps == 0:
            return 1.0
        return min(1.0, cfg.kl_start + (1.0 - cfg.kl_start) * int(self.train_steps) / cfg.kl_anneal_steps)

    def training_loss(self, images: Tensor, obs_valid: Tensor | None, targets: Tensor) -> Tensor:
        """Minus the annealed ELBO per frame: masked inputs, likelihood of every target frame."""
        return self.training_loss_window(images, obs_valid, targets, None)[0]

    def training_loss_window(self, images: Tensor, obs_valid: Tensor | None, targets: Tensor,
                             state: WindowState) -> tuple[Tensor, WindowState]:
        """``training_loss`` of one window, continuing from the ``DKSState`` of the sampled chain
        (``infer_window``). One optimiser step per call: the KL annealing counts windows."""
        beta = self.kl_weight()
        if self.training:
            self.train_steps += 1
        z, kl, state = self.infer_window(images, obs_valid, True, state)
        return (bernoulli_nll(self.decode(z), targets) + beta * kl).mean(), state

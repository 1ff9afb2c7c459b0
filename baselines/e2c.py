"""Embed to Control (Watter et al., NeurIPS 2015), reimplemented for imputation
(docs/baselines.md#e2c).

"E2C (reimplementation)": written fresh and correct, NOT a port of the authors' script, whose
defects are avoided on purpose: the "next" frame of a training pair is frame t + 1 (the
script paired frame j with itself), and the evaluation scores every frame against its own target.

Per-frame VAE q(z_t | x_t) = N(mu_t, diag sigma_t^2) (the RKN encoder, latent size d) and the
RKN's Bernoulli image decoder. Locally linear transition without actions: from h = MLP(z_t),
v, r, o in R^d; A_t = I + v r^T; z_{t+1} = A_t z_t + o. Its distribution for the KL term is
N(A_t mu_t + o, A_t diag(sigma_t^2) A_t^T) (the full covariance, not the script's diagonal).

Training on full, clean sequences (information set A,
docs/baselines.md#evaluation-contract-for-imputation-models), per pair (t, t + 1):
    BCE(x_t | z_t) + BCE(x_{t+1} | A_t z_t + o) + kl_weight KL(q(z_t) || N(0, I))
    + transition_kl_weight KL(N(A mu_t + o, A S A^T) || q(z_{t+1} | x_{t+1})),
with z_t ~ q(z_t | x_t). Imputation: an observed frame's latent is its encoder mean; a missing
frame's latent is the transition mean rolled from the previous latent; every frame is decoded.
Single frames carry no velocity, so E2C has no temporal fusion (expected to be the weakest).
Truncated BPTT (``training.bptt_length``): a window's pairs include the one that crosses its
start, built from the previous window's last frame (carried detached, ``E2CPairState``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rkn.interface import BernoulliPrediction, SequenceModel, WindowState
from rkn.losses import bernoulli_nll
from rkn.decoders import build_decoder
from rkn.nets import EncoderDecoderConfig, apply_init, build_encoder, check_choice, images_to_batch, mlp

VAR_FLOOR = 1e-6
# |1 + r^T v| = |det A| is clamped away from 0 inside its logarithm (docs/baselines.md#e2c).
DET_FLOOR = 1e-6


@dataclass(frozen=True)
class E2CConfig(EncoderDecoderConfig):
    """E2C settings (docs/baselines.md#e2c); shared encoder/decoder fields as the RKN's.

    Attributes:
        latent_obs_dim: d, size of z (3).
        transition_hidden: hidden widths of the transition MLP (100, 100), ReLU.
        kl_weight: weight of KL(q(z_t) || N(0, I)) (1.0).
        transition_kl_weight: lambda, weight of the transition KL (0.25).
    """

    latent_obs_dim: int = 3
    decoder: str = "bernoulli"
    transition_hidden: tuple[int, ...] = (100, 100)
    kl_weight: float = 1.0
    transition_kl_weight: float = 0.25

    def __post_init__(self) -> None:
        """Validate option values."""
        super().__post_init__()
        if isinstance(self.transition_hidden, list):
            object.__setattr__(self, "transition_hidden", tuple(self.transition_hidden))
        check_choice("decoder", self.decoder, ("bernoulli",))
        if self.kl_weight < 0 or self.transition_kl_weight < 0:
            raise ValueError("kl_weight and transition_kl_weight must be >= 0")


def transition_kl(
    *, trans: Tensor, mean: Tensor, var: Tensor, offset: Tensor, det: Tensor, next_mean: Tensor, next_var: Tensor
) -> Tensor:
    """KL(N(A mu + o, A diag(s) A^T) || N(mu', diag(s'))), summed over the latent: (...,).

    0.5 [sum_i (sum_j A_ij^2 s_j) / s'_i + sum_i (mu'_i - m_i)^2 / s'_i - d + sum log s'
    - sum log s - 2 log|det A|], with m = A mu + o and det A = 1 + r^T v given as ``det``.

    Args:
        trans: A, (..., d, d); mean, var, offset, next_mean, next_var: (..., d); det: (...,).
    """
    moved = (trans @ mean.unsqueeze(-1)).squeeze(-1) + offset
    trace = ((trans**2 @ var.unsqueeze(-1)).squeeze(-1) / next_var).sum(-1)
    maha = ((next_mean - moved) ** 2 / next_var).sum(-1)
    log_det = next_var.log().sum(-1) - var.log().sum(-1) - 2.0 * det.abs().clamp_min(DET_FLOOR).log()
    return 0.5 * (trace + maha - mean.shape[-1] + log_det)


class E2CPairState(NamedTuple):
    """The last frame of a training window, for the transition pair across the next boundary:
    its sample z, and q's mean and variance, each (B, d)."""

    z: Tensor
    mean: Tensor
    var: Tensor


class E2C(SequenceModel):
    """E2C with the RKN encoder/decoder: images (B, T, H, W, C) -> BernoulliPrediction."""

    config_class = E2CConfig
    config: E2CConfig

    def __init__(self, config: E2CConfig) -> None:
        super().__init__(config)
        d = config.latent_obs_dim
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config, mean_in=d, var_in=0)
        self.transition_net = mlp(d, config.transition_hidden, 3 * d, "relu")
        apply_init(self, self.encoder, config.init)
        with torch.no_grad():  # start near the identity transition A = I, o = 0
            self.transition_net[-1].weight.mul_(0.1)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """q(z | x): mean and variance, each (B, T, d)."""
        batch, steps = images.shape[:2]
        dtype = self.encoder.mean_head.weight.dtype
        mean, var = self.encoder(images_to_batch(images, self.config.input_scale, dtype))
        return mean.view(batch, steps, -1), var.view(batch, steps, -1) + VAR_FLOOR

    def transition(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(A = I + v r^T (..., d, d), offset o (..., d), det A = 1 + r^T v (...,)) at z (..., d)."""
        v, r, offset = self.transition_net(z).chunk(3, -1)
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        return eye + v.unsqueeze(-1) * r.unsqueeze(-2), offset, 1.0 + (r * v).sum(-1)

    def forward(self, images: Tensor, obs_valid: Tensor | None = None) -> BernoulliPrediction:
        """Encode observed frames, roll the transition mean through missing ones, decode all.

        Args:
            images: (B, T, H, W, C) raw pixels; missing frames' pixels are never used.
            obs_valid: (B, T) bool or None (all observed).
        """
        return self.forward_window(images, obs_valid, None)[0]

    def forward_window(self, images: Tensor, obs_valid: Tensor | None,
                       state: WindowState) -> tuple[BernoulliPrediction, WindowState]:
        """``forward`` over one window, continuing from the previous window's last latent (B, d):
        a missing first frame is rolled on from it (None: from z = 0, as ``forward``)."""
        batch, steps = images.shape[:2]
        mean, _ = self.encode(images)
        if obs_valid is None:
            latents = mean
        else:
            valid = obs_valid.to(torch.bool)[..., None]
            rolled_on = torch.zeros_like(mean[:, 0]) if state is None else self._roll(state)
            z = torch.where(valid[:, 0], mean[:, 0], rolled_on)
            rolled = [z]
            for t in range(1, steps):
                z = torch.where(valid[:, t], mean[:, t], self._roll(z))
                rolled.append(z)
            latents = torch.stack(rolled, 1)
        probs = self.decoder(latents.reshape(batch * steps, -1))
        prediction = BernoulliPrediction(probs=probs.reshape(batch, steps, *probs.shape[1:]))
        return prediction, latents[:, -1]

    def _roll(self, z: Tensor) -> Tensor:
        """The transition mean A(z) z + o, (B, d)."""
        trans, offset, _ = self.transition(z)
        return (trans @ z.unsqueeze(-1)).squeeze(-1) + offset

    def training_loss(self, images: Tensor, obs_valid: Tensor | None, targets: Tensor) -> Tensor:
        """E2C loss per frame on consecutive pairs of the clean target frames (information set A)."""
        return self.training_loss_window(images, obs_valid, targets, None)[0]

    def training_loss_window(self, images: Tensor, obs_valid: Tensor | None, targets: Tensor,
                             state: WindowState) -> tuple[Tensor, WindowState]:
        """``training_loss`` of one window: the mean of the frame terms of its L frames plus the
        mean of its pair terms, which include the pair (last frame of the previous window, first
        frame of this one) when ``state`` (an ``E2CPairState``) carries the former."""
        del images, obs_valid
        frame_terms, pair_terms, state = self.loss_terms(targets, state)
        loss = frame_terms.mean()
        if pair_terms is not None:
            loss = loss + pair_terms.mean()
        return loss, state

    def loss_terms(self, targets: Tensor,
                   state: E2CPairState | None) -> tuple[Tensor, Tensor | None, E2CPairState]:
        """The per-frame and per-pair terms of the E2C loss on a window of clean frames.

        Args:
            targets: (B, L, H, W, C) uint8 clean frames.
            state: the previous window's last frame (its sample and q), or None at the start.

        Returns:
            Frame terms BCE(x_t | z_t) + kl_weight KL(q(z_t) || N(0, I)), (B, L); pair terms
            BCE(x_{t+1} | A_t z_t + o) + transition_kl_weight KL(...), (B, P) with P = L - 1
            (state None) or L (the pair across the boundary first), None when P = 0; and the
            ``E2CPairState`` of this window's last frame. The carried frame enters detached: the
            boundary pair's gradient reaches this window's encoding, the transition and the
            decoder, never the previous window's encoding.
        """
        cfg = self.config
        batch, steps = targets.shape[:2]
        mean, var = self.encode(targets)
        z = mean + var.sqrt() * torch.randn_like(mean)                               # (B, T, d)
        recon = bernoulli_nll(BernoulliPrediction(self.decoder(z.reshape(batch * steps, -1))
                                                  .reshape(targets.shape)), targets)  # (B, T)
        prior_kl = 0.5 * (var + mean**2 - 1.0 - var.log()).sum(-1)                   # (B, T)
        frame_terms = recon + cfg.kl_weight * prior_kl
        next_targets = targets[:, 1:]
        if state is not None:  # the previous window's last frame starts the first pair
            z, mean, var = (torch.cat([old.unsqueeze(1), new], 1) for old, new in
                            zip(state, (z, mean, var)))
            next_targets = targets
        pairs = z.shape[1] - 1
        pair_terms = None
        if pairs > 0:
            trans, offset, det = self.transition(z[:, :-1])
            moved = (trans @ z[:, :-1].unsqueeze(-1)).squeeze(-1) + offset         # z_{t+1} sample
            next_probs = self.decoder(moved.reshape(batch * pairs, -1)).reshape(next_targets.shape)
            next_recon = bernoulli_nll(BernoulliPrediction(next_probs), next_targets)
            kl = transition_kl(trans=trans, mean=mean[:, :-1], var=var[:, :-1], offset=offset, det=det,
                               next_mean=mean[:, 1:], next_var=var[:, 1:])
            pair_terms = next_recon + cfg.transition_kl_weight * kl
        return frame_terms, pair_terms, E2CPairState(z[:, -1], mean[:, -1], var[:, -1])

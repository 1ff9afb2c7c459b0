"""Kalman filter steps with a FULL 2m x 2m belief covariance (pure functions; ablation E8).

The same model as ``rkn.kalman`` (state z = [z_upper; z_lower], H = [I_m 0], diagonal
observation and transition noise) without the factorization assumption: every entry of the
covariance is kept. The gain is computed with a Cholesky factor of the innovation covariance and
triangular solves, never with an explicit inverse. All functions are dtype-agnostic, work on any
leading batch size B and never modify their inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from rkn.kalman import FactorizedCov


class FullBelief(NamedTuple):
    """Gaussian belief: mean (B, 2m) and full covariance (B, 2m, 2m), SPD."""

    mean: Tensor
    cov: Tensor


def _symmetric(cov: Tensor) -> Tensor:
    """(P + P^T) / 2: removes the round-off asymmetry of the matrix products."""
    return 0.5 * (cov + cov.transpose(-1, -2))


def predict_full(*, posterior: FullBelief, transition: Tensor,
                 transition_noise: Tensor) -> FullBelief:
    """Prediction through A: mean^- = A mean^+, Sigma^- = A Sigma^+ A^T + diag(Q).

    Args:
        posterior: belief after the last update; mean (B, 2m), cov (B, 2m, 2m).
        transition: A, (B, 2m, 2m) (a batch size of 1 broadcasts).
        transition_noise: diagonal of Q, (B, 2m) or (1, 2m).

    Returns:
        The prior of the next step, same shapes as ``posterior``.
    """
    mean = torch.matmul(transition, posterior.mean.unsqueeze(-1)).squeeze(-1)
    cov = transition @ posterior.cov @ transition.transpose(-1, -2)
    cov = _symmetric(cov) + torch.diag_embed(transition_noise.expand_as(mean))
    return FullBelief(mean=mean, cov=cov)


def update_full(*, prior: FullBelief, obs_mean: Tensor, obs_var: Tensor) -> FullBelief:
    """Exact Kalman update with H = [I 0] and R = diag(obs_var)
    (docs/model.md#full-covariance-variant).

        S = Sigma^-_uu + R = L L^T (Cholesky),   V = L^-1 Sigma^-_{u,:},   e = L^-1 (w - mean^-_u)
        mean^+  = mean^- + Sigma^-_{:,u} S^-1 (w - mean^-_u) = mean^- + V^T e
        Sigma^+ = Sigma^- - Sigma^-_{:,u} S^-1 Sigma^-_{u,:} = Sigma^- - V^T V

    i.e. the gain Q = Sigma^-_{:,u} S^-1, computed with two triangular solves instead of S^-1.

    Args:
        prior: mean (B, 2m), cov (B, 2m, 2m).
        obs_mean: w, (B, m). obs_var: (B, m), positive.

    Returns:
        The posterior, same shapes as ``prior``.
    """
    latent_obs_dim = obs_mean.shape[-1]
    if prior.mean.shape[-1] != 2 * latent_obs_dim:
        raise ValueError(f"prior mean has {prior.mean.shape[-1]} units but the observation has "
                         f"{latent_obs_dim}: the state must be twice the observation size")
    cov_upper_rows = prior.cov[..., :latent_obs_dim, :]  # Sigma_{u,:}, (B, m, 2m)
    innovation_cov = cov_upper_rows[..., :latent_obs_dim] + torch.diag_embed(obs_var)
    chol = torch.linalg.cholesky(innovation_cov)
    whitened_rows = torch.linalg.solve_triangular(chol, cov_upper_rows, upper=False)  # V
    residual = (obs_mean - prior.mean[..., :latent_obs_dim]).unsqueeze(-1)
    whitened_residual = torch.linalg.solve_triangular(chol, residual, upper=False)  # e
    mean = prior.mean + (whitened_rows.transpose(-1, -2) @ whitened_residual).squeeze(-1)
    cov = _symmetric(prior.cov - whitened_rows.transpose(-1, -2) @ whitened_rows)
    return FullBelief(mean=mean, cov=cov)


def masked_update_full(*, prior: FullBelief, obs_mean: Tensor, obs_var: Tensor,
                       obs_valid: Tensor) -> FullBelief:
    """``update_full`` where ``obs_valid`` (bool, (B,)), the prior unchanged elsewhere (select)."""
    if obs_valid.dtype != torch.bool:
        raise TypeError(f"obs_valid must be a bool tensor, got {obs_valid.dtype}")
    posterior = update_full(prior=prior, obs_mean=obs_mean, obs_var=obs_var)
    valid = obs_valid.reshape(-1, 1)
    return FullBelief(mean=torch.where(valid, posterior.mean, prior.mean),
                      cov=torch.where(valid.unsqueeze(-1), posterior.cov, prior.cov))


def block_diagonals(cov: Tensor) -> FactorizedCov:
    """Diagonals of the blocks of a (..., 2m, 2m) covariance: upper, lower, side = Sigma_{i+m, i}.

    The same three m-vectors the factorized RKN keeps, so its variance decoder can be reused.
    """
    latent_obs_dim = cov.shape[-1] // 2
    diag = torch.diagonal(cov, dim1=-2, dim2=-1)
    side = torch.diagonal(cov[..., latent_obs_dim:, :latent_obs_dim], dim1=-2, dim2=-1)
    return FactorizedCov(upper=diag[..., :latent_obs_dim], lower=diag[..., latent_obs_dim:],
                         side=side)

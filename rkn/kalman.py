"""Factorized Kalman filter steps of the Recurrent Kalman Network (pure functions).

Notation (paper.md §1.1): latent observation size m, latent state size n = 2m, state
z = [z_upper; z_lower], observation model H = [I_m 0]. The belief covariance is kept factorized,

    Sigma = [[diag(upper), diag(side)],
             [diag(side),  diag(lower)]],

so a belief is a mean (B, 2m) and three (B, m) vectors. Every function here is dtype-agnostic,
works on any leading batch size B, and never modifies its inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class FactorizedCov(NamedTuple):
    """Diagonals of the three distinct blocks of the 2m x 2m belief covariance, each (B, m)."""

    upper: Tensor
    lower: Tensor
    side: Tensor


class Belief(NamedTuple):
    """Gaussian belief over the latent state: mean (B, 2m) and its factorized covariance."""

    mean: Tensor
    cov: FactorizedCov


Transition = tuple[Tensor, Tensor, Tensor, Tensor]


def update(prior: Belief, obs_mean: Tensor, obs_var: Tensor) -> Belief:
    """Observation update with H = [I 0] and diagonal observation noise (paper eq. 2-7).

    With S = upper^- + obs_var (element-wise), the gains are q_u = upper^- / S and
    q_l = side^- / S, and

        mean^+  = mean^- + [q_u * (w - mean^-_u); q_l * (w - mean^-_u)]
        upper^+ = (1 - q_u) * upper^-
        side^+  = (1 - q_u) * side^-
        lower^+ = lower^- - q_l * side^-

    This is the exact Kalman update for the factorized prior: no matrix is inverted because
    H Sigma^- H^T + R is diagonal.

    Args:
        prior: belief before seeing the observation; mean (B, 2m), factors (B, m).
        obs_mean: latent observation w, (B, m).
        obs_var: observation noise variances, (B, m), strictly positive.

    Returns:
        The posterior belief, same shapes as ``prior``.
    """
    latent_obs_dim = obs_mean.shape[-1]
    if prior.mean.shape[-1] != 2 * latent_obs_dim:
        raise ValueError(
            f"prior mean has {prior.mean.shape[-1]} units but the observation has "
            f"{latent_obs_dim}: the state must be twice the observation size"
        )
    upper, lower, side = prior.cov
    mean_upper = prior.mean[..., :latent_obs_dim]
    mean_lower = prior.mean[..., latent_obs_dim:]

    innovation_var = upper + obs_var
    gain_upper = upper / innovation_var
    gain_lower = side / innovation_var
    residual = obs_mean - mean_upper

    mean = torch.cat([mean_upper + gain_upper * residual, mean_lower + gain_lower * residual], -1)
    keep = 1.0 - gain_upper
    cov = FactorizedCov(upper=keep * upper, lower=lower - gain_lower * side, side=keep * side)
    return Belief(mean=mean, cov=cov)


def masked_update(prior: Belief, obs_mean: Tensor, obs_var: Tensor, obs_valid: Tensor) -> Belief:
    """Observation update that is skipped where the observation is invalid (paper.md §1.5).

    posterior = update(prior, w, obs_var) where obs_valid, else prior (exactly, bit for bit).
    The update is computed for every row and then selected, so inputs at invalid rows must still
    be finite: a select does not stop NaN gradients flowing from the unused branch.

    Args:
        prior: belief before the observation; mean (B, 2m), factors (B, m).
        obs_mean: (B, m). obs_var: (B, m), positive.
        obs_valid: bool, (B,) or (B, 1).

    Returns:
        The posterior belief, same shapes as ``prior``.
    """
    if obs_valid.dtype != torch.bool:
        raise TypeError(f"obs_valid must be a bool tensor, got {obs_valid.dtype}")
    valid = obs_valid.reshape(-1, 1)
    posterior = update(prior, obs_mean, obs_var)
    return Belief(
        mean=torch.where(valid, posterior.mean, prior.mean),
        cov=FactorizedCov(*(torch.where(valid, new, old) for new, old in zip(posterior.cov, prior.cov))),
    )


def predict(posterior: Belief, transition: Transition | Tensor, transition_noise: Tensor) -> Belief:
    """Prediction step through a 2m x 2m transition A = [[A11, A12], [A21, A22]] (paper.md §1.4).

    mean^- = A mean^+. The factors of the new covariance are exactly the diagonals of the blocks
    of A Sigma^+ A^T + diag(Q) (supplement eq. 10-12):

        upper^-_i = sum_j [A11_ij^2 u_j + 2 A11_ij A12_ij s_j + A12_ij^2 l_j] + Q_upper_i
        lower^-_i = sum_j [A21_ij^2 u_j + 2 A21_ij A22_ij s_j + A22_ij^2 l_j] + Q_lower_i
        side^-_i  = sum_j [A21_ij A11_ij u_j + (A22_ij A11_ij + A21_ij A12_ij) s_j + A22_ij A12_ij l_j]

    Computed without matrix products: because Sigma's blocks are diagonal, column k of A Sigma is
    A[:, k] [u; l]_k + A[:, k +- m] [s; s]_k, and diag(A Sigma A^T)_i = sum_k (A Sigma)_ik A_ik.
    The off-diagonal entries of the blocks that A Sigma A^T creates are dropped (the
    factorization assumption).

    Args:
        posterior: belief after the last update; mean (B, 2m), factors (B, m).
        transition: (A11, A12, A21, A22), each (B, m, m), or the whole A as one (B, 2m, 2m)
            tensor; a batch size of 1 broadcasts over B.
        transition_noise: diagonal of Q, (B, 2m) or (1, 2m): upper m entries, then lower m.

    Returns:
        The prior belief of the next step, same shapes as ``posterior``.
    """
    if isinstance(transition, Tensor):
        full = transition
    else:
        a11, a12, a21, a22 = transition
        full = torch.cat([torch.cat([a11, a12], -1), torch.cat([a21, a22], -1)], -2)
    latent_obs_dim = full.shape[-1] // 2
    upper, lower, side = posterior.cov
    # Column halves swapped: swapped[:, i, k] = A[i, k + m] for k < m and A[i, k - m] otherwise.
    swapped = torch.cat([full[..., latent_obs_dim:], full[..., :latent_obs_dim]], -1)
    a_sigma = full * torch.cat([upper, lower], -1).unsqueeze(-2) + swapped * torch.cat([side, side], -1).unsqueeze(-2)
    variances = (a_sigma * full).sum(-1) + transition_noise  # (B, 2m): diag of A Sigma A^T + Q
    # side_i = (A Sigma A^T)_{i + m, i} = sum_k (A Sigma)_{i + m, k} A_{i, k}
    new_side = (a_sigma[..., latent_obs_dim:, :] * full[..., :latent_obs_dim, :]).sum(-1)
    mean = torch.matmul(full, posterior.mean.unsqueeze(-1)).squeeze(-1)
    cov = FactorizedCov(
        upper=variances[..., :latent_obs_dim], lower=variances[..., latent_obs_dim:], side=new_side
    )
    return Belief(mean=mean, cov=cov)

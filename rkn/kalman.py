"""Factorized Kalman filter steps of the Recurrent Kalman Network (pure functions).

Notation (docs/model.md#notation): latent observation size m, latent state size n = 2m, state
z = [z_upper; z_lower], observation model H = [I_m 0]. The belief covariance is kept factorized,

    Sigma = [[diag(upper), diag(side)],
             [diag(side),  diag(lower)]],

so a belief is a mean (B, 2m) and three (B, m) vectors. Every function here is dtype-agnostic,
works on any leading batch size B, and never modifies its inputs.

The transition A = [[A11, A12], [A21, A22]] reaches ``predict`` either dense or, in the RKN's
training and evaluation path, as its bands only (``predict_band``): each m x m block of bandwidth
b kept as an (m, 2b + 1) array, entry [i, d] = A_rc[i, i + d - b]. The band form never builds a
2m x 2m matrix, so a prediction costs O(B m b) time and memory instead of O(B m^2).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
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
    """Observation update with H = [I 0] and diagonal observation noise (paper eq. 2-7;
    docs/model.md#update-step).

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
    """Observation update that is skipped where the observation is invalid
    (docs/model.md#masked-update).

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
    """Prediction step through a 2m x 2m transition A = [[A11, A12], [A21, A22]]
    (docs/model.md#prediction-step).

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


def band_gather(x: Tensor, half_width: int) -> Tensor:
    """Neighbourhoods of a vector: out[..., i, d] = x[..., i + d - b], zero outside 0..m-1.

    Args:
        x: (..., m).
        half_width: b >= 0.

    Returns:
        (..., m, 2b + 1), the entries of x that row i of a band matrix of bandwidth b multiplies.
    """
    return F.pad(x, (half_width, half_width)).unfold(-1, 2 * half_width + 1, 1)


def predict_band(posterior: Belief, band: Tensor, transition_noise: Tensor) -> Belief:
    """``predict`` with the transition given as its four band blocks (docs/model.md#band-storage).

    The same equations as ``predict`` (supplement eq. 10-12), summed over the band only: with
    u, l, s the posterior factors gathered around row i (``band_gather``) and A_rc[i, d] the band
    entries,

        (A Sigma)_r,upper = A_r1 * u + A_r2 * s,   (A Sigma)_r,lower = A_r1 * s + A_r2 * l
        upper^-_i = sum_d [(A Sigma)_1,upper A_11 + (A Sigma)_1,lower A_12]_id + Q_upper_i
        lower^-_i = sum_d [(A Sigma)_2,upper A_21 + (A Sigma)_2,lower A_22]_id + Q_lower_i
        side^-_i  = sum_d [(A Sigma)_2,upper A_11 + (A Sigma)_2,lower A_12]_id
        mean^-_r,i = sum_d [A_r1 mu_upper + A_r2 mu_lower]_id

    Band entries whose column i + d - b falls outside 0..m-1 meet the zero padding of the
    gathered vectors, so they never contribute and receive exactly zero gradient.

    Args:
        posterior: belief after the last update; mean (B, 2m), factors (B, m).
        band: (B, 2, 2, m, 2b + 1), indexed [batch, row block, column block, i, d]; a batch
            size of 1 broadcasts over B.
        transition_noise: diagonal of Q, (B, 2m) or (1, 2m): upper m entries, then lower m.

    Returns:
        The prior belief of the next step, same shapes as ``posterior``.

    Raises:
        ValueError: the band does not fit the belief (m or an even width).
    """
    upper, lower, side = posterior.cov
    latent_obs_dim = upper.shape[-1]
    width = band.shape[-1]
    if band.shape[-4:-1] != (2, 2, latent_obs_dim) or width % 2 == 0:
        raise ValueError(f"band must be (B, 2, 2, {latent_obs_dim}, 2b + 1) for a belief with "
                         f"m = {latent_obs_dim}, got {tuple(band.shape)}")
    half = width // 2
    # One gather for all five vectors: (B, 5, m, w).
    gathered = band_gather(torch.stack([upper, lower, side, posterior.mean[..., :latent_obs_dim],
                                        posterior.mean[..., latent_obs_dim:]], -2), half)
    g_upper, g_lower, g_side, g_mu_upper, g_mu_lower = gathered.unbind(-3)  # (B, m, w) each
    by_col_upper, by_col_lower = band[..., 0, :, :], band[..., 1, :, :]  # (B, 2 row blocks, m, w)
    a_sigma_upper = by_col_upper * g_upper.unsqueeze(-3) + by_col_lower * g_side.unsqueeze(-3)
    a_sigma_lower = by_col_upper * g_side.unsqueeze(-3) + by_col_lower * g_lower.unsqueeze(-3)
    variances = (a_sigma_upper * by_col_upper + a_sigma_lower * by_col_lower).sum(-1)  # (B, 2, m)
    new_side = (a_sigma_upper[..., 1, :, :] * by_col_upper[..., 0, :, :]
                + a_sigma_lower[..., 1, :, :] * by_col_lower[..., 0, :, :]).sum(-1)
    mean = (by_col_upper * g_mu_upper.unsqueeze(-3) + by_col_lower * g_mu_lower.unsqueeze(-3)).sum(-1)
    variances = variances.flatten(-2) + transition_noise  # (B, 2m): upper m, then lower m
    cov = FactorizedCov(upper=variances[..., :latent_obs_dim],
                        lower=variances[..., latent_obs_dim:], side=new_side)
    return Belief(mean=mean.flatten(-2), cov=cov)

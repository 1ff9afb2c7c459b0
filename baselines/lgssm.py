"""Dense linear-Gaussian state-space filtering and smoothing in torch (KVAE,
docs/baselines.md#kvae).

Pure, keyword-only functions on ``Gaussian(mean, cov)`` named tuples, batched over a leading axis
and dtype-agnostic (the KVAE runs them in float64). Numerically careful: no explicit inverses
(``torch.linalg.solve`` and Cholesky factors), the Joseph form for the posterior covariance, and
every covariance symmetrised after each step. The independent reference is the NumPy float64
filter in ``tests/reference/kalman_numpy.py``.

Model, for t = 1..T, from the belief at t = 0 (predict, then update, as in the RKN):
    z_t = A_t z_{t-1} + eps_t,  eps_t ~ N(0, Q);   a_t = C_t z_t + delta_t,  delta_t ~ N(0, R).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class Gaussian(NamedTuple):
    """Batched Gaussian belief: mean (B, n), cov (B, n, n) symmetric positive definite."""

    mean: Tensor
    cov: Tensor


def symmetrise(cov: Tensor) -> Tensor:
    """(P + P^T) / 2 over the last two axes."""
    return 0.5 * (cov + cov.transpose(-1, -2))


def predict(*, belief: Gaussian, transition: Tensor, noise_cov: Tensor) -> Gaussian:
    """Prediction: mu^- = A mu^+,  P^- = A P^+ A^T + Q.

    Args:
        belief: posterior of the previous step, mean (B, n), cov (B, n, n).
        transition: A, (B, n, n).
        noise_cov: Q, (n, n) or (B, n, n).
    """
    mean = (transition @ belief.mean.unsqueeze(-1)).squeeze(-1)
    return Gaussian(mean, symmetrise(transition @ belief.cov @ transition.transpose(-1, -2) + noise_cov))


def update(
    *, prior: Gaussian, obs: Tensor, obs_matrix: Tensor, noise_cov: Tensor, valid: Tensor | None = None
) -> tuple[Gaussian, Tensor]:
    """Masked Kalman update and the innovation log-likelihood log N(a | C mu^-, C P^- C^T + R).

    S = C P^- C^T + R;  K = P^- C^T S^{-1} (a solve);  mu^+ = mu^- + K (a - C mu^-);
    P^+ = (I - K C) P^- (I - K C)^T + K R K^T (Joseph form, symmetrised).
    Where ``valid`` is False the posterior is the prior (gain zero) and the log-likelihood is 0;
    a select, so the observation's values there never reach the result.

    Args:
        prior: mean (B, n), cov (B, n, n).
        obs: a, (B, d).
        obs_matrix: C, (B, d, n).
        noise_cov: R, (d, d).
        valid: (B,) bool or None (all valid).

    Returns:
        (posterior, log_lik (B,)).
    """
    cov_ct = prior.cov @ obs_matrix.transpose(-1, -2)                      # (B, n, d)
    innov_cov = symmetrise(obs_matrix @ cov_ct + noise_cov)               # (B, d, d)
    chol = torch.linalg.cholesky(innov_cov)
    residual = obs - (obs_matrix @ prior.mean.unsqueeze(-1)).squeeze(-1)  # (B, d)
    if valid is not None:  # keep missing observations' values (and NaNs) out of every branch
        residual = torch.where(valid[:, None], residual, torch.zeros_like(residual))
    # K^T = S^{-1} C P (S, P symmetric), via the Cholesky factor of S
    gain = torch.cholesky_solve(cov_ct.transpose(-1, -2), chol).transpose(-1, -2)  # (B, n, d)
    mean = prior.mean + (gain @ residual.unsqueeze(-1)).squeeze(-1)
    eye = torch.eye(prior.mean.shape[-1], dtype=prior.mean.dtype, device=prior.mean.device)
    factor = eye - gain @ obs_matrix
    cov = symmetrise(factor @ prior.cov @ factor.transpose(-1, -2) + gain @ noise_cov @ gain.transpose(-1, -2))
    white = torch.linalg.solve_triangular(chol, residual.unsqueeze(-1), upper=False).squeeze(-1)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    log_lik = -0.5 * (obs.shape[-1] * math.log(2 * math.pi) + log_det + (white**2).sum(-1))
    if valid is None:
        return Gaussian(mean, cov), log_lik
    keep = valid[:, None]
    posterior = Gaussian(torch.where(keep, mean, prior.mean), torch.where(keep[..., None], cov, prior.cov))
    return posterior, torch.where(valid, log_lik, torch.zeros_like(log_lik))


def rts_smooth(*, filtered: Gaussian, priors: Gaussian, transitions: Tensor) -> Gaussian:
    """Rauch-Tung-Striebel smoother over a whole filtered sequence.

    G_t = P_{t|t} A_{t+1}^T (P_{t+1|t})^{-1};  mu_{t|T} = mu_{t|t} + G_t (mu_{t+1|T} - mu_{t+1|t});
    P_{t|T} = P_{t|t} + G_t (P_{t+1|T} - P_{t+1|t}) G_t^T (symmetrised).

    Args:
        filtered: posteriors, mean (B, T, n), cov (B, T, n, n).
        priors: one-step predictions P_{t|t-1}, same shapes.
        transitions: A_t mapping step t-1 to t, (B, T, n, n) (A_1 is unused).

    Returns:
        Smoothed marginals, mean (B, T, n), cov (B, T, n, n).
    """
    steps = filtered.mean.shape[1]
    means, covs = [filtered.mean[:, -1]], [filtered.cov[:, -1]]
    for t in range(steps - 2, -1, -1):
        mean_f, cov_f = filtered.mean[:, t], filtered.cov[:, t]
        # G^T = (P_{t+1|t})^{-1} A_{t+1} P_{t|t}  (both covariances symmetric)
        gain = torch.linalg.solve(priors.cov[:, t + 1], transitions[:, t + 1] @ cov_f).transpose(-1, -2)
        mean = mean_f + (gain @ (means[0] - priors.mean[:, t + 1]).unsqueeze(-1)).squeeze(-1)
        cov = symmetrise(cov_f + gain @ (covs[0] - priors.cov[:, t + 1]) @ gain.transpose(-1, -2))
        means.insert(0, mean)
        covs.insert(0, cov)
    return Gaussian(torch.stack(means, 1), torch.stack(covs, 1))

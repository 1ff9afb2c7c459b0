"""Full-covariance RKN (ablation E8) against the dense float64 Kalman filter of tests/reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rkn.interface import FilterFailure
from rkn.full_cov import FullCovCell
from rkn.kalman_full import (FullBelief, block_diagonals, masked_update_full, predict_full,
                             update_full)
from tests.config_models import build_named
from rkn.transition import LocallyLinearTransition
from tests.reference.kalman_numpy import kf_predict, kf_update

M = 4  # latent observation size; state 2M


def random_spd(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random well-conditioned symmetric positive definite n x n matrix."""
    a = rng.normal(size=(n, n))
    return a @ a.T / n + 0.5 * np.eye(n)


def obs_model() -> np.ndarray:
    """H = [I 0], (M, 2M)."""
    return np.hstack([np.eye(M), np.zeros((M, M))])


def test_update_equals_dense_kalman_update() -> None:
    """Mean and full covariance after one update equal the textbook update (float64)."""
    rng = np.random.default_rng(0)
    means, covs, ws, rs = [], [], [], []
    for _ in range(3):
        means.append(rng.normal(size=2 * M))
        covs.append(random_spd(rng, 2 * M))
        ws.append(rng.normal(size=M))
        rs.append(rng.uniform(0.1, 2.0, size=M))
    prior = FullBelief(torch.tensor(np.stack(means)), torch.tensor(np.stack(covs)))
    post = update_full(prior=prior, obs_mean=torch.tensor(np.stack(ws)),
                       obs_var=torch.tensor(np.stack(rs)))
    for b in range(3):
        want_mean, want_cov = kf_update(means[b], covs[b], ws[b], obs_model(), np.diag(rs[b]))
        np.testing.assert_allclose(post.mean[b].numpy(), want_mean, atol=1e-12, rtol=0)
        np.testing.assert_allclose(post.cov[b].numpy(), want_cov, atol=1e-12, rtol=0)


def test_predict_equals_dense_kalman_predict() -> None:
    """mean^- = A mean, Sigma^- = A Sigma A^T + diag(Q) in float64."""
    rng = np.random.default_rng(1)
    mean, cov = rng.normal(size=2 * M), random_spd(rng, 2 * M)
    a, q = rng.normal(size=(2 * M, 2 * M)), rng.uniform(0.01, 0.5, size=2 * M)
    prior = predict_full(posterior=FullBelief(torch.tensor(mean)[None], torch.tensor(cov)[None]),
                         transition=torch.tensor(a)[None], transition_noise=torch.tensor(q)[None])
    want_mean, want_cov = kf_predict(mean, cov, a, np.diag(q))
    np.testing.assert_allclose(prior.mean[0].numpy(), want_mean, atol=1e-12, rtol=0)
    np.testing.assert_allclose(prior.cov[0].numpy(), want_cov, atol=1e-12, rtol=0)


def test_cell_equals_dense_filter_over_a_sequence() -> None:
    """The cell's whole filter (predict-update, locally linear A_t) equals the dense filter.

    A_t comes from the transition module applied to the reference filter's own previous
    posterior mean, so the reference shares only the transition function with the cell.
    """
    torch.manual_seed(0)
    transition = LocallyLinearTransition(latent_obs_dim=M, num_basis=3, bandwidth=1).double()
    with torch.no_grad():  # move away from the identical-basis init so A_t depends on the state
        transition.basis.add_(0.1 * torch.randn_like(transition.basis))
        transition.coef_net[0].weight.normal_()
    cell = FullCovCell(transition=transition, init_cov=2.0).double()
    rng = np.random.default_rng(2)
    steps = 6
    w, r = rng.normal(size=(1, steps, M)), rng.uniform(0.2, 1.5, size=(1, steps, M))
    got_means, got_covs = cell.filter_full(torch.tensor(w), torch.tensor(r))
    q = np.diag(transition.noise()[0].detach().numpy())
    mean, cov = np.zeros(2 * M), 2.0 * np.eye(2 * M)
    for t in range(steps):
        a = transition.matrix(torch.tensor(mean)[None])[0].detach().numpy()
        mean, cov = kf_predict(mean, cov, a, q)
        mean, cov = kf_update(mean, cov, w[0, t], obs_model(), np.diag(r[0, t]))
        np.testing.assert_allclose(got_means[0, t].detach().numpy(), mean, atol=1e-10, rtol=0)
        np.testing.assert_allclose(got_covs[0, t].detach().numpy(), cov, atol=1e-10, rtol=0)


def test_masked_update_keeps_prior_exactly() -> None:
    """Invalid rows keep the prior bit for bit; valid rows are updated."""
    rng = np.random.default_rng(3)
    prior = FullBelief(torch.tensor(rng.normal(size=(2, 2 * M))),
                       torch.tensor(np.stack([random_spd(rng, 2 * M) for _ in range(2)])))
    w, r = torch.tensor(rng.normal(size=(2, M))), torch.ones(2, M, dtype=torch.float64)
    valid = torch.tensor([True, False])
    post = masked_update_full(prior=prior, obs_mean=w, obs_var=r, obs_valid=valid)
    assert torch.equal(post.mean[1], prior.mean[1]) and torch.equal(post.cov[1], prior.cov[1])
    assert not torch.equal(post.cov[0], prior.cov[0])


def test_block_diagonals_pick_the_factorized_entries() -> None:
    """upper = diag(Sigma_uu), lower = diag(Sigma_ll), side_i = Sigma[i + m, i]."""
    cov = torch.arange(36.0).view(6, 6)
    blocks = block_diagonals(cov)
    assert blocks.upper.tolist() == [0.0, 7.0, 14.0]
    assert blocks.lower.tolist() == [21.0, 28.0, 35.0]
    assert blocks.side.tolist() == [18.0, 25.0, 32.0]


@pytest.mark.parametrize("valid", [False, True])
def test_bandwidth_zero_equals_factorized_rkn(valid: bool) -> None:
    """With diagonal transition blocks (b = 0) the factorization is exact: same predictions.

    Diagonal blocks keep a factorized covariance factorized under predict and update, so the
    full-covariance model built with the same seed must reproduce the factorized RKN.
    """
    overrides = {"bandwidth": 0, "latent_obs_dim": 5}
    torch.manual_seed(4)
    factorized = build_named("rkn", overrides).double()
    torch.manual_seed(4)
    full = build_named("rkn_full_cov", overrides).double()
    images = torch.randint(0, 256, (2, 5, 24, 24, 1), generator=torch.Generator().manual_seed(5),
                           dtype=torch.uint8)
    mask = torch.tensor([[True, False, True, True, False]] * 2) if valid else None
    want, got = factorized(images, mask), full(images, mask)
    torch.testing.assert_close(got.mean, want.mean, atol=1e-10, rtol=0)
    torch.testing.assert_close(got.var, want.var, atol=1e-10, rtol=0)


def test_full_covariance_differs_from_factorized_with_a_band() -> None:
    """With b = 3 and non-diagonal blocks the dropped terms matter: the two models disagree.

    (The initial basis has diagonal blocks, so both start equal; the same perturbation of the
    basis makes the blocks banded.)
    """
    torch.manual_seed(6)
    factorized = build_named("rkn").double()
    torch.manual_seed(6)
    full = build_named("rkn_full_cov").double()
    kick = 0.05 * torch.randn(factorized.cell.transition.basis.shape, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        for model in (factorized, full):
            model.cell.transition.basis.add_(kick)
    images = torch.randint(0, 256, (1, 4, 24, 24, 1), generator=torch.Generator().manual_seed(7),
                           dtype=torch.uint8)
    assert not torch.allclose(factorized(images).var, full(images).var, atol=1e-6)


def test_cholesky_failure_names_the_settings_to_change() -> None:
    """An innovation covariance that is not positive definite raises FilterFailure naming the
    step and the training settings, not torch's raw LinAlgError."""
    torch.manual_seed(0)
    model = build_named("rkn_full_cov", {"latent_obs_dim": 4})
    obs = torch.zeros(2, 3, 4)
    obs_var = torch.full((2, 3, 4), -100.0)  # makes S = Sigma_uu + R negative definite
    with pytest.raises(FilterFailure, match="step 1 is not positive definite.*learning_rate"):
        model.cell.filter_full(obs, obs_var)

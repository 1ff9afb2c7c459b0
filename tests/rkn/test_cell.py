"""The locally linear transition and the RKN cell, checked against a dense float64 Kalman filter."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from rkn.cell import RKNCell
from rkn.transition import LocallyLinearTransition, band_mask, initial_transition_matrix
from tests.reference.kalman_numpy import kf_filter, kf_predict, kf_update

assert_exact = partial(torch.testing.assert_close, atol=1e-10, rtol=0.0)


def dense(blocks: tuple[torch.Tensor, ...], row: int) -> torch.Tensor:
    """One batch row's 2m x 2m matrix from its four (B, m, m) blocks."""
    a11, a12, a21, a22 = (b[row] for b in blocks)
    return torch.cat([torch.cat([a11, a12], 1), torch.cat([a21, a22], 1)], 0)


def diagonal_cell(m: int, gen: torch.Generator, **kwargs) -> RKNCell:
    """K = 1, bandwidth 0: a constant transition with diagonal blocks (factorization is exact)."""
    transition = LocallyLinearTransition(latent_obs_dim=m, num_basis=1, bandwidth=0).double()
    with torch.no_grad():
        basis = torch.randn(1, 2 * m, 2 * m, generator=gen, dtype=torch.float64)
        transition.copy_dense_basis_(0.6 * basis)
        transition.raw_noise.copy_(torch.rand(2 * m, generator=gen, dtype=torch.float64))
    return RKNCell(transition=transition, **kwargs).double()


def factors_from_dense(cov: np.ndarray, m: int) -> list[np.ndarray]:
    """(upper, lower, side) diagonals of a dense 2m x 2m covariance."""
    return [np.diag(cov[:m, :m]), np.diag(cov[m:, m:]), np.diag(cov[:m, m:])]


def test_transition_at_init_is_documented_matrix() -> None:
    """At init A_t = [[I, 0.2 I], [-0.2 I, I]] for any posterior mean, and the noise is 0.1."""
    torch.manual_seed(0)
    transition = LocallyLinearTransition(latent_obs_dim=5, num_basis=4, bandwidth=1)
    blocks = transition(torch.randn(3, 10) * 5)
    for row in range(3):
        torch.testing.assert_close(dense(blocks, row), initial_transition_matrix(5))
    eye = torch.eye(5)
    torch.testing.assert_close(blocks[1][0], 0.2 * eye)
    torch.testing.assert_close(blocks[2][0], -0.2 * eye)
    torch.testing.assert_close(transition.noise(), torch.full((1, 10), 0.1))


@pytest.mark.parametrize("bandwidth", [0, 1, 3])
def test_band_mask_zeroes_out_of_band_entries(bandwidth: int) -> None:
    """Blocks of A_t are zero where |i - j| > b, even when the stored basis is filled everywhere."""
    torch.manual_seed(0)
    m = 6
    transition = LocallyLinearTransition(latent_obs_dim=m, num_basis=3, bandwidth=bandwidth)
    with torch.no_grad():
        transition.basis.normal_()
    blocks = transition(torch.randn(4, 2 * m))
    idx = torch.arange(m)
    outside = (idx[:, None] - idx[None, :]).abs() > bandwidth
    inside = ~outside
    for block in blocks:
        assert (block[:, outside] == 0).all()
        assert (block[:, inside] != 0).all()
    sum(b.sum() for b in blocks).backward()  # masked entries get no gradient
    assert (transition.basis.grad[..., transition.mask == 0] == 0).all()
    assert (transition.dense_basis()[:, band_mask(m, bandwidth).repeat(2, 2) == 0] == 0).all()


def test_full_bandwidth_is_full_matrix() -> None:
    """bandwidth >= m - 1 gives full blocks; only the band layout's corners are masked."""
    transition = LocallyLinearTransition(latent_obs_dim=4, num_basis=2, bandwidth=3)
    with torch.no_grad():
        transition.basis.normal_()
    assert bool((transition.dense_basis() != 0).all())  # every entry of A is a trained entry
    # Band layout 4 x 7 per block, 16 real entries: 12 corners x 4 blocks x 2 bases.
    assert transition.num_masked() == 2 * 4 * 12
    wider = LocallyLinearTransition(latent_obs_dim=4, num_basis=2, bandwidth=9)
    assert wider.basis.shape == transition.basis.shape  # stored as b = m - 1
    banded = LocallyLinearTransition(latent_obs_dim=4, num_basis=2, bandwidth=1)
    assert banded.num_masked() == 2 * 4 * 2  # layout 4 x 3 per block, 10 real entries


def test_cell_matches_dense_kalman_filter() -> None:
    """With diagonal blocks the cell's posteriors equal a dense predict-then-update KF."""
    gen = torch.Generator().manual_seed(0)
    m, batch, steps = 3, 2, 6
    cell = diagonal_cell(m, gen)
    w = torch.randn(batch, steps, m, generator=gen, dtype=torch.float64)
    var = torch.rand(batch, steps, m, generator=gen, dtype=torch.float64) + 0.05
    post_mean, cov = cell(w, var)
    a = dense(cell.transition(torch.zeros(1, 2 * m, dtype=torch.float64)), 0).detach().numpy()
    q = np.diag(cell.transition.noise()[0].detach().numpy())
    h = np.hstack([np.eye(m), np.zeros((m, m))])
    for row in range(batch):
        _, posts = kf_filter(np.zeros(2 * m), 10.0 * np.eye(2 * m), [a] * steps, q,
                             w[row].numpy(), h, [np.diag(v) for v in var[row].numpy()])
        for t, (mean, dcov) in enumerate(posts):
            np.testing.assert_allclose(post_mean[row, t].detach().numpy(), mean, atol=1e-10)
            got = [c[row, t].detach().numpy() for c in cov]
            for g, want in zip(got, factors_from_dense(dcov, m)):
                np.testing.assert_allclose(g, want, atol=1e-10)


def test_update_predict_order_starts_with_update() -> None:
    """PT order: the first posterior is the update of the initial belief (no predict before it)."""
    gen = torch.Generator().manual_seed(1)
    m = 3
    cell = diagonal_cell(m, gen, step_order="update_predict", init_cov=2.0)
    w = torch.randn(1, 2, m, generator=gen, dtype=torch.float64)
    var = torch.rand(1, 2, m, generator=gen, dtype=torch.float64) + 0.1
    post_mean, cov = cell(w, var)
    h = np.hstack([np.eye(m), np.zeros((m, m))])
    mean, dcov = kf_update(np.zeros(2 * m), 2.0 * np.eye(2 * m), w[0, 0].numpy(), h,
                           np.diag(var[0, 0].numpy()))
    np.testing.assert_allclose(post_mean[0, 0].detach().numpy(), mean, atol=1e-10)
    a = dense(cell.transition(torch.zeros(1, 2 * m, dtype=torch.float64)), 0).detach().numpy()
    q = np.diag(cell.transition.noise()[0].detach().numpy())
    mean, dcov = kf_update(*kf_predict(mean, dcov, a, q), w[0, 1].numpy(), h,
                           np.diag(var[0, 1].numpy()))
    np.testing.assert_allclose(post_mean[0, 1].detach().numpy(), mean, atol=1e-10)
    for g, want in zip((c[0, 1].detach().numpy() for c in cov), factors_from_dense(dcov, m)):
        np.testing.assert_allclose(g, want, atol=1e-10)


def test_masked_steps_keep_the_prior() -> None:
    """At invalid steps the posterior equals the prediction; valid steps still update."""
    gen = torch.Generator().manual_seed(2)
    m = 3
    cell = diagonal_cell(m, gen)
    w = torch.randn(2, 4, m, generator=gen, dtype=torch.float64)
    var = torch.rand(2, 4, m, generator=gen, dtype=torch.float64) + 0.1
    valid = torch.tensor([[True, False, False, True], [False, True, False, False]])
    post_mean, cov = cell(w, var, valid)
    a = dense(cell.transition(torch.zeros(1, 2 * m, dtype=torch.float64)), 0).detach().numpy()
    q = np.diag(cell.transition.noise()[0].detach().numpy())
    h = np.hstack([np.eye(m), np.zeros((m, m))])
    for row in range(2):
        mean, dcov = np.zeros(2 * m), 10.0 * np.eye(2 * m)
        for t in range(4):
            mean, dcov = kf_predict(mean, dcov, a, q)
            if valid[row, t]:
                obs_noise = np.diag(var[row, t].numpy())
                mean, dcov = kf_update(mean, dcov, w[row, t].numpy(), h, obs_noise)
            np.testing.assert_allclose(post_mean[row, t].detach().numpy(), mean, atol=1e-10)
            np.testing.assert_allclose(cov.upper[row, t].detach().numpy(), np.diag(dcov[:m, :m]),
                                       atol=1e-10)


def test_learned_initial_covariance_starts_at_init_cov_and_trains() -> None:
    """learn_init_cov gives per-unit initial variances equal to init_cov that receive gradients."""
    transition = LocallyLinearTransition(latent_obs_dim=4)
    cell = RKNCell(transition=transition, init_cov=10.0, learn_init_cov=True, var_act="softplus")
    belief = cell.initial_belief(3, torch.zeros(1))
    torch.testing.assert_close(belief.cov.upper, torch.full((3, 4), 10.0))
    post_mean, cov = cell(torch.randn(3, 2, 4), torch.rand(3, 2, 4) + 0.1)
    (post_mean.sum() + cov.upper.sum()).backward()
    assert cell.raw_init_cov.grad is not None and cell.raw_init_cov.grad.abs().sum() > 0


def test_cell_rejects_wrong_shapes() -> None:
    """Inputs whose last dimension is not m, or a mask of the wrong shape, raise ValueError."""
    cell = RKNCell(transition=LocallyLinearTransition(latent_obs_dim=4))
    with pytest.raises(ValueError):
        cell(torch.randn(2, 3, 5), torch.rand(2, 3, 5))
    with pytest.raises(ValueError):
        cell(torch.randn(2, 3, 4), torch.rand(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))

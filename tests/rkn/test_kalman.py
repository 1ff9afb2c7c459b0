"""The factorized Kalman steps agree with a textbook dense Kalman filter in float64."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from rkn.kalman import Belief, FactorizedCov, masked_update, predict, update
from tests.reference.kalman_numpy import condition_gaussian, kf_filter, kf_predict, kf_update

assert_exact = partial(torch.testing.assert_close, atol=1e-10, rtol=0.0)


def random_belief(batch: int, m: int, gen: torch.Generator, dtype=torch.float64) -> Belief:
    """A valid factorized belief: positive variances and |side| < sqrt(upper * lower)."""
    upper = torch.rand(batch, m, generator=gen, dtype=dtype) * 3 + 0.1
    lower = torch.rand(batch, m, generator=gen, dtype=dtype) * 3 + 0.1
    side = (torch.rand(batch, m, generator=gen, dtype=dtype) * 1.8 - 0.9) * torch.sqrt(upper * lower)
    mean = torch.randn(batch, 2 * m, generator=gen, dtype=dtype)
    return Belief(mean, FactorizedCov(upper, lower, side))


def dense_cov(cov: FactorizedCov, row: int) -> np.ndarray:
    """The 2m x 2m block covariance that the factors of one batch row describe."""
    upper, lower, side = (f[row].detach().numpy() for f in cov)
    return np.block([[np.diag(upper), np.diag(side)], [np.diag(side), np.diag(lower)]])


def band_blocks(batch: int, m: int, bandwidth: int, gen: torch.Generator) -> tuple:
    """Four random (B, m, m) blocks with entries outside the band zeroed."""
    idx = torch.arange(m)
    mask = ((idx[:, None] - idx[None, :]).abs() <= bandwidth).double()
    return tuple(torch.randn(batch, m, m, generator=gen, dtype=torch.float64) * 0.5 * mask for _ in range(4))


def dense_transition(blocks: tuple, row: int) -> np.ndarray:
    """Assemble one batch row's 2m x 2m transition matrix from its four blocks."""
    a11, a12, a21, a22 = (b[row].numpy() for b in blocks)
    return np.block([[a11, a12], [a21, a22]])


@pytest.mark.parametrize("m", [1, 3, 8])
@pytest.mark.parametrize("batch", [1, 4])
def test_update_matches_dense_kf(m: int, batch: int) -> None:
    """The factorized update equals the dense Kalman update for H = [I 0] and diagonal R."""
    gen = torch.Generator().manual_seed(m * 10 + batch)
    prior = random_belief(batch, m, gen)
    obs = torch.randn(batch, m, generator=gen, dtype=torch.float64)
    obs_var = torch.rand(batch, m, generator=gen, dtype=torch.float64) + 0.05
    post = update(prior, obs, obs_var)
    obs_model = np.hstack([np.eye(m), np.zeros((m, m))])
    for row in range(batch):
        mean, cov = kf_update(
            prior.mean[row].numpy(), dense_cov(prior.cov, row), obs[row].numpy(), obs_model,
            np.diag(obs_var[row].numpy()),
        )
        assert_exact(post.mean[row], torch.from_numpy(mean))
        assert_exact(torch.from_numpy(dense_cov(post.cov, row)), torch.from_numpy(cov))


@pytest.mark.parametrize("as_full_matrix", [False, True])
@pytest.mark.parametrize("bandwidth", [0, 1, 3, 7])
def test_predict_matches_dense_diagonals(bandwidth: int, as_full_matrix: bool) -> None:
    """predict gives A mu and exactly the block diagonals of the dense A S A^T + Q (blocks or full A)."""
    m, batch = 8, 3
    gen = torch.Generator().manual_seed(bandwidth)
    post = random_belief(batch, m, gen)
    blocks = band_blocks(batch, m, bandwidth, gen)
    noise = torch.rand(1, 2 * m, generator=gen, dtype=torch.float64)
    transition = torch.cat([torch.cat(blocks[:2], -1), torch.cat(blocks[2:], -1)], -2) if as_full_matrix else blocks
    prior = predict(post, transition, noise)
    for row in range(batch):
        mean, cov = kf_predict(
            post.mean[row].numpy(), dense_cov(post.cov, row), dense_transition(blocks, row),
            np.diag(noise[0].numpy()),
        )
        assert_exact(prior.mean[row], torch.from_numpy(mean))
        assert_exact(prior.cov.upper[row], torch.from_numpy(np.diag(cov)[:m].copy()))
        assert_exact(prior.cov.lower[row], torch.from_numpy(np.diag(cov)[m:].copy()))
        assert_exact(prior.cov.side[row], torch.from_numpy(np.diag(cov[:m, m:]).copy()))


def test_predict_broadcasts_shared_transition() -> None:
    """A (1, m, m) transition and a (1, 2m) noise broadcast over the batch."""
    gen = torch.Generator().manual_seed(3)
    post = random_belief(5, 4, gen)
    blocks = band_blocks(1, 4, 1, gen)
    noise = torch.rand(1, 8, generator=gen, dtype=torch.float64)
    shared = predict(post, blocks, noise)
    expanded = predict(post, tuple(b.expand(5, 4, 4) for b in blocks), noise.expand(5, 8))
    assert_exact(shared.mean, expanded.mean)
    for a, b in zip(shared.cov, expanded.cov):
        assert_exact(a, b)


def test_filter_matches_dense_kf_when_bandwidth_zero() -> None:
    """With diagonal blocks the factorization is exact: a 50-step filter equals the dense KF."""
    m, steps, batch = 4, 50, 2
    gen = torch.Generator().manual_seed(0)
    blocks_t = [band_blocks(batch, m, 0, gen) for _ in range(steps)]
    noise = torch.rand(1, 2 * m, generator=gen, dtype=torch.float64) * 0.2 + 0.01
    obs = torch.randn(steps, batch, m, generator=gen, dtype=torch.float64)
    obs_var = torch.rand(steps, batch, m, generator=gen, dtype=torch.float64) + 0.1
    zeros = torch.zeros(batch, m, dtype=torch.float64)
    belief = Belief(torch.zeros(batch, 2 * m, dtype=torch.float64), FactorizedCov(zeros + 10, zeros + 10, zeros))
    obs_model = np.hstack([np.eye(m), np.zeros((m, m))])
    for row in range(batch):
        priors, posteriors = kf_filter(
            np.zeros(2 * m), 10 * np.eye(2 * m), [dense_transition(b, row) for b in blocks_t],
            np.diag(noise[0].numpy()), obs[:, row].numpy(), obs_model,
            [np.diag(v[row].numpy()) for v in obs_var],
        )
        current = Belief(belief.mean[row : row + 1], FactorizedCov(*(f[row : row + 1] for f in belief.cov)))
        for t in range(steps):
            step_blocks = tuple(b[row : row + 1] for b in blocks_t[t])
            current = predict(current, step_blocks, noise)
            assert_exact(current.mean[0], torch.from_numpy(priors[t][0]))
            assert_exact(torch.from_numpy(dense_cov(current.cov, 0)), torch.from_numpy(priors[t][1]))
            current = update(current, obs[t, row : row + 1], obs_var[t, row : row + 1])
            assert_exact(current.mean[0], torch.from_numpy(posteriors[t][0]))
            assert_exact(torch.from_numpy(dense_cov(current.cov, 0)), torch.from_numpy(posteriors[t][1]))


@pytest.mark.parametrize("valid_shape", [(4,), (4, 1)])
def test_masked_update_is_identity_where_invalid(valid_shape: tuple) -> None:
    """Invalid rows keep the prior bit for bit; valid rows get the ordinary update."""
    gen = torch.Generator().manual_seed(1)
    prior = random_belief(4, 3, gen)
    obs = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    obs_var = torch.rand(4, 3, generator=gen, dtype=torch.float64) + 0.1
    valid = torch.tensor([True, False, True, False]).reshape(valid_shape)
    post = masked_update(prior, obs, obs_var, valid)
    full = update(prior, obs, obs_var)
    for rows, reference in (([1, 3], prior), ([0, 2], full)):
        assert torch.equal(post.mean[rows], reference.mean[rows])
        for got, want in zip(post.cov, reference.cov):
            assert torch.equal(got[rows], want[rows])


def test_masked_update_rejects_non_bool_mask() -> None:
    """A float mask is an error, not a silently broadcast multiplier."""
    gen = torch.Generator().manual_seed(1)
    prior = random_belief(2, 3, gen)
    with pytest.raises(TypeError, match="bool"):
        masked_update(prior, prior.mean[:, :3], prior.cov.upper, torch.ones(2))


def test_update_rejects_mismatched_sizes() -> None:
    """An observation that is not half the state size is reported clearly."""
    gen = torch.Generator().manual_seed(1)
    prior = random_belief(2, 3, gen)
    with pytest.raises(ValueError, match="twice the observation size"):
        update(prior, torch.zeros(2, 4, dtype=torch.float64), torch.ones(2, 4, dtype=torch.float64))


def test_covariance_stays_valid_over_long_rollouts() -> None:
    """Over 500 random steps with bandwidth 2: upper > 0, lower > 0, upper * lower > side^2."""
    m, batch = 6, 8
    gen = torch.Generator().manual_seed(7)
    belief = random_belief(batch, m, gen)
    noise = torch.full((1, 2 * m), 1e-3, dtype=torch.float64)
    for step in range(500):
        belief = predict(belief, band_blocks(batch, m, 2, gen), noise)
        obs_var = torch.rand(batch, m, generator=gen, dtype=torch.float64) * 2 + 1e-3
        valid = torch.rand(batch, generator=gen) < 0.7
        belief = masked_update(belief, torch.randn(batch, m, generator=gen, dtype=torch.float64), obs_var, valid)
        upper, lower, side = belief.cov
        assert (upper > 0).all() and (lower > 0).all(), f"non-positive variance at step {step}"
        assert (upper * lower - side**2 > 0).all(), f"indefinite 2x2 block at step {step}"


def test_float32_and_inputs_untouched() -> None:
    """float32 works and neither step modifies its inputs in place."""
    gen = torch.Generator().manual_seed(2)
    prior = random_belief(3, 4, gen, dtype=torch.float32)
    blocks = tuple(b.float() for b in band_blocks(3, 4, 1, gen))
    noise = torch.full((1, 8), 0.1)
    snapshot = [prior.mean.clone(), *(f.clone() for f in prior.cov), *(b.clone() for b in blocks)]
    post = update(prior, torch.ones(3, 4), torch.ones(3, 4))
    nxt = predict(post, blocks, noise)
    assert post.mean.dtype == nxt.mean.dtype == torch.float32
    for before, after in zip(snapshot, [prior.mean, *prior.cov, *blocks]):
        assert torch.equal(before, after)


def test_reference_filter_matches_joint_gaussian_conditioning() -> None:
    """The dense reference itself: its last posterior equals conditioning the joint Gaussian."""
    rng = np.random.default_rng(0)
    n, k, steps = 3, 2, 4
    transitions = [rng.normal(size=(n, n)) * 0.6 for _ in range(steps)]
    noise = np.diag(rng.uniform(0.1, 0.5, n))
    obs_model = rng.normal(size=(k, n))
    obs_noise = [np.diag(rng.uniform(0.1, 0.5, k)) for _ in range(steps)]
    init_cov = np.eye(n) * 2.0
    # Joint covariance of (z_1..z_T, y_1..y_T) built by propagating z_t = A_t z_{t-1} + e_t.
    maps: list[list[np.ndarray]] = []
    for t in range(steps):
        prev = maps[-1] if maps else [np.eye(n)]  # z_t as a linear map of (z_0, e_1..e_t)
        maps.append([transitions[t] @ block for block in prev] + [np.eye(n)])
    total = 1 + steps
    sources = [init_cov] + [noise] * steps
    z_map = np.vstack([np.hstack(m + [np.zeros((n, n))] * (total - len(m))) for m in maps])
    src_cov = np.zeros((total * n, total * n))
    for i, c in enumerate(sources):
        src_cov[i * n : (i + 1) * n, i * n : (i + 1) * n] = c
    y_map = np.kron(np.eye(steps), obs_model) @ z_map
    joint_map = np.vstack([z_map, y_map])
    joint_cov = joint_map @ src_cov @ joint_map.T
    for t in range(steps):
        sl = slice(steps * n + t * k, steps * n + (t + 1) * k)
        joint_cov[sl, sl] += obs_noise[t]
    obs = rng.normal(size=(steps, k))
    observed = np.arange(steps * n, steps * n + steps * k)
    hidden, cond_mean, cond_cov = condition_gaussian(np.zeros(len(joint_cov)), joint_cov, observed, obs.ravel())
    last = slice((steps - 1) * n, steps * n)
    _, posteriors = kf_filter(np.zeros(n), init_cov, transitions, noise, obs, obs_model, obs_noise)
    np.testing.assert_allclose(posteriors[-1][0], cond_mean[last], atol=1e-10)
    np.testing.assert_allclose(posteriors[-1][1], cond_cov[last, last], atol=1e-10)


def test_gradcheck_update_and_predict() -> None:
    """Analytic gradients of update and predict agree with finite differences (float64)."""
    gen = torch.Generator().manual_seed(5)
    prior = random_belief(2, 3, gen)
    obs = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    obs_var = torch.rand(2, 3, generator=gen, dtype=torch.float64) + 0.2
    blocks = band_blocks(2, 3, 1, gen)
    noise = torch.rand(1, 6, generator=gen, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (prior.mean, *prior.cov, obs, obs_var)]

    def run_update(mean, upper, lower, side, w, var):
        post = update(Belief(mean, FactorizedCov(upper, lower, side)), w, var)
        return (post.mean, *post.cov)

    assert torch.autograd.gradcheck(run_update, leaves)
    pred_leaves = [t.clone().requires_grad_() for t in (prior.mean, *prior.cov, *blocks, noise)]

    def run_predict(mean, upper, lower, side, a11, a12, a21, a22, q):
        out = predict(Belief(mean, FactorizedCov(upper, lower, side)), (a11, a12, a21, a22), q)
        return (out.mean, *out.cov)

    assert torch.autograd.gradcheck(run_predict, pred_leaves)

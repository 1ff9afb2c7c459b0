"""Dense Kalman filter / RTS smoother of the KVAE against the float64 NumPy reference and brute force."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from baselines.lgssm import Gaussian, predict, rts_smooth, update
from tests.reference.kalman_numpy import kf_predict, kf_update, rts_smoother

assert_close = partial(np.testing.assert_allclose, atol=1e-10, rtol=1e-9)


def random_system(seed: int, steps: int, state: int = 3, obs: int = 2):
    """Random time-varying A_t, C_t, SPD Q, R, P0, observations and a mask with a gap."""
    rng = np.random.default_rng(seed)
    trans = np.eye(state) + 0.3 * rng.normal(size=(steps, state, state))
    emis = rng.normal(size=(steps, obs, state))
    q = 0.1 * np.eye(state) + 0.02 * np.ones((state, state))
    r = 0.2 * np.eye(obs)
    init_cov = 2.0 * np.eye(state)
    values = rng.normal(size=(steps, obs))
    valid = np.ones(steps, dtype=bool)
    valid[[2, 3]] = False
    return trans, emis, q, r, init_cov, values, valid


def torch_filter(trans, emis, q, r, init_cov, values, valid):
    """Run baselines.lgssm over the system (batch of one) and stack the results."""
    t64 = partial(torch.tensor, dtype=torch.float64)
    belief = Gaussian(torch.zeros(1, trans.shape[1], dtype=torch.float64), t64(init_cov)[None])
    priors, posts, lls = [], [], []
    for t in range(len(values)):
        prior = predict(belief=belief, transition=t64(trans[t])[None], noise_cov=t64(q))
        belief, ll = update(prior=prior, obs=t64(values[t])[None], obs_matrix=t64(emis[t])[None],
                            noise_cov=t64(r), valid=torch.tensor([bool(valid[t])]))
        priors.append(prior)
        posts.append(belief)
        lls.append(ll)
    stack = lambda bs: Gaussian(torch.stack([b.mean for b in bs], 1), torch.stack([b.cov for b in bs], 1))  # noqa: E731
    return stack(priors), stack(posts), torch.cat(lls)


@pytest.mark.parametrize("seed", [0, 1])
def test_filter_and_smoother_match_dense_reference(seed: int) -> None:
    """Priors, posteriors (missing steps skip the update) and RTS marginals equal the NumPy reference."""
    trans, emis, q, r, init_cov, values, valid = random_system(seed, steps=7)
    mean, cov = np.zeros(3), init_cov
    ref_priors, ref_posts = [], []
    for t in range(len(values)):
        mean, cov = kf_predict(mean, cov, trans[t], q)
        ref_priors.append((mean, cov))
        if valid[t]:
            mean, cov = kf_update(mean, cov, values[t], emis[t], r)
        ref_posts.append((mean, cov))
    priors, posts, _ = torch_filter(trans, emis, q, r, init_cov, values, valid)
    for t in range(len(values)):
        assert_close(priors.mean[0, t].numpy(), ref_priors[t][0])
        assert_close(priors.cov[0, t].numpy(), ref_priors[t][1])
        assert_close(posts.mean[0, t].numpy(), ref_posts[t][0])
        assert_close(posts.cov[0, t].numpy(), ref_posts[t][1])
    smoothed = rts_smooth(filtered=posts, priors=priors, transitions=torch.tensor(trans)[None])
    reference = rts_smoother(ref_posts, list(trans), q)
    for t in range(len(values)):
        assert_close(smoothed.mean[0, t].numpy(), reference[t][0])
        assert_close(smoothed.cov[0, t].numpy(), reference[t][1])


def test_log_likelihood_matches_joint_gaussian() -> None:
    """Summed innovation log-likelihoods equal log N(a_obs) of the brute-force joint Gaussian."""
    steps, state, obs = 5, 3, 2
    trans, emis, q, r, init_cov, values, valid = random_system(3, steps, state, obs)
    # z_t = M_t w with w = [z_0, eps_1..eps_T] ~ N(0, blockdiag(P0, Q, ..., Q))
    width = state * (steps + 1)
    w_cov = np.zeros((width, width))
    w_cov[:state, :state] = init_cov
    for t in range(steps):
        w_cov[state * (t + 1):state * (t + 2), state * (t + 1):state * (t + 2)] = q
    maps, m = [], np.zeros((state, width))
    m[:, :state] = np.eye(state)
    for t in range(steps):
        m = trans[t] @ m
        m[:, state * (t + 1):state * (t + 2)] += np.eye(state)
        maps.append(emis[t] @ m)
    keep = [t for t in range(steps) if valid[t]]
    lin = np.concatenate([maps[t] for t in keep])
    joint = lin @ w_cov @ lin.T + np.kron(np.eye(len(keep)), r)
    y = np.concatenate([values[t] for t in keep])
    expected = -0.5 * (len(y) * np.log(2 * np.pi) + np.linalg.slogdet(joint)[1] + y @ np.linalg.solve(joint, y))
    _, _, lls = torch_filter(trans, emis, q, r, init_cov, values, valid)
    assert lls[~torch.tensor(valid)].abs().max() == 0.0
    np.testing.assert_allclose(float(lls.sum()), expected, rtol=1e-10)


def test_missing_observation_values_do_not_matter() -> None:
    """NaN at a missing step changes nothing (a select, not a product with the mask)."""
    trans, emis, q, r, init_cov, values, valid = random_system(4, steps=6)
    a = torch_filter(trans, emis, q, r, init_cov, values, valid)
    values = values.copy()
    values[~valid] = np.nan
    b = torch_filter(trans, emis, q, r, init_cov, values, valid)
    for x, y in zip(a[:2], b[:2]):
        torch.testing.assert_close(x.mean, y.mean, atol=0.0, rtol=0.0)
        torch.testing.assert_close(x.cov, y.cov, atol=0.0, rtol=0.0)
    torch.testing.assert_close(a[2], b[2], atol=0.0, rtol=0.0)

"""E2C: transition KL against a dense float64 formula; pairs use the next frame (not the authors' bug)."""

from __future__ import annotations

import numpy as np
import torch

from baselines.e2c import transition_kl
from tests.config_models import build_named
from tests.baselines.imputation_data import IMAGE_OVERRIDES, tiny_batch


def dense_kl(m1, p1, m2, p2):
    """KL(N(m1, P1) || N(m2, P2)) with dense matrices (textbook formula)."""
    inv2 = np.linalg.inv(p2)
    d = len(m1)
    return 0.5 * (np.trace(inv2 @ p1) + (m2 - m1) @ inv2 @ (m2 - m1) - d
                  + np.linalg.slogdet(p2)[1] - np.linalg.slogdet(p1)[1])


def test_transition_kl_matches_dense_formula() -> None:
    """Closed form with A = I + v r^T, diag covariances and det A = 1 + r^T v equals the dense KL."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        d = 3
        v, r, o = rng.normal(size=d), rng.normal(size=d), rng.normal(size=d)
        mean, next_mean = rng.normal(size=d), rng.normal(size=d)
        var, next_var = rng.uniform(0.1, 2, size=d), rng.uniform(0.1, 2, size=d)
        a = np.eye(d) + np.outer(v, r)
        expected = dense_kl(a @ mean + o, a @ np.diag(var) @ a.T, next_mean, np.diag(next_var))
        t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
        got = transition_kl(trans=t(a), mean=t(mean), var=t(var), offset=t(o), det=t(1 + r @ v),
                            next_mean=t(next_mean), next_var=t(next_var))
        np.testing.assert_allclose(float(got), expected, rtol=1e-10)


def test_transition_matrix_is_identity_plus_rank_one() -> None:
    """E2C.transition returns A = I + v r^T and det A = 1 + r^T v (checked with a dense determinant)."""
    torch.manual_seed(0)
    net = build_named("e2c", IMAGE_OVERRIDES).double()
    z = torch.randn(4, 3, dtype=torch.float64)
    trans, _, det = net.transition(z)
    torch.testing.assert_close(torch.linalg.det(trans), det, rtol=1e-10, atol=1e-12)


def test_next_frame_term_targets_the_following_frame() -> None:
    """The pair loss scores x_{t+1}: making frames identical over time changes it (no j -> j pairing)."""
    batch = tiny_batch()
    torch.manual_seed(0)
    net = build_named("e2c", IMAGE_OVERRIDES).eval()
    with torch.no_grad():
        net.transition_net[-1].weight.zero_()  # A = I, o = 0: the rolled latent equals the sample
        net.transition_net[-1].bias.zero_()
    static = batch["targets"][:, :1].expand_as(batch["targets"]).contiguous()
    torch.manual_seed(3)
    loss_static = net.training_loss(static, None, static)
    torch.manual_seed(3)
    loss_moving = net.training_loss(batch["targets"], None, batch["targets"])
    # an identity transition predicts a static sequence perfectly but not a moving one
    assert loss_static < loss_moving

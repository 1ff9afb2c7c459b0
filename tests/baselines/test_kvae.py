"""KVAE: its filter/smoother outputs equal the dense float64 reference run on the model's own A_t, C_t."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.config_models import build_named
from tests.baselines.imputation_data import IMAGE_OVERRIDES, tiny_batch
from tests.reference.kalman_numpy import kf_predict, kf_update, rts_smoother


def test_filter_and_smoother_match_reference_on_model_matrices() -> None:
    """Filtered/smoothed means and covariances of KVAE.run_filter match the NumPy reference."""
    torch.manual_seed(0)
    kvae = build_named("kvae_filter", IMAGE_OVERRIDES).eval()
    with torch.no_grad():  # make the mixture matter: distinct A_k, C_k and a non-uniform alpha
        kvae.transitions.add_(0.2 * torch.randn_like(kvae.transitions))
        kvae.emissions.normal_()
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(2, 9, 2, generator=gen)
    valid = torch.ones(2, 9, dtype=torch.bool)
    valid[0, [3, 4, 7]] = False
    valid[1, 1] = False
    from baselines.lgssm import rts_smooth  # noqa: PLC0415

    with torch.no_grad():
        priors, posts, trans, emis, lls = kvae.run_filter(obs, valid)
        smooth = rts_smooth(filtered=posts, priors=priors, transitions=trans)
    cfg = kvae.config
    q, r = cfg.trans_noise * np.eye(cfg.state_dim), cfg.obs_noise * np.eye(2)
    for b in range(2):
        mean, cov = np.zeros(cfg.state_dim), cfg.init_cov * np.eye(cfg.state_dim)
        ref_posts = []
        for t in range(9):
            mean, cov = kf_predict(mean, cov, trans[b, t].numpy(), q)
            if valid[b, t]:
                mean, cov = kf_update(mean, cov, obs[b, t].double().numpy(), emis[b, t].numpy(), r)
            ref_posts.append((mean, cov))
            np.testing.assert_allclose(posts.mean[b, t].numpy(), mean, rtol=1e-8, atol=1e-9)
            np.testing.assert_allclose(posts.cov[b, t].numpy(), cov, rtol=1e-8, atol=1e-9)
        ref_smooth = rts_smoother(ref_posts, list(trans[b].numpy()), q)
        for t in range(9):
            np.testing.assert_allclose(smooth.mean[b, t].numpy(), ref_smooth[t][0], rtol=1e-8, atol=1e-9)
            np.testing.assert_allclose(smooth.cov[b, t].numpy(), ref_smooth[t][1], rtol=1e-8, atol=1e-9)
    assert (lls[~valid] == 0).all() and (lls[valid] != 0).all()


def test_alpha_lstm_is_fed_the_prediction_on_missing_frames() -> None:
    """At a missing step the mixture weights of the next step follow C_t mu_{t|t-1}, not the observation."""
    torch.manual_seed(0)
    kvae = build_named("kvae_filter", IMAGE_OVERRIDES).eval()
    obs = torch.randn(1, 4, 2, generator=torch.Generator().manual_seed(2))
    valid = torch.tensor([[True, False, True, True]])
    changed = obs.clone()
    changed[0, 1] += 5.0
    with torch.no_grad():
        a = kvae.run_filter(obs, valid)
        b = kvae.run_filter(changed, valid)
    torch.testing.assert_close(a[2], b[2], atol=0.0, rtol=0.0)  # transitions A_t of every step
    observed = obs.clone()
    observed[0, 2] += 5.0  # control: an observed value does reach the next step's mixture
    with torch.no_grad():
        assert not torch.equal(kvae.run_filter(observed, valid)[2][0, 3], a[2][0, 3])


@pytest.mark.parametrize("name", ["kvae_filter", "kvae_smooth"])
def test_filter_and_smoother_share_training(name: str) -> None:
    """kvae_filter and kvae_smooth differ only in the decoded belief: same seed, same weights and loss."""
    batch = tiny_batch()
    losses = []
    for model in ("kvae_filter", name):
        torch.manual_seed(0)
        net = build_named(model, IMAGE_OVERRIDES)
        torch.manual_seed(9)
        losses.append(net.training_loss(batch["images"], batch["obs_valid"], batch["targets"]).item())
    assert losses[0] == losses[1]


def test_smoother_uses_future_frames() -> None:
    """Control for the filtering leakage test: the smoothed imputation of an early frame depends on later ones."""
    batch = tiny_batch()
    torch.manual_seed(0)
    net = build_named("kvae_smooth", IMAGE_OVERRIDES).eval()
    images, valid = batch["images"][:2], batch["obs_valid"][:2]
    altered = images.clone()
    altered[:, 6:] = 255 - altered[:, 6:]
    with torch.no_grad():
        assert not torch.equal(net(images, valid).probs[:, :6], net(altered, valid).probs[:, :6])

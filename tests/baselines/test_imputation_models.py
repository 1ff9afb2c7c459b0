"""Every E2 model: shapes, no leakage from missing (or, for filters, future) frames, training, determinism."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from harness import training
from harness.registry import config_to_dict, load_checkpoint
from tests.config_models import build_named, named_params
from tests.baselines.imputation_data import IMAGE_OVERRIDES, tiny_batch

assert_same = partial(torch.testing.assert_close, atol=0.0, rtol=0.0)

INFORMED = ["rkn", "lstm", "gru", "kvae_filter", "kvae_smooth", "e2c", "dks", "dks_filter", "hold_last_frame"]
FILTERS = ["rkn", "lstm", "gru", "kvae_filter", "e2c", "dks_filter", "hold_last_frame"]
TRAINED = ["rkn", "rkn_uninformed", "lstm", "gru", "kvae_filter", "e2c", "dks", "dks_filter"]


def model(name: str, seed: int = 0):
    """A fresh model in eval mode, built after seeding torch."""
    torch.manual_seed(seed)
    overrides = dict(IMAGE_OVERRIDES)
    if name.startswith(("lstm", "gru")):
        overrides.update(latent_obs_dim=4, zero_missing_inputs=True)  # as in the E2 config
    return build_named(name, overrides).eval()


@pytest.mark.parametrize("name", INFORMED + ["rkn_uninformed", "mean_image", "entropy_floor"])
def test_prediction_shapes(name: str) -> None:
    """Bernoulli means of the input's shape, strictly inside (0, 1) for the learned models, also for T = 1."""
    batch = tiny_batch()
    net = model(name)
    for steps in (1, 10):
        with torch.no_grad():
            probs = net(batch["images"][:2, :steps], batch["obs_valid"][:2, :steps]).probs
        assert probs.shape == (2, steps, 24, 24, 1)
        assert torch.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()


@pytest.mark.parametrize("name", INFORMED)
def test_missing_frame_pixels_change_nothing(name: str) -> None:
    """Rewriting the pixels of every missing input frame leaves all predictions bit-identical."""
    batch = tiny_batch()
    images, valid = batch["images"][:3], batch["obs_valid"][:3]
    assert (~valid).any()
    noise = torch.randint(0, 256, images.shape, generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    altered = torch.where(valid[..., None, None, None], images, noise)
    net = model(name)
    with torch.no_grad():
        assert_same(net(images, valid).probs, net(altered, valid).probs)


@pytest.mark.parametrize("name", FILTERS)
def test_future_frames_change_no_earlier_prediction(name: str) -> None:
    """Filtering variants: changing frames from step 6 on leaves predictions of steps 0..5 unchanged."""
    batch = tiny_batch()
    images, valid = batch["images"][:3], batch["obs_valid"][:3].clone()
    altered = images.clone()
    altered[:, 6:] = 255 - altered[:, 6:]
    valid_altered = valid.clone()
    valid_altered[:, 6:] = ~valid_altered[:, 6:]
    net = model(name)
    with torch.no_grad():
        a = net(images, valid).probs[:, :6]
        b = net(altered, valid_altered).probs[:, :6]
    assert_same(a, b)


def test_uninformed_rkn_sees_black_frames() -> None:
    """Control for the leakage test: the uninformed RKN's predictions do depend on missing frames' pixels."""
    batch = tiny_batch()
    images, valid = batch["images"][:3], batch["obs_valid"][:3]
    altered = torch.where(valid[..., None, None, None], images, torch.full_like(images, 200))
    net = model("rkn_uninformed")
    with torch.no_grad():
        assert not torch.equal(net(images, valid).probs, net(altered, valid).probs)


def train_losses(name: str, seed: int, steps: int = 12) -> list[float]:
    """Full-batch Adam steps through the harness's batch_loss (the model's own objective)."""
    net = model(name, seed).train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    batch = tiny_batch()
    losses = []
    for _ in range(steps):
        torch.manual_seed(seed + 100)  # same sampling noise at every step: a clean descent check
        loss = training.batch_loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(p).all() for p in net.parameters())
    return losses


@pytest.mark.parametrize("name", TRAINED)
def test_training_reduces_own_loss(name: str) -> None:
    """A dozen Adam steps on the model's loss (BCE, or its own ELBO-type objective) lower it; no NaN."""
    losses = train_losses(name, seed=0)
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


@pytest.mark.parametrize("name", TRAINED)
def test_same_seed_same_training(name: str) -> None:
    """Same seed: bit-identical loss curves; another seed: different initial loss."""
    first = train_losses(name, seed=0, steps=3)
    assert first == train_losses(name, seed=0, steps=3)
    assert first[0] != train_losses(name, seed=1, steps=1)[0]


def test_harness_uses_own_loss_only_when_defined() -> None:
    """batch_loss: the RKN's is the mean per-step BCE of its predictions; the KVAE's is training_loss."""
    batch = tiny_batch()
    rkn = model("rkn")
    from rkn.losses import per_step_loss  # noqa: PLC0415

    expected = per_step_loss(rkn(batch["images"], batch["obs_valid"]), batch["targets"]).mean()
    assert_same(training.batch_loss(rkn, batch), expected)
    kvae = model("kvae_filter")
    torch.manual_seed(5)
    own = kvae.training_loss(batch["images"], batch["obs_valid"], batch["targets"])
    torch.manual_seed(5)
    assert_same(training.batch_loss(kvae, batch), own)


@pytest.mark.parametrize("name", ["kvae_smooth", "e2c", "dks_filter", "mean_image"])
def test_checkpoint_round_trip(name: str, tmp_path) -> None:
    """model.pt (class, JSON-ready config, weights) rebuilds identical predictions via
    load_checkpoint."""
    batch = tiny_batch()
    net = model(name)
    if name == "mean_image":
        net.fit_reference({"targets": batch["targets"].numpy()})
    torch.save({"model": name, "class": named_params(name)[0], "config": config_to_dict(net.config),
                "state_dict": net.state_dict()}, tmp_path / "model.pt")
    rebuilt = load_checkpoint(tmp_path / "model.pt")
    with torch.no_grad():
        assert_same(rebuilt(batch["images"][:2], batch["obs_valid"][:2]).probs,
                    net(batch["images"][:2], batch["obs_valid"][:2]).probs)

"""Truncated back-propagation through time (training.bptt_length) for every trainable model.

A window as long as the sequence trains bit for bit as whole sequences do; with shorter windows
the forward state crosses a window boundary (predictions and losses equal the whole sequence's)
while gradients do not (a window's loss has exactly zero gradient on earlier windows' inputs).
"""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest
import torch

from harness import training
from harness.registry import FAMILIES
from harness.training import TrainConfig
from rkn import kalman
from rkn.interface import SequenceModel, WindowsNotSupported, detach_state
from rkn.kalman import Belief, FactorizedCov
from rkn.kalman_full import FullBelief, predict_full
from tests.baselines.imputation_data import IMAGE_OVERRIDES, tiny_batch
from tests.config_models import build_named
from tests.toy_data import moving_square

close = partial(torch.testing.assert_close, atol=1e-10, rtol=1e-10)  # float64, other GEMM shapes
SMALL_RKN = {"latent_obs_dim": 4, "num_basis": 3, "bandwidth": 1}
UPDATE_PREDICT = {**SMALL_RKN, "step_order": "update_predict", "learn_init_cov": True}
# name: (model of the shipped config, params on top, data: "state" (sin/cos) or "image")
CASES: dict[str, tuple[str, dict, str]] = {
    "rkn": ("rkn", SMALL_RKN, "state"),
    "rkn_update_predict": ("rkn", UPDATE_PREDICT, "state"),
    "rkn_image": ("rkn", {**SMALL_RKN, **IMAGE_OVERRIDES}, "image"),
    "rkn_full_cov": ("rkn_full_cov", SMALL_RKN, "state"),
    "rkn_full_cov_update_predict": ("rkn_full_cov", UPDATE_PREDICT, "state"),
    **{f"{core}_{variant}": (core, {"latent_obs_dim": 4, "rnn_variant": variant}, "state")
       for core in ("lstm", "gru") for variant in ("paper", "tf_master", "pt")},
    "lstm_image": ("lstm", {"latent_obs_dim": 4, "zero_missing_inputs": True, **IMAGE_OVERRIDES},
                   "image"),
    "kvae_filter": ("kvae_filter", {**IMAGE_OVERRIDES, "alpha_units": 8}, "image"),
    "kvae_smooth": ("kvae_smooth", {**IMAGE_OVERRIDES, "alpha_units": 8}, "image"),
    "e2c": ("e2c", {**IMAGE_OVERRIDES, "transition_hidden": (8,)}, "image"),
    "dks": ("dks", {**IMAGE_OVERRIDES, "rnn_units": 8, "transition_hidden": 8}, "image"),
    "dks_filter": ("dks_filter", {**IMAGE_OVERRIDES, "rnn_units": 8, "transition_hidden": 8},
                   "image"),
}
# Models whose information set lets windows reproduce the whole sequence's predictions and losses
# (the smoothers look ahead: within a window they cannot see the later windows).
FILTERING = [name for name in CASES if name not in ("kvae_smooth", "dks")]
WINDOW = 3  # on 8 steps: windows of 3, 3 and 2 steps


def make_model(name: str, dtype: torch.dtype = torch.float32) -> SequenceModel:
    """The case's model, built after seeding torch (the same weights on every call)."""
    torch.manual_seed(0)
    family, params, _ = CASES[name]
    return build_named(family, params).to(dtype)


def make_batch(name: str) -> dict[str, torch.Tensor]:
    """4 sequences of 8 steps with some frames missing (also the first of windows 2 and 3)."""
    if CASES[name][2] == "image":
        batch = {k: v[:4, :8] for k, v in tiny_batch().items()}
    else:
        images, targets = moving_square(4, 8)
        valid = torch.rand(4, 8, generator=torch.Generator().manual_seed(3)) > 0.3
        batch = {"images": images, "targets": targets.float(), "obs_valid": valid}
    valid = batch["obs_valid"].clone()
    valid[0, WINDOW] = valid[1, 2 * WINDOW] = False  # a missing frame right after a boundary
    valid[:, 0] = True
    return {**batch, "obs_valid": valid}


def windows(batch: dict[str, torch.Tensor], length: int) -> list[dict[str, torch.Tensor]]:
    """The batch cut into consecutive windows of ``length`` steps."""
    steps = batch["images"].shape[1]
    return [{k: v[:, s : s + length] for k, v in batch.items()} for s in range(0, steps, length)]


def as_tensor(prediction) -> torch.Tensor:
    """All fields of a prediction concatenated on the last axis."""
    return torch.cat([field.flatten(2) for field in prediction], -1)


def one_step(name: str, bptt_length: int) -> tuple[torch.Tensor, dict, dict]:
    """Loss, gradients and parameters after one train_step of a fresh model (float32, CPU)."""
    model = make_model(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    torch.manual_seed(1)  # the generative models' samples
    loss = training.train_step(model, make_batch(name), optimizer,
                               TrainConfig(bptt_length=bptt_length))
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    return loss, grads, {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", CASES)
def test_window_as_long_as_the_sequence_trains_exactly_as_whole_sequences(name: str) -> None:
    """bptt_length = T and T + 5 give today's (bptt_length 0) loss, gradients and updated
    parameters bit for bit (float32, CPU)."""
    loss, grads, params = one_step(name, 0)
    assert any(g is not None and g.abs().sum() > 0 for g in grads.values())
    for length in (8, 13):
        got_loss, got_grads, got_params = one_step(name, length)
        assert torch.equal(got_loss, loss)
        for key, grad in grads.items():
            assert (got_grads[key] is None) == (grad is None), key
            assert grad is None or torch.equal(got_grads[key], grad), key
            assert torch.equal(got_params[key], params[key]), key


@pytest.mark.parametrize("name", FILTERING)
def test_windowed_predictions_with_carried_state_equal_the_whole_sequence(name: str) -> None:
    """Predicting window after window, each from the previous one's (detached) state, gives the
    whole-sequence predictions; a window started afresh does not."""
    model = make_model(name, torch.float64).eval()
    batch = make_batch(name)
    with torch.no_grad():
        whole = as_tensor(model(batch["images"], batch["obs_valid"]))
        parts, state = [], None
        for window in windows(batch, WINDOW):
            prediction, state = model.forward_window(window["images"], window["obs_valid"],
                                                     detach_state(state))
            parts.append(as_tensor(prediction))
        fresh = as_tensor(model.forward_window(batch["images"][:, WINDOW:],
                                               batch["obs_valid"][:, WINDOW:], None)[0])
    close(torch.cat(parts, 1), whole)
    assert not torch.allclose(fresh, whole[:, WINDOW:], atol=1e-6)


@pytest.mark.parametrize("name", ["rkn", "rkn_update_predict", "rkn_full_cov",
                                  "rkn_full_cov_update_predict"])
def test_rkn_carries_the_belief_of_its_step_order(name: str) -> None:
    """The RKN's carried belief is the whole-sequence filter's at the boundary: the posterior of
    the window's last step (predict_update), or that posterior predicted one step on, the prior
    of the next step (update_predict)."""
    model = make_model(name, torch.float64).eval()
    batch = make_batch(name)
    with torch.no_grad():
        post_mean, cov = model.filter(batch["images"], batch["obs_valid"])
        _, state = model.forward_window(batch["images"][:, :WINDOW],
                                        batch["obs_valid"][:, :WINDOW], None)
    last = WINDOW - 1
    transition = model.cell.transition
    if name.startswith("rkn_full_cov"):  # the full covariance is carried
        w, var, valid = model._encode(batch["images"], batch["obs_valid"])
        with torch.no_grad():
            means, covs = model.cell.filter_full(w, var, valid)
        expected = FullBelief(means[:, last], covs[:, last])
        if model.config.step_order == "update_predict":
            expected = predict_full(posterior=expected, transition=transition.matrix(
                expected.mean, transition.masked_basis()), transition_noise=transition.noise())
        close(state.cov, expected.cov)
    else:
        expected = Belief(post_mean[:, last], FactorizedCov(*(c[:, last] for c in cov)))
        if model.config.step_order == "update_predict":
            expected = kalman.predict(expected, transition.matrix(
                expected.mean, transition.masked_basis()), transition.noise())
        for got, want in zip(state.cov, expected.cov):
            close(got, want)
    close(state.mean, expected.mean)


def test_smoothers_see_only_their_window() -> None:
    """KVAE smooth: the last window's smoothed predictions equal the whole sequence's (same
    filter, same future), an earlier window's do not (it cannot see later windows). DKS (ST-R):
    a window continues the chain from the carried z (as if z_0 were that z)."""
    model = make_model("kvae_smooth", torch.float64).eval()
    batch = make_batch("kvae_smooth")
    with torch.no_grad():
        whole = model(batch["images"], batch["obs_valid"]).probs
        first, state = model.forward_window(batch["images"][:, :5], batch["obs_valid"][:, :5], None)
        last, _ = model.forward_window(batch["images"][:, 5:], batch["obs_valid"][:, 5:], state)
    close(last.probs, whole[:, 5:])
    assert not torch.allclose(first.probs, whole[:, :5], atol=1e-6)

    model = make_model("dks", torch.float64).eval()
    batch = {k: v[:1] for k, v in make_batch("dks").items()}
    with torch.no_grad():
        _, state = model.forward_window(batch["images"][:, :WINDOW],
                                        batch["obs_valid"][:, :WINDOW], None)
        carried = model.forward_window(batch["images"][:, WINDOW:],
                                       batch["obs_valid"][:, WINDOW:], state)[0].probs
        assert state.rnn is None  # the backward inference GRU carries nothing
        model.z0.copy_(state.z[0])
        restarted = model(batch["images"][:, WINDOW:], batch["obs_valid"][:, WINDOW:]).probs
    close(carried, restarted)


@pytest.mark.parametrize("name", CASES)
def test_gradients_do_not_cross_a_window_boundary(name: str) -> None:
    """The loss of window 2, started from window 1's detached state, has exactly zero gradient
    with respect to window 1's inputs (and a non-zero one on its own); from the same state not
    detached, the gradient reaches window 1."""
    model = make_model(name, torch.float64).eval()
    batch = make_batch(name)
    # KVAE and E2C train on the clean target frames only; the others read the input frames.
    key = "targets" if name.startswith(("kvae", "e2c")) else "images"
    frames = batch[key].to(torch.float64).requires_grad_()
    batch[key] = frames
    first, second = windows(batch, WINDOW)[:2]
    torch.manual_seed(2)
    _, state = model.training_loss_window(first["images"], first["obs_valid"], first["targets"],
                                          None)

    def gradient(carried) -> torch.Tensor:
        torch.manual_seed(3)
        loss, _ = model.training_loss_window(second["images"], second["obs_valid"],
                                             second["targets"], carried)
        return torch.autograd.grad(loss, frames, retain_graph=True)[0]

    cut = gradient(detach_state(state))
    assert torch.count_nonzero(cut[:, :WINDOW]) == 0
    assert cut[:, WINDOW : 2 * WINDOW].abs().sum() > 0
    assert cut[:, 2 * WINDOW :].abs().sum() == 0
    assert gradient(state)[:, :WINDOW].abs().sum() > 0


@pytest.mark.parametrize("name", FILTERING)
def test_train_step_over_windows_is_the_whole_sequence_loss(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the learning rate at 0 (parameters fixed) and the generative models' samples at their
    means, train_step over windows of 3, 3 and 2 steps returns the whole sequence's loss (the
    carried state makes each window's loss the whole sequence's on its steps) and takes one Adam
    step per window."""
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)
    model = make_model(name, torch.float64).eval()
    batch = make_batch(name)
    with torch.no_grad():
        whole = model.training_loss(batch["images"], batch["obs_valid"], batch["targets"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)
    loss = training.train_step(model, batch, optimizer, TrainConfig(bptt_length=WINDOW))
    steps = {int(s["step"]) for s in optimizer.state.values()}
    if name == "e2c":  # per-pair terms are averaged per window: compare the terms themselves
        frames, pairs, state = model.loss_terms(batch["targets"][:, :WINDOW], None)
        frames2, pairs2, _ = model.loss_terms(batch["targets"][:, WINDOW:], detach_state(state))
        all_frames, all_pairs, _ = model.loss_terms(batch["targets"], None)
        close(torch.cat([frames, frames2], 1), all_frames)
        close(torch.cat([pairs, pairs2], 1), all_pairs)
    else:
        close(loss, whole)
    assert max(steps) == 3  # (a learned initial covariance is used by the first window only)


def test_every_trainable_family_supports_windows() -> None:
    """Every trained model family can run truncated BPTT; the untrained reference rows need not."""
    for family, cls in FAMILIES.items():
        assert cls.supports_windows() == cls.trainable, family


class WholeSequencesOnly(SequenceModel):
    """A model that implements only forward."""

    config_class = TrainConfig  # any dataclass

    def forward(self, images, obs_valid=None):
        raise AssertionError("not called")


class OwnObjectiveOnly(WholeSequencesOnly):
    """Windows for its predictions but its own objective without a window version."""

    def forward_window(self, images, obs_valid, state):
        raise AssertionError("not called")

    def training_loss(self, images, obs_valid, targets):
        raise AssertionError("not called")


@pytest.mark.parametrize("cls", [WholeSequencesOnly, OwnObjectiveOnly])
def test_model_without_windows_is_refused_naming_the_setting(cls: type) -> None:
    """A model that cannot train on windows is refused before the first step, naming
    training.bptt_length (and the default training_loss_window refuses an own objective)."""
    assert not cls.supports_windows()
    model = cls(TrainConfig())
    split = {"images": torch.zeros(2, 4, 1, 1, 1), "targets": torch.zeros(2, 4, 1)}
    with pytest.raises(WindowsNotSupported, match=f"{cls.__name__} .*training.bptt_length"):
        training.fit(model, split, split, TrainConfig(epochs=1, bptt_length=2),
                     batch_order_seed=0)
    with pytest.raises(WindowsNotSupported, match="training.bptt_length"):
        model.training_loss_window(split["images"], None, split["targets"], None)


def test_detach_state_keeps_structure_and_cuts_the_graph() -> None:
    """detach_state returns the same nesting (NamedTuples, tuples, dicts, None) with every
    tensor cut from the graph and equal in value; other leaves are refused."""
    leaf = torch.ones(2, requires_grad=True)
    state = {"belief": Belief(leaf * 2, FactorizedCov(leaf, leaf + 1, leaf - 1)),
             "rnn": (leaf * 3, None), "steps": 4}
    detached = detach_state(state)
    assert isinstance(detached["belief"], Belief) and isinstance(detached["belief"].cov,
                                                                 FactorizedCov)
    assert detached["rnn"][1] is None and detached["steps"] == 4
    assert not detached["belief"].mean.requires_grad and not detached["rnn"][0].requires_grad
    assert torch.equal(detached["belief"].cov.lower, leaf + 1)
    with pytest.raises(TypeError, match="window state"):
        detach_state(object())


def test_negative_bptt_length_is_rejected() -> None:
    """bptt_length must be >= 0."""
    with pytest.raises(ValueError, match="bptt_length"):
        TrainConfig(bptt_length=-1)
    assert dataclasses.replace(TrainConfig(), bptt_length=75).bptt_length == 75

"""The shared training loop: clipping, validation split, model selection, NaN handling."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from harness import training
from harness.training import BadResultError, NonFiniteLossError, TrainConfig
from rkn.interface import GaussianPrediction, SequenceModel


@dataclass(frozen=True)
class NoSettings:
    """The toy model has no settings."""


class MeanOfImage(SequenceModel):
    """Tiny model of the common interface: a Gaussian from each frame's mean pixel value."""

    config_class = NoSettings

    def __init__(self, config: NoSettings = NoSettings()) -> None:
        super().__init__(config)
        self.scale = nn.Parameter(torch.zeros(1))
        self.log_var = nn.Parameter(torch.zeros(1))

    def forward(self, images: torch.Tensor, obs_valid: torch.Tensor | None = None) -> GaussianPrediction:
        feature = images.float().mean(dim=(2, 3, 4)).unsqueeze(-1) / 255.0  # (B, T, 1)
        mean = self.scale * feature
        return GaussianPrediction(mean, torch.exp(self.log_var).expand_as(mean))


def toy_split(num: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Targets are twice the mean pixel value of random images plus a little noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num, 5, 4, 4, 1)).astype(np.uint8)
    targets = 2.0 * images.mean(axis=(2, 3, 4))[..., None] / 255.0 + 0.05 * rng.normal(size=(num, 5, 1))
    return {"images": images, "targets": targets.astype(np.float32)}


def test_fit_learns_and_selects_best_epoch() -> None:
    """On a learnable toy problem the loss falls, and best_val keeps the lowest validation loss."""
    torch.manual_seed(0)
    model = MeanOfImage()
    split = training.to_tensors(toy_split(60), torch.device("cpu"))
    train, val = ({k: v[:50] for k, v in split.items()}, {k: v[50:] for k, v in split.items()})
    config = TrainConfig(epochs=40, batch_size=10, learning_rate=0.05)
    result = training.fit(model, train, val, config, batch_order_seed=1)
    val_losses = [row["val_loss"] for row in result.history]
    assert val_losses[-1] < val_losses[0] - 0.5
    assert result.selected_epoch == int(np.argmin(val_losses)) + 1
    assert training.mean_loss(model, val, 100) == pytest.approx(min(val_losses), rel=1e-6)
    assert model.scale.item() == pytest.approx(2.0, abs=0.3)


def test_fit_is_deterministic_for_a_seed() -> None:
    """Same init and batch-order seed give identical histories; another order seed differs."""
    split = training.to_tensors(toy_split(30), torch.device("cpu"))
    train, val = ({k: v[:20] for k, v in split.items()}, {k: v[20:] for k, v in split.items()})
    config = TrainConfig(epochs=3, batch_size=4, learning_rate=0.05)

    def history(order_seed: int) -> list[float]:
        torch.manual_seed(0)
        return [r["train_loss"] for r in training.fit(MeanOfImage(), train, val, config, batch_order_seed=order_seed).history]

    assert history(5) == history(5)
    assert history(5) != history(6)


def test_nan_loss_raises_clear_error() -> None:
    """A NaN loss stops training with an error that says what to change."""
    model = MeanOfImage()
    with torch.no_grad():
        model.log_var.fill_(math.nan)
    split = training.to_tensors(toy_split(10), torch.device("cpu"))
    with pytest.raises(NonFiniteLossError, match="learning_rate"):
        training.fit(model, split, split, TrainConfig(epochs=1, batch_size=5), batch_order_seed=0)


@pytest.mark.parametrize("mode", ["per_tensor", "global"])
def test_gradient_clipping(mode: str) -> None:
    """per_tensor bounds each gradient's norm; global bounds the norm over all gradients."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    for param in model.parameters():
        param.grad = torch.full_like(param, 10.0)
    training.clip_gradients(model, mode, 1.0)
    norms = [float(p.grad.norm()) for p in model.parameters()]
    if mode == "per_tensor":
        assert all(n == pytest.approx(1.0, rel=1e-5) for n in norms)
    else:
        assert math.sqrt(sum(n * n for n in norms)) == pytest.approx(1.0, rel=1e-5)
        assert len({round(n, 6) for n in norms}) > 1  # relative sizes kept


def test_validation_split_takes_the_last_sequences() -> None:
    """The validation split is the last ceil(fraction * N) training sequences, disjoint from the rest."""
    split = toy_split(25)
    train, val = training.split_train_val(split, 0.1)
    assert len(train["images"]) == 22 and len(val["images"]) == 3
    np.testing.assert_array_equal(val["images"], split["images"][22:])
    with pytest.raises(ValueError, match="too few"):
        training.split_train_val(toy_split(1), 0.1)


@pytest.mark.parametrize("bad", [{"clip_mode": "x"}, {"model_selection": "best"}, {"epochs": 0}, {"val_fraction": 1.0}])
def test_train_config_rejects_bad_values(bad: dict) -> None:
    """Invalid optimisation settings are rejected when the config is built."""
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_nan_validation_loss_is_an_error_not_a_selected_epoch() -> None:
    """One NaN target in the validation part: an error naming the validation split, instead of a
    warning and a silently "selected" last epoch."""
    split = toy_split(10)
    split["targets"][-1, 2, 0] = np.nan  # inside the validation part only
    tensors = training.to_tensors(split, torch.device("cpu"))
    train = {k: v[:8] for k, v in tensors.items()}
    val = {k: v[8:] for k, v in tensors.items()}
    with pytest.raises(BadResultError, match="validation loss is nan at epoch 1.*validation split"):
        training.fit(MeanOfImage(), train, val, TrainConfig(epochs=2, batch_size=4),
                     batch_order_seed=0)


@pytest.mark.parametrize(("poison", "message"), [
    ("zero_var", "var: 10 of 10 non-finite variances or variances at the floor"),
    ("nan_mean", "mean: 10 of 10 non-finite values"),
])
def test_degenerate_test_predictions_are_an_error(poison: str, message: str) -> None:
    """Variances of exactly 0 or NaN means never become metrics (-inf log-likelihood, NaN
    normalised errors): evaluate raises with what is wrong and what to change."""
    model = MeanOfImage()
    with torch.no_grad():
        if poison == "zero_var":
            model.log_var.fill_(-math.inf)
        else:
            model.scale.fill_(math.nan)
    split = training.to_tensors(toy_split(2), torch.device("cpu"))
    with pytest.raises(BadResultError, match=f"{message}.*learning_rate"):
        training.evaluate(model, split, 10)


def test_non_finite_test_metric_is_an_error() -> None:
    """A NaN target of the test split makes a NaN metric: an error, not a published NaN."""
    split = toy_split(2)
    split["targets"][0, 0, 0] = np.nan
    with pytest.raises(BadResultError, match="test metrics .*log_lik=nan.* are not finite"):
        training.evaluate(MeanOfImage(), training.to_tensors(split, torch.device("cpu")), 10)


@pytest.mark.parametrize(("losses", "patience", "min_delta", "stop"), [
    ([], 3, 0.0, False),
    ([5.0, 4.0, 3.0], 0, 0.0, False),            # patience 0: off
    ([5.0, 4.0, 4.5, 4.2], 2, 0.0, True),        # best at epoch 2, two epochs without a better one
    ([5.0, 4.0, 4.5], 2, 0.0, False),            # only one epoch since the best
    ([5.0, 4.0, 3.99, 3.98], 2, 0.05, True),     # improvements below min_delta do not count
    ([5.0, 4.0, 3.99, 3.9], 2, 0.05, False),     # 4.0 -> 3.9 beats the best by more than 0.05
    ([float("inf"), 1.0, 1.0], 1, 0.0, True),    # a tie is no improvement
])
def test_early_stop_rule(losses: list[float], patience: int, min_delta: float, stop: bool) -> None:
    from harness.training import early_stop_due

    assert early_stop_due(losses, patience, min_delta) is stop


def test_early_stopping_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="early_stopping_patience"):
        TrainConfig(early_stopping_patience=-1)
    with pytest.raises(ValueError, match="early_stopping_min_delta"):
        TrainConfig(early_stopping_min_delta=float("nan"))

"""Metric and loss functions agree with independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from harness import metrics
from rkn import losses
from rkn.interface import BernoulliPrediction, GaussianPrediction


def test_gaussian_nll_matches_scipy() -> None:
    """Per-step NLL is minus the sum over dimensions of scipy's normal log-density (var + 1e-8)."""
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(3, 4, 2, generator=gen, dtype=torch.float64)
    var = torch.rand(3, 4, 2, generator=gen, dtype=torch.float64) + 0.1
    y = torch.randn(3, 4, 2, generator=gen, dtype=torch.float64)
    nll = losses.gaussian_nll(GaussianPrediction(mean, var), y)
    expected = -stats.norm.logpdf(y.numpy(), mean.numpy(), np.sqrt(var.numpy() + 1e-8)).sum(-1)
    np.testing.assert_allclose(nll.numpy(), expected, rtol=1e-9)


def test_gaussian_metrics_on_calibrated_samples() -> None:
    """Samples drawn from the predicted Gaussians give coverage 0.683/0.954 and N(0,1) errors."""
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(200, 50, 2))
    var = rng.uniform(0.1, 2.0, size=mean.shape)
    y = mean + np.sqrt(var) * rng.normal(size=mean.shape)
    found = metrics.gaussian_metrics(mean, var, y)
    assert found["coverage_1sigma"] == pytest.approx(0.6827, abs=0.01)
    assert found["coverage_2sigma"] == pytest.approx(0.9545, abs=0.005)
    assert found["norm_err_mean"] == pytest.approx(0.0, abs=0.02)
    assert found["norm_err_var"] == pytest.approx(1.0, abs=0.03)
    assert found["rmse"] == pytest.approx(np.sqrt(np.mean(var)), rel=0.02)
    expected_ll = stats.norm.logpdf(y, mean, np.sqrt(var + 1e-8)).sum(-1).mean()
    assert found["log_lik"] == pytest.approx(expected_ll, rel=1e-12)


def test_overconfident_model_has_low_coverage() -> None:
    """Variances 100x too small show up as low coverage and a large normalised-error variance."""
    rng = np.random.default_rng(2)
    mean = np.zeros((100, 20, 2))
    y = rng.normal(size=mean.shape)
    found = metrics.gaussian_metrics(mean, np.full(mean.shape, 0.01), y)
    assert found["coverage_1sigma"] < 0.2
    assert found["norm_err_var"] == pytest.approx(100.0, rel=0.05)


def test_calibration_histogram_is_a_density() -> None:
    """The 100-bin histogram on [-4, 4] of N(0,1) errors integrates to ~1 and peaks near 0.4."""
    errors = np.random.default_rng(3).normal(size=200_000)
    edges, density = metrics.calibration_histogram(errors)
    assert edges.shape == (101,) and density.shape == (100,)
    assert edges[0] == -4.0 and edges[-1] == 4.0
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0, abs=1e-3)
    assert density[48:52].mean() == pytest.approx(stats.norm.pdf(0.0), abs=0.01)


def test_bce_metrics_split_by_mask() -> None:
    """BCE per image is summed over pixels and averaged over all, missing and observed frames."""
    rng = np.random.default_rng(4)
    probs = rng.uniform(0.01, 0.99, size=(2, 3, 4, 4, 1))
    targets = rng.integers(0, 256, size=probs.shape).astype(np.uint8)
    valid = np.array([[True, False, True], [False, True, True]])
    y = targets / 255.0
    frame = -(y * np.log(probs) + (1 - y) * np.log(1 - probs)).sum(axis=(2, 3, 4))
    found = metrics.bce_metrics(probs, targets, valid)
    assert found["bce_all"] == pytest.approx(frame.mean(), rel=1e-9)
    assert found["bce_missing"] == pytest.approx(frame[~valid].mean(), rel=1e-9)
    assert found["bce_observed"] == pytest.approx(frame[valid].mean(), rel=1e-9)
    torch_bce = losses.per_step_loss(BernoulliPrediction(torch.from_numpy(probs)), torch.from_numpy(targets))
    np.testing.assert_allclose(torch_bce.numpy(), frame, rtol=1e-9)


def test_per_step_loss_rejects_unknown_prediction() -> None:
    """A prediction type the harness does not know is an error, not a silent zero loss."""
    with pytest.raises(TypeError):
        losses.per_step_loss((torch.zeros(1),), torch.zeros(1))  # type: ignore[arg-type]


def test_normalised_errors_use_the_likelihood_epsilon() -> None:
    """A zero variance gives finite normalised errors (the likelihood's 1e-8 added), not inf."""
    errors = metrics.normalised_errors(np.zeros(3), np.zeros(3), np.full(3, 1e-4))
    np.testing.assert_allclose(errors, 1e-4 / np.sqrt(1e-8))


def test_degenerate_predictions_named_by_array() -> None:
    ok = {"mean": np.zeros(4), "var": np.full(4, 1e-9)}
    assert metrics.degenerate_predictions(ok) == []
    bad = {"mean": np.array([0.0, np.inf]), "var": np.array([0.0, 1.0, np.float32(1e-12)])}
    assert metrics.degenerate_predictions(bad) == [
        "mean: 1 of 2 non-finite values",
        "var: 2 of 3 non-finite variances or variances at the floor 1e-12"]
    assert metrics.degenerate_predictions({"probs": np.array([0.0, 1.0, 1.5])}) == [
        "probs: 1 of 3 non-finite or out-of-[0, 1] probabilities"]

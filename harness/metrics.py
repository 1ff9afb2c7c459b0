"""Evaluation metrics of a whole test split, shared by every model (docs/metrics.md).

Gaussian outputs: per-step log-likelihood summed over target dimensions
(docs/metrics.md#gaussian-log-likelihood), RMSE (docs/metrics.md#rmse) and calibration summaries
of the normalised errors (docs/metrics.md#calibration). Image outputs: binary cross-entropy summed
over the pixels of a frame (docs/metrics.md#imputation-bce), over all, missing and observed frames.
"""

from __future__ import annotations

import numpy as np

from rkn.losses import BCE_EPS, VARIANCE_EPS
from rkn.nets import VAR_FLOOR

HISTOGRAM_BINS = 100
HISTOGRAM_RANGE = (-4.0, 4.0)


def gaussian_metrics(mean: np.ndarray, var: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Test metrics of a Gaussian prediction over a whole split; arrays are (N, T, D) float64.

    Returns log_lik (per step, summed over dims), rmse, coverage_1sigma / coverage_2sigma (fraction
    of |e| < 1, < 2 for the normalised error e = (y - mu) / sigma), norm_err_mean and norm_err_var
    (N(0, 1) would give 0 and 1).
    """
    s = var + VARIANCE_EPS
    log_lik = -0.5 * (np.log(2 * np.pi) + np.log(s) + (targets - mean) ** 2 / s).sum(-1).mean()
    errors = normalised_errors(mean, var, targets)
    return {
        "log_lik": float(log_lik),
        "rmse": float(np.sqrt(np.mean((mean - targets) ** 2))),
        "coverage_1sigma": float(np.mean(np.abs(errors) < 1.0)),
        "coverage_2sigma": float(np.mean(np.abs(errors) < 2.0)),
        "norm_err_mean": float(errors.mean()),
        "norm_err_var": float(errors.var()),
    }


def normalised_errors(mean: np.ndarray, var: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """e = (y - mu) / sqrt(var + eps), flattened over sequences, steps and dimensions
    (docs/metrics.md#calibration); eps = ``VARIANCE_EPS``, the same as the log-likelihood's."""
    return ((targets - mean) / np.sqrt(var + VARIANCE_EPS)).ravel()


def degenerate_predictions(preds: dict[str, np.ndarray]) -> list[str]:
    """What is wrong with a split's predictions, one line per array (empty when nothing is).

    ``preds``: {mean, var} or {probs} as float arrays of any shape. A value is degenerate when it
    is NaN or infinite, a variance at or below the floor of the variance maps
    (``rkn.nets.VAR_FLOOR``, 1e-12: the map saturated, as when training diverged), or a
    probability outside [0, 1]: a benchmark must not publish metrics computed from them.
    """
    problems = []
    for name, values in preds.items():
        bad = ~np.isfinite(values)
        if name == "var":
            bad |= values <= VAR_FLOOR * (1 + 1e-6)  # float32 rounds the floor down slightly
            what = f"non-finite variances or variances at the floor {VAR_FLOOR:g}"
        elif name == "probs":
            bad |= (values < 0) | (values > 1)
            what = "non-finite or out-of-[0, 1] probabilities"
        else:
            what = "non-finite values"
        if bad.any():
            problems.append(f"{name}: {int(bad.sum())} of {values.size} {what}")
    return problems


def calibration_histogram(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """100-bin density histogram on [-4, 4] of the normalised errors: (edges (101,), density (100,)).

    Density is relative to all errors, including those outside the range, so the bars of a model
    with heavy tails sum to less than one.
    """
    counts, edges = np.histogram(errors, bins=HISTOGRAM_BINS, range=HISTOGRAM_RANGE)
    width = edges[1] - edges[0]
    return edges, counts / (max(errors.size, 1) * width)


def bce_metrics(probs: np.ndarray, targets: np.ndarray, obs_valid: np.ndarray | None) -> dict[str, float]:
    """Imputation BCE per image over all, missing and observed frames
    (docs/metrics.md#imputation-bce).

    probs (N, T, H, W, C) float, targets uint8 of the same shape, obs_valid (N, T) bool or None.
    A subset with no frames is reported as NaN-free by leaving its key out.
    """
    y = targets.astype(np.float64) / 255.0
    p = probs.astype(np.float64)
    per_frame = -(y * np.log(p + BCE_EPS) + (1 - y) * np.log(1 - p + BCE_EPS))
    per_frame = per_frame.reshape(per_frame.shape[0], per_frame.shape[1], -1).sum(-1)
    result = {"bce_all": float(per_frame.mean())}
    if obs_valid is not None:
        if (~obs_valid).any():
            result["bce_missing"] = float(per_frame[~obs_valid].mean())
        if obs_valid.any():
            result["bce_observed"] = float(per_frame[obs_valid].mean())
    return result

"""The two kinds of prediction a sequence model returns (the harness picks loss and metrics by type)."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class GaussianPrediction(NamedTuple):
    """Per-step diagonal Gaussian over low-dimensional targets.

    mean: (B, T, D); var: (B, T, D), strictly positive (variances, not standard deviations).
    """

    mean: Tensor
    var: Tensor


class BernoulliPrediction(NamedTuple):
    """Per-pixel Bernoulli means of image targets, probs in (0, 1): (B, T, H, W, C)."""

    probs: Tensor


Prediction = GaussianPrediction | BernoulliPrediction

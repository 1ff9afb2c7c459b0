"""Per-step training losses shared by every model (docs/metrics.md#training-losses).

They live beside the models because generative baselines build their own objectives from them
(``baselines.kvae``, ``baselines.e2c``, ``baselines.dks``); the evaluation metrics that summarise a
whole test split are in ``harness.metrics``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rkn.predictions import BernoulliPrediction, GaussianPrediction, Prediction

# Added to every predicted variance before the likelihood (TF-master uses 1e-8;
# docs/metrics.md#gaussian-log-likelihood).
VARIANCE_EPS = 1e-8
# Added inside the logarithms of the BCE (TF-master; docs/metrics.md#imputation-bce).
BCE_EPS = 1e-12


def gaussian_nll(pred: GaussianPrediction, targets: Tensor, *, var_eps: float = VARIANCE_EPS) -> Tensor:
    """Per-step Gaussian negative log-likelihood (B, T): 0.5 sum_d [log 2pi + log s + (y - mu)^2 / s].

    s = var + var_eps. Averaging the result over steps and sequences gives minus the "LL" of the
    paper's tables (docs/metrics.md#gaussian-log-likelihood).
    """
    var = pred.var + var_eps
    per_dim = 0.5 * (math.log(2 * math.pi) + torch.log(var) + (targets - pred.mean) ** 2 / var)
    return per_dim.sum(-1)


def bernoulli_nll(pred: BernoulliPrediction, targets: Tensor, *, eps: float = BCE_EPS) -> Tensor:
    """Per-frame binary cross-entropy (B, T), summed over pixels; targets are uint8 grey values.

    docs/metrics.md#imputation-bce: the targets are divided by 255 and never binarised.
    """
    y = targets.to(pred.probs.dtype) / 255.0
    p = pred.probs
    per_pixel = -(y * torch.log(p + eps) + (1.0 - y) * torch.log(1.0 - p + eps))
    return per_pixel.flatten(2).sum(-1)


def per_step_loss(pred: Prediction, targets: Tensor) -> Tensor:
    """The loss of one batch per (sequence, step), chosen by the prediction type: (B, T).

    Raises:
        TypeError: for a prediction that is neither Gaussian nor Bernoulli.
    """
    if isinstance(pred, GaussianPrediction):
        return gaussian_nll(pred, targets)
    if isinstance(pred, BernoulliPrediction):
        return bernoulli_nll(pred, targets)
    raise TypeError(f"unknown prediction type {type(pred).__name__}")

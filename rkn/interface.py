"""The one small interface every sequence model implements, so the training loop has no per-model branches.

A model is an ``nn.Module`` built from a frozen config dataclass (``Model(config)``, kept as
``model.config``). Its ``forward`` takes a batch of image sequences and returns one of the two
prediction types below; the harness picks the loss from the prediction's type.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

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


class SequenceModel(Protocol):
    """What the harness relies on.

    ``forward(images, obs_valid)``: images (B, T, H, W, C) uint8 or float (raw pixel values
    0..255; the model applies its own input scaling); obs_valid (B, T) bool or None (None: all
    frames observed). Models that ignore the flag by design (uninformed variants) document it.
    """

    config: object

    def __call__(self, images: Tensor, obs_valid: Tensor | None = None) -> Prediction: ...

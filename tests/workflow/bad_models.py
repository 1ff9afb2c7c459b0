"""Users' models that break the contract of rkn.interface.SequenceModel, for the bad-input table
(tests/workflow/test_bad_inputs.py): each must stop its run with exit status 2 and a message
naming the model and what is wrong, never publish a run folder."""

from __future__ import annotations

from tests.workflow.own_model import PixelGRU
from rkn.interface import GaussianPrediction


class OneStepShort(PixelGRU):
    """Predicts every step but the last (torch would broadcast it against the targets)."""

    def forward(self, images, obs_valid=None):
        prediction = super().forward(images, obs_valid)
        return GaussianPrediction(prediction.mean[:, :-1], prediction.var[:, :-1])


class PlainTuple(PixelGRU):
    """Returns (mean, var) as a plain tuple instead of a GaussianPrediction."""

    def forward(self, images, obs_valid=None):
        prediction = super().forward(images, obs_valid)
        return prediction.mean, prediction.var


class OneValuePerStep(PixelGRU):
    """Predicts one value per step for two-dimensional targets (would broadcast to both)."""

    def forward(self, images, obs_valid=None):
        prediction = super().forward(images, obs_valid)
        return GaussianPrediction(prediction.mean[..., :1], prediction.var[..., :1])


class FailsToBuild(PixelGRU):
    """Its constructor raises."""

    def __init__(self, config):
        raise RuntimeError("no GPU kernels for this layer")

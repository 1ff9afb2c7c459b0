"""The contract between sequence models and the harness: prediction types and ``SequenceModel``.

Every model the harness trains (the RKN, the baselines, a user's own model) subclasses
``SequenceModel``: it is built from a frozen config dataclass (``Model(config)``, the class names
that dataclass in ``config_class``) and its ``forward`` returns one of the two prediction types
below (``rkn.predictions``, re-exported here); the harness picks the loss and the metrics from the prediction's type. Everything else the
harness uses is declared here with a default, so the training loop needs no per-model branches
and no attribute look-ups by name.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn

from rkn.losses import per_step_loss
from rkn.predictions import BernoulliPrediction, GaussianPrediction, Prediction

__all__ = ["BernoulliPrediction", "FilterFailure", "GaussianPrediction", "Prediction",
           "SequenceModel"]


class FilterFailure(RuntimeError):
    """A model's filter broke down numerically (e.g. a covariance that is no longer positive
    definite); the message names the step and the settings to change."""


class SequenceModel(nn.Module):
    """Base class of every model the harness trains and evaluates.

    Subclasses set ``config_class`` and implement ``forward``; the other members have defaults
    that fit an ordinary network trained on its predictions.

    Attributes:
        config_class: the frozen dataclass the model is built from. The harness validates the
            config's ``params`` against its fields (names and types) before any run starts.
        config: the instance the model was built with (written into every run folder and
            checkpoint, so ``harness.registry.load_checkpoint`` can rebuild the model).
        trainable: False for parameter-free reference predictors: the harness then calls
            ``fit_reference`` on the training split instead of the training loop.
        input_is_clean: True when the model must see the clean target frames as input (the
            entropy-floor oracle of image imputation, paper.md §5.3).
    """

    config_class: ClassVar[type]
    trainable: ClassVar[bool] = True
    input_is_clean: bool = False

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def forward(self, images: Tensor, obs_valid: Tensor | None = None) -> Prediction:
        """Predict the targets of every step.

        Args:
            images: (B, T, H, W, C) uint8 or float, raw pixel values 0..255 (the model applies its
                own input scaling).
            obs_valid: (B, T) bool, False where a frame is missing; None: all frames observed.
                Models that ignore the flag by design (uninformed variants) document it.

        Returns:
            GaussianPrediction (B, T, D) for low-dimensional targets, or BernoulliPrediction
            (B, T, H, W, C) for image targets.
        """
        raise NotImplementedError

    def training_loss(self, images: Tensor, obs_valid: Tensor | None, targets: Tensor) -> Tensor:
        """The scalar the optimiser minimises for one batch.

        Default: the mean over sequences and steps of the per-step negative log-likelihood of the
        prediction (``rkn.losses.per_step_loss``). Models with their own objective (the
        generative baselines: minus an ELBO) override it; every model is still validated and
        evaluated on its predictions.

        Args:
            images, obs_valid: as for ``forward``.
            targets: (B, T, D) float or (B, T, H, W, C) uint8.
        """
        return per_step_loss(self(images, obs_valid), targets).mean()

    def fit_reference(self, train: dict[str, np.ndarray]) -> None:
        """Fit the statistics of a parameter-free predictor (``trainable`` False) on the training
        split (numpy arrays as stored: images, targets, optional obs_valid). Default: nothing."""

    def compile_steps(self) -> None:
        """Compile the per-time-step function with ``torch.compile`` (``training.compile:
        inductor``, ``harness.fast_step``). Default: nothing, for models whose recurrence is
        already one fused kernel (LSTM, GRU) or that stay eager (the generative baselines)."""

    def num_trained_parameters(self) -> int:
        """Number of parameters the optimiser changes (the ``n_params`` metric).

        Default: every parameter that requires a gradient. Models that store entries which can
        never change (the RKN's masked transition basis) override it.
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

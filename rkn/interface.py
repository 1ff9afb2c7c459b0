"""The contract between sequence models and the harness: prediction types and ``SequenceModel``.

Every model the harness trains (the RKN, the baselines, a user's own model) subclasses
``SequenceModel``: it is built from a frozen config dataclass (``Model(config)``, the class names
that dataclass in ``config_class``) and its ``forward`` returns one of the two prediction types
below (``rkn.predictions``, re-exported here); the harness picks the loss and the metrics from
the prediction's type. Everything else the harness uses is declared here with a default, so the
training loop needs no per-model branches and no attribute look-ups by name.

Optional capability, truncated back-propagation through time (``training.bptt_length`` > 0,
the authors' TF-icml protocol; docs/experiments.md#truncated-back-propagation-through-time): the
harness cuts each batch into consecutive
windows of L steps and takes one optimiser step per window, starting each window from the state
the model reached at the end of the previous one, detached (``detach_state``). A model offers it
by implementing ``forward_window`` (and ``training_loss_window`` when it has its own objective);
``SequenceModel.supports_windows`` tells the harness whether it does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn

from rkn.losses import per_step_loss
from rkn.predictions import BernoulliPrediction, GaussianPrediction, Prediction

__all__ = ["BernoulliPrediction", "FilterFailure", "GaussianPrediction", "Prediction",
           "SequenceModel", "WindowState", "WindowsNotSupported", "detach_state"]

# What a model carries from one window of a sequence to the next (``forward_window``): its own
# choice of tensors, possibly nested in tuples, NamedTuples, lists or dicts; None at the start of
# a sequence. Opaque to the harness, which only detaches it.
WindowState = Any


class FilterFailure(RuntimeError):
    """A model's filter broke down numerically (e.g. a covariance that is no longer positive
    definite); the message names the step and the settings to change."""


class WindowsNotSupported(NotImplementedError):
    """The model cannot train with truncated back-propagation (``training.bptt_length`` > 0)."""

    def __init__(self, model_name: str) -> None:
        super().__init__(
            f"{model_name} cannot train with truncated back-propagation through time "
            "(training.bptt_length > 0): it implements no forward_window / training_loss_window "
            "(rkn.interface.SequenceModel); set training.bptt_length: 0 for the experiments it "
            "is part of")


def detach_state(state: WindowState) -> WindowState:
    """``state`` with every tensor detached from the graph (same nesting and types).

    Between windows the harness passes the state on through this, so a later window's loss never
    back-propagates into an earlier window (truncated BPTT): its values carry over, its gradient
    path does not.

    Raises:
        TypeError: for a leaf that is neither a tensor, None, a number, a string nor a bool.
    """
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a NamedTuple
        return type(state)(*(detach_state(part) for part in state))
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(part) for part in state)
    if isinstance(state, dict):
        return {key: detach_state(value) for key, value in state.items()}
    raise TypeError(f"a window state may hold tensors, None, numbers and (named) tuples, lists "
                    f"and dicts of them, not {type(state).__name__}")


class SequenceModel(nn.Module):
    """Base class of every model the harness trains and evaluates.

    Subclasses set ``config_class`` and implement ``forward``; the other members have defaults
    that fit an ordinary network trained on its predictions. ``forward_window`` and
    ``training_loss_window`` are optional (truncated back-propagation, see the module docstring).

    Attributes:
        config_class: the frozen dataclass the model is built from. The harness validates the
            config's ``params`` against its fields (names and types) before any run starts.
        config: the instance the model was built with (written into every run folder and
            checkpoint, so ``harness.registry.load_checkpoint`` can rebuild the model).
        trainable: False for parameter-free reference predictors: the harness then calls
            ``fit_reference`` on the training split instead of the training loop.
        input_is_clean: True when the model must see the clean target frames as input (the
            entropy-floor oracle of image imputation, docs/baselines.md#reference-predictors).
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

    @classmethod
    def supports_windows(cls) -> bool:
        """Whether the model can train with truncated back-propagation (``training.bptt_length``).

        True when the class implements ``training_loss_window``, or implements ``forward_window``
        and trains on its predictions (no ``training_loss`` of its own, since the default
        ``training_loss_window`` scores the predictions).
        """
        base = SequenceModel
        if cls.training_loss_window is not base.training_loss_window:
            return True
        return (cls.forward_window is not base.forward_window
                and cls.training_loss is base.training_loss)

    def forward_window(self, images: Tensor, obs_valid: Tensor | None,
                       state: WindowState) -> tuple[Prediction, WindowState]:
        """Predict the targets of one window of a sequence, continuing from ``state``.

        Optional (truncated back-propagation, ``training.bptt_length``). ``state`` None starts a
        sequence: the result must then be exactly ``forward(images, obs_valid)`` (the same
        operations, so a window as long as the sequence trains exactly as without windows).
        Otherwise ``state`` is what the call on the previous window returned, possibly detached;
        predicting the windows of a sequence one after the other, each from the previous one's
        state, gives ``forward``'s predictions of the whole sequence (to rounding) wherever the
        model's information set allows it (a model that looks ahead, e.g. a smoother, sees only
        its window and says so).

        Args:
            images, obs_valid: as for ``forward``, for the window's L steps: (B, L, H, W, C) and
                (B, L).
            state: None, or the state returned for the previous window of the same sequences.

        Returns:
            The window's prediction, (B, L, ...) as for ``forward``, and the state to continue
            from at the next window (tensors with batch size B; only valid for ``forward_window``).

        Raises:
            WindowsNotSupported: the model does not implement it.
        """
        raise WindowsNotSupported(type(self).__name__)

    def training_loss_window(self, images: Tensor, obs_valid: Tensor | None, targets: Tensor,
                             state: WindowState) -> tuple[Tensor, WindowState]:
        """``training_loss`` of one window of a sequence, continuing from ``state``.

        Optional, like ``forward_window``. The harness calls it once per window and optimiser step
        (``training.bptt_length`` > 0), passing on the returned state detached. With ``state``
        None it must compute exactly ``training_loss(images, obs_valid, targets)``.

        Default: the mean per-step loss of ``forward_window``'s prediction; models with their own
        ``training_loss`` must override this too (the default refuses them).

        Args:
            images, obs_valid, targets: as for ``training_loss``, for the window's L steps.
            state: None, or the state this method returned for the previous window.

        Returns:
            The scalar to minimise for the window and the state to continue from (only valid for
            ``training_loss_window``).

        Raises:
            WindowsNotSupported: the model does not implement windows.
        """
        if type(self).training_loss is not SequenceModel.training_loss:
            raise WindowsNotSupported(type(self).__name__)
        prediction, state = self.forward_window(images, obs_valid, state)
        return per_step_loss(prediction, targets).mean(), state

    def fit_reference(self, train: dict[str, np.ndarray]) -> None:
        """Fit the statistics of a parameter-free predictor (``trainable`` False) on the training
        split (numpy arrays as stored: images, targets, optional obs_valid). Default: nothing."""

    def recurrent_core(self) -> nn.Module | None:
        """The module that carries the state from step to step (claim 7 measures its
        parameters, time and memory against m, ``harness.efficiency``): the RKN's cell, the
        LSTM/GRU layer. Default: None (no core to measure)."""
        return None

    def compile_steps(self) -> None:
        """Compile the per-time-step function with ``torch.compile`` (``training.compile:
        inductor``, ``harness.step``). Default: nothing, for models whose recurrence is
        already one fused kernel (LSTM, GRU) or that stay eager (the generative baselines)."""

    def num_trained_parameters(self) -> int:
        """Number of parameters the optimiser changes (the ``n_params`` metric).

        Default: every parameter that requires a gradient. Models that store entries which can
        never change (the RKN's masked transition basis) override it.
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

"""The model boundary: every prediction a model returns is checked against the targets it predicts.

``rkn.interface.SequenceModel.forward`` promises a ``GaussianPrediction`` whose mean and var have
the targets' shape (B, T, D), or a ``BernoulliPrediction`` whose probs have the image targets'
shape (B, T, H, W, C), in the targets' floating-point dtype (images: any floating dtype). Torch
would broadcast many wrong shapes without a word (a prediction one step short, one target
dimension, a missing batch axis) and the run would publish numbers computed from them, so the
runner attaches ``PredictionCheck`` to the model as a forward hook: every call of the model
(its training loss, the validation and the test predictions; every model family and a user's own
model alike) is checked, and a mismatch stops the run naming the model, the expected and the
received shapes.

The check reads shapes and dtypes only, which costs nothing and never waits for the device.
Finiteness is checked where the harness reads the predictions anyway (without autograd: the
validation and test predictions); during training a non-finite loss is caught by the loop
(``harness.step``). Nothing is computed differently with the hook attached.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harness.step import FIX_HINT, BadResultError
from harness.training import to_tensors
from rkn.interface import BernoulliPrediction, GaussianPrediction

__all__ = ["PredictionCheck", "PredictionError", "attach_prediction_check"]

# Where a model's author reads the contract.
CONTRACT = "rkn.interface.SequenceModel.forward; README, 'Compare your own model'"


class PredictionError(ValueError):
    """A model returned predictions that do not fit its targets (type, shape or dtype)."""


def _describe(value: Any) -> str:
    if isinstance(value, (GaussianPrediction, BernoulliPrediction)):
        parts = ", ".join(f"{k} {_describe(v)}" for k, v in value._asdict().items())
        return f"{type(value).__name__}({parts})"
    if isinstance(value, Tensor):
        return f"of shape {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, (tuple, list)):
        return f"a plain {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


class PredictionCheck:
    """Forward hook that checks a model's predictions against its targets' kind and shape.

    Args:
        name: how messages name the model, e.g. ``"my_model (mypkg.seq:MyModel)"``.
        targets: the targets of any split (N, T, D) float or (N, T, H, W, C) uint8, as arrays
            or as the loop's tensors (``harness.training.to_tensors``: float64 becomes float32);
            only their trailing shape and dtype are kept.

    Raises (when the model is called):
        PredictionError: a prediction of the wrong type, shape or dtype.
        harness.step.BadResultError: a non-finite value in predictions made without autograd.
    """

    def __init__(self, name: str, targets: np.ndarray | Tensor) -> None:
        self.name = name
        self.trailing = tuple(int(n) for n in targets.shape[2:])
        self.kind = BernoulliPrediction if len(targets.shape) == 5 else GaussianPrediction
        sample = targets[:0] if isinstance(targets, Tensor) else \
            to_tensors({"targets": np.asarray(targets[:0])}, torch.device("cpu"))["targets"]
        # Float targets fix the dtype; image targets are uint8, their probabilities any float.
        self.dtype = sample.dtype if sample.is_floating_point() else None

    def expected(self, images: Tensor) -> tuple[int, ...]:
        """The shape every field of the prediction for ``images`` (B, T, ...) must have."""
        return (int(images.shape[0]), int(images.shape[1]), *self.trailing)

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        images = args[0] if args else kwargs.get("images")
        if images is None:
            return
        shape = self.expected(images)
        fields = " and ".join(self.kind._fields)
        wanted = f"a {self.kind.__name__} with {fields} of shape {shape}"
        if not isinstance(output, self.kind):
            raise PredictionError(
                f"model {self.name} returned {_describe(output)}; expected {wanted} (the "
                f"targets' shape for {shape[0]} sequences of {shape[1]} steps; {CONTRACT})")
        for field, value in output._asdict().items():
            if not isinstance(value, Tensor) or tuple(value.shape) != shape:
                raise PredictionError(
                    f"model {self.name} returned {field} {_describe(value)}; expected {wanted} "
                    f"(the targets' shape for {shape[0]} sequences of {shape[1]} steps: one "
                    f"prediction per step and target value; {CONTRACT})")
            if not value.is_floating_point() or (self.dtype is not None
                                                 and value.dtype != self.dtype):
                dtype = str(self.dtype or "a floating-point dtype").replace("torch.", "")
                raise PredictionError(
                    f"model {self.name} returned {field} {_describe(value)}; expected {dtype}, "
                    f"the targets' dtype ({CONTRACT})")
        if torch.is_grad_enabled():
            return  # training: the loop checks the loss; a check here would wait for the device
        bad = [f"{field}: {int((~torch.isfinite(v)).sum())} of {v.numel()}"
               for field, v in output._asdict().items() if not bool(torch.isfinite(v).all())]
        if bad:
            raise BadResultError(f"model {self.name} returned non-finite predictions "
                                 f"({'; '.join(bad)} values NaN or infinite); {FIX_HINT}")


def attach_prediction_check(model: nn.Module, name: str,
                            targets: np.ndarray | Tensor) -> torch.utils.hooks.RemovableHandle:
    """Check every prediction of ``model`` against ``targets`` (see ``PredictionCheck``).

    Returns the hook's handle (``.remove()`` detaches it).
    """
    return model.register_forward_hook(PredictionCheck(name, targets), with_kwargs=True)

"""One training loop and one evaluation for every model (no per-model branches).

A seeded batch order, the step of ``harness.step`` (Adam with gradient clipping), model selection
on a validation split carved from the training data, checkpoints (``harness.checkpoint``), and a
single evaluation of the selected model on the test split.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from harness import checkpoint, metrics, step
from harness.settings import TrainConfig
from harness.step import (FIX_HINT, BadResultError, NonFiniteLossError, Split, batch_loss,
                          clip_gradients, train_step)
from rkn import losses
from rkn.interface import BernoulliPrediction, GaussianPrediction, SequenceModel, WindowsNotSupported

log = logging.getLogger(__name__)

__all__ = ["BadResultError", "FitResult", "NonFiniteLossError", "Split", "TrainConfig",
           "batch_loss", "clip_gradients", "evaluate", "fit", "mean_loss", "predict_split",
           "split_train_val", "to_tensors", "train_step"]


@dataclass
class FitResult:
    """What training produced: per-epoch history rows, the selected model's epoch, and the epoch
    at which early stopping ended training (None: it ran all its epochs or early stopping is
    off)."""

    history: list[dict[str, float]] = field(default_factory=list)
    selected_epoch: int = 0
    stopped_epoch: int | None = None

    def to_plain(self) -> dict:
        """Plain data for a checkpoint (``harness.checkpoint`` stores no classes)."""
        return {"history": [dict(row) for row in self.history],
                "selected_epoch": self.selected_epoch, "stopped_epoch": self.stopped_epoch}

    @classmethod
    def from_plain(cls, plain: dict) -> FitResult:
        """The inverse of ``to_plain``."""
        return cls(history=[dict(row) for row in plain["history"]],
                   selected_epoch=plain["selected_epoch"], stopped_epoch=plain["stopped_epoch"])


def early_stop_due(val_losses: list[float], patience: int, min_delta: float) -> bool:
    """Whether training stops after the last of ``val_losses`` (one per epoch, in order).

    It stops when the last ``patience`` epochs brought no validation loss below the best one
    before them by more than ``min_delta``: with b the epoch of the best loss counted only where
    it improved on the previous best by more than min_delta, stop when (last epoch - b) >=
    patience. patience 0 never stops. A pure function of the history, so a resumed run decides
    exactly as an uninterrupted one.
    """
    if patience <= 0 or not val_losses:
        return False
    best, best_index = math.inf, 0
    for index, value in enumerate(val_losses):
        if value < best - min_delta:
            best, best_index = value, index
    return len(val_losses) - 1 - best_index >= patience


def to_tensors(arrays: dict[str, np.ndarray], device: torch.device) -> Split:
    """Move a split's arrays (images, targets, optional obs_valid) to ``device`` as tensors."""
    out = {}
    for key in ("images", "targets", "obs_valid"):
        if key in arrays:
            value = torch.from_numpy(np.ascontiguousarray(arrays[key]))
            if value.dtype == torch.float64:
                value = value.float()
            out[key] = value.to(device)
    return out


def split_train_val(split: dict[str, np.ndarray], val_fraction: float) -> tuple[dict, dict]:
    """Hold out the last ceil(val_fraction * N) training sequences (the same for every model)."""
    num = len(split["images"])
    num_val = max(1, math.ceil(val_fraction * num))
    if num_val >= num:
        raise ValueError(f"{num} training sequences are too few for a validation split of {val_fraction}")
    cut = num - num_val
    return {k: v[:cut] for k, v in split.items()}, {k: v[cut:] for k, v in split.items()}


@torch.no_grad()
def mean_loss(model: nn.Module, split: Split, batch_size: int) -> float:
    """Average per-step loss over a split, evaluated in batches."""
    model.eval()
    total, count = 0.0, 0
    num = len(split["images"])
    for start in range(0, num, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in split.items()}
        pred = model(batch["images"], batch.get("obs_valid"))
        steps = losses.per_step_loss(pred, batch["targets"])
        total += float(steps.sum())
        count += steps.numel()
    return total / count


@dataclass
class LoopState:
    """Where training stands: what a checkpoint saves besides model, optimizer and RNG states.

    ``order`` is the batch order of the epoch in progress (None between epochs), ``step`` the
    number of its batches already done and ``losses`` their losses.
    """

    epoch: int = 1
    step: int = 0
    order: Tensor | None = None
    losses: list[float] = field(default_factory=list)
    result: FitResult = field(default_factory=FitResult)
    best_val: float = math.inf
    best_state: dict | None = None

    def to_plain(self) -> dict:
        """Tensors and plain data for a checkpoint (the tensors themselves, not copies)."""
        return {"epoch": self.epoch, "step": self.step, "order": self.order,
                "losses": list(self.losses), "result": self.result.to_plain(),
                "best_val": self.best_val, "best_state": self.best_state}

    @classmethod
    def from_plain(cls, plain: dict) -> LoopState:
        """The inverse of ``to_plain``."""
        return cls(epoch=plain["epoch"], step=plain["step"], order=plain["order"],
                   losses=list(plain["losses"]), result=FitResult.from_plain(plain["result"]),
                   best_val=plain["best_val"], best_state=plain["best_state"])


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer, order_gen: torch.Generator,
              state: LoopState) -> dict:
    """Everything a checkpoint needs to continue exactly from here."""
    return {"phase": "training", "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "rng": checkpoint.rng_states(order_gen), "loop": state.to_plain()}


def fit(
    model: SequenceModel,
    train: Split,
    val: Split,
    config: TrainConfig,
    *,
    batch_order_seed: int,
    progress: Callable[[int, int], None] | None = None,
    checkpointer: checkpoint.Checkpointer | None = None,
    resume: dict | None = None,
) -> FitResult:
    """Train ``model`` in place and leave it holding the selected epoch's weights.

    Args:
        model: any model of the common interface, already on the data's device.
        train, val: splits from ``to_tensors``.
        config: optimisation settings.
        batch_order_seed: seeds the per-epoch shuffling (one stream, independent of init).
        progress: optional callback ``(epoch, epochs)`` after each epoch (progress bars).
        checkpointer: writes a checkpoint after the batch at which one is due, between batches
            (with truncated BPTT after the batch's last window, so no window state is ever
            saved; ``harness.checkpoint``); None: no checkpoints.
        resume: a training checkpoint's state (``Checkpointer.load``) to continue from.

    Raises:
        NonFiniteLossError: when a batch loss is NaN or infinite.
        BadResultError: when a validation loss is NaN or infinite.
        harness.checkpoint.RunInterrupted: a stop was requested; the checkpoint is written.
        rkn.interface.WindowsNotSupported: ``config.bptt_length`` > 0 and the model cannot train
            on windows (checked before the first step).
    """
    if config.bptt_length > 0 and not model.supports_windows():
        raise WindowsNotSupported(type(model).__name__)
    device = train["images"].device
    optimizer = step.make_optimizer(model, config, device)
    order_gen = torch.Generator().manual_seed(batch_order_seed)
    num = len(train["images"])
    state = LoopState()
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        checkpoint.restore_rng_states(resume["rng"], order_gen)
        state = LoopState.from_plain(resume["loop"])
    train_on = step.build_step(model, optimizer, config,
                               {k: v[: config.batch_size] for k, v in train.items()})
    drop_ragged = step.drops_ragged_batches(config) and num > config.batch_size
    while state.epoch <= config.epochs:
        epoch, start = state.epoch, time.perf_counter()
        if state.order is None:
            state.order = torch.randperm(num, generator=order_gen).to(train["images"].device)
        model.train()
        for first in range(state.step * config.batch_size, num, config.batch_size):
            idx = state.order[first : first + config.batch_size]
            state.step += 1
            if drop_ragged and len(idx) < config.batch_size:
                continue  # a CUDA graph has one batch shape (harness.step)
            try:
                loss = train_on({k: v[idx] for k, v in train.items()})
            except NonFiniteLossError as err:
                raise NonFiniteLossError(f"epoch {epoch}, batch {first // config.batch_size}: "
                                         f"{err}") from None
            state.losses.append(loss)  # on the device: read once per epoch, not per step
            if checkpointer is not None and checkpointer.due():
                checkpointer.save(_snapshot(model, optimizer, order_gen, state),
                                  f"epoch {epoch}, step {state.step}")
                if checkpointer.stop_requested:
                    raise checkpoint.RunInterrupted(
                        f"stopped by signal {checkpointer.stop_signal} at epoch {epoch}, step "
                        f"{state.step}; checkpoint {checkpointer.path}")
        train_losses = [float(loss) for loss in state.losses]
        if not all(map(math.isfinite, train_losses)):
            raise NonFiniteLossError(f"training loss became non-finite in epoch {epoch}: "
                                     f"{FIX_HINT}")
        val_loss = mean_loss(model, val, config.eval_batch_size)
        if not math.isfinite(val_loss):
            raise BadResultError(
                f"validation loss is {val_loss} at epoch {epoch}: the predictions on the "
                f"validation split (the last {len(val['images'])} training sequences) are not "
                f"finite; {FIX_HINT}")
        row = {"epoch": epoch, "train_loss": float(np.mean(train_losses)), "val_loss": val_loss,
               "seconds": time.perf_counter() - start}
        state.result.history.append(row)
        log.info("epoch %d/%d train_loss %.4f val_loss %.4f", epoch, config.epochs,
                 row["train_loss"], val_loss)
        if config.model_selection == "final" or val_loss < state.best_val:
            state.best_val, state.result.selected_epoch = val_loss, epoch
            state.best_state = copy.deepcopy(model.state_dict())
        state.epoch, state.step, state.order, state.losses = epoch + 1, 0, None, []
        if progress is not None:
            progress(epoch, config.epochs)
        if early_stop_due([r["val_loss"] for r in state.result.history],
                          config.early_stopping_patience, config.early_stopping_min_delta):
            state.result.stopped_epoch = epoch
            log.info("early stopping at epoch %d: no validation improvement above %g for %d "
                     "epochs (selected epoch %d)", epoch, config.early_stopping_min_delta,
                     config.early_stopping_patience, state.result.selected_epoch)
            break
    model.load_state_dict(state.best_state)
    return state.result


@torch.no_grad()
def predict_split(model: nn.Module, split: Split, batch_size: int) -> dict[str, np.ndarray]:
    """Predictions for a whole split as float64 numpy: {mean, var} or {probs}."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(split["images"]), batch_size):
        pred = model(split["images"][start : start + batch_size],
                     None if "obs_valid" not in split else split["obs_valid"][start : start + batch_size])
        for name, value in pred._asdict().items():
            parts.setdefault(name, []).append(value.double().cpu().numpy())
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def evaluate(model: nn.Module, split: Split, batch_size: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Test metrics of ``model`` on ``split`` and the arrays behind the calibration plot.

    Returns (metrics, extras): extras holds the calibration histogram (``hist_edges``,
    ``hist_density``) for Gaussian models and the predictions themselves.

    Raises:
        BadResultError: a prediction is non-finite or degenerate (a variance <= 0, a probability
            outside [0, 1]) or a metric is non-finite; the message says which and how many.
    """
    preds = predict_split(model, split, batch_size)
    problems = metrics.degenerate_predictions(preds)
    if problems:
        raise BadResultError(f"the test predictions are degenerate ({'; '.join(problems)}); "
                             f"{FIX_HINT}")
    targets = split["targets"].cpu().numpy()
    extras: dict[str, np.ndarray] = dict(preds)
    if set(preds) == set(GaussianPrediction._fields):
        result = metrics.gaussian_metrics(preds["mean"], preds["var"], targets.astype(np.float64))
        edges, density = metrics.calibration_histogram(
            metrics.normalised_errors(preds["mean"], preds["var"], targets.astype(np.float64)))
        extras.update(hist_edges=edges, hist_density=density)
    elif set(preds) == set(BernoulliPrediction._fields):
        valid = split["obs_valid"].cpu().numpy() if "obs_valid" in split else None
        result = metrics.bce_metrics(preds["probs"], targets, valid)
    else:
        raise TypeError(f"unexpected prediction fields {sorted(preds)}")
    bad = sorted(k for k, v in result.items() if not math.isfinite(v))
    if bad:
        raise BadResultError(f"test metrics {', '.join(f'{k}={result[k]}' for k in bad)} are not "
                             f"finite; {FIX_HINT}")
    return result, extras

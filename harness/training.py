"""One training loop and one evaluation for every model (no per-model branches).

Adam with gradient clipping, a seeded batch order, model selection on a validation split carved
from the training data, and a single evaluation of the selected model on the test split.
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

from harness import checkpoint, metrics
from rkn import losses
from rkn.interface import (BernoulliPrediction, GaussianPrediction, SequenceModel,
                           WindowState, WindowsNotSupported, detach_state)

log = logging.getLogger(__name__)

CLIP_MODES = ("per_tensor", "global", "none")
SELECTION_RULES = ("best_val", "final")
# training.compile: the eager step (reference), the per-time-step function compiled, or the whole
# step captured in a CUDA graph (harness.fast_step).
COMPILE_MODES = ("none", "inductor", "graph")


# What to change when a run produces numbers that must not be published.
FIX_HINT = ("lower training.learning_rate or clip harder (training.clip_mode / clip_value), and "
            "check the dataset for corrupt values")


class BadResultError(RuntimeError):
    """The run produced a number a benchmark must not publish (non-finite or degenerate)."""


class NonFiniteLossError(BadResultError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (paper.md §1.10; defaults follow TF-master E1)."""

    epochs: int = 500
    batch_size: int = 50
    learning_rate: float = 1e-3
    # Keras' Adam epsilon; PyTorch's default is 1e-8 (paper.md §1.10).
    adam_eps: float = 1e-7
    # per_tensor: clip each gradient tensor's norm separately (Keras clipnorm, TF-master);
    # global: one norm over all gradients (TF-icml); none: no clipping (PyTorch port).
    clip_mode: str = "per_tensor"
    clip_value: float = 5.0
    # Fraction of the training sequences held out (the last ones) for model selection.
    val_fraction: float = 0.1
    # best_val: keep the epoch with the lowest validation loss; final: the last epoch.
    model_selection: str = "best_val"
    eval_batch_size: int = 100
    # Minutes between training checkpoints (0: none; SIGTERM/SIGINT still write one). Not part of
    # a run's identity: changing it neither renames run folders nor refuses a checkpoint.
    checkpoint_minutes: float = 10.0
    # How the training step runs (harness.fast_step): none (eager, the reference and the CPU
    # default), inductor (torch.compile of the per-time-step function), graph (CUDA graph).
    compile: str = "none"
    # Truncated back-propagation through time (TF-icml, paper.md §1.10): 0 back-propagates through
    # whole sequences; L > 0 cuts each batch into consecutive windows of L steps (the last may be
    # shorter), each starting from the state the model reached at the end of the previous one,
    # passed on detached, with one optimiser step per window.
    bptt_length: int = 0

    def __post_init__(self) -> None:
        if self.clip_mode not in CLIP_MODES:
            raise ValueError(f"clip_mode {self.clip_mode!r} is not one of {CLIP_MODES}")
        if self.model_selection not in SELECTION_RULES:
            raise ValueError(f"model_selection {self.model_selection!r} is not one of {SELECTION_RULES}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be at least 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile {self.compile!r} is not one of {COMPILE_MODES}")
        if self.checkpoint_minutes < 0:
            raise ValueError(f"checkpoint_minutes must be >= 0, got {self.checkpoint_minutes}")
        if self.bptt_length < 0:
            raise ValueError(f"bptt_length must be >= 0 (0: whole sequences), "
                             f"got {self.bptt_length}")


@dataclass
class FitResult:
    """What training produced: per-epoch history rows and the selected model's epoch."""

    history: list[dict[str, float]] = field(default_factory=list)
    selected_epoch: int = 0


Split = dict[str, Tensor]


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


def batch_loss(model: SequenceModel, batch: Split) -> Tensor:
    """The scalar to minimise for one batch: ``model.training_loss`` (by default the mean per-step
    loss of its predictions; generative baselines return minus their ELBO)."""
    return model.training_loss(batch["images"], batch.get("obs_valid"), batch["targets"])


def train_step(model: SequenceModel, batch: Split, optimizer: torch.optim.Optimizer,
               config: TrainConfig) -> Tensor:
    """Optimise on one batch: one step (``batch_loss``, backward, gradient clipping, Adam), or,
    with ``config.bptt_length`` L > 0, one such step per window of L steps (truncated BPTT).

    Windows: the batch's sequences are cut into consecutive windows of L steps (the last may be
    shorter); each window's loss is ``model.training_loss_window``, starting from the state the
    model returned for the previous window, detached (``rkn.interface.detach_state``), so the
    forward state crosses a window boundary and gradients do not. A window as long as the
    sequences or longer runs the same operations as L = 0.

    Returns the loss, detached (a 0-dim tensor on the model's device): with windows their mean
    weighted by their numbers of steps, i.e. the per-step mean over the batch as for L = 0.

    Raises:
        NonFiniteLossError: a loss is NaN or infinite (checked before its gradient is applied).
        rkn.interface.WindowsNotSupported: L > 0 for a model without windows.
    """
    if config.bptt_length == 0:
        loss = batch_loss(model, batch)
        _optimise(model, loss, optimizer, config)
        return loss.detach()
    steps = batch["images"].shape[1]
    state: WindowState = None
    losses, lengths = [], []
    for start in range(0, steps, config.bptt_length):
        window = {k: v[:, start : start + config.bptt_length] for k, v in batch.items()}
        loss, state = model.training_loss_window(window["images"], window.get("obs_valid"),
                                                 window["targets"], state)
        length = window["images"].shape[1]
        try:
            _optimise(model, loss, optimizer, config)
        except NonFiniteLossError as err:
            raise NonFiniteLossError(f"window of steps {start + 1}-{start + length}: "
                                     f"{err}") from None
        state = detach_state(state)  # the next window continues from here without a gradient path
        losses.append(loss.detach())
        lengths.append(length)
    if len(losses) == 1:
        return losses[0]
    return sum(loss * length for loss, length in zip(losses, lengths)) / steps


def _optimise(model: nn.Module, loss: Tensor, optimizer: torch.optim.Optimizer,
              config: TrainConfig) -> None:
    """backward, clipping and one Adam step on ``loss``; NonFiniteLossError before any of them
    when the loss is NaN or infinite."""
    if not torch.isfinite(loss):
        raise NonFiniteLossError(f"training loss became {float(loss.detach())}: {FIX_HINT}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_gradients(model, config.clip_mode, config.clip_value)
    optimizer.step()


def clip_gradients(model: nn.Module, mode: str, value: float) -> None:
    """Clip gradients per tensor (Keras clipnorm), globally, or not at all."""
    if mode == "global":
        nn.utils.clip_grad_norm_(model.parameters(), value)
    elif mode == "per_tensor":
        for param in model.parameters():
            if param.grad is not None:
                nn.utils.clip_grad_norm_([param], value)


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


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer, order_gen: torch.Generator,
              state: LoopState) -> dict:
    """Everything a checkpoint needs to continue exactly from here."""
    return {"phase": "training", "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "rng": checkpoint.rng_states(order_gen), "loop": state}


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
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=config.adam_eps)
    order_gen = torch.Generator().manual_seed(batch_order_seed)
    num = len(train["images"])
    state = LoopState()
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        checkpoint.restore_rng_states(resume["rng"], order_gen)
        state = resume["loop"]
    while state.epoch <= config.epochs:
        epoch, start = state.epoch, time.perf_counter()
        if state.order is None:
            state.order = torch.randperm(num, generator=order_gen).to(train["images"].device)
        model.train()
        for first in range(state.step * config.batch_size, num, config.batch_size):
            idx = state.order[first : first + config.batch_size]
            try:
                loss = train_step(model, {k: v[idx] for k, v in train.items()}, optimizer, config)
            except NonFiniteLossError as err:
                raise NonFiniteLossError(f"epoch {epoch}, batch {first // config.batch_size}: "
                                         f"{err}") from None
            state.losses.append(float(loss))
            state.step += 1
            if checkpointer is not None and checkpointer.due():
                checkpointer.save(_snapshot(model, optimizer, order_gen, state),
                                  f"epoch {epoch}, step {state.step}")
                if checkpointer.stop_requested:
                    raise checkpoint.RunInterrupted(
                        f"stopped by signal {checkpointer.stop_signal} at epoch {epoch}, step "
                        f"{state.step}; checkpoint {checkpointer.path}")
        val_loss = mean_loss(model, val, config.eval_batch_size)
        if not math.isfinite(val_loss):
            raise BadResultError(
                f"validation loss is {val_loss} at epoch {epoch}: the predictions on the "
                f"validation split (the last {len(val['images'])} training sequences) are not "
                f"finite; {FIX_HINT}")
        row = {"epoch": epoch, "train_loss": float(np.mean(state.losses)), "val_loss": val_loss,
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

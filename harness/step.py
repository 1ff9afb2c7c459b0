"""One optimisation step on one batch, eager or without per-kernel launch overhead.

``train_step`` is the eager step and the reference: loss, backward, gradient clipping, Adam (or
one such step per window with truncated BPTT). ``build_step`` returns the step of the config's
``training.compile`` mode:

- ``none`` (default): ``train_step``.
- ``inductor``: the model's per-time-step function compiled with ``torch.compile``
  (``SequenceModel.compile_steps``: the RKN cells; LSTM/GRU already run one fused kernel per
  sequence; the generative baselines stay eager). The unrolled time loop is not compiled (hundreds
  of seconds of compile time and no gain, measured); compile time counts in a run's cost.
- ``graph`` (CUDA only): the whole step (forward, backward, clipping, Adam) captured once in a
  CUDA graph and replayed for every batch: one launch per step. Shapes must be static, so the loop
  drops the ragged last batch of an epoch (``drops_ragged_batches``); Adam is capturable, and the
  losses stay on the device until the loop reads and checks them once per epoch
  (``harness.training.fit``), so nothing waits for the host inside an epoch.

An RKN step is launch-bound on a GPU: 75 sequential filter steps of tiny kernels (README, "Paper
scale on one GPU"). Every mode computes the eager step's function within floating-point tolerance
(``tests/harness/test_step.py``; ``graph`` is tested where a GPU is present).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import torch
from torch import Tensor, nn

from harness.settings import TrainConfig
from rkn.interface import SequenceModel, WindowState, detach_state

log = logging.getLogger(__name__)

Split = dict[str, Tensor]

# What to change when a run produces numbers that must not be published.
FIX_HINT = ("lower training.learning_rate or clip harder (training.clip_mode / clip_value), and "
            "check the dataset for corrupt values")


class BadResultError(RuntimeError):
    """The run produced a number a benchmark must not publish (non-finite or degenerate)."""


class NonFiniteLossError(BadResultError):
    """The training loss became NaN or infinite."""


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


StepFn = Callable[[Split], Tensor]


def drops_ragged_batches(config: TrainConfig) -> bool:
    """A CUDA graph replays one batch shape: the loop leaves out the smaller last batch."""
    return config.compile == "graph"


class StepModeError(ValueError):
    """``training.compile`` cannot be used here (e.g. ``graph`` without a CUDA device)."""


def make_optimizer(model: SequenceModel, config: TrainConfig,
                   device: torch.device) -> torch.optim.Adam:
    """Adam with the config's settings: the fused kernel on CUDA (one launch for all parameters),
    capturable for ``graph``; PyTorch's default implementation on the CPU (the eager reference)."""
    options = {}
    if device.type == "cuda":
        options = ({"capturable": True, "foreach": True} if config.compile == "graph"
                   else {"fused": True})
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=config.adam_eps,
                            **options)


def build_step(model: SequenceModel, optimizer: torch.optim.Optimizer, config: TrainConfig,
               example: Split) -> StepFn:
    """The training step of ``config.compile``: a function batch -> loss (0-dim, on device).

    Args:
        model, optimizer: as used by ``harness.training.fit``.
        config: the training settings (``compile`` selects the mode).
        example: a full-size batch (the graph is captured with its shapes).

    Raises:
        StepModeError: ``graph`` without CUDA, or with truncated BPTT.
    """
    if config.compile == "none":
        return lambda batch: train_step(model, batch, optimizer, config)
    if config.compile == "graph" and config.bptt_length > 0:
        raise StepModeError("training.compile: graph captures one whole-sequence step; it cannot "
                            "run truncated BPTT (training.bptt_length > 0): use inductor or none")
    if config.compile == "inductor":
        model.compile_steps()
        return lambda batch: train_step(model, batch, optimizer, config)
    device = next(model.parameters()).device
    if device.type != "cuda":
        raise StepModeError("training.compile: graph needs a CUDA device (it captures the step "
                            "in a CUDA graph); use inductor or none on the CPU")
    return GraphStep(model, optimizer, config, example)


class GraphStep:
    """The whole training step captured in one CUDA graph; ``__call__(batch)`` replays it.

    Capture needs a few warm-up steps, which would change the model: parameters and optimizer
    state are saved before and written back (in place, so the graph's memory stays valid) after.
    The loss is not checked here (that would wait for the host): ``harness.training.fit`` checks
    an epoch's losses once, at its end.
    """

    def __init__(self, model: SequenceModel, optimizer: torch.optim.Optimizer,
                 config: TrainConfig, example: Split) -> None:
        self.model, self.optimizer, self.config = model, optimizer, config
        self.static = {k: v.clone() for k, v in example.items()}
        saved_model = copy.deepcopy(model.state_dict())
        saved_optim = copy.deepcopy(optimizer.state_dict())
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up on a side stream, as capture requires
            for _ in range(3):
                self._step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.loss = self._step()
        self._restore(saved_model, saved_optim)
        log.info("captured the training step in a CUDA graph (batch %d)",
                 len(self.static["images"]))

    def _step(self) -> Tensor:
        model, optimizer, config = self.model, self.optimizer, self.config
        loss = model.training_loss(self.static["images"], self.static.get("obs_valid"),
                                   self.static["targets"])
        loss.backward()
        clip_gradients(model, config.clip_mode, config.clip_value)
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)  # gradients stay in the graph's memory
        return loss.detach()

    @torch.no_grad()
    def _restore(self, saved_model: dict, saved_optim: dict) -> None:
        for name, value in self.model.state_dict().items():
            value.copy_(saved_model[name])
        saved_state = saved_optim["state"]
        for index, param in enumerate(p for g in self.optimizer.param_groups for p in g["params"]):
            for key, value in self.optimizer.state[param].items():
                if torch.is_tensor(value):
                    value.copy_(saved_state[index][key]) if index in saved_state else value.zero_()

    def __call__(self, batch: Split) -> Tensor:
        if len(batch["images"]) != len(self.static["images"]):
            raise StepModeError("a CUDA graph replays one batch size; drop the ragged batch")
        for key, value in batch.items():
            self.static[key].copy_(value)
        self.graph.replay()
        return self.loss.clone()

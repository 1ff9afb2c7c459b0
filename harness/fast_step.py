"""The training step on a GPU without per-kernel launch overhead: ``training.compile``.

An RKN training step is launch-bound on a GPU: 75 sequential filter steps of tiny kernels, so the
GPU waits on the CPU launching them (README, "Paper scale on one GPU"). Three modes:

- ``none`` (default, and the reference): ``harness.training.train_step``, eager.
- ``inductor``: the model's per-time-step function is compiled with ``torch.compile``
  (``SequenceModel.compile_steps``: the RKN cells; LSTM/GRU already run one fused kernel per
  sequence; the generative baselines stay eager). The unrolled 75-step loop is not compiled
  (hundreds of seconds of compile time and no gain, measured); compile time counts in a run's
  cost. Works on the CPU too.
- ``graph`` (CUDA only): the whole step (forward, backward, clipping, Adam) is captured once in a
  CUDA graph and replayed for every batch: one launch per step. Shapes must be static, so the
  ragged last batch of an epoch is dropped (its sequences are seen in other epochs, in other
  batches of the seeded order). Adam runs with ``capturable=True`` and clipping with foreach
  kernels, so nothing synchronises with the host inside the step.

Every mode computes the same function as the eager step within floating-point tolerance
(``tests/harness/test_fast_step.py``); ``graph`` is tested where a GPU is present only.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import torch
from torch import Tensor

from harness.training import Split, TrainConfig, clip_gradients, train_step
from rkn.interface import SequenceModel

log = logging.getLogger(__name__)

MODES = ("none", "inductor", "graph")
StepFn = Callable[[Split], Tensor]


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
        StepModeError: ``graph`` without CUDA.
    """
    if config.compile == "none":
        return lambda batch: train_step(model, batch, optimizer, config)
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
    The loss is checked on the device: a non-finite loss sets a flag read once per epoch
    (``nonfinite``), so no step waits for the host.
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
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=self.loss.device)
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
        self.nonfinite |= ~torch.isfinite(self.loss)
        return self.loss.clone()

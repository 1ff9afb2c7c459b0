"""Claim 7 (efficiency) measurements: parameters, time and memory of the recurrent core against m.

For each model of the config's ``efficiency`` section and each latent size m of it, the model is
built from its entry of the ``models`` section with ``latent_obs_dim = m`` and its recurrent core
is measured on random inputs of ``batch_size`` sequences of ``seq_len`` steps
(docs/experiments.md#headline-claims, claim 7; no training, no data):

- ``n_params``: trained parameters of the core, exact. The RKN's core is its Kalman cell
  (``.cell``: transition basis band entries, coefficient net, transition noise; the entries
  outside the band are stored but never trained and not counted, as in the ``n_params`` metric);
  an LSTM's or GRU's is its torch recurrent layer (``.rnn``). Encoder and decoders are left out:
  they do not depend on the filter.
- ``forward_ms`` / ``forward_backward_ms``: median over ``repeats`` calls (after ``warmup``
  calls) of one pass over the whole sequence, without / with the backward pass of the summed
  outputs, divided by ``seq_len``: milliseconds per filter step on the device of the run.
- ``peak_memory_mib``: peak of allocated memory during one forward+backward pass above what was
  allocated before it, in MiB. CUDA: ``torch.cuda.max_memory_allocated``. CPU: the CPU
  allocator's running total of allocated bytes, which the torch profiler records with each
  allocation (``profile_memory``); None when this torch build does not expose it.

Library code: returns the measurements, the script writes them (workflow/scripts/efficiency.py).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from harness.registry import build_configured
from rkn.cell import RKNCell
from rkn.interface import SequenceModel

log = logging.getLogger(__name__)

MIB = 2**20
# A fixed seed for the weights and inputs: parameter counts do not depend on it, timings barely.
SEED = 0


def recurrent_core(model: SequenceModel, name: str) -> nn.Module:
    """The part of ``model`` that carries the state from step to step
    (``SequenceModel.recurrent_core``).

    Raises:
        ValueError: the model has no core this module can measure (an RKN cell or a torch
            LSTM/GRU layer).
    """
    core = model.recurrent_core()
    if isinstance(core, (RKNCell, nn.RNNBase)):
        return core
    raise ValueError(f"efficiency.models: model {name!r} ({type(model).__name__}) has no recurrent "
                     "core to measure (SequenceModel.recurrent_core: an RKN cell or a torch "
                     "LSTM/GRU layer)")


def core_parameters(core: nn.Module) -> int:
    """Trained parameters of a core; band-masked RKN transition entries are not counted."""
    count = sum(p.numel() for p in core.parameters() if p.requires_grad)
    return count - core.transition.num_masked() if isinstance(core, RKNCell) else count


def core_inputs(core: nn.Module, batch: int, steps: int,
                device: torch.device) -> tuple[Tensor, ...]:
    """Random inputs of a core: RKN cell (w, sigma^obs), each (B, T, m); LSTM/GRU x (B, T, in)."""
    gen = torch.Generator().manual_seed(SEED)
    if isinstance(core, RKNCell):
        shape = (batch, steps, core.latent_obs_dim)
        # Observation variances in [0.5, 1.5): positive, as the encoder's elu+1 gives.
        return (torch.randn(shape, generator=gen).to(device),
                (0.5 + torch.rand(shape, generator=gen)).to(device))
    return (torch.randn(batch, steps, core.input_size, generator=gen).to(device),)


def _summed_output(output: Any) -> Tensor:
    """Sum of every tensor a core returns (the RKN cell: mean and covariance parts; LSTM: out)."""
    if isinstance(output, Tensor):
        return output.sum()
    return sum(_summed_output(part) for part in output if part is not None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(call: Callable[[], None], repeats: int, warmup: int, device: torch.device) -> float:
    """Median wall time of ``call`` in milliseconds over ``repeats`` calls after ``warmup``."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        call()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def _profiled_cpu_peak(prof: torch.profiler.profile) -> int | None:
    """Peak of the CPU allocator's total allocated bytes during a profiled call, above its start.

    Reads the allocation events of the profiler's event tree (``total_allocated`` is the
    allocator's running total after each allocation or free); None when unavailable.
    """
    try:
        from torch._C._profiler import _EventType  # not public API: guarded

        allocations: list[tuple[int, int, int]] = []
        stack = list(prof.profiler.kineto_results.experimental_event_tree())
        while stack:
            node = stack.pop()
            if node.tag == _EventType.Allocation:
                fields = node.extra_fields
                allocations.append((node.start_time_ns, fields.alloc_size,
                                    fields.total_allocated))
            stack.extend(node.children)
    except (AttributeError, ImportError, RuntimeError) as err:
        log.warning("CPU peak memory unavailable in this torch build: %s", err)
        return None
    if not allocations:
        return 0
    allocations.sort()
    start = allocations[0][2] - allocations[0][1]  # total before the first allocation
    return max(total for *_, total in allocations) - start


def peak_bytes(call: Callable[[], None], device: torch.device) -> int | None:
    """Peak allocated memory of one ``call`` above what was allocated before it (see module)."""
    if device.type == "cuda":
        _sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        call()
    return _profiled_cpu_peak(prof)


def measure_core(core: nn.Module, settings: dict, device: torch.device) -> dict[str, Any]:
    """n_params, forward_ms, forward_backward_ms (per step) and peak_memory_mib of one core."""
    steps = settings["seq_len"]
    inputs = core_inputs(core, settings["batch_size"], steps, device)

    def forward() -> None:
        with torch.no_grad():
            core(*inputs)

    def forward_backward() -> None:
        core.zero_grad(set_to_none=True)
        _summed_output(core(*inputs)).backward()

    timing = {"repeats": settings["repeats"], "warmup": settings["warmup"], "device": device}
    peak = peak_bytes(forward_backward, device)
    return {"n_params": core_parameters(core),
            "forward_ms": median_ms(forward, **timing) / steps,
            "forward_backward_ms": median_ms(forward_backward, **timing) / steps,
            "peak_memory_mib": None if peak is None else peak / MIB}


def measure(config: dict, device: torch.device) -> dict[str, Any]:
    """Every (model, latent size) of the config's ``efficiency`` section, measured on ``device``.

    Returns:
        {"settings": the section, "device": "cpu" | "cuda:0", "device_name", "torch", "threads",
        "rows": [{"model", "class", "latent_obs_dim", "n_params", "forward_ms",
        "forward_backward_ms", "peak_memory_mib"}, ...]} in config order (models, then sizes).

    Raises:
        KeyError: ``config`` has no efficiency section.
        ValueError: a model has no measurable core (``recurrent_core``) or refuses a size.
    """
    settings = config["efficiency"]
    rows = []
    for name in settings["models"]:
        for size in settings["latent_sizes"]:
            torch.manual_seed(SEED)
            model = build_configured(config, name, {"latent_obs_dim": size}).to(device)
            row = {"model": name, "class": config["models"][name]["class"],
                   "latent_obs_dim": size,
                   **measure_core(recurrent_core(model, name), settings, device)}
            log.info("%s m=%d: %s", name, size, {k: row[k] for k in list(row)[3:]})
            rows.append(row)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"settings": settings, "device": str(device), "device_name": name,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}

"""Training checkpoints: written periodically and on SIGTERM/SIGINT, resumed by the same command.

A checkpoint holds everything the rest of a run depends on: model and optimizer state, every
random generator state (torch CPU and CUDA, the batch-order generator, numpy's), the epoch, the
step within it and that epoch's batch order, the history so far and the best-so-far model for
selection. It lives beside the run folder (``.{run name}.ckpt``, never inside a finished run
folder), is written atomically, and is removed when the run completes. It is refused, never
mixed, when the run's settings or the code that trains it differ from those that wrote it.

On the CPU a resumed run is bit-identical to an uninterrupted one (deterministic algorithms, the
same thread count); on a GPU resumed runs agree within floating-point tolerance only (README).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.io import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# The packages whose code decides a run's numbers (the code version a checkpoint must match).
CODE_PACKAGES = ("rkn", "baselines", "datasets", "harness")


class CheckpointError(ValueError):
    """A checkpoint does not belong to this run (other settings or other code)."""


class RunInterrupted(RuntimeError):
    """SIGTERM or SIGINT stopped the run after its checkpoint was written."""


def checkpoint_path(run_dir: str | os.PathLike[str]) -> Path:
    """``{parent}/.{run name}.ckpt``: beside the run folder, derived from the run id."""
    run_dir = Path(run_dir)
    return run_dir.with_name(f".{run_dir.name}.ckpt")


@cache
def code_fingerprint() -> str:
    """sha256 (16 hex digits) of the source files of ``CODE_PACKAGES``, in path order."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def rng_states(order_gen: torch.Generator) -> dict[str, Any]:
    """Every random state the rest of a run depends on."""
    states = {"torch": torch.get_rng_state(), "order": order_gen.get_state(),
              "numpy": np.random.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], order_gen: torch.Generator) -> None:
    """Set the random states saved by ``rng_states``."""
    torch.set_rng_state(states["torch"])
    order_gen.set_state(states["order"])
    np.random.set_state(states["numpy"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])


class Checkpointer:
    """Writes and reads one run's checkpoint; knows when one is due.

    Args:
        path: the checkpoint file (``checkpoint_path(run_dir)``).
        identity: what must match on resume (the run's settings, JSON-ready); the code
            fingerprint and the format version are added.
        interval_minutes: time between periodic checkpoints; 0 turns them off (a stop request
            still writes one).
    """

    def __init__(self, path: str | os.PathLike[str], identity: dict[str, Any],
                 interval_minutes: float) -> None:
        self.path = Path(path)
        self.identity = {"run": identity, "code": code_fingerprint(), "format": FORMAT_VERSION}
        self.interval = 60.0 * interval_minutes
        self.last = time.monotonic()
        self.stop_signal: int | None = None

    def request_stop(self, signum: int) -> None:
        """Ask the run to stop at the next safe point (called from a signal handler)."""
        self.stop_signal = signum

    @property
    def stop_requested(self) -> bool:
        return self.stop_signal is not None

    def due(self) -> bool:
        """A periodic checkpoint is due, or a stop was requested."""
        return self.stop_requested or (self.interval > 0
                                       and time.monotonic() - self.last >= self.interval)

    def load(self) -> dict[str, Any] | None:
        """The checkpoint's state, or None when there is none.

        Raises:
            CheckpointError: it was written for other settings or by other code; the message
                names the file and how to start afresh.
        """
        if not self.path.is_file():
            return None
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as err:  # a damaged file is as foreign as another run's  # noqa: BLE001
            raise CheckpointError(f"checkpoint {self.path} cannot be read ({err}); delete it to "
                                  "start the run from epoch 1") from None
        saved = payload.get("identity", {})
        for key, what in (("format", "checkpoint format"), ("code", "code version"),
                          ("run", "run settings")):
            if saved.get(key) != self.identity[key]:
                raise CheckpointError(
                    f"checkpoint {self.path} was written with another {what} than this run's "
                    f"({_difference(saved.get(key), self.identity[key])}); it is not resumed: "
                    "delete it to start the run from epoch 1, or run the code and settings "
                    "that wrote it")
        log.info("resuming from %s (%s)", self.path, payload["where"])
        return payload["state"]

    def save(self, state: dict[str, Any], where: str) -> None:
        """Write ``state`` atomically; log where in the run it is and its size."""
        payload = {"identity": self.identity, "where": where, "state": state}
        atomic_write(self.path, lambda handle: torch.save(payload, handle))
        self.last = time.monotonic()
        log.info("wrote checkpoint %s (%s, %.1f KB)", self.path, where,
                 self.path.stat().st_size / 1024)

    def remove(self) -> None:
        """Delete the checkpoint (the run completed)."""
        self.path.unlink(missing_ok=True)


def _difference(saved: Any, wanted: Any) -> str:
    """A short description of what differs between two identities."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        keys = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        return "differs in " + ", ".join(keys)
    return f"{saved!r} != {wanted!r}"


def install_stop_handlers(checkpointer: Checkpointer) -> Callable[[], None]:
    """Route SIGTERM and SIGINT to ``checkpointer.request_stop``; a second SIGINT interrupts at
    once. Returns a function that restores the previous handlers."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: object) -> None:
        if signum == signal.SIGINT and checkpointer.stop_requested:
            raise KeyboardInterrupt
        log.warning("received %s: writing a checkpoint at the next step, then stopping",
                    signal.Signals(signum).name)
        checkpointer.request_stop(signum)

    for sig in previous:
        signal.signal(sig, handler)
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]

"""Training checkpoints: written periodically and on SIGTERM/SIGINT, resumed by the same command.

A checkpoint holds everything the rest of a run depends on: model and optimizer state, every
random generator state (torch CPU and CUDA, the batch-order generator, numpy's), the epoch, the
step within it and that epoch's batch order, the history so far and the best-so-far model for
selection. It lives beside the run folder (``.{run name}.ckpt``, never inside a finished run
folder), is written atomically, and is removed when the run completes.

Checkpoints travel between machines (cluster scratch, archives), so a checkpoint is untrusted
input: it holds tensors and plain data only (dicts, lists, numbers, strings) and is read with
``torch.load(weights_only=True)``, which refuses anything else without running it. It carries
the settings, the code version, a digest of the training data it was trained on and a sha256 of
its own content; a checkpoint that differs in any of them, or that cannot be read, is never used
(``CheckpointError``, or discarded and the run restarted where the user asked for it).

On the CPU a resumed run is bit-identical to an uninterrupted one (deterministic algorithms, the
same thread count); on a GPU resumed runs agree within floating-point tolerance only (README).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import struct
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.io import atomic_torch_save, load_tensors

log = logging.getLogger(__name__)

# 2: plain data only (no pickled classes), a content digest and the training data's digest.
FORMAT_VERSION = 2
# The packages whose code decides a run's numbers (the code version a checkpoint must match).
CODE_PACKAGES = ("rkn", "baselines", "datasets", "harness")
# What a refused checkpoint's message offers besides deleting the file (train.py's option).
DISCARD_OPTION = "--discard-bad-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unreadable, changed since it was written, or written for
    other settings, code or training data. The message names the file, what differs and how to
    discard it."""


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


def data_digest(split: Mapping[str, np.ndarray]) -> str:
    """sha256 (hex) of a data split: every array's name, dtype, shape and bytes, in name order.

    Args:
        split: name -> array (the run's training split: images, targets, optional obs_valid).
    """
    digest = hashlib.sha256()
    for key in sorted(split):
        array = np.ascontiguousarray(split[key])
        digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def content_digest(value: Any) -> str:
    """sha256 (hex) of plain data and tensors: every key, type tag, dtype, shape and byte, in
    order, so a loaded checkpoint's digest equals the saved one exactly when nothing changed.

    Raises:
        TypeError: ``value`` holds something other than tensors and plain data.
    """
    digest = hashlib.sha256()

    def feed(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            flat = item.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{item.dtype}{tuple(item.shape)}\0".encode())
            digest.update(flat.view(torch.uint8).numpy())
        elif isinstance(item, Mapping):
            digest.update(f"D{len(item)}\0".encode())
            for key, sub in item.items():
                feed(key)
                feed(sub)
        elif isinstance(item, (list, tuple)):
            digest.update(f"{'L' if isinstance(item, list) else 'U'}{len(item)}\0".encode())
            for sub in item:
                feed(sub)
        elif isinstance(item, float):  # bytes, not repr: -0.0 and NaN payloads count too
            digest.update(b"F" + struct.pack("<d", item))
        elif item is None or isinstance(item, (bool, int, str)):
            digest.update(f"{type(item).__name__[0]}{item!r}\0".encode())
        else:
            raise TypeError(f"a checkpoint holds tensors and plain data only, not "
                            f"{type(item).__name__}")

    feed(value)
    return digest.hexdigest()


def rng_states(order_gen: torch.Generator) -> dict[str, Any]:
    """Every random state the rest of a run depends on, as tensors and plain numbers."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "order": order_gen.get_state(),
              "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                        "pos": int(pos), "has_gauss": int(has_gauss),
                        "cached_gaussian": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], order_gen: torch.Generator) -> None:
    """Set the random states saved by ``rng_states``."""
    torch.set_rng_state(states["torch"])
    order_gen.set_state(states["order"])
    numpy = states["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])


class Checkpointer:
    """Writes and reads one run's checkpoint; knows when one is due.

    Args:
        path: the checkpoint file (``checkpoint_path(run_dir)``).
        identity: what must match on resume (the run's settings, JSON-ready); the code
            fingerprint, the format version and (``bind_data``) the training data's digest are
            added.
        interval_minutes: time between periodic checkpoints; 0 turns them off (a stop request
            still writes one).
        discard_bad: a checkpoint that cannot be used is deleted, said in the log, and the run
            starts from epoch 1, instead of a ``CheckpointError``.
    """

    def __init__(self, path: str | os.PathLike[str], identity: dict[str, Any],
                 interval_minutes: float, *, discard_bad: bool = False) -> None:
        self.path = Path(path)
        self.identity = {"run": identity, "code": code_fingerprint(), "format": FORMAT_VERSION,
                         "data": None}
        self.interval = 60.0 * interval_minutes
        self.discard_bad = discard_bad
        self.last = time.monotonic()
        self.stop_signal: int | None = None

    def bind_data(self, train_split: Mapping[str, np.ndarray]) -> None:
        """Tie the checkpoint to the training data (``data_digest``); before ``load``/``save``."""
        self.identity["data"] = data_digest(train_split)

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

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files of a checkpoint write that was killed midway."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            log.info("removing %s, left by an interrupted checkpoint write", stale)
            stale.unlink(missing_ok=True)

    def load(self) -> dict[str, Any] | None:
        """The checkpoint's state, or None when there is none (or it was discarded).

        Raises:
            CheckpointError: it cannot be read, its content changed after it was written, or
                it was written for other settings, code or training data; the message names the
                file, what differs and how to discard it.
            RuntimeError: ``bind_data`` was not called.
        """
        if self.identity["data"] is None:
            raise RuntimeError("Checkpointer.bind_data(train_split) must come before load()")
        if not self.path.is_file():
            return None
        try:
            payload = self._checked()
        except CheckpointError as err:
            if not self.discard_bad:
                raise
            log.warning("discarding checkpoint (%s): %s; the run starts from epoch 1",
                        DISCARD_OPTION, err)
            self.path.unlink(missing_ok=True)
            return None
        log.info("resuming from %s (%s)", self.path, payload["where"])
        return payload["state"]

    def _refuse(self, problem: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint {self.path} {problem}; it is not used: delete it (rm '{self.path}') "
            f"to start the run from epoch 1, or pass {DISCARD_OPTION} to train.py to discard "
            "it and restart the run")

    def _checked(self) -> dict[str, Any]:
        """The payload, once it is read safely and passes every check."""
        try:
            payload = load_tensors(self.path)
        except ValueError as err:
            raise self._refuse(f"cannot be read as a checkpoint of this project: it is damaged, "
                               "was written by an older version of this code, or holds more "
                               f"than tensors and plain data ({err})") from None
        if not (isinstance(payload, dict) and {"identity", "where", "state", "digest"}
                <= payload.keys() and isinstance(payload["identity"], dict)):
            raise self._refuse("is not a checkpoint of this format (an older format or another "
                               "file)")
        saved = payload["identity"]
        for key, what in (("format", "another checkpoint format"),
                          ("code", "another code version"), ("run", "other run settings"),
                          ("data", "other training data")):
            if saved.get(key) != self.identity[key]:
                raise self._refuse(
                    f"was written with {what} than this run's "
                    f"({_difference(saved.get(key), self.identity[key])})" + (
                        ": the data folder's files were replaced since" if key == "data" else
                        ", or run the code and settings that wrote it" if key != "format"
                        else ""))
        try:
            digest = content_digest({k: payload[k] for k in ("identity", "where", "state")})
        except TypeError as err:
            raise self._refuse(str(err)) from None
        if digest != payload["digest"]:
            raise self._refuse(f"was changed or damaged after it was written: its content has "
                               f"sha256 {digest[:16]}..., it was saved with "
                               f"{str(payload['digest'])[:16]}...")
        return payload

    def save(self, state: dict[str, Any], where: str) -> None:
        """Write ``state`` (tensors and plain data only) atomically with its digest; log where
        in the run it is and its size.

        Raises:
            TypeError: ``state`` holds something other than tensors and plain data.
            OSError: the file cannot be written (a full disk names the file).
        """
        payload = {"identity": self.identity, "where": where, "state": state}
        payload["digest"] = content_digest(payload)
        atomic_torch_save(self.path, payload)
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
    if isinstance(saved, str) and isinstance(wanted, str) and len(wanted) > 16:
        return f"sha256 {saved[:16]}... in the checkpoint, {wanted[:16]}... now"
    return f"{saved!r} in the checkpoint, {wanted!r} now"


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

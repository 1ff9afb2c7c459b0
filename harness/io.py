"""Atomic writes of run folders and reports: text, JSON, arrays, whole folders.

Every file is written under a temporary name beside its target and renamed into place, and it
follows the umask (``datasets.files``, the one implementation of the primitive). A crash or an
interrupt therefore never leaves a half-written result where a reader (Snakemake, DVC, the
aggregator) would take it for a finished one.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datasets.files import atomic_write, temporary_folder

__all__ = ["atomic_torch_save", "atomic_write", "atomic_write_json", "atomic_write_npz",
           "atomic_write_text", "load_tensors", "temporary_folder"]


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Write pretty, key-sorted JSON atomically (stable bytes for DVC and diffs)."""
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def atomic_write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed npz archive atomically."""
    atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays))


def atomic_torch_save(path: str | Path, payload: Any) -> None:
    """``torch.save`` atomically. The payload is serialised in memory first, so a full disk is an
    ``OSError`` (ENOSPC) naming ``path`` rather than torch's writer error."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


def load_tensors(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data only. A checkpoint or a
    model file travels between machines, so it is untrusted; anything else in it (a pickled
    class or function) is refused without being run.

    Raises:
        ValueError: the file cannot be read (missing, damaged, or holds more than tensors and
            plain data); the message is torch's reason in one line, without its advice to load
            with weights_only=False.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for a damaged file  # noqa: BLE001
        text = str(err).replace("\x1b[1m", "").replace("\x1b[0m", "")
        found = re.search(r"WeightsUnpickler error:\s*(.+?)(?: Please use|\n\n|$)", text, re.S)
        reason = found.group(1) if found else (text.strip().splitlines() or [""])[0]
        raise ValueError(f"{type(err).__name__}: {' '.join(reason.split())[:300]}") from None

"""Atomic writes of run folders and reports: text, JSON, arrays, whole folders.

Every file is written under a temporary name beside its target and renamed into place, and it
follows the umask (``datasets.files``, the one implementation of the primitive). A crash or an
interrupt therefore never leaves a half-written result where a reader (Snakemake, DVC, the
aggregator) would take it for a finished one.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datasets.files import atomic_write, temporary_folder

__all__ = ["atomic_torch_save", "atomic_write", "atomic_write_json", "atomic_write_npz",
           "atomic_write_text", "temporary_folder"]


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

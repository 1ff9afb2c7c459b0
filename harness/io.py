"""Atomic writes of run folders and reports: text, JSON, arrays, whole folders.

Every file is written under a temporary name beside its target and renamed into place, and it
follows the umask (``datasets.files``, the one implementation of the primitive). A crash or an
interrupt therefore never leaves a half-written result where a reader (Snakemake, DVC, the
aggregator) would take it for a finished one.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import numpy as np

from datasets.files import atomic_write, temporary_folder

__all__ = ["atomic_write", "atomic_write_json", "atomic_write_npz", "atomic_write_text",
           "os_error_message", "temporary_folder"]

# A full disk or an exhausted quota: the message says so, whatever the library around the write.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Write pretty, key-sorted JSON atomically (stable bytes for DVC and diffs)."""
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def atomic_write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed npz archive atomically."""
    atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays))


def os_error_message(err: OSError, remedy: str) -> str:
    """One line for a failed read or write: the path and, for a full disk, "no space left" and how
    to go on; otherwise the system's reason, the path and ``remedy``."""
    path = err.filename if err.filename is not None else "(no path given)"
    if err.errno in NO_SPACE:
        return (f"no space left on the device of {path} ({err.strerror}); free space there (or "
                "set results_dir to a larger disk) and run the same command again; nothing was "
                "left half-written")
    return f"{err.strerror or err}: {path}; {remedy}"

"""Atomic writes of run folders and reports: text, JSON, arrays, whole folders.

Every file is written under a temporary name beside its target and renamed into place, and it
follows the umask (``datasets.files``, the one implementation of the primitive). A crash or an
interrupt therefore never leaves a half-written result where a reader (Snakemake, DVC, the
aggregator) would take it for a finished one.

A folder that already exists (a report) is replaced by ``replace_folder``: the new version is
built beside it and the two are exchanged in one atomic step (Linux ``renameat2`` with
``RENAME_EXCHANGE``, macOS ``renamex_np`` with ``RENAME_SWAP``), so the folder is always either
the complete old or the complete new version, whenever the process is killed; the old version,
left in the hidden temporary folder, is removed right after, or by the next replacement when a
kill came first.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datasets.files import atomic_write, temporary_folder

__all__ = ["atomic_torch_save", "atomic_write", "atomic_write_json", "atomic_write_npz",
           "atomic_write_text", "exchange", "load_tensors", "os_error_message", "replace_folder",
           "temporary_folder"]

log = logging.getLogger(__name__)

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
        blocked = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            reason = found.group(1)
        elif blocked or "weights_only" in text:  # never pass on torch's advice to load it unsafely
            what = f"it names {blocked.group(1)}, which" if blocked else "it holds objects that"
            reason = (f"{what} is not a tensor or plain data; refused unread (loading it could "
                      "run code)")
        else:
            reason = (text.strip().splitlines() or [""])[0]
        raise ValueError(f"{type(err).__name__}: {' '.join(reason.split())[:300]}") from None


def os_error_message(err: OSError, remedy: str) -> str:
    """One line for a failed read or write: the path and, for a full disk, "no space left" and how
    to go on; otherwise the system's reason, the path and ``remedy``."""
    path = err.filename if err.filename is not None else "(no path given)"
    if err.errno in NO_SPACE:
        return (f"no space left on the device of {path} ({err.strerror}); free space there (or "
                "set results_dir to a larger disk) and run the same command again; nothing was "
                "left half-written")
    return f"{err.strerror or err}: {path}; {remedy}"


def exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap the paths ``a`` and ``b`` (both must exist) in one atomic step.

    Returns False, changing nothing, where the system or file system offers no atomic exchange.

    Raises:
        OSError: the exchange failed for another reason (e.g. a missing path).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_fdcwd, rename_exchange = -100, 2  # <fcntl.h>, <linux/fs.h>
        result = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b),
                                rename_exchange)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        result = libc.renamex_np(os.fsencode(a), os.fsencode(b), 0x2)  # RENAME_SWAP
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # a kernel or file system without the exchange
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def replace_folder(target: str | os.PathLike[str], files: Mapping[str, bytes | Path],
                   keep: bool = True) -> None:
    """Make ``target`` a folder of exactly ``files`` ({relative path: content, or a file to
    copy}) plus, with ``keep``, the items of the old folder whose top-level names ``files`` does
    not use (a .gitignore); the folder changes in one atomic step (module docstring).

    Temporary siblings of ``target`` that a killed replacement left behind are removed first.
    Where no atomic exchange exists, the old folder is renamed to ``.{name}.old.tmp`` and the new
    one renamed in: a kill between the two renames leaves no ``target`` until the next call,
    which first renames the old version back.

    Raises:
        OSError: the folder or its parent cannot be written (``target`` is then unchanged), with
            the file's name (a full disk: ENOSPC).
    """
    target = Path(target)
    old = target.with_name(f".{target.name}.old.tmp")  # the old version, without an exchange
    if old.is_dir() and not target.exists():
        log.info("restoring %s from %s, left by an interrupted replacement", target, old)
        os.rename(old, target)
    for stale in target.parent.glob(f".{target.name}.*.tmp") if target.parent.is_dir() else ():
        log.info("removing %s, left by an interrupted replacement of %s", stale, target)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = temporary_folder(target)
    try:
        for rel, content in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_file(path, content)
        if not target.is_dir():
            os.rename(tmp, target)
            return
        used = {Path(rel).parts[0] for rel in files}
        for item in target.iterdir() if keep else ():
            if item.name not in used:
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        if not exchange(tmp, target):
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            tmp = old
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp)  # the old version


def _write_file(path: Path, content: bytes | Path) -> None:
    """Write or copy one file of a folder being built, to disk before the folder is swapped in."""
    try:
        with open(path, "xb") as handle:
            if isinstance(content, bytes):
                handle.write(content)
            else:
                with open(content, "rb") as source:
                    shutil.copyfileobj(source, handle)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        if err.filename is None:  # a failed write() names no file
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise

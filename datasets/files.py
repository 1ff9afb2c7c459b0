"""Atomic file and folder creation that follows the umask, like any ordinary file write.

A file is written under a temporary name beside its target and renamed into place, so a crash or
an interrupt never leaves a half-written file where a reader (Snakemake, DVC, the aggregator)
would take it for a finished one. The temporary name is created with mode 0o666 (0o777 for
folders) and the process umask applies, so a group that shares a results folder can read the
results (``tempfile.mkstemp`` would make them private to the owner).

The dataset store uses it for its archives; ``harness.io`` builds the run folders' and reports'
writes on it (this package imports nothing else of the project, so the primitive lives here).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO, Callable


def _temporary_name(path: Path) -> Path:
    """A hidden, unique sibling name of ``path`` ending in .tmp (git and DVC ignore *.tmp)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, flush it to disk, rename it.

    Raises:
        OSError: the folder cannot be created or written (a full disk: ENOSPC); its filename is
            ``path`` when the system named no file; nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename is None:  # a failed write() names no file: say which one
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temporary_folder(target: str | os.PathLike[str]) -> Path:
    """Create an empty hidden folder beside ``target`` (mode 0o777 minus the umask) to build
    ``target`` in; rename it into place when complete."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _temporary_name(target)
        try:
            tmp.mkdir(mode=0o777)
            return tmp
        except FileExistsError:  # a name drawn twice: draw again
            continue

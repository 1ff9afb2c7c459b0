"""Folders replaced in one atomic step (harness.io.replace_folder): a SIGKILL at any moment of a
replacement leaves the complete old or the complete new folder, and the next replacement cleans
up what the killed one left; a full disk names the file."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import harness.io
from harness.io import exchange, os_error_message, replace_folder

ROOT = Path(__file__).resolve().parents[2]
OLD = {"claims.md": b"old claims", "tables/e1.csv": b"old,table", "report.html": b"old html"}
NEW = {"claims.md": b"new claims", "tables/e1.csv": b"new,table", "tables/e2.csv": b"new,e2",
       "report.html": b"new html"}


def content(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.endswith(".tmp"))


def test_replacement_keeps_foreign_files_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "report"
    replace_folder(target, OLD)
    assert content(target) == OLD
    (target / ".gitignore").write_text("/report.html\n")
    source = tmp_path / "source.md"
    source.write_bytes(b"copied")
    replace_folder(target, {**NEW, "copied.md": source})
    assert content(target) == {**NEW, "copied.md": b"copied", ".gitignore": b"/report.html\n"}
    assert leftovers(target) == []


def test_this_file_system_exchanges_folders_atomically(tmp_path: Path) -> None:
    """The promise rests on the atomic exchange (renameat2 / renamex_np) where the tests run."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    if not exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("no atomic exchange of folders on this system (the fallback is tested below)")
    assert (tmp_path / "b" / "x").read_text() == "a" and not (tmp_path / "a" / "x").exists()


# Where the replacement is killed: (patched function, the call at which it dies, die after it).
KILLS = {
    "while writing the new files": ("_write_file", 2, False),
    "just before the exchange": ("exchange", 1, False),
    "just after the exchange": ("exchange", 1, True),
    "while removing the old version": ("shutil.rmtree", 1, False),
    "between the two renames (no exchange)": ("os.rename", 1, True),
}


@pytest.mark.parametrize("moment", list(KILLS))
def test_sigkill_at_any_moment_leaves_a_whole_folder(tmp_path: Path, moment: str) -> None:
    target = tmp_path / "report"
    replace_folder(target, OLD)
    name, call, after = KILLS[moment]
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import harness.io as hio
        owner = {{"_write_file": hio, "exchange": hio, "shutil.rmtree": hio.shutil,
                 "os.rename": hio.os}}[{name!r}]
        attribute = {name!r}.split(".")[-1]
        real, calls = getattr(owner, attribute), []
        def dying(*args, **kwargs):
            calls.append(1)
            if len(calls) == {call} and not {after}:
                os.kill(os.getpid(), signal.SIGKILL)
            result = real(*args, **kwargs)
            if len(calls) == {call}:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        setattr(owner, attribute, dying)
        if {name!r} == "os.rename":
            hio.exchange = lambda a, b: False  # a system without the atomic exchange
        hio.replace_folder({str(target)!r}, {NEW!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    swapped = name in ("exchange", "shutil.rmtree") and (after or name == "shutil.rmtree")
    if name == "os.rename":  # the one moment without a folder: the next call restores the old
        assert not target.exists() and (tmp_path / ".report.old.tmp").is_dir()
    else:
        assert content(target) == (NEW if swapped else OLD), moment
    assert leftovers(target), "the kill left no temporary folder: it came too late"
    newer = {"claims.md": b"newer", "tables/e1.csv": b"newer"}
    replace_folder(target, newer)  # keeps report.html of the version the kill left
    assert content(target) == {**newer, "report.html": (NEW if swapped else OLD)["report.html"]}
    assert leftovers(target) == []


def test_a_full_disk_names_the_file_and_changes_nothing(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report"
    replace_folder(target, OLD)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(harness.io.os, "fsync", full)
    with pytest.raises(OSError) as raised:
        replace_folder(target, NEW)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename.endswith("claims.md")
    message = os_error_message(raised.value, "unused")
    assert message.startswith(f"no space left on the device of {tmp_path}/.report.") and \
        "free space there" in message
    assert content(target) == OLD and leftovers(target) == []

"""Unpack a run archive made on another machine (benchmarks/paper_gpu.py) safely, all or nothing.

An archive is untrusted, and the pinned Python predates tarfile's fixes for CVE-2025-4517, -4138
and -4330, so its "data" filter is used but not relied on. ``read_members`` checks every member
header before anything is written: regular files and folders only (no link of any kind, no
device, no sparse file), plain relative names under ``{scale}/`` in ``ARCHIVE_LAYOUT``, each
once, sizes within a per-file and a total limit. ``stage`` checks the free space and extracts
into a hidden staging folder inside the results folder (one file system: later moves are
renames). ``plan_import`` checks each staged run folder (``check_run``: every file of
``harness.runner.RUN_FILES``, config.json naming the folder's experiment, model, seed and hash,
model.pt read with weights_only) and refuses a run folder present with other content unless
``force``. ``commit`` renames each into place and undoes its renames when one fails. The caller
removes the staging folder; the next import removes one a kill left behind.
"""

from __future__ import annotations

import errno
import filecmp
import os
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from analysis.run_files import read_json_object
from harness.io import temporary_folder
from harness.registry import read_model_file
from harness.runner import RUN_FILES
from harness.runspec import results_identity, short_hash

# Where each member of a run archive lies, below {scale}/ (benchmarks/paper_gpu.py).
ARCHIVE_LAYOUT = ("runs/{experiment}/{model}/seed{N}-{hash}/{file of RUN_FILES}, "
                  "efficiency/efficiency-{hash}.json, manifest.json")
# A name part: what run, model, experiment and scale names are made of; no hidden part.
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_EFFICIENCY = re.compile(r"efficiency-[0-9a-f]+\.json")
_RUN_NAME = re.compile(r"seed(\d+)-([0-9a-f]{8})")
DEFAULT_MAX_FILE_BYTES = 2 << 30     # 2 GiB: a paper-scale run's largest file is some MB
DEFAULT_MAX_TOTAL_BYTES = 64 << 30   # 64 GiB: the whole paper scale is a few GB
MAX_MEMBERS = 100_000                # the paper scale has about 2,000
SPACE_MARGIN = 64 << 20              # free space kept beyond the archive's content


class ArchiveError(ValueError):
    """The archive or one of its run folders is refused; the message names the member, folder
    or file and the fix. Nothing was written to the results folder."""


def _gb(size: float) -> str:
    """A size in GB, MB, KB or bytes, whichever reads best."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} bytes"


def _layout_kind(parts: tuple[str, ...], is_dir: bool) -> str | None:
    """'run file', 'folder', 'file' (efficiency, manifest), or None outside the layout."""
    if is_dir:
        return "folder" if (len(parts) <= 5 and parts[1:2] in ((), ("runs",))) or \
            parts[1:] == ("efficiency",) else None
    if len(parts) == 6 and parts[1] == "runs" and parts[5] in RUN_FILES:
        return "run file"
    if parts[1:] == ("manifest.json",) or (len(parts) == 3 and parts[1] == "efficiency"
                                           and _EFFICIENCY.fullmatch(parts[2])):
        return "file"
    return None


def read_members(tar: tarfile.TarFile, scale: str, max_file: int, max_total: int
                 ) -> list[tarfile.TarInfo]:
    """Every member of ``tar``, each checked before anything is written.

    Raises:
        ArchiveError: a link or other special member, a name that is not a plain relative path
            under ``{scale}/`` in ``ARCHIVE_LAYOUT``, a name seen twice, a file above
            ``max_file`` bytes, members above ``max_total`` bytes together, or more than
            ``MAX_MEMBERS`` members; the message names the member.
    """
    members, seen, total = [], set(), 0
    for member in tar:
        name = member.name
        if len(members) >= MAX_MEMBERS:
            raise ArchiveError(f"more than {MAX_MEMBERS} members; a run archive of one scale "
                               "has a few thousand: this is not one")
        if not (member.isfile() or member.isdir()) or member.issparse():
            kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                    else "a sparse file" if member.issparse() else "a device or fifo")
            target = f" to {member.linkname!r}" if member.linkname else ""
            raise ArchiveError(f"member {name!r} is {kind}{target}; a run archive holds regular "
                               "files and folders only (re-make it with benchmarks/paper_gpu.py)")
        parts = PurePosixPath(name).parts
        if not parts or any(not _PART.fullmatch(part) for part in parts) \
                or "/".join(parts) != name.rstrip("/"):
            raise ArchiveError(f"member name {name!r} is not a plain relative path (an absolute "
                               "path, '..', a hidden or empty part, a part longer than 128 "
                               "characters, or a character outside A-Z a-z 0-9 . _ -); re-make "
                               "the archive with benchmarks/paper_gpu.py")
        if parts[0] != scale:
            raise ArchiveError(f"member {name!r} is outside {scale}/; this is not an archive of "
                               f"scale {scale!r} from benchmarks/paper_gpu.py")
        if _layout_kind(parts, member.isdir()) is None:
            raise ArchiveError(f"member {name!r} is not part of a run archive ({scale}/ holds "
                               f"{ARCHIVE_LAYOUT} only)")
        if parts in seen:
            raise ArchiveError(f"member {name!r} appears twice in the archive (extracting would "
                               "keep the last copy silently); re-make the archive")
        if member.size > max_file:
            raise ArchiveError(f"member {name!r} is {_gb(member.size)}, above the per-file limit "
                               f"of {_gb(max_file)} (--max-file-mb); a run's files are a few MB")
        total += member.size
        if total > max_total:
            raise ArchiveError(f"the members hold more than the total limit of {_gb(max_total)} "
                               f"(--max-total-gb), reached at {name!r}")
        seen.add(parts)
        members.append(member)
    return members


def _free_space(folder: Path) -> int:
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def stage(tar: tarfile.TarFile, members: list[tarfile.TarInfo], results: Path,
          scale: str) -> Path:
    """Extract the checked ``members`` into a new hidden staging folder inside ``results``.

    Returns the staging folder (``{staging}/{scale}/...``); the caller removes it.

    Raises:
        ArchiveError: too little free space, or the disk filled up ("no space left", naming
            the path); the staging folder is removed.
        tarfile.TarError, OSError: a damaged archive or an unwritable results folder.
    """
    for stale in results.glob(f".import-{scale}.*.tmp"):  # a killed import's staging folder
        shutil.rmtree(stale, ignore_errors=True)
    need = sum(m.size for m in members)
    free = _free_space(results)
    if need + SPACE_MARGIN > free:
        raise ArchiveError(f"no space left for the archive on the device of {results}: its "
                           f"files need {_gb(need)} and {_gb(free)} are free; free space there "
                           "(or set results_dir elsewhere)")
    staging = temporary_folder(results / f"import-{scale}")
    try:
        for member in members:
            try:
                tar.extract(member, staging, set_attrs=False, filter="data")
            except OSError as err:
                if err.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise ArchiveError(f"no space left on the device while writing "
                                       f"{staging / member.name} (the staging copy of "
                                       f"{member.name!r}); free space on the device of "
                                       f"{results} (or set results_dir elsewhere)") from None
                raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


@dataclass
class Plan:
    """What an import moves: (staged, target) run folders and files, the ones already present
    with the same content, and the local files kept because they differ (without ``force``)."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)
    same: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def _json_object(path: Path, where: str) -> dict:
    """A staged file as a JSON object; ArchiveError naming it by its archive path."""
    return read_json_object(path, name=where, error=ArchiveError, remedy=_REMAKE)


_REMAKE = "remove that run folder from the archive (or train the run again and re-make it)"


def check_run(folder: Path, rel: str) -> None:
    """Check one staged run folder; ``rel`` is its path in the archive (for messages).

    Raises:
        ArchiveError: a file of ``RUN_FILES`` is missing; config.json is unreadable or names
            another experiment, model, seed or settings than the folder's name says; model.pt
            cannot be read safely or is of another class; the message names the file.
    """
    missing = [name for name in RUN_FILES if not (folder / name).is_file()]
    if missing:
        raise ArchiveError(f"run folder {rel} in the archive lacks {', '.join(missing)} (a run "
                           f"folder holds {', '.join(RUN_FILES)}); {_REMAKE}")
    config = _json_object(folder / "config.json", f"{rel}/config.json")
    experiment, model, name = folder.parts[-3:]
    seed = config.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArchiveError(f"{rel}/config.json: seed = {seed!r} is not a seed; {_REMAKE}")
    named = (config.get("experiment"), config.get("model"), f"seed{seed}")
    if named != (experiment, model, name.split("-")[0]):
        raise ArchiveError(f"{rel}/config.json names experiment {named[0]!r}, model "
                           f"{named[1]!r}, seed {seed}, but its folder is {experiment}/{model}/"
                           f"{name}: the folder was renamed or its config.json edited; {_REMAKE}")
    expected = f"seed{seed}-{short_hash({'spec': results_identity(config)})}"
    if name != expected:
        raise ArchiveError(f"{rel}/config.json gives the run name {expected}, not its folder's "
                           f"{name}: its settings were edited, or another version of the code "
                           f"made it (harness.runspec.RESULTS_VERSION); {_REMAKE}")
    try:
        payload = read_model_file(folder / "model.pt", shown_as=f"{rel}/model.pt")
    except ValueError as err:
        raise ArchiveError(f"{err}; {_REMAKE}") from None
    if payload["class"] != config.get("model_class"):
        raise ArchiveError(f"{rel}/model.pt holds class {payload['class']!r}, its config.json "
                           f"{config.get('model_class')!r}; {_REMAKE}")
    for name_ in ("metrics.json", "meta.json"):
        _json_object(folder / name_, f"{rel}/{name_}")


def _same_content(staged: Path, target: Path) -> bool:
    if staged.is_file():
        return target.is_file() and filecmp.cmp(staged, target, shallow=False)
    names = sorted(p.name for p in staged.iterdir())
    return target.is_dir() and sorted(p.name for p in target.iterdir()) == names and all(
        filecmp.cmp(staged / n, target / n, shallow=False) for n in names)


def plan_import(staging: Path, results: Path, scale: str, force: bool) -> Plan:
    """Check every staged run folder and decide where each staged folder and file goes.

    Raises:
        ArchiveError: as ``check_run``, or a run folder exists in ``results`` with other
            content and ``force`` is False (the message names it and the files that differ).
    """
    plan = Plan()
    root = staging / scale
    for folder in sorted(root.glob("runs/*/*/*")):
        rel = folder.relative_to(staging).as_posix()
        if not folder.is_dir() or not _RUN_NAME.fullmatch(folder.name):
            raise ArchiveError(f"{rel} in the archive is not a run folder "
                               "(seed{N}-{8 hex digits}); re-make the archive")
        check_run(folder, rel)
        target = results / folder.relative_to(staging)
        if target.exists() and _same_content(folder, target):
            plan.same.append(target)
        elif target.exists() and not force:
            differ = [p.name for p in sorted(folder.iterdir()) if not (target / p.name).is_file()
                      or not filecmp.cmp(p, target / p.name, shallow=False)]
            differ += sorted(f"{p.name} (only here)" for p in target.iterdir()
                             if p.name not in RUN_FILES)
            raise ArchiveError(
                f"run folder {target} exists with other content than the archive's (differs in "
                f"{', '.join(differ)}); pass --force to replace it with the archive's (the local "
                "folder is discarded), or move it away")
        else:
            plan.moves.append((folder, target))
        plan.runs.append(target)
    for staged in sorted(p for p in root.rglob("*") if p.is_file() and "runs" not in
                         p.relative_to(root).parts[:1]):
        target = results / staged.relative_to(staging)
        if target.exists() and _same_content(staged, target):
            plan.same.append(target)
        elif target.exists() and not force:
            plan.kept.append(target)
        else:
            plan.moves.append((staged, target))
    return plan


def commit(plan: Plan) -> None:
    """Move every planned folder and file into place, one rename each; a failure undoes the
    renames done so far (a replaced local folder comes back), so nothing is half-imported.

    Raises:
        OSError: a rename failed (after the undo).
    """
    done: list[tuple[Path, Path, Path | None]] = []
    try:
        for staged, target in plan.moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            old = None
            if target.exists():  # --force: the local copy steps aside until all moves are done
                old = temporary_folder(target) if target.is_dir() else \
                    target.with_name(f".{target.name}.replaced.tmp")
                os.replace(target, old)
            try:
                os.replace(staged, target)
            except BaseException:
                if old is not None:
                    os.replace(old, target)
                raise
            done.append((staged, target, old))
    except BaseException:
        for staged, target, old in reversed(done):
            os.replace(target, staged)
            if old is not None:
                os.replace(old, target)
        raise
    for _, _, old in done:
        if old is not None:
            shutil.rmtree(old) if old.is_dir() else old.unlink()

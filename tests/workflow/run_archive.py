"""Run archives for the import tests: run folders consistent with the smoke config (made without
training: the import checks names, settings and file formats, not numbers) and tar files holding
any member (links, duplicates, cut data), as an attacker or a broken copy would make them."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from harness.config import load_config
from harness.runner import RUN_FILES
from harness.runspec import resolve_run

ROOT = Path(__file__).resolve().parents[2]
SCALE = "smoke"


@dataclass
class Member:
    """One tar member: a file (``data``), a folder, or a link (``kind`` sym or hard)."""

    name: str
    data: bytes = b""
    kind: str = "file"
    linkname: str = ""


def config_args(tmp_path: Path) -> list[str]:
    """--config arguments of the smoke scale with results under ``tmp_path/results``."""
    overlay = tmp_path / "cfg" / "here.yaml"
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results")}))
    paths = [ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml", overlay]
    return [arg for path in paths for arg in ("--config", str(path))]


def config_of(args: list[str]) -> dict:
    return load_config([a for a in args if a != "--config"])


class Evil:
    """Unpickling it creates ``marker`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_pickle(marker: Path) -> bytes:
    """A torch file whose unpickling would create ``marker``."""
    buffer = io.BytesIO()
    torch.save({"state": Evil(marker)}, buffer)
    return buffer.getvalue()


def marker_is_live(data: bytes, marker: Path) -> bool:
    """Whether loading ``data`` without weights_only really runs the crafted code (so a test
    that expects it refused can fail)."""
    torch.load(io.BytesIO(data), weights_only=False)
    live = marker.exists()
    marker.unlink(missing_ok=True)
    return live


def run_folder(config: dict, seed: int, model: str = "rkn",
               experiment: str = "pendulum_filtering", edit: dict | None = None
               ) -> dict[str, bytes]:
    """The files of one run folder, keyed by their archive name ({scale}/runs/.../file);
    ``edit`` changes config.json entries (after the folder name is fixed)."""
    spec = resolve_run(config, experiment, model, seed)
    folder = f"{SCALE}/runs/{experiment}/{model}/{spec.run_name}"
    run_config = json.loads(json.dumps({**spec.to_dict(), "model_config": {}}))
    run_config.update(edit or {})
    model_file = io.BytesIO()
    torch.save({"model": model, "class": spec.model_class, "config": {},
                "state_dict": {"w": torch.arange(4.0) + seed}, "epoch": 1}, model_file)
    files = {"config.json": json.dumps(run_config).encode(), "model.pt": model_file.getvalue(),
             "history.csv": b"epoch,train_loss,val_loss,seconds\n1,1.0,1.0,0.1\n",
             "metrics.json": json.dumps({"rmse": 0.1 + seed}).encode(),
             "calibration.csv": b"bin_left,bin_right,density\n", "examples.npz": b"PK\x05\x06" +
             bytes(18), "meta.json": json.dumps({"seed": seed}).encode()}
    assert set(files) == set(RUN_FILES)
    return {f"{folder}/{name}": data for name, data in files.items()}


def members_of(*folders: dict[str, bytes], efficiency: bytes = b'{"rows": []}'
               ) -> list[Member]:
    """Folder members and then file members of the given run folders, the claim-7 file and the
    manifest, in the order paper_gpu.py's tar.add writes them."""
    members = [Member(SCALE, kind="dir"), Member(f"{SCALE}/runs", kind="dir")]
    for files in folders:
        parts = next(iter(files)).split("/")
        for depth in range(3, 6):
            name = "/".join(parts[:depth])
            if all(m.name != name for m in members):
                members.append(Member(name, kind="dir"))
        members += [Member(name, data) for name, data in files.items()]
    return members + [Member(f"{SCALE}/efficiency", kind="dir"),
                      Member(f"{SCALE}/efficiency/efficiency-0123abcd.json", efficiency),
                      Member(f"{SCALE}/manifest.json", b'{"runs": 2}')]


def write_archive(path: Path, members: list[Member], cut: int = 0) -> Path:
    """A .tar.gz of ``members`` in order; ``cut`` bytes taken off the end (a broken copy)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                         "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[member.kind]
            info.linkname, info.size = member.linkname, len(member.data)
            info.mode = 0o755 if member.kind == "dir" else 0o644
            tar.addfile(info, io.BytesIO(member.data) if member.kind == "file" else None)
    data = buffer.getvalue()
    path.write_bytes(data[:len(data) - cut] if cut else data)
    return path


def symlink_chain(target: str) -> list[Member]:
    """The CVE-2025-4517 pattern under {scale}/: folders of 247-character names with a one-letter
    link to each, nested 16 deep, so that a path through the links is longer than PATH_MAX and
    os.path.realpath (which tarfile's "data" filter uses) stops resolving; a last link climbs
    out through the chain to ``target`` (relative to the extraction folder), and a file is
    written through it."""
    comp, steps, path = "d" * 247, "abcdefghijklmnop", SCALE
    members = [Member(SCALE, kind="dir")]
    for step in steps:
        members += [Member(f"{path}/{comp}", kind="dir"),
                    Member(f"{path}/{step}", kind="sym", linkname=comp)]
        path = f"{path}/{comp}"
    link = f"{SCALE}/{'/'.join(steps)}/{'l' * 254}"
    members.append(Member(link, kind="sym", linkname="../" * len(steps)))
    members.append(Member(f"{SCALE}/escape", kind="sym",
                          linkname=f"{link.split('/', 1)[1]}/../../{target}"))
    members.append(Member(f"{SCALE}/escape/written-outside", b"pwned"))
    return members

"""Files from elsewhere are untrusted: checkpoints (train.py) and run archives (import_runs.py).
Table-driven like test_bad_inputs.py: each case asserts exit status 2, a message that names the
file, member or value and the fix, that no crafted code ran, and that nothing changed on disk
(no run folder, no part of one, no staging or temporary file; a local run folder untouched)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import import_runs  # noqa: E402
import simulate  # noqa: E402
import train  # noqa: E402

from datasets.store import load_split, save_split  # noqa: E402
from harness import checkpoint  # noqa: E402
from harness.runner import execute_run  # noqa: E402
from harness.runspec import resolve_run  # noqa: E402
from tests.workflow.run_archive import (Member, config_args, config_of,  # noqa: E402
                                        crafted_pickle, marker_is_live, members_of, run_folder,
                                        symlink_chain, write_archive)

E1 = ["--experiment", "pendulum_filtering", "--model", "rkn", "--seed", "0"]
Prepare = Callable[[Path, list[str]], list[str]]


@dataclass
class Case:
    """One untrusted input: the script, a regex its message must match, the preparation (returns
    extra arguments) and an optional patch of the environment (a full disk)."""

    script: str
    message: str
    prepare: Prepare
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    args: list[str] = field(default_factory=list)


# --- checkpoints ---------------------------------------------------------------------------

class StopAtFirstStep(checkpoint.Checkpointer):
    def due(self) -> bool:
        self.request_stop(15)
        return True


def with_checkpoint(edit: Callable[[Path, Path], None]) -> Prepare:
    """Simulate E1, train rkn seed 0 for one step and stop (a real checkpoint), then ``edit``
    (checkpoint path, test folder)."""
    def prepare(tmp_path: Path, configs: list[str]) -> list[str]:
        assert simulate.main(configs + ["--dataset", "pendulum_filtering"]) == 0
        config = config_of(configs)
        spec = resolve_run(config, "pendulum_filtering", "rkn", 0)
        data = spec.data_dir(config["results_dir"])
        run_dir = spec.run_dir(config["results_dir"])
        stopper = StopAtFirstStep(checkpoint.checkpoint_path(run_dir), spec.identity(), 0)
        with pytest.raises(checkpoint.RunInterrupted):
            execute_run(spec, train_split=load_split(data, "train"),
                        test_split=load_split(data, "test"), run_dir=run_dir,
                        device=torch.device("cpu"), checkpointer=stopper)
        edit(stopper.path, tmp_path)
        return E1
    return prepare


def crafted(path: Path, tmp_path: Path) -> None:
    data = crafted_pickle(tmp_path / "PWNED")
    assert marker_is_live(data, tmp_path / "PWNED")  # the file really runs code when unpickled
    path.write_bytes(data)


def random_bytes(path: Path, tmp_path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def random_weights(path: Path, tmp_path: Path) -> None:
    """Random bytes over the largest tensor's data inside the file (it still loads)."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename),
                   key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_length, extra_length = np.frombuffer(data, "<u2", 2, info.header_offset + 26)
    start = info.header_offset + 30 + int(name_length) + int(extra_length)
    data[start:start + info.file_size] = np.random.default_rng(1).bytes(info.file_size)
    path.write_bytes(bytes(data))


def changed_weight(path: Path, tmp_path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    weights = payload["state"]["model"]
    key = next(k for k, v in weights.items() if v.is_floating_point())
    weights[key] = weights[key] + 0.01
    torch.save(payload, path)


def replaced_data(path: Path, tmp_path: Path) -> None:
    """Other training data in the run's data folder, valid and checksummed."""
    folder = next((tmp_path / "results").glob("smoke/datasets/pendulum_filtering-*"))
    arrays = load_split(folder, "train")
    arrays["targets"] = arrays["targets"] + 0.01
    meta = json.loads((folder / "meta.json").read_text())
    save_split(folder, "train", arrays, meta["params"], meta["seed"], generator=meta["generator"])


def simulated(tmp_path: Path, configs: list[str]) -> list[str]:
    assert simulate.main(configs + ["--dataset", "pendulum_filtering"]) == 0
    return E1


def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file write fails as on a full disk (at the flush to the device)."""
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr("datasets.files.os.fsync", fsync)


# --- archives ------------------------------------------------------------------------------

def archive(make: Callable[[dict, Path], list[Member]], cut: int = 0, local: bool = False
            ) -> Prepare:
    """An archive of ``make(config, test folder)``'s members; ``local``: a run folder of seed 0
    with other content is present in the results folder already."""
    def prepare(tmp_path: Path, configs: list[str]) -> list[str]:
        config = config_of(configs)
        if local:
            for name, data in run_folder(config, 0).items():
                target = tmp_path / "results" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data if not name.endswith("metrics.json") else b'{"rmse": 9}')
        path = write_archive(tmp_path / "runs.tar.gz", make(config, tmp_path), cut)
        return ["--archive", str(path)]
    return prepare


def not_an_archive(tmp_path: Path) -> Path:
    path = tmp_path / "runs.tar.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(600))  # a gzip magic number, then zeros
    return path


def two_runs(config: dict, tmp_path: Path) -> list[Member]:
    return members_of(run_folder(config, 0), run_folder(config, 1))


def link_in_the_middle(config: dict, tmp_path: Path) -> list[Member]:
    """Run 0 whole, then run 1's first three files, a link, and its other files."""
    members = two_runs(config, tmp_path)
    files = [i for i, m in enumerate(members) if "/seed1-" in m.name and m.kind == "file"]
    link = Member(members[files[3]].name, kind="sym", linkname="/etc/passwd")
    return members[:files[3]] + [link] + members[files[3] + 1:]


def with_member(member: Callable[[dict, Path], Member]) -> Callable[[dict, Path], list[Member]]:
    return lambda config, tmp_path: two_runs(config, tmp_path) + [member(config, tmp_path)]


def seed0_file(config: dict, name: str) -> str:
    return next(n for n in run_folder(config, 0) if n.endswith("/" + name))


def without(name: str) -> Callable[[dict, Path], list[Member]]:
    return lambda config, tmp_path: [m for m in two_runs(config, tmp_path)
                                     if m.name != seed0_file(config, name)]


def edited_run(**edit) -> Callable[[dict, Path], list[Member]]:
    return lambda config, tmp_path: members_of(run_folder(config, 0, edit=edit),
                                               run_folder(config, 1))


def crafted_model(config: dict, tmp_path: Path) -> list[Member]:
    data = crafted_pickle(tmp_path / "PWNED")
    assert marker_is_live(data, tmp_path / "PWNED")
    return [Member(m.name, data) if m.name == seed0_file(config, "model.pt") else m
            for m in two_runs(config, tmp_path)]


def disk_fills_at(count: int) -> Callable[[pytest.MonkeyPatch], None]:
    """The disk is full after ``count`` members were extracted."""
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        real, done = tarfile.TarFile.extract, []

        def extract(self, member, *args, **kwargs):
            if len(done) == count:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done.append(member)
            return real(self, member, *args, **kwargs)
        monkeypatch.setattr(tarfile.TarFile, "extract", extract)
    return patch


def no_free_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("analysis.archive.shutil.disk_usage",
                        lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))


def second_move_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename of the second run folder into place fails (after the first one succeeded)."""
    real, calls = os.replace, []

    def replace(src, dst):
        if "/seed1-" in str(dst) and ".import-" in str(src):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        calls.append(dst)
        return real(src, dst)
    monkeypatch.setattr("analysis.archive.os.replace", replace)


REMAKE = r"remove that run folder from the archive \(or train the run again and re-make it\)"
CASES = {
    # Checkpoints (issue 19: security, wrong results, unclear errors).
    "crafted pickle as the checkpoint": Case(
        "train", r"checkpoint .*/\.seed0-\w+\.ckpt cannot be read as a checkpoint of this "
        r"project: it is damaged, was written by an older version of this code, or holds more than "
        r"tensors and plain data \(UnpicklingError: "
        r"Unsupported global: GLOBAL io.open .*\); it is not used: delete it \(rm '.*\.ckpt'\) "
        r"to start the run from epoch 1, or pass --discard-bad-checkpoint",
        with_checkpoint(crafted)),
    "random bytes as the checkpoint": Case(
        "train", r"\.ckpt cannot be read as a checkpoint .*delete it \(rm '.*\.ckpt'\)",
        with_checkpoint(random_bytes)),
    "random bytes over the checkpoint's weights": Case(
        "train", r"\.ckpt was changed or damaged after it was written: its content has sha256 "
        r"\w+\.\.\., it was saved with \w+\.\.\.; it is not used: delete it \(rm",
        with_checkpoint(random_weights)),
    "a weight changed in the checkpoint": Case(
        "train", r"\.ckpt was changed or damaged after it was written.*--discard-bad-checkpoint",
        with_checkpoint(changed_weight)),
    "training data replaced since the checkpoint": Case(
        "train", r"\.ckpt was written with other training data than this run's \(sha256 \w+\.\.\. "
        r"in the checkpoint, \w+\.\.\. now\): the data folder's files were replaced since; it "
        r"is not used: delete it", with_checkpoint(replaced_data)),
    "full disk while writing the run folder": Case(
        "train", r"no space left on the device of .*/config.json .*free space there",
        simulated, patch=full_disk),
    # Archives (issue 19: security, half-written imports, unclear errors).
    "symlink chain out of the results folder (CVE-2025-4517)": Case(
        "import", r"member name 'smoke/d{247}' is not a plain relative path \(.*a part longer "
        r"than 128 characters", archive(lambda config, tmp: symlink_chain("outside"))),
    "a hard link": Case("import", r"member 'smoke/manifest.json' is a hard link to '/etc/passwd'",
                        archive(with_member(lambda c, t: Member("smoke/manifest.json",
                                                                kind="hard",
                                                                linkname="/etc/passwd")))),
    "a link in the middle of a run": Case(
        "import", r"member 'smoke/runs/pendulum_filtering/rkn/seed1-\w+/\w+\.\w+' is a symbolic "
        r"link to '/etc/passwd'.*nothing was imported", archive(link_in_the_middle)),
    "a member twice": Case(
        "import", r"member '.*/seed0-\w+/metrics.json' appears twice in the archive",
        archive(with_member(lambda c, t: Member(seed0_file(c, "metrics.json"), b"{}")))),
    "a member above the per-file limit": Case(
        "import", r"member '.*/seed0-\w+/config.json' is \d+ bytes, above the per-file limit "
        r"of 524 bytes "
        r"\(--max-file-mb\)", archive(two_runs), args=["--max-file-mb", "0.0005"]),
    "members above the total limit": Case(
        "import", r"the members hold more than the total limit of 1.0 KB \(--max-total-gb\), "
        r"reached at 'smoke/", archive(two_runs), args=["--max-total-gb", "0.000001"]),
    "a name climbing out with ..": Case(
        "import", r"member name 'smoke/runs/../../escape.txt' is not a plain relative path",
        archive(with_member(lambda c, t: Member("smoke/runs/../../escape.txt", b"x")))),
    "an absolute name": Case(
        "import", r"member name '/tmp/escape.txt' is not a plain relative path",
        archive(with_member(lambda c, t: Member("/tmp/escape.txt", b"x")))),
    "a member of another scale": Case(
        "import", r"member 'paper/manifest.json' is outside smoke/; this is not an archive of "
        r"scale 'smoke'", archive(with_member(lambda c, t: Member("paper/manifest.json", b"{}")))),
    "a file outside the run-folder layout": Case(
        "import", r"member '.*/seed0-\w+/notes.txt' is not part of a run archive",
        archive(with_member(lambda c, t: Member(seed0_file(c, "model.pt").replace(
            "model.pt", "notes.txt"), b"x")))),
    "a run folder lacking a file": Case(
        "import", r"run folder smoke/runs/pendulum_filtering/rkn/seed0-\w+ in the archive lacks "
        r"calibration.csv \(a run folder holds config.json, model.pt, .*\); " + REMAKE,
        archive(without("calibration.csv"))),
    "config.json naming another seed": Case(
        "import", r"seed0-\w+/config.json names experiment 'pendulum_filtering', model 'rkn', "
        r"seed 1, but its folder is pendulum_filtering/rkn/seed0-\w+: the folder was renamed or "
        r"its config.json edited", archive(edited_run(seed=1))),
    "config.json with other settings than its folder's name": Case(
        "import", r"seed0-\w+/config.json gives the run name seed0-\w+, not its folder's "
        r"seed0-\w+: its settings were edited", archive(edited_run(dataset="quad_link"))),
    "a crafted model.pt": Case(
        "import", r"model file smoke/runs/pendulum_filtering/rkn/seed0-\w+/model.pt cannot be read "
        r"safely: it is damaged or holds more than tensors and plain data \(UnpicklingError: "
        r"Unsupported global: GLOBAL io.open .*\); it was not used; remove that run folder",
        archive(crafted_model)),
    "an existing different run folder": Case(
        "import", r"run folder .*results/smoke/runs/pendulum_filtering/rkn/seed0-\w+ exists with "
        r"other content than the archive's \(differs in metrics.json\); pass --force",
        archive(two_runs, local=True)),
    "not a tar archive": Case(
        "import", r"runs.tar.gz cannot be read as a tar archive \(.*\); copy it again",
        lambda tmp, configs: ["--archive", str(not_an_archive(tmp))]),
    "an archive cut short": Case(
        "import", r"runs.tar.gz cannot be read as a tar archive", archive(two_runs, cut=300)),
    "no space for the archive": Case(
        "import", r"no space left for the archive on the device of .*results: its files need "
        r"[\d.]+ KB and 1000 bytes are free", archive(two_runs), patch=no_free_space),
    "the disk fills up during the extraction": Case(
        "import", r"no space left on the device while writing .*/\.import-smoke\.\w+\.tmp/smoke/"
        r"runs/pendulum_filtering/rkn/seed0-\w+/\w+\.\w+ \(the staging copy of 'smoke/runs/"
        r"pendulum_filtering/rkn/seed0-\w+/\w+\.\w+'\); free space", archive(two_runs),
        patch=disk_fills_at(9)),
    "a run folder fails to move in after another one did": Case(
        "import", r"Input/output error: .*seed1-\w+; the archive must be readable and "
        r"results_dir writable, nothing was imported", archive(two_runs),
        patch=second_move_fails),
}


def snapshot(tmp_path: Path) -> dict[str, str]:
    """Every file and link under ``tmp_path`` with its content, and every run, staging or
    temporary folder (other folders are created on the way and carry no result)."""
    found = {}
    for folder, dirs, files in os.walk(tmp_path):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(tmp_path))
            if path.is_symlink():
                found[key] = "link " + os.readlink(path)
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif name.endswith(".tmp") or re.fullmatch(r"seed\d+-\w+", name):
                found[key] = "folder"
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_untrusted_input_exits_2_names_it_and_changes_nothing(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    configs = config_args(tmp_path)
    (tmp_path / "outside").mkdir()
    extra = case.prepare(tmp_path, configs)
    before = snapshot(tmp_path)
    if case.patch is not None:
        case.patch(monkeypatch)
    capsys.readouterr()
    script = {"train": train, "import": import_runs}[case.script]
    code = script.main(configs + extra + case.args)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(case.message, err.replace("\n", " ")), err
    assert "Traceback" not in err
    assert not (tmp_path / "PWNED").exists()  # the crafted code never ran
    assert snapshot(tmp_path) == before


def test_every_case_of_the_issue_is_covered() -> None:
    assert len(CASES) >= 25

"""DVC around the workflow (slow): `dvc repro smoke` in a fresh copy, `dvc metrics diff` after a
config edit, and `dvc push` / `dvc pull` into another clone without recomputing.

The test copies the repository's files (tracked and untracked-but-not-ignored, as they are in the
working tree) into a new git repository, cuts the config down to E1 with two models so the two
reproductions take seconds, points the DVC remote at a temporary folder, and links the project's
existing `.venv` (so nothing is installed). The real remote beside the repository is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.reduced_config import reduce_config

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
DVC = VENV / "bin" / "dvc"
EXPERIMENT = "pendulum_filtering"


def run(cwd: Path, *command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command in ``cwd``; fail the test with its output when it fails."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """git with a fixed identity (CI machines may have none)."""
    return run(cwd, "git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args)


def copy_project(destination: Path) -> None:
    """The working tree's tracked and untracked-not-ignored files, with their modification times
    (so make sees the linked .venv as up to date with requirements.txt)."""
    listing = run(ROOT, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
    for rel in filter(None, listing.split("\0")):
        source = ROOT / rel
        if source.is_file():
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run(cwd, str(DVC), *args)


@pytest.mark.slow
def test_dvc_repro_metrics_diff_push_pull(tmp_path: Path) -> None:
    assert DVC.is_file(), f"{DVC} is missing: run `make venv` first"
    repo, clone, storage = tmp_path / "repo", tmp_path / "clone", tmp_path / "storage"
    copy_project(repo)
    for name in ("config.yaml", "smoke.yaml"):
        path = repo / "config" / name
        reduce_config(path, path, {EXPERIMENT: ["rkn", "lstm"]})
    os.symlink(VENV, repo / ".venv")
    # make must not want to rebuild the linked environment (it would reinstall into the real one).
    stale = subprocess.run(["make", "-q", ".venv/.installed"], cwd=repo, check=False)
    assert stale.returncode == 0, "the project's .venv is older than its requirements: run `make venv` first"
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "copy")
    dvc(repo, "remote", "modify", "local", "url", str(storage))

    dvc(repo, "repro", "smoke")
    metrics = json.loads((repo / "reports" / "smoke" / "metrics.json").read_text())
    assert f"{EXPERIMENT}.rkn.log_lik" in metrics and f"{EXPERIMENT}.lstm.rmse" in metrics
    assert "changed" not in dvc(repo, "status", "smoke").stdout
    dvc(repo, "push")
    assert any(storage.rglob("*")), "dvc push stored nothing"
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "smoke results")

    # A config edit: DVC sees the changed dependency, reruns, and metrics diff shows what moved.
    smoke_yaml = repo / "config" / "smoke.yaml"
    smoke = yaml.safe_load(smoke_yaml.read_text())
    smoke["training"]["epochs"] += 1
    smoke_yaml.write_text(yaml.safe_dump(smoke, sort_keys=False))
    assert "config/smoke.yaml" in dvc(repo, "status", "smoke").stdout
    dvc(repo, "repro", "smoke")
    diff = json.loads(dvc(repo, "metrics", "diff", "--json", "--targets", "reports/smoke/metrics.json").stdout)
    changes = diff["reports/smoke/metrics.json"]
    epoch_key = f"{EXPERIMENT}.rkn.selected_epoch"
    assert changes[epoch_key]["new"] == changes[epoch_key]["old"] + 1, changes.get(epoch_key)
    assert len(changes) > 2, changes

    # Another clone of the committed state pulls the results instead of recomputing them.
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    os.symlink(VENV, clone / ".venv")
    dvc(clone, "pull", "smoke")
    pulled = sorted(p.relative_to(clone) for p in (clone / "results" / "smoke").rglob("metrics.json"))
    assert len(pulled) == 4, pulled  # 2 models x 2 seeds
    assert "changed" not in dvc(clone, "status", "smoke").stdout

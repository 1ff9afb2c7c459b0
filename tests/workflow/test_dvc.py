"""DVC around the workflow (slow): `dvc repro pipeline@smoke` in a fresh copy, `dvc params diff`
and `dvc metrics diff` after a config edit, `dvc exp run --set-param` rerunning exactly the
affected runs, and `dvc push` / `dvc pull` into another clone without recomputing.

The test copies the repository's files (tracked and untracked-but-not-ignored, as they are in the
working tree) into a new git repository, cuts the config down to two experiments with two models
each so the reproductions take seconds, points the DVC remote at a temporary folder, and links the project's
existing `.venv` (so nothing is installed). The real remote beside the repository is never touched.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.config import load_config
from harness.runspec import resolve_run, run_grid
from tests.reduced_config import reduce_config

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
DVC = VENV / "bin" / "dvc"
EXPERIMENT = "pendulum_filtering"
OTHER = "pendulum_imputation"  # its epochs are edited through `dvc exp run --set-param`
KEEP = {EXPERIMENT: ["rkn", "lstm"], OTHER: ["rkn", "hold_last_frame"]}
STAGE = "pipeline@smoke"


def run(cwd: Path, *command: str, timeout: float = 3600) -> subprocess.CompletedProcess:
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


def lock_changes(status: dict) -> list:
    """What `dvc status STAGE --json` says changed besides the outputs: dependencies (code, the
    published numbers), params (the config files) or the command. Outputs are left out: a
    fresh clone has not pulled results/smoke, and report.html is not committed."""
    return [entry for entry in status.get(STAGE, [])
            if not (isinstance(entry, dict) and set(entry) == {"changed outs"})]


def test_committed_lock_matches_the_code_and_configs() -> None:
    """dvc.lock records the code, configs and published numbers that made the committed smoke
    report; `dvc status` (which hashes the local files, nothing remote) finds none of them
    changed. Fails when code or config moved without the lock: `make refresh-smoke-reference`
    regenerates the report and updates the lock with `dvc commit`."""
    assert DVC.is_file(), f"{DVC} is missing: run `make venv` first"
    status = json.loads(dvc(ROOT, "status", STAGE, "--json").stdout or "{}")
    changes = lock_changes(status)
    assert not changes, (f"dvc.lock does not match the committed code and configs of {STAGE}: "
                         f"{changes}; regenerate the committed smoke report and its lock with "
                         "`make refresh-smoke-reference` and commit both")
    assert lock_changes({STAGE: [{"changed outs": {"results/smoke": "deleted"}}]}) == []
    assert lock_changes({STAGE: [{"changed deps": {"rkn": "modified"}}, "changed command"]})


@pytest.mark.slow
def test_dvc_repro_metrics_diff_push_pull(tmp_path: Path) -> None:
    assert DVC.is_file(), f"{DVC} is missing: run `make venv` first"
    repo, clone, storage = tmp_path / "repo", tmp_path / "clone", tmp_path / "storage"
    copy_project(repo)
    for name in ("config.yaml", "smoke.yaml"):
        path = repo / "config" / name
        reduce_config(path, path, KEEP)
    os.symlink(VENV, repo / ".venv")
    # make must not want to rebuild the linked environment (it would reinstall into the real one).
    stale = subprocess.run(["make", "-q", ".venv/.installed"], cwd=repo, check=False)
    assert stale.returncode == 0, "the project's .venv is older than its requirements: run `make venv` first"
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "copy")
    dvc(repo, "remote", "modify", "local", "url", str(storage))

    dvc(repo, "repro", STAGE)
    metrics = json.loads((repo / "reports" / "smoke" / "metrics.json").read_text())
    assert f"{EXPERIMENT}.rkn.log_lik" in metrics and f"{EXPERIMENT}.lstm.rmse" in metrics
    assert "changed" not in dvc(repo, "status", STAGE).stdout
    # report.html is a DVC-cached output, ignored by git; the committed report stays clean.
    assert run(repo, "git", "check-ignore", "reports/smoke/report.html").returncode == 0
    for name in ("efficiency.csv", "efficiency.md", "efficiency.png"):  # claim 7: timings
        assert run(repo, "git", "check-ignore", f"reports/smoke/{name}").returncode == 0
    dvc(repo, "push")
    assert any(storage.rglob("*")), "dvc push stored nothing"
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "smoke results")
    assert git(repo, "status", "--porcelain").stdout == "", "repro left tracked files modified"

    # A config edit: DVC sees the changed dependency, reruns, and metrics diff shows what moved.
    smoke_yaml = repo / "config" / "smoke.yaml"
    smoke = yaml.safe_load(smoke_yaml.read_text())
    smoke["training"]["epochs"] += 1
    smoke_yaml.write_text(yaml.safe_dump(smoke, sort_keys=False))
    assert "config/smoke.yaml" in dvc(repo, "status", STAGE).stdout
    params = json.loads(dvc(repo, "params", "diff", "--json").stdout)
    epochs = params["config/smoke.yaml"]["training.epochs"]
    assert epochs["new"] == epochs["old"] + 1, params
    dvc(repo, "repro", STAGE)
    diff = json.loads(dvc(repo, "metrics", "diff", "--json", "--targets", "reports/smoke/metrics.json").stdout)
    changes = diff["reports/smoke/metrics.json"]
    epoch_key = f"{EXPERIMENT}.rkn.selected_epoch"
    assert changes[epoch_key]["new"] == changes[epoch_key]["old"] + 1, changes.get(epoch_key)
    assert len(changes) > 2, changes

    dvc(repo, "push")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more epochs")

    # An experiment with one setting changed reruns exactly the runs it affects.
    runs = repo / "results" / "smoke" / "runs"
    before = {p: p.stat().st_mtime_ns for p in runs.glob("*/*/*/metrics.json")}
    dvc(repo, "exp", "run", STAGE, "--set-param",
        f"config/smoke.yaml:experiments.{OTHER}.training.epochs=2")
    after = {p: p.stat().st_mtime_ns for p in runs.glob("*/*/*/metrics.json")}
    new = {p.relative_to(runs).parts[:2] for p in set(after) - set(before)}
    assert new == {(OTHER, model) for model in KEEP[OTHER]}, new
    assert all(after[p] == before[p] for p in before if p.relative_to(runs).parts[0] == EXPERIMENT)
    shown = csv.DictReader(io.StringIO(dvc(repo, "exp", "show", "--csv").stdout))
    edited = {row[f"config/smoke.yaml:experiments.{OTHER}.training.epochs"] for row in shown}
    assert "2" in edited, edited
    git(repo, "checkout", "-q", "--", ".")

    # Another clone of the committed state pulls the results instead of recomputing them.
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    os.symlink(VENV, clone / ".venv")
    dvc(clone, "pull", STAGE)
    pulled = sorted(p.relative_to(clone) for p in (clone / "results" / "smoke").rglob("metrics.json"))
    config = load_config([clone / "config" / "config.yaml", clone / "config" / "smoke.yaml"])
    wanted = {resolve_run(config, *key).run_dir("results") / "metrics.json" for key in run_grid(config)}
    assert len(wanted) == 8 and wanted <= set(pulled), pulled  # 2 experiments x 2 models x 2 seeds
    assert "changed" not in dvc(clone, "status", STAGE).stdout

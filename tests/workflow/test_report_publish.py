"""Reports survive any kill: the workflow builds the report in results/{scale}/report (outputs
Snakemake may delete), `make pipeline` publishes it as reports/{scale} in one atomic step
(workflow/scripts/publish_report.py), and after a SIGKILL of the whole pipeline the same command
removes Snakemake's stale lock (workflow/scripts/lock_is_stale.py) and resumes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from analysis.report import expected_outputs
from harness.config import load_config
from tests.reduced_config import reduce_config, reduced_smoke
from tests.workflow.test_dvc import VENV, copy_project

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))

import lock_is_stale  # noqa: E402
import publish_report  # noqa: E402

KEEP = {"pendulum_filtering": ["rkn", "lstm_small"]}


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def staged(tmp_path: Path) -> tuple[list[str], Path, Path]:
    """Config arguments of a reduced smoke config under tmp_path, its staging folder filled with
    a fake but complete report, and its reports folder."""
    base, smoke = reduced_smoke(tmp_path / "cfg", KEEP)
    here = tmp_path / "cfg" / "here.yaml"
    here.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results")}))
    config = load_config([base, smoke, here])
    staging = tmp_path / "results" / "smoke" / "report"
    for rel in expected_outputs(config):
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(f"built {rel}".encode())
    (staging / "report.html").write_text("html")
    args = [a for path in (base, smoke, here) for a in ("--config", str(path))]
    return args, staging, tmp_path / "reports" / "smoke"


def test_publish_replaces_the_report_whole_or_refuses(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    args, staging, out = staged(tmp_path)
    monkeypatch.chdir(tmp_path)  # reports/{scale} lies in the working directory, as with make
    out.mkdir(parents=True)
    (out / ".gitignore").write_text("/report.html\n")
    (out / "claims.md").write_text("old")
    before = tree(out)
    (staging / "tables" / "pendulum_filtering.csv").unlink()
    assert publish_report.main(args) == 2
    assert "results/smoke/report is incomplete (no tables/pendulum_filtering.csv)" in \
        capsys.readouterr().err
    assert tree(out) == before
    (staging / "tables" / "pendulum_filtering.csv").write_text("new")
    assert publish_report.main(args) == 2  # report.html is now older than a table
    assert "report.html is older than the report it shows" in capsys.readouterr().err
    assert tree(out) == before
    (staging / "report.html").write_text("new html")
    assert publish_report.main(args) == 0
    assert tree(out) == {**tree(staging), ".gitignore": b"/report.html\n"}
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def sleeper(folder: Path, *command: str) -> subprocess.Popen:
    """A process running ``command`` (then a 2-minute sleep) in ``folder``, once its command
    line can be read."""
    process = subprocess.Popen([*command, "-c", "import time; time.sleep(120)"], cwd=folder)
    while not psutil.Process(process.pid).cmdline()[1:]:
        time.sleep(0.01)
    return process


def test_a_lock_is_stale_only_when_no_snakemake_of_the_folder_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    check = ["--directory", str(tmp_path)]
    assert lock_is_stale.main(check) == 1  # no lock
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/x\n")
    assert lock_is_stale.main(check) == 0
    assert "holds the lock of a Snakemake that no longer runs" in capsys.readouterr().err
    program = tmp_path / "bin" / "snakemake"  # a Snakemake of this folder: python named so
    program.parent.mkdir()
    program.symlink_to(sys.executable)
    script = tmp_path / "workflow" / "scripts" / "train.py"  # a job a killed Snakemake left
    script.parent.mkdir(parents=True)
    script.write_text("import time; time.sleep(120)")
    cases = [((str(program),), 1, ""), ((sys.executable, str(script)), 1, "jobs it started "
             "still do"), ((sys.executable,), 0, "no longer runs")]
    for command, code, message in cases:
        process = sleeper(tmp_path, *command)
        try:
            assert lock_is_stale.main(check) == code, command
            assert message in capsys.readouterr().err
        finally:
            process.kill()
            process.wait()
    assert lock_is_stale.is_snakemake(["/usr/bin/python3", "-m", "snakemake", "--cores", "2"])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(predicate, what: str, process: subprocess.Popen | None, log: Path,
             limit: float = 3600) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` if ``process`` ends first, or after
    ``limit`` seconds (a generous bound for a very loaded machine, never a speed requirement)."""
    started = time.monotonic()
    while not predicate():
        assert process is None or process.poll() is None, \
            f"the pipeline ended before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() - started < limit, f"waited {limit:.0f} s for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_during_the_report_rule_keeps_the_old_report_and_the_command_resumes(
        tmp_path: Path) -> None:
    """`make pipeline` in a copy of the project (smoke, E1 with two models); then an edit of the
    published numbers (an input of the report only) and `make pipeline` again, SIGKILLed with all
    its processes while Snakemake runs the report rule (which has just deleted its outputs): the
    published report is the complete old one, byte for byte, and the same command removes the
    dead run's lock and publishes the complete new one."""
    repo = tmp_path / "repo"
    copy_project(repo)
    for name in ("config.yaml", "smoke.yaml"):
        reduce_config(repo / "config" / name, repo / "config" / name, KEEP)
    os.symlink(VENV, repo / ".venv")
    stale = subprocess.run(["make", "-q", ".venv/.installed"], cwd=repo, check=False)
    assert stale.returncode == 0, \
        "the project's .venv is older than its requirements: run `make venv` first"
    shutil.rmtree(repo / "reports" / "smoke")  # the committed report is of the whole smoke scale
    make = ["make", "pipeline", "SCALE=smoke"]
    first = subprocess.run(make, cwd=repo, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    report = repo / "reports" / "smoke"
    old = tree(report)
    assert "report.html" in old and "claims.md" in old

    numbers = repo / "config" / "reference_numbers.yaml"
    numbers.write_text(numbers.read_text().replace("500 epochs, batch 50", "500 epochs (EDITED)"))
    log = tmp_path / "second.log"
    with log.open("w") as handle:
        second = subprocess.Popen(make, cwd=repo, stdout=handle, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    staging = repo / "results" / "smoke" / "report"
    # Snakemake deletes the rule's outputs before it runs the job: claims.md goes first.
    wait_for(lambda: "rule aggregate" in log.read_text() and not (staging / "claims.md").exists(),
             "Snakemake to start the report rule", second, log)
    os.killpg(second.pid, signal.SIGKILL)  # make, Snakemake and the job, as `kill -9 -PGID`
    second.wait()
    wait_for(lambda: not group_alive(second.pid), "the killed processes to end", None, log)
    assert tree(report) == old, "the published report changed under a kill"
    assert any((repo / ".snakemake" / "locks").iterdir()), "the kill left no lock to handle"

    third = subprocess.run(make, cwd=repo, capture_output=True, text=True, check=False)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[:3000]
    assert "holds the lock of a Snakemake that no longer runs" in third.stderr
    new = tree(report)
    assert b"(EDITED)" in new["claims.md"] and set(new) == set(old)
    assert not [p for p in report.parent.iterdir() if p.name.endswith(".tmp")]

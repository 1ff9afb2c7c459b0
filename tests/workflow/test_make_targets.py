"""The Makefile's config handling: OVERLAY files after the scale's, a config checked by the
project's loader before Snakemake starts, and `make runs` with one experiment's run targets
(workflow/scripts/run_targets.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import run_targets  # noqa: E402

CONFIGS = ["--config", str(ROOT / "config" / "config.yaml"),
           "--config", str(ROOT / "config" / "smoke.yaml")]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str) -> subprocess.CompletedProcess:
    # --no-print-directory: under `make test` this is a sub-make, which would otherwise wrap its
    # output in "Entering/Leaving directory" lines.
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, check=False)


def test_run_targets_lists_one_experiments_runs(capsys: pytest.CaptureFixture) -> None:
    assert run_targets.main(CONFIGS + ["--experiment", "ablations"]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) == 16 and all(p.startswith("results/smoke/runs/ablations/") for p in paths)
    assert all(p.endswith("/metrics.json") for p in paths)
    assert run_targets.main(CONFIGS) == 0
    assert len(capsys.readouterr().out.split()) == 104  # the smoke scale's runs


def test_print_scale_follows_an_overlay_that_names_its_own(capsys: pytest.CaptureFixture) -> None:
    assert run_targets.main(CONFIGS + ["--print-scale"]) == 0
    assert capsys.readouterr().out.strip() == "smoke"
    e3 = ["--config", str(ROOT / "config" / "e3_script.yaml")]
    assert run_targets.main(CONFIGS + e3 + ["--print-scale"]) == 0
    assert capsys.readouterr().out.strip() == "e3_script"


def test_run_targets_refuses_an_unknown_experiment_or_a_bad_config(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_targets.main(CONFIGS + ["--experiment", "pendulum"]) == 2
    assert "--experiment pendulum: not an experiment of the config" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epochs: 1}\ntraining: {batch_size: 2}\n")
    assert run_targets.main(CONFIGS + ["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "key 'training' is repeated" in err and str(bad) in err


@needs_make
def test_overlays_come_after_the_scale_and_targets_before_configfile() -> None:
    out = make("-n", "--always-make", "pipeline", "SCALE=smoke",
               "OVERLAY=a.yaml b.yaml").stdout
    commands = [line for line in out.splitlines() if "snakemake --profile" in line]
    assert len(commands) == 3, out  # a stale lock's --unlock, the workflow, report.html
    configfile = r"--configfile config/config.yaml config/smoke.yaml a.yaml b.yaml\s*(; fi)?$"
    assert all(re.search(configfile, line.rstrip()) for line in commands), commands
    configs = ("--config config/config.yaml --config config/smoke.yaml --config a.yaml "
               "--config b.yaml")
    assert f"run_targets.py {configs}" in out
    assert f"lock_is_stale.py; then .venv/bin/snakemake" in out and "--unlock" in commands[0], out
    # report.html goes into the merged config's report folder (an overlay may name its own
    # scale), then that folder is published as reports/{scale}.
    assert "--print-staging) && " in out and "--report $staging/report.html" in out, out
    assert out.rstrip().endswith(f"publish_report.py {configs}"), out
    runs = make("-n", "runs", "SCALE=smoke", "EXPERIMENT=ablations").stdout
    assert "--experiment ablations" in runs and "$targets --configfile" in runs, runs


@needs_make
def test_make_stops_with_the_projects_message(tmp_path: Path) -> None:
    missing = make("pipeline", "SCALE=nosuch")
    assert missing.returncode == 2 and "SCALE=nosuch: no config/nosuch.yaml" in missing.stdout
    assert make("runs", "SCALE=smoke").returncode == 2
    if make("-q", ".venv/.installed").returncode != 0:
        pytest.skip("the project's .venv is older than its requirements: run `make venv` first")
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epochs: 1\n")
    result = make("pipeline", "SCALE=smoke", f"OVERLAY={bad}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f'in "{bad}", line 1' in result.stderr, result.stderr
    assert "snakemake" not in result.stdout, result.stdout

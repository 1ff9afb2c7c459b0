"""The SLURM profile (profiles/slurm) on a real single-node SLURM started by tests/cluster/slurm.sh.

The slow tests bring the cluster up (installing Debian's slurmctld, slurmd and munge when missing),
run the smoke scale through ``--profile profiles/slurm`` in a temporary working directory, and stop
the cluster afterwards, also when a test fails (unless it was already running before). Without a
usable SLURM they fail under CI (CI=true) and are skipped elsewhere, with the reason.

The test cluster has one CPU partition and no GPU: the jobs run with RKN_SLURM_GPUS=0. Every
Snakemake call is bounded with ``timeout -k`` (Snakemake ignores SIGTERM while jobs are out). The
bounds only stop a hung test: they are generous (GENEROUS_S, an hour) and never a speed
requirement, and a failure says what was waited for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.config import load_config
from harness.runspec import resolve_run, run_grid
from tests.reduced_config import reduced_smoke
from tests.workflow.test_smoke_regression import compare_metrics

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "cluster" / "slurm.sh"
PROFILE = ROOT / "profiles" / "slurm"
REFERENCE = ROOT / "tests" / "reference" / "smoke_metrics.json"
# The SLURM tests schedule a slice of the smoke scale (two experiments, two models each, 2 seeds):
# `make test` runs the whole smoke scale locally; here the scheduling is what is tested.
KEEP = {"pendulum_filtering": ["rkn", "lstm"], "pendulum_imputation": ["rkn", "hold_last_frame"]}
PARTITION = "cpu"
ACCOUNT = "ci"
# The test settings of the profile: an account (not checked by this cluster), the CPU partition, no GPU.
SLURM_ENV = {"RKN_SLURM_ACCOUNT": ACCOUNT, "RKN_SLURM_PARTITION": PARTITION, "RKN_SLURM_GPUS": "0"}
# The bound of a Snakemake call or a cluster start: stops a hung test, whatever the machine's load.
GENEROUS_S = 3600


def slurm_env(**changes: str | None) -> dict[str, str]:
    """The environment for Snakemake: this process's, without SLURM job variables, plus SLURM_ENV."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLURM_", "SBATCH_", "RKN_SLURM_"))}
    env.update(SLURM_ENV)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def snakemake_slurm(workdir: Path, *args: str, configs: list[Path], limit: int = GENEROUS_S,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The workflow through the SLURM profile, killed after ``limit`` seconds (timeout -k; exit
    status 124 or 137, which ``describe`` reports as such)."""
    command = ["timeout", "-k", "30", str(limit), sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
               "--directory", str(workdir), "--profile", str(PROFILE), "--workflow-profile", "none",
               # The plugin's first status check comes this long after a submission and each
               # check without news waits 10 s longer: 5 s instead of the profile's 10 s finds
               # the short test jobs finished sooner (MinJobAge 300 s >= 3 x 5 s).
               "--slurm-init-seconds-before-status-checks", "5",
               *args, "--configfile", *map(str, configs)]
    return subprocess.run(command, capture_output=True, text=True, timeout=limit + 60, check=False,
                          env=env or slurm_env(), cwd=ROOT)


def run_id(result: subprocess.CompletedProcess) -> str:
    """The plugin's run ID (the SLURM job name of every job of that Snakemake call)."""
    match = re.search(r"SLURM run ID: (\S+)", result.stdout + result.stderr)
    assert match, result.stdout[-3000:] + result.stderr[-3000:]
    return match.group(1)


def slurm_jobs(name: str) -> list[dict[str, str]]:
    """SLURM's record of every job named ``name``, finished ones included (kept for MinJobAge)."""
    fields = {"id": "%i", "state": "%T", "comment": "%k", "account": "%a", "partition": "%P",
              "time_limit": "%l", "gres": "%b"}
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--name", name,
                          "--format", "|".join(fields.values())],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]


def overlay(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


def describe(result: subprocess.CompletedProcess) -> str:
    timed_out = (f" (Snakemake was stopped after {result.args[3]} s: it had not finished the "
                 "workflow by then)" if result.returncode in (124, 137) else "")
    return (f"rc {result.returncode}{timed_out}\n--- stdout\n{result.stdout[-4000:]}\n"
            f"--- stderr\n{result.stderr[-6000:]}")


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[None]:
    """A running single-node SLURM: started (and at the end stopped) here unless it already runs."""
    env = dict(os.environ, RKN_SLURM_PARTITION=PARTITION)

    def script(action: str, limit: int) -> subprocess.CompletedProcess:
        return subprocess.run(["timeout", "-k", "10", str(limit), "bash", str(SCRIPT), action], env=env,
                              capture_output=True, text=True, check=False)

    was_running = script("status", 30).returncode == 0
    if not was_running:
        started = time.monotonic()
        start = script("start", GENEROUS_S)
        if start.returncode != 0:
            script("stop", 120)
            message = (f"could not start the test SLURM cluster (bash tests/cluster/slurm.sh start, "
                       f"rc {start.returncode}):\n{start.stdout[-2000:]}{start.stderr[-3000:]}")
            if os.environ.get("CI"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        print(f"SLURM test cluster up in {time.monotonic() - started:.1f} s")
    try:
        yield
    finally:
        if not was_running:
            stop = script("stop", 180)
            assert stop.returncode == 0, stop.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One working directory for the module: the time-limit test reuses the smoke run's dataset."""
    return tmp_path_factory.mktemp("slurm_smoke")


@pytest.fixture(scope="module")
def configs(workdir: Path) -> list[Path]:
    """config.yaml and smoke.yaml reduced to KEEP."""
    return reduced_smoke(workdir / "cfg", KEEP)


def test_profile_reads_site_settings_from_the_environment() -> None:
    """Account, partition, GPU count and model come from RKN_SLURM_*; 'none' drops the account."""
    from snakemake.cli import parse_args  # noqa: PLC0415

    def parsed(**env: str) -> tuple[dict, dict]:
        saved = dict(os.environ)
        try:
            for key in [key for key in os.environ if key.startswith("RKN_SLURM_")]:
                del os.environ[key]
            os.environ.update(env)
            _, args = parse_args(["--profile", str(PROFILE), "--workflow-profile", "none", "-n"])
        finally:
            os.environ.clear()
            os.environ.update(saved)
        defaults = {name: res.raw for name, res in args.default_resources.items()}
        train = {name: res.raw for name, res in args.set_resources["train"].items()}
        efficiency = {name: res.raw for name, res in args.set_resources["efficiency"].items()}
        # claim 7 is measured on the training jobs' kind of device (it needs no early SIGTERM)
        assert efficiency == {k: v for k, v in train.items() if k != "slurm_extra"}
        return defaults, train

    defaults, train = parsed()
    assert "slurm_account" not in defaults and "slurm_partition" not in defaults
    assert train == {"gpu": 1, "slurm_extra": "'--signal=TERM@180'"}
    defaults, train = parsed(RKN_SLURM_ACCOUNT="proj-1", RKN_SLURM_PARTITION="gpu", RKN_SLURM_GPU_MODEL="a100")
    assert defaults["slurm_account"] == "'proj-1'" and defaults["slurm_partition"] == "'gpu'"
    assert train == {"gpu": 1, "gpu_model": "'a100'", "slurm_extra": "'--signal=TERM@180'"}
    defaults, train = parsed(RKN_SLURM_ACCOUNT="none", RKN_SLURM_PARTITION="cpu", RKN_SLURM_GPUS="0",
                             RKN_SLURM_SIGNAL_SECONDS="0")
    assert defaults["slurm_account"] == "''"
    assert train == {"gpu": 0}


def test_make_reproduce_uses_only_the_slurm_profile() -> None:
    """`make reproduce SCALE=paper PROFILE=slurm` runs Snakemake with profiles/slurm and no workflow profile."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "--always-make", "pipeline", "SCALE=paper", "PROFILE=slurm"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    commands = [line for line in out.splitlines() if "snakemake --profile" in line]
    assert commands, out
    assert all("--profile profiles/slurm --workflow-profile none" in line and "config/paper.yaml" in line
               for line in commands), commands


@pytest.mark.slow
def test_missing_account_stops_before_submission(slurm_cluster: None, tmp_path: Path,
                                                 configs: list[Path]) -> None:
    """Without RKN_SLURM_ACCOUNT / RKN_SLURM_PARTITION nothing is submitted and the message says what to set."""
    result = snakemake_slurm(tmp_path, configs=configs,
                             env=slurm_env(RKN_SLURM_ACCOUNT=None, RKN_SLURM_PARTITION=None))
    assert result.returncode != 0, describe(result)
    output = result.stdout + result.stderr
    assert "SLURM settings missing, nothing was submitted" in output, describe(result)
    assert "RKN_SLURM_ACCOUNT" in output and "RKN_SLURM_PARTITION" in output
    assert "submitted with SLURM jobid" not in output
    assert slurm_jobs(run_id(result)) == []


@pytest.mark.slow
def test_smoke_scale_through_slurm_matches_local_run(slurm_cluster: None, workdir: Path,
                                                     configs: list[Path]) -> None:
    """Every simulate and train job and the claim-7 measurement run as SLURM jobs; the report's
    metrics equal the local reference (its entries for the experiments and models of KEEP, and
    the claim-7 parameter counts)."""
    config = load_config(configs)
    started = time.monotonic()
    result = snakemake_slurm(workdir, configs=configs)
    elapsed = time.monotonic() - started
    print(f"smoke scale through SLURM: {elapsed:.0f} s")
    assert result.returncode == 0, describe(result)

    jobs = slurm_jobs(run_id(result))
    train = [job for job in jobs if job["comment"].startswith("rule_train_")]
    simulate = [job for job in jobs if job["comment"].startswith("rule_simulate_")]
    efficiency = [job for job in jobs if job["comment"].startswith("rule_efficiency_")]
    runs = [resolve_run(config, *run) for run in run_grid(config)]
    assert len(train) == len(runs) and len(simulate) == len(KEEP) and len(efficiency) == 1, jobs
    for run in runs:
        wildcards = f"rule_train_wildcards_{run.experiment}_{run.model}_{run.seed}_{run.config_hash}"
        assert [job["comment"] for job in train].count(wildcards) == 1, (wildcards, train)
    for job in train + simulate + efficiency:
        assert job["state"] == "COMPLETED", job
        assert job["partition"] == PARTITION and job["account"] == ACCOUNT, job
        assert job["gres"] in ("N/A", "(null)", ""), job  # no GPU requested (RKN_SLURM_GPUS=0)
    # The time limit is the rule's runtime: resources.train.runtime minutes for training.
    runtime = config["resources"]["train"]["runtime"]
    assert {job["time_limit"] for job in train} == {f"{runtime // 60}:{runtime % 60:02d}:00"}, train
    # The report is made on the submitting machine (localrules), not as a SLURM job.
    assert len(jobs) == len(train) + len(simulate) + len(efficiency)
    assert "localrule aggregate" in result.stdout + result.stderr

    metrics = json.loads((workdir / "results" / "smoke" / "report" / "metrics.json").read_text())
    reference = {key: value for key, value in json.loads(REFERENCE.read_text()).items()
                 if key.split(".")[1] in KEEP.get(key.split(".")[0], ())
                 or key.startswith("efficiency.")}
    assert len(reference) > 20, "the reference has no entries for KEEP: refresh it (make refresh-smoke-reference)"
    problems = compare_metrics(metrics, reference)
    assert not problems, "SLURM run differs from the local smoke reference:\n" + "\n".join(problems)


@pytest.mark.slow
def test_run_longer_than_its_time_limit_finishes_through_resumes(
        slurm_cluster: None, workdir: Path, configs: list[Path]) -> None:
    """A training run of about 80 s with a 1-minute SLURM time limit: at the limit SLURM sends
    SIGTERM, the run writes its checkpoint and exits 75, the job ends as TIMEOUT, Snakemake's
    retry resumes from the checkpoint, until the run completes. Its metrics.json equals, byte for
    byte, that of the same run trained locally without interruption (side by side, on the other
    core)."""
    long_run = overlay(workdir / "time_limit.yaml",
                       {"training": {"epochs": 1500, "batch_size": 6, "checkpoint_minutes": 0.25},
                        "resources": {"train": {"runtime": 1}}})
    config = load_config([*configs, long_run])
    spec = resolve_run(config, "pendulum_filtering", "rkn", 0)
    target = spec.run_dir(config["results_dir"]) / "metrics.json"
    local = workdir / "local_reference"
    data = workdir / spec.data_dir(config["results_dir"])
    config_args = [a for c in [*configs, long_run] for a in ("--config", str(c))]
    if not (data / "meta.json").is_file():  # this test alone: simulate the data first
        subprocess.run([sys.executable, str(ROOT / "workflow" / "scripts" / "simulate.py"),
                        *config_args, "--dataset", "pendulum_filtering", "--out", str(data)],
                       cwd=workdir, check=True, capture_output=True)
    reference = subprocess.Popen(
        [sys.executable, str(ROOT / "workflow" / "scripts" / "train.py"),
         *config_args, "--experiment", "pendulum_filtering", "--model", "rkn", "--seed", "0",
         "--data-dir", str(data), "--run-dir", str(local),
         "--log", str(workdir / "local_reference.log")],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    # RKN_SLURM_SIGNAL_SECONDS=0: the SIGTERM comes at the limit itself (KillWait 5 s before
    # SIGKILL); an early signal may arrive up to a minute early, too early for a 1-minute job.
    # Each attempt resumes from the last checkpoint, so a slower machine needs more attempts:
    # the retries are many, not a speed requirement (each attempt makes progress once its start,
    # seconds, fits into the minute).
    result = snakemake_slurm(workdir, "--retries", "40", str(target), configs=[*configs, long_run],
                             env=slurm_env(RKN_SLURM_SIGNAL_SECONDS="0"))
    elapsed = time.monotonic() - started
    try:
        code = reference.wait(timeout=GENEROUS_S)
    except subprocess.TimeoutExpired:
        reference.kill()
        raise AssertionError(f"waited {GENEROUS_S} s for the local reference run") from None
    assert code == 0, (workdir / "local_reference.log").read_text()[-3000:]
    print(f"run over its time limit finished through SLURM in {elapsed:.0f} s")
    assert result.returncode == 0, describe(result)
    jobs = [job for job in slurm_jobs(run_id(result)) if job["comment"].startswith("rule_train_")]
    states = [job["state"] for job in jobs]
    assert states.count("COMPLETED") == 1 and states.count("TIMEOUT") >= 1, jobs
    assert {job["time_limit"] for job in jobs} == {"1:00"}, jobs
    # The last attempt's log (each attempt rewrites it) shows it continued from a checkpoint.
    log = (workdir / f"logs/smoke/train/pendulum_filtering/rkn/{spec.run_name}.log").read_text()
    assert "resuming from" in log, log[-3000:]
    assert (workdir / target).read_bytes() == (local / "metrics.json").read_bytes()
    assert not (workdir / spec.run_dir(config["results_dir"])).with_name(
        f".{spec.run_name}.ckpt").exists()

"""The Snakemake workflow: lint, dry run against the run grid, config errors, and (slow) the smoke run.

Every Snakemake call runs in a temporary working directory (``--directory tmp_path``), so results,
logs, reports and Snakemake's own records never touch the repository.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from datasets import DATASETS
from analysis.report import expected_outputs
from harness.config import load_config
from harness.runner import RUN_FILES
from harness.runspec import config_dataset_dir, efficiency_file, resolve_run, run_grid
from tests.reduced_config import reduced_smoke
from harness.settings import ALLOCATOR_ENV, CLIP_MODES, COMPILE_MODES, SELECTION_RULES, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "config" / "config.yaml"
SMOKE = ROOT / "config" / "smoke.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


# Bounds of a Snakemake call: they stop a hung test, generous on a loaded machine (a dry run
# takes seconds to a minute; a subprocess.TimeoutExpired names the command and the bound).
DRY_RUN_S, WORKFLOW_S = 900, 3600


def snakemake(workdir: Path, *args: str, configs: list[Path],
              timeout: float = DRY_RUN_S) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with ``configs`` (config files last: nargs='+')."""
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--cores", "2", *args, "--configfile", *map(str, configs)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def overlay(tmp_path: Path, content: dict, name: str = "overlay.yaml") -> Path:
    """Write a config overlay into the test's temporary folder."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content))
    return path


def summary(result: subprocess.CompletedProcess) -> list[dict[str, str]]:
    """Rows of ``snakemake --summary`` (output_file, date, rule, log-file(s), status, plan)."""
    lines = [line for line in result.stdout.splitlines() if "\t" in line]
    header = lines[0].split("\t")
    assert header[0] == "output_file", result.stdout
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def expected_metrics(config: dict) -> set[str]:
    """metrics.json of every (experiment, model, seed) of the config, as the workflow should name it."""
    return {str(resolve_run(config, *run).run_dir(config["results_dir"]) / "metrics.json")
            for run in run_grid(config)}


def test_lint_is_clean(tmp_path: Path) -> None:
    """`snakemake --lint` has no findings."""
    result = snakemake(tmp_path, "--lint", configs=[BASE, SMOKE])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_dry_run_lists_every_expected_output(tmp_path: Path) -> None:
    """The dry run succeeds; its metrics.json targets are exactly the run grid's, plus data and report."""
    config = load_config([BASE, SMOKE])
    dry = snakemake(tmp_path, "--dry-run", configs=[BASE, SMOKE])
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert re.search(rf"^train\s+{len(run_grid(config))}$", dry.stdout, re.MULTILINE), dry.stdout

    rows = summary(snakemake(tmp_path, "--summary", configs=[BASE, SMOKE]))
    outputs = {row["output_file"] for row in rows}
    runs = {path for path in outputs if path.endswith("/metrics.json") and "/runs/" in path}
    assert runs == expected_metrics(config)
    # The report is built in results/smoke/report; `make pipeline` publishes it as reports/smoke.
    assert {f"results/smoke/report/{rel}" for rel in expected_outputs(config)} <= outputs
    assert not any(path.startswith("reports/") for path in outputs)
    data = str(config_dataset_dir(config, "pendulum_filtering"))
    assert {f"{data}/train.npz", f"{data}/test.npz", f"{data}/meta.json"} <= outputs
    assert str(efficiency_file(config)) in outputs  # claim 7, measured by its own rule
    assert all(row["status"] == "missing" for row in rows)


def test_scripts_receive_the_config_files(tmp_path: Path) -> None:
    """Every script call gets the config files in order, and no parameter values besides wildcards."""
    extra = overlay(tmp_path, {"training": {"epochs": 1}})
    result = snakemake(tmp_path, "--dry-run", "--printshellcmds", configs=[BASE, SMOKE, extra])
    assert result.returncode == 0, result.stdout + result.stderr
    commands = [line for line in result.stdout.splitlines() if "workflow/scripts/" in line]
    scripts = {re.search(r"workflow/scripts/(\w+)\.py", command).group(1) for command in commands}
    assert scripts == {"simulate", "train", "efficiency", "aggregate"}
    # Paths inside the working directory are given relative to it.
    config_args = f"--config {BASE} --config {SMOKE} --config {extra.name}"
    assert all(config_args in command for command in commands), commands
    assert all("--epochs" not in command and "--batch" not in command for command in commands)
    # Training jobs run with the allocator settings (harness.settings.ALLOCATOR_ENV), others not.
    allocator = " ".join(f"{k}={v}" for k, v in ALLOCATOR_ENV.items())
    for command in commands:
        assert (allocator in command) == ("workflow/scripts/train.py" in command), command


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"trainig": {"epochs": 1}}, [r"unknown key\(s\) \['trainig'\] in the config's top level", "valid keys"]),
        ({"experiments": {"pendulum_filtering": {"models": ["rkn", "transformer"]}}},
         ["unknown model 'transformer'",
          "valid models .the config's models section.: " + re.escape(
              str(sorted(load_config([BASE])["models"])))]),
        ({"resources": {"train": {"gpus": 1}}}, [r"unknown key\(s\) \['gpus'\] in resources.train"]),
        # Checked by the JSON schema only (the Python validator does not look at scale names).
        ({"scale": "Smoke Test"}, ["Smoke Test", "does not match"]),
    ],
)
def test_bad_config_stops_the_workflow(tmp_path: Path, content: dict, expected: list[str]) -> None:
    """Unknown keys and names fail before any job, with a message naming them and the valid choices."""
    result = snakemake(tmp_path, "--dry-run", configs=[BASE, SMOKE, overlay(tmp_path, content)])
    assert result.returncode != 0
    for pattern in expected:
        assert re.search(pattern, result.stdout + result.stderr), result.stdout + result.stderr


def test_command_line_config_values_are_refused(tmp_path: Path) -> None:
    """--config KEY=VALUE would not reach the scripts, so the workflow refuses it."""
    result = snakemake(tmp_path, "--dry-run", "--config", "scale=other", configs=[BASE, SMOKE])
    assert result.returncode != 0
    assert "overlay file" in result.stdout + result.stderr


def test_run_folder_with_a_stale_hash_is_refused(tmp_path: Path) -> None:
    """Asking for a run folder whose hash is not the current config's names the right folder."""
    config = load_config([BASE, SMOKE])
    spec = resolve_run(config, "pendulum_filtering", "rkn", 0)
    stale = spec.run_dir(config["results_dir"]).with_name("seed0-00000000") / "metrics.json"
    result = snakemake(tmp_path, "--dry-run", str(stale), configs=[BASE, SMOKE])
    assert result.returncode != 0
    assert str(spec.run_dir(config["results_dir"])) in result.stdout + result.stderr


def test_efficiency_file_with_a_stale_hash_is_refused(tmp_path: Path) -> None:
    """Asking for claim-7 measurements of other settings names the current file."""
    config = load_config([BASE, SMOKE])
    current = efficiency_file(config)
    result = snakemake(tmp_path, "--dry-run", str(current.with_name("efficiency-00000000.json")),
                       configs=[BASE, SMOKE])
    assert result.returncode != 0
    assert str(current) in result.stdout + result.stderr


def test_schema_matches_the_python_dataclasses() -> None:
    """The JSON schema (the one validator) lists exactly TrainConfig's fields and choices and
    every dataset param of the generators."""
    schema = yaml.safe_load(SCHEMA.read_text())
    training = schema["$defs"]["training"]["properties"]
    assert set(training) == {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(training["clip_mode"]["enum"]) == set(CLIP_MODES)
    assert set(training["model_selection"]["enum"]) == set(SELECTION_RULES)
    assert tuple(training["compile"]["enum"]) == COMPILE_MODES
    dataset = schema["properties"]["datasets"]["additionalProperties"]
    params = {key for spec in DATASETS.values() for key in spec.defaults}
    assert set(dataset["properties"]["params"]["properties"]) == params


def test_train_rule_declares_every_run_file() -> None:
    """The train rule's outputs are exactly the files a run folder holds (the only hand-off)."""
    rule = (ROOT / "workflow" / "rules" / "train.smk").read_text()
    outputs = rule[rule.index("output:"):rule.index("log:")]
    assert set(re.findall(r'run_file\("([^"]+)"\)', outputs)) == set(RUN_FILES)


def test_conda_environment_pins_match_requirements() -> None:
    """workflow/envs/torch.yaml (for --sdm conda) pins the same versions as requirements.txt."""
    def pins(lines: list[str]) -> dict[str, str]:
        return dict(line.strip().split("==") for line in lines if "==" in line and not line.lstrip().startswith("#"))

    env = yaml.safe_load((ROOT / "workflow" / "envs" / "torch.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    required = pins((ROOT / "requirements.txt").read_text().splitlines())
    # run the workflow (or submit its jobs to SLURM), not its jobs
    tools = {"snakemake", "snakemake-executor-plugin-slurm", "dvc", "pytest", "import-linter",
             "psutil"}  # psutil: the Makefile's stale-lock check, beside Snakemake
    assert pins(pip) == {name: version for name, version in required.items() if name not in tools}


@pytest.mark.slow
def test_smoke_pipeline_end_to_end(tmp_path: Path) -> None:
    """The smoke pipeline (three experiments, two models each; `make test` runs the whole smoke
    scale) runs; a second call has nothing to do; an edit of one model's settings reruns exactly
    that model's runs and the report; edited data settings simulate anew and rerun exactly the
    experiments on that dataset."""
    base, smoke = reduced_smoke(tmp_path / "cfg", {"pendulum_filtering": ["rkn", "lstm"],
                                                   "pendulum_imputation": ["rkn", "hold_last_frame"],
                                                   "ablations": ["rkn", "rkn_b0"]})
    config = load_config([base, smoke])
    run = snakemake(tmp_path, configs=[base, smoke], timeout=WORKFLOW_S)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for path in expected_metrics(config):
        assert (tmp_path / path).is_file(), path
    for rel in expected_outputs(config):
        assert (tmp_path / "results" / "smoke" / "report" / rel).is_file(), rel
    data_name = config_dataset_dir(config, "pendulum_filtering").name
    assert (tmp_path / "logs" / "smoke" / "simulate" / f"{data_name}.log").is_file()

    report = snakemake(tmp_path, "--report", "results/smoke/report/report.html",
                       configs=[base, smoke])
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "results" / "smoke" / "report" / "report.html").stat().st_size > 0

    again = snakemake(tmp_path, "--dry-run", configs=[base, smoke])
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout

    edit = overlay(tmp_path, {"experiments": {"pendulum_filtering": {
        "model_overrides": {"lstm": {"forget_bias": 0.5}}}}})
    rows = summary(snakemake(tmp_path, "--summary", configs=[base, smoke, edit]))
    pending = {(row["rule"], row["output_file"]) for row in rows if row["plan"] == "update pending"}
    edited = load_config([base, smoke, edit])
    lstm_runs = {p for p in expected_metrics(edited) if "/pendulum_filtering/lstm/" in p}
    assert {path for rule, path in pending if rule == "train" and path.endswith("/metrics.json")} == lstm_runs
    assert {rule for rule, _ in pending} == {"train", "aggregate"}

    data_edit = overlay(tmp_path, {"datasets": {"pendulum_filtering": {"params": {"num_train": 24}}}}, "data.yaml")
    rows = summary(snakemake(tmp_path, "--summary", configs=[base, smoke, data_edit]))
    pending = {(row["rule"], row["output_file"]) for row in rows if row["plan"] == "update pending"}
    new_data = config_dataset_dir(load_config([base, smoke, data_edit]), "pendulum_filtering")
    assert ("simulate", f"{new_data}/meta.json") in pending
    data_edited = load_config([base, smoke, data_edit])
    on_this_data = {f"/runs/{name}/" for name, spec in data_edited["experiments"].items()
                    if spec["dataset"] == "pendulum_filtering"}  # other experiments keep their runs
    assert on_this_data == {"/runs/pendulum_filtering/", "/runs/ablations/"}
    assert {path for rule, path in pending if rule == "train" and path.endswith("/metrics.json")} == \
        {path for path in expected_metrics(data_edited) if any(part in path for part in on_this_data)}


@pytest.mark.slow
def test_gpu_slots_bound_the_runs_that_train_at_once(tmp_path: Path) -> None:
    """With --resources gpu_slots=1 no two training runs overlap in time even with free cores
    (each run takes resources.train.gpu_slots = 1): the knob that lets N runs share one GPU."""
    base, smoke = reduced_smoke(tmp_path / "cfg", {"pendulum_filtering": ["rkn", "lstm_small"]})
    result = snakemake(tmp_path, "--cores", "4", "--resources", "gpu_slots=1",
                       configs=[base, smoke], timeout=WORKFLOW_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    spans = []
    for log in (tmp_path / "logs" / "smoke" / "train").rglob("*.log"):
        stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", log.read_text(), re.M)
        spans.append((stamps[0], stamps[-1]))
    assert len(spans) == 4
    spans.sort()
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:])), spans

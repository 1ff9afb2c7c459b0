# Config loading and validation, the run grid, and every expected path (one source of truth).
#
# The config is re-read with harness.config.load_config from the config files Snakemake was given
# (the Snakefile's configfile, then each --configfile in order), so the workflow and the scripts,
# which receive the same files as --config arguments, see exactly the same merged config and the
# same validation (the JSON schema through jsonschema, then the cross-field checks).

import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

from analysis.report import expected_outputs
from harness.config import ConfigError, load_config
from harness.runspec import (config_dataset_dir, efficiency_file, report_staging_dir, resolve_run,
                             run_dirs)
from harness.settings import ALLOCATOR_ENV


def _display_path(path):
    """``path`` relative to the working directory when it lies inside it, else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _config_files():
    """The config files in the order Snakemake merged them (later files win)."""
    cli = [Path(p) for p in workflow.overwrite_configfiles]
    # workflow.configfiles holds the --configfile files, then those of `configfile:` directives.
    declared = [Path(p) for p in workflow.configfiles[len(cli) :]]
    if workflow.config_settings.replace_workflow_config:
        declared = []
    files = []
    for path in declared + cli:
        # A file merged twice in a row (the directive's file repeated as the first --configfile,
        # as the Makefile and README do) changes nothing: keep one copy.
        if not files or Path(files[-1]).absolute() != path.absolute():
            files.append(_display_path(path))
    return files


def _load_config():
    """Merge and validate the config files; any problem stops the workflow with a clear message."""
    if workflow.config_settings.config:
        raise WorkflowError(
            "--config KEY=VALUE overrides are not passed on to the scripts: put "
            f"{sorted(workflow.config_settings.config)} in an overlay file and add it with --configfile"
        )
    files = _config_files()
    try:
        return files, load_config(files)
    except ConfigError as err:
        raise WorkflowError(f"invalid config ({' + '.join(files)}): {err}") from None


CONFIG_FILES, _merged = _load_config()
# One config for everything below: harness.config's merge (mappings merge, lists are replaced).
config.clear()
config.update(_merged)

RESULTS = config["results_dir"]
SCALE = config["scale"]
# The report as the workflow builds it, results/{scale}/report: Snakemake deletes a rule's outputs
# before it reruns the rule, so they are never the published reports/{scale}, which `make
# pipeline` replaces from here in one atomic step once report.html is made
# (workflow/scripts/publish_report.py).
REPORTS = str(report_staging_dir(config))
LOGS = f"logs/{SCALE}"
# Arguments that hand the same config files to every script.
CONFIG_ARGS = " ".join(f"--config {path}" for path in CONFIG_FILES)
# The rules' interpreter: the one running Snakemake (the project's .venv, also when it is not
# activated), or the rule's own conda environment (workflow/envs/torch.yaml) with --sdm conda.
PYTHON = "python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method else sys.executable
SOFTWARE = "../envs/torch.yaml"
# glibc allocator settings for training jobs (harness.settings.ALLOCATOR_ENV: environment only).
ALLOCATOR = "env " + " ".join(f"{k}={v}" for k, v in ALLOCATOR_ENV.items())
SCRIPTS = _display_path(Path(workflow.basedir) / "workflow" / "scripts")


wildcard_constraints:
    experiment="[a-z0-9_]+",
    model="[a-z0-9_]+",
    dataset="[a-z0-9_]+",
    seed="[0-9]+",
    hash="[0-9a-f]{8}",
    dhash="[0-9a-f]{8}",
    ehash="[0-9a-f]{8}",


def run_spec(wildcards):
    """The resolved spec of the run named by the wildcards (unknown names list the valid ones)."""
    try:
        return resolve_run(config, wildcards.experiment, wildcards.model, int(wildcards.seed))
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


def expected_runs():
    """Every run folder the config asks for, in config order."""
    return [str(folder) for folder in run_dirs(config)]


def expected_metrics():
    """Every run's metrics.json: the training targets of `rule all`."""
    return [f"{folder}/metrics.json" for folder in expected_runs()]


def expected_run_files(name):
    """One file of every expected run folder (the aggregator's inputs)."""
    return [f"{folder}/{name}" for folder in expected_runs()]


def run_file(name):
    """Output pattern of one file of a run folder (the layout of RunSpec.run_dir, with wildcards)."""
    return f"{RESULTS}/{SCALE}/runs/{{experiment}}/{{model}}/seed{{seed}}-{{hash}}/{name}"


def expected_reports():
    """Every file the aggregator writes into REPORTS (analysis.report.expected_outputs)."""
    return [f"{REPORTS}/{rel}" for rel in expected_outputs(config)]


def expected_efficiency():
    """[the claim-7 measurements file of the current config], or [] without such a section."""
    path = efficiency_file(config)
    return [str(path)] if path else []


def checked_efficiency_file(output):
    """The efficiency rule's output; fails when its hash is not that of the current settings."""
    if os.path.normpath(output) not in [os.path.normpath(p) for p in expected_efficiency()]:
        raise WorkflowError(
            f"{output} does not match the current efficiency settings, whose file is "
            f"{expected_efficiency() or 'none (no efficiency section)'}"
        )
    return output


def report_files(kind):
    """The aggregator's outputs of one kind: tables (csv), markdown (tables/*.md), figures (png),
    efficiency (efficiency.*: timings, so DVC-cached and ignored by git in reports/{scale})."""
    kinds = {"tables": [], "markdown": [], "figures": [], "efficiency": []}
    for path in expected_reports():
        if path.startswith(f"{REPORTS}/efficiency."):
            kinds["efficiency"].append(path)
        elif path.endswith(".csv"):
            kinds["tables"].append(path)
        elif path.endswith(".png"):
            kinds["figures"].append(path)
        elif path.startswith(f"{REPORTS}/tables/") and path.endswith(".md"):
            kinds["markdown"].append(path)
        elif path not in (f"{REPORTS}/metrics.json", f"{REPORTS}/claims.md"):
            raise WorkflowError(f"the aggregator writes {path}, which workflow/rules/report.smk does not declare")
    return kinds[kind]


def train_data(wildcards):
    """The run's dataset files; fails when the folder's hash is not the current config's."""
    spec = run_spec(wildcards)
    if spec.config_hash != wildcards.hash:
        raise WorkflowError(
            f"run folder seed{wildcards.seed}-{wildcards.hash} of {wildcards.experiment}/{wildcards.model} "
            f"does not match the current config, whose run folder is {spec.run_dir(RESULTS)}; "
            "ask for the targets of `rule all` (or that path) instead"
        )
    folder = spec.data_dir(RESULTS)
    return {"train": f"{folder}/train.npz", "test": f"{folder}/test.npz", "meta": f"{folder}/meta.json"}


def train_device(gpus):
    """--device for a training job: cuda when it reserves GPUs, else auto (CUDA if visible)."""
    return "cuda" if gpus > 0 else "auto"


def reference_numbers():
    """The paper's published numbers that claims.md compares with."""
    return _display_path(Path(workflow.basedir) / "config" / "reference_numbers.yaml")


def checked_dataset_dir(wildcards, meta):
    """The folder of a dataset output; fails when its hash is not that of the current settings."""
    folder = os.path.dirname(meta)
    if wildcards.dataset not in config["datasets"]:
        raise WorkflowError(f"unknown dataset {wildcards.dataset!r}; valid: {sorted(config['datasets'])}")
    wanted = str(config_dataset_dir(config, wildcards.dataset))
    if os.path.normpath(folder) != os.path.normpath(wanted):
        raise WorkflowError(f"dataset folder {folder} does not match the current settings, whose folder is {wanted}")
    return folder


# Settings a SLURM submission needs from the user (resource, environment variable that sets it).
SLURM_SETTINGS = {"slurm_account": "RKN_SLURM_ACCOUNT", "slurm_partition": "RKN_SLURM_PARTITION"}


def check_cluster_settings():
    """Under the SLURM executor, stop before the first sbatch when a job lacks an account or partition.

    Called from the Snakefile's onstart (after the DAG is built, before any submission); a no-op
    for every other executor, dry runs and the jobs' own Snakemake inside SLURM (slurm-jobstep).
    """
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    missing = {}
    for job in workflow.dag.needrun_jobs():
        if job.is_local:
            continue
        for resource in SLURM_SETTINGS:
            if resource not in job.resources.keys():
                missing.setdefault(resource, set()).add(job.rule.name)
    if missing:
        lines = [
            f"  {resource} (rules {', '.join(sorted(rules))}): export {SLURM_SETTINGS[resource]}=..."
            for resource, rules in sorted(missing.items())
        ]
        raise WorkflowError(
            "SLURM settings missing, nothing was submitted:\n" + "\n".join(lines) + "\n"
            "profiles/slurm reads them from the environment (RKN_SLURM_ACCOUNT=none submits without "
            "an account); run it with --workflow-profile none (as `make reproduce PROFILE=slurm` does), "
            "else profiles/default replaces its default-resources. See README, 'Running on a SLURM cluster'."
        )

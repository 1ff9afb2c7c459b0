"""Finished run folders, read as the report's only input (docs/design.md#results-layout).

Each folder is read and checked by ``analysis.run_files`` (its config.json, metrics.json and
history.csv; figures read its calibration.csv and examples.npz). ``collect_experiments`` reads
the folders it is given, checks them against the config's grid (every expected (experiment,
model, seed) present exactly once, trained with the settings the config gives that run) and
groups them by experiment. It never opens a dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.run_files import (REQUIRED_FILES, BadRunError, MissingRunsError, check_settings,
                                missing_files, read_history, read_metrics, read_run_config)
from harness.runspec import run_grid

__all__ = ["BadRunError", "ExperimentRuns", "MissingRunsError", "collect_experiments",
           "complete_experiments"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentRuns:
    """Everything the report knows about one experiment.

    Attributes:
        name: the experiment.
        models: its models in config order; seeds: its seeds in config order.
        roles: model -> role in the claims (the config's models section).
        metrics: one row per run (config order): experiment, model, seed, then one column per
            metric of ``metrics.json``.
        run_dirs: (model, seed) -> run folder, in config order.
        settings: ``config.json`` of the experiment's first run (dataset, dataset_params,
            training, ...): the settings every run of the experiment shares.
        model_configs: model -> the resolved model config of its first run (``model_config``
            of config.json: sizes, bandwidth, ...).
        histories: (model, seed) -> the run's history.csv (``read_history``); empty for
            synthetic experiments without run folders.
    """

    name: str
    models: list[str]
    seeds: list[int]
    roles: dict[str, str]
    metrics: pd.DataFrame
    run_dirs: dict[tuple[str, int], Path]
    settings: dict[str, Any]
    model_configs: dict[str, dict[str, Any]]
    histories: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict)

    @property
    def reference(self) -> str | None:
        """The model with role ``rkn``, which every other model is paired with (None if absent)."""
        return next((m for m in self.models if self.roles[m] == "rkn"), None)

    def with_role(self, *roles: str) -> list[str]:
        """The experiment's models that play one of ``roles``, in config order."""
        return [m for m in self.models if self.roles[m] in roles]


def check_same_keys(rows: list[dict], found: dict) -> None:
    """Every seed of a model reports the same metrics: a key missing from one seed would make a
    mean over fewer seeds than the table's seed count.

    Raises:
        BadRunError: naming the folder and the missing keys.
    """
    by_model: dict[str, set[str]] = {}
    for row in rows:
        by_model.setdefault(row["model"], set()).update(row)
    for row in rows:
        missing = sorted(by_model[row["model"]] - set(row))
        if missing:
            folder = found[(row["experiment"], row["model"], row["seed"])][0]
            having = next(found[(r["experiment"], r["model"], r["seed"])][0] for r in rows
                          if r["model"] == row["model"] and missing[0] in r)
            raise BadRunError(f"{folder}/metrics.json lacks {', '.join(missing)}, which {having} "
                              f"(another seed of {row['model']}) reports; the seeds of a model "
                              "must report the same metrics: delete the odd run folder and train "
                              "it again, no report was written")


def complete_experiments(config: dict, run_dirs: Iterable[str | Path]
                         ) -> tuple[dict, list[Path], dict[str, str]]:
    """The config restricted to the experiments whose every run is among ``run_dirs`` (complete
    folders), their folders, and why each other experiment is left out: a report of what ran,
    never of part of an experiment (a paper scale trained experiment by experiment on one GPU).

    Returns:
        (config with only the complete experiments, the complete folders of those experiments,
        {experiment: reason}).

    Raises:
        BadRunError: a complete folder's config.json is unreadable (``read_run_config``).
    """
    present: dict[tuple[str, str, int], Path] = {}
    for folder in map(Path, run_dirs):
        lacking = missing_files(folder)
        if lacking:
            if folder.is_dir():
                log.warning("%s lacks %s: counted as not run (delete it and train it again)",
                            folder, ", ".join(lacking))
            continue
        key = read_run_config(folder)[1]
        if key in present:
            raise MissingRunsError(f"two run folders for {key}: {present[key]} and {folder}; "
                                   "delete the one that does not belong to this config")
        present[key] = folder
    kept, skipped = {}, {}
    for name, spec in config["experiments"].items():
        expected = [(name, m, int(s)) for m in spec["models"] for s in spec["seeds"]]
        found = sum(run in present for run in expected)
        if found == len(expected):
            kept[name] = spec
        else:
            skipped[name] = ("not run at this scale" if found == 0 else
                             f"incomplete at this scale ({found} of {len(expected)} runs; a "
                             "partial experiment is never reported)")
    folders = [folder for key, folder in present.items() if key[0] in kept]
    return {**config, "experiments": kept}, folders, skipped


def collect_experiments(config: dict, run_dirs: Iterable[str | Path]) -> dict[str, ExperimentRuns]:
    """Read ``run_dirs`` and group them by the config's experiments (config order).

    Raises:
        MissingRunsError: a folder lacks one of ``REQUIRED_FILES`` (the message names the folder
            and the files), an expected (experiment, model, seed) has no folder, or two folders
            claim the same run; nothing is read further.
        BadRunError: a run's metric is not a finite number (``read_metrics``), or a folder holds
            another run than its name says (``check_folder_name``).
    """
    folders = [Path(d) for d in run_dirs]
    incomplete = {d: missing_files(d) for d in folders}
    incomplete = {d: lacking for d, lacking in incomplete.items() if lacking}
    if incomplete:
        raise MissingRunsError(
            f"{len(incomplete)} of {len(folders)} run folders are missing or incomplete (a run "
            f"folder holds {', '.join(REQUIRED_FILES)}, which the report reads); train the "
            "missing runs (Snakemake or workflow/scripts/train.py) and delete and train again "
            "those cut short, no report was written:\n"
            + "\n".join(f"  {d}: " + ("missing" if not d.is_dir() else
                                       f"lacks {', '.join(lacking)}")
                         for d, lacking in incomplete.items()))
    found: dict[tuple[str, str, int], tuple[Path, dict]] = {}
    histories: dict[tuple[str, str, int], pd.DataFrame] = {}
    for folder in folders:
        run_config, key = read_run_config(folder)
        if key in found:
            raise MissingRunsError(f"two run folders for {key}: {found[key][0]} and {folder}; "
                                   "pass the folders of one config only")
        if key[0] in config["experiments"]:
            check_settings(folder, run_config, config)
        histories[key] = read_history(folder)
        found[key] = (folder, run_config)
    expected = run_grid(config)
    missing = [key for key in expected if key not in found]
    if missing:
        raise MissingRunsError(
            f"{len(missing)} of {len(expected)} expected runs have no run folder; train them "
            "first, no report was written:\n"
            + "\n".join(f"  {e}/{m}/seed{s}" for e, m, s in missing))
    experiments = {}
    for name, spec in config["experiments"].items():
        keys = [(name, m, int(s)) for m in spec["models"] for s in spec["seeds"]]
        rows = [{"experiment": e, "model": m, "seed": s, **read_metrics(found[(e, m, s)][0])}
                for e, m, s in keys]
        check_same_keys(rows, found)
        frame = pd.DataFrame(rows)
        metric_cols = sorted(c for c in frame.columns if c not in ("experiment", "model", "seed"))
        experiments[name] = ExperimentRuns(
            name=name, models=list(spec["models"]), seeds=[int(s) for s in spec["seeds"]],
            roles={m: config["models"][m]["role"] for m in spec["models"]},
            metrics=frame[["experiment", "model", "seed", *metric_cols]],
            run_dirs={(m, s): found[(e, m, s)][0] for e, m, s in keys},
            settings=found[keys[0]][1],
            model_configs={m: found[(name, m, int(spec["seeds"][0]))][1]["model_config"]
                           for m in spec["models"]},
            histories={(m, s): histories[(e, m, s)] for e, m, s in keys})
    return experiments

"""Finished run folders, read as the report's only input (docs/design.md#results-layout).

A run folder (``harness.runner.RUN_FILES``) says what it is in its ``config.json`` (experiment,
model, seed, dataset and training settings, model config) and what it measured in
``metrics.json``; its ``history.csv`` is read here once (checked) for the convergence flags and
learning curves, figures read its ``calibration.csv`` and ``examples.npz``.
``collect_experiments`` reads the folders it is given, checks them against the config's grid
(every expected (experiment, model, seed) present exactly once, trained with the settings the
config gives that run) and groups them by experiment. It never opens a dataset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import ConfigError
from harness.runspec import resolve_run, results_identity, run_grid

REQUIRED_FILES = ("config.json", "metrics.json", "history.csv")
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds")
# The remedy for a damaged run folder, ending every such message.
RETRAIN = "delete the run folder and train it again, no report was written"


class MissingRunsError(RuntimeError):
    """Expected runs are missing or incomplete; the message lists their folders."""


class BadRunError(RuntimeError):
    """A run folder holds a metric that must not be published (not a finite number)."""


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


def _read_json(path: Path) -> dict:
    """A run file as a JSON object; BadRunError naming the file when it is not one."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRunError(f"{path} cannot be read as JSON ({err}); {RETRAIN}") from None
    if not isinstance(value, dict):
        raise BadRunError(f"{path} must hold a JSON object; {RETRAIN}")
    return value


# config.json entries the report reads, with their JSON types.
RUN_CONFIG_KEYS = {"experiment": str, "model": str, "seed": int, "training": dict,
                   "model_config": dict}


def read_run_config(folder: Path) -> tuple[dict, tuple[str, str, int]]:
    """A run folder's config.json and its (experiment, model, seed).

    Raises:
        BadRunError: the file is unreadable or lacks an entry of ``RUN_CONFIG_KEYS`` (or has
            the wrong type); the message names the folder and the key.
    """
    run_config = _read_json(folder / "config.json")
    for key, kind in RUN_CONFIG_KEYS.items():
        value = run_config.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BadRunError(f"{folder}/config.json: {key} = {value!r} is not of type "
                              f"{kind.__name__} (missing or edited); {RETRAIN}")
    return run_config, (run_config["experiment"], run_config["model"], run_config["seed"])


def _differences(expected: dict, actual: dict, where: str = "") -> list[str]:
    """Key paths at which two nested mappings differ."""
    found = []
    for key in sorted(set(expected) | set(actual)):
        path = f"{where}.{key}" if where else key
        a, b = expected.get(key), actual.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, path)
        elif a != b:
            found.append(f"{path} ({b!r} in the folder, {a!r} in the config)")
    return found


def check_settings(folder: Path, run_config: dict, config: dict) -> None:
    """Refuse a run folder trained with other settings than the config's run of the same
    (experiment, model, seed): a report must not mix runs of two configs.

    Raises:
        BadRunError: naming the folder and the settings that differ.
    """
    try:
        spec = resolve_run(config, run_config["experiment"], run_config["model"],
                           run_config["seed"])
    except ConfigError as err:
        raise BadRunError(f"{folder} is not a run of this config: {err}; pass the run folders "
                          "of this config, no report was written") from None
    expected = json.loads(json.dumps(spec.identity()))  # tuples -> lists, as in config.json
    differ = _differences(expected, results_identity(run_config))
    if differ:
        raise BadRunError(
            f"{folder} was trained with other settings than this config's run "
            f"{spec.run_name}: {'; '.join(differ[:5])}; pass the run folders of this config "
            "(or the config that made them), no report was written")


def check_flags(folder: Path, metrics: dict[str, float]) -> None:
    """A flag metric (``converged``) must be 0 or 1."""
    if "converged" in metrics and metrics["converged"] not in (0.0, 1.0):
        raise BadRunError(f"{folder}/metrics.json: converged = {metrics['converged']!r} must be 0 "
                          f"or 1; {RETRAIN}")


def read_history(folder: Path) -> pd.DataFrame:
    """The run's history.csv: one row per epoch (epoch, train_loss, val_loss, seconds), epochs
    1, 2, 3, ... for a trained run or one row of epoch 0 for a fitted reference.

    Raises:
        BadRunError: the file cannot be parsed, lacks a column, has no row, holds a value that is
            not a finite number (train_loss may be NaN only at epoch 0; a row cut short lacks
            one), or skips an epoch; the message names the file.
    """
    path = folder / "history.csv"
    try:
        history = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise BadRunError(f"{path} cannot be read as CSV ({err}); {RETRAIN}") from None
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing or history.empty:
        what = f"has no column {', '.join(missing)}" if missing else "has no row"
        raise BadRunError(f"{path} {what}; {RETRAIN}")
    numbers = history[list(HISTORY_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    finite = numbers.apply(lambda column: column.map(math.isfinite))
    finite["train_loss"] |= numbers["epoch"].eq(0)  # a fitted reference has no training loss
    if not finite.to_numpy().all():
        row, column = next((r, c) for r in range(len(finite)) for c in HISTORY_COLUMNS
                           if not finite.at[r, c])
        value = str(history.at[row, column])
        raise BadRunError(f"{path}: row {row + 1}, {column} = {value!r} is not a finite number "
                          f"(a cut or edited file); {RETRAIN}")
    epochs = numbers["epoch"].tolist()
    if epochs != [0] and epochs != list(range(1, len(epochs) + 1)):
        raise BadRunError(f"{path} holds epochs {', '.join(f'{e:g}' for e in epochs[:8])}"
                          f"{', ...' if len(epochs) > 8 else ''}, not 1, 2, 3, ... (a fitted "
                          f"reference: 0) (an edited file); {RETRAIN}")
    return history


def read_metrics(run_dir: Path) -> dict[str, float]:
    """The run's metrics.json as floats.

    Raises:
        BadRunError: a value is not a finite number; the message names the folder and the key
            (a seed silently dropped from a mean would make the table lie about its seeds).
    """
    metrics = {}
    for key, value in _read_json(run_dir / "metrics.json").items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BadRunError(f"{run_dir}/metrics.json: {key} = {value!r} is not a finite number; "
                              "delete the run folder and train it again (a run must fail rather "
                              "than publish it), no report was written")
        metrics[key] = float(value)
    check_flags(run_dir, metrics)
    return metrics


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
        if all((folder / f).is_file() for f in REQUIRED_FILES):
            present[read_run_config(folder)[1]] = folder
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
        MissingRunsError: a folder lacks one of ``REQUIRED_FILES``, an expected (experiment,
            model, seed) has no folder, or two folders claim the same run; nothing is read further.
        BadRunError: a run's metric is not a finite number (``read_metrics``).
    """
    folders = [Path(d) for d in run_dirs]
    incomplete = [d for d in folders if not all((d / f).is_file() for f in REQUIRED_FILES)]
    if incomplete:
        raise MissingRunsError(
            f"{len(incomplete)} of {len(folders)} run folders are missing or incomplete (no "
            f"{' / '.join(REQUIRED_FILES)}); train them first (Snakemake or "
            "workflow/scripts/train.py), no report was written:\n"
            + "\n".join(f"  {d}" for d in incomplete))
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

"""One finished run folder, read and checked: the report's only input besides the config.

A run folder (``harness.runner.RUN_FILES``) says what it is in its ``config.json`` (experiment,
model, seed, dataset and training settings, model config) and what it measured in
``metrics.json``; its ``history.csv`` holds the learning curve, figures read its
``calibration.csv`` and ``examples.npz``. Every reader here refuses a damaged or foreign folder
with a message naming the folder, the file or key, and the remedy (``analysis.runs`` groups the
folders of a config's grid).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from harness.config import ConfigError
from harness.runspec import resolve_run, results_identity

# The files of a run folder the report reads (harness.runner.RUN_FILES holds them and model.pt,
# meta.json): a folder without one of them was cut short or copied in part.
REQUIRED_FILES = ("config.json", "metrics.json", "history.csv", "calibration.csv", "examples.npz")
# A run folder's name in the results layout:
# results/{scale}/runs/{experiment}/{model}/seed{seed}-{hash}.
RUN_NAME = re.compile(r"seed(\d+)-[0-9a-f]{8}")
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds")
# The remedy for a damaged run folder, ending every such message.
RETRAIN = "delete the run folder and train it again, no report was written"


class MissingRunsError(RuntimeError):
    """Expected runs are missing or incomplete; the message lists their folders."""


class BadRunError(RuntimeError):
    """A run folder holds a metric that must not be published (not a finite number)."""


def read_json_object(path: Path, *, name: str | None = None,
                     error: type[Exception] = BadRunError, remedy: str = RETRAIN) -> dict:
    """A run file as a JSON object. ``error`` (default BadRunError) names the file (``name``,
    default its path) and ``remedy`` when it cannot be read or holds something else."""
    name = str(path) if name is None else name
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"{name} cannot be read as JSON ({err}); {remedy}") from None
    if not isinstance(value, dict):
        raise error(f"{name} must hold a JSON object; {remedy}")
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
    run_config = read_json_object(folder / "config.json")
    for key, kind in RUN_CONFIG_KEYS.items():
        value = run_config.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BadRunError(f"{folder}/config.json: {key} = {value!r} is not of type "
                              f"{kind.__name__} (missing or edited); {RETRAIN}")
    check_folder_name(folder, run_config)
    return run_config, (run_config["experiment"], run_config["model"], run_config["seed"])


def check_folder_name(folder: Path, run_config: dict) -> None:
    """A folder named like a run folder (``seed{seed}-{hash}``, below ``{experiment}/{model}``
    under ``runs/``) must hold the run its name says: a folder copied or renamed onto another
    seed's name would otherwise stand in for that seed while the real one counts as missing.

    Raises:
        BadRunError: naming the folder, what its name says and what its config.json says.
    """
    match = RUN_NAME.fullmatch(folder.name)
    if match is None:
        return  # a folder outside the results layout (e.g. given by hand): nothing to compare
    named = {"seed": int(match.group(1))}
    if folder.parent.parent.parent.name == "runs":
        named |= {"experiment": folder.parent.parent.name, "model": folder.parent.name}
    differ = [f"{key} {value!r} by its name, {run_config[key]!r} in its config.json"
              for key, value in named.items() if run_config[key] != value]
    if differ:
        raise BadRunError(
            f"{folder} holds another run than its name says ({'; '.join(differ)}): it was "
            "copied or renamed; delete it (or give it the name of the run it holds) and train "
            "the missing run, no report was written")


def missing_files(folder: Path) -> list[str]:
    """The ``REQUIRED_FILES`` that ``folder`` lacks (all of them when it does not exist)."""
    return [name for name in REQUIRED_FILES if not (folder / name).is_file()]


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
    for key, value in read_json_object(run_dir / "metrics.json").items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BadRunError(f"{run_dir}/metrics.json: {key} = {value!r} is not a finite number; "
                              "delete the run folder and train it again (a run must fail rather "
                              "than publish it), no report was written")
        metrics[key] = float(value)
    check_flags(run_dir, metrics)
    return metrics

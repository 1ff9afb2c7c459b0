"""Convergence of the runs the report reads; the rule itself is ``harness.convergence``.

Every run folder written by the current runner carries the flag in its ``metrics.json``
(``converged``: 1 or 0). Run folders written before the flag existed get it here from their
``history.csv`` by the same rule, so old results need no retraining; nothing is measured anew.
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd

from analysis.runs import ExperimentRuns
from harness.convergence import converged

FLAG = "converged"


def with_convergence(runs: ExperimentRuns) -> ExperimentRuns:
    """``runs`` with a ``converged`` value (1.0 / 0.0) for every run that has a folder.

    Runs without the flag in metrics.json get it from their history (``runs.histories``, read
    from ``history.csv``; harness.convergence); runs without one (synthetic tests) keep NaN, which every reader treats as "not
    converged". Columns stay experiment, model, seed, then the metrics sorted by name.
    """
    frame = runs.metrics.copy()
    if FLAG not in frame:
        frame[FLAG] = math.nan
    for index in frame.index[frame[FLAG].isna()]:
        history = runs.histories.get((frame.at[index, "model"], int(frame.at[index, "seed"])))
        if history is not None:
            frame.at[index, FLAG] = float(converged(history.to_dict("records")))
    keys = ["experiment", "model", "seed"]
    frame = frame[keys + sorted(c for c in frame.columns if c not in keys)]
    return dataclasses.replace(runs, metrics=frame)


def unconverged(runs: ExperimentRuns, models: list[str]) -> dict[str, tuple[int, int]]:
    """{model: (seeds not converged, seeds)} for those of ``models`` with at least one seed that
    did not converge (a missing flag counts as not converged), in the order of ``models``."""
    metrics = runs.metrics
    result = {}
    for model in models:
        flags = (metrics[metrics["model"] == model][FLAG] if FLAG in metrics
                 else pd.Series([math.nan] * int((metrics["model"] == model).sum())))
        bad = int((flags != 1).sum())
        if bad:
            result[model] = (bad, len(flags))
    return result

"""Synthetic experiments for the claim and table tests: Evidence from a metrics frame, no files."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.claims.base import Evidence
from analysis.runs import ExperimentRuns
from analysis.stats import paired_differences, summarize

SETTINGS = {"dataset": "pendulum_filtering", "dataset_params": {"num_train": 500},
            "training": {"epochs": 30, "batch_size": 50}}


def experiment_runs(name: str, frame: pd.DataFrame, roles: dict[str, str], *,
                    settings: dict[str, Any] | None = None,
                    model_configs: dict[str, dict] | None = None) -> ExperimentRuns:
    """ExperimentRuns of ``frame`` (columns experiment, model, seed, metrics...); models in the
    order of ``roles``, no run folders."""
    return ExperimentRuns(name=name, models=list(roles), seeds=sorted(set(frame["seed"])),
                          roles=dict(roles), metrics=frame, run_dirs={},
                          settings=settings or SETTINGS,
                          model_configs=model_configs or {m: {} for m in roles})


def evidence(name: str, frame: pd.DataFrame, roles: dict[str, str], **kwargs: Any) -> Evidence:
    """Evidence of a synthetic experiment: summary and paired comparison as the report computes.
    Every run converged unless ``frame`` has a ``converged`` column of its own."""
    if "converged" not in frame:
        frame = frame.assign(converged=1.0)
    runs = experiment_runs(name, frame, roles, **kwargs)
    return Evidence(runs=runs, summary=summarize(frame, runs.models),
                    paired=paired_differences(frame, runs.models, runs.reference))

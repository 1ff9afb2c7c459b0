"""Convergence in the report: flags from metrics.json or, for older run folders, from history.csv;
converged seeds per model in the tables; selected epochs marked in the learning curves."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from analysis.figures import learning_curves_figure
from analysis.report import build_report
from tests.analysis.test_report import REFERENCE, make_runs


def test_tables_count_converged_seeds_from_flag_or_history(tmp_path) -> None:
    """Flags in metrics.json are used as written; folders without one get it from history.csv
    (the fake runs' 3-epoch histories: not converged; a 30-epoch plateau: converged)."""
    config, dirs = make_runs(tmp_path)
    for run_dir in dirs:
        model = json.loads((run_dir / "config.json").read_text())["model"]
        if model == "gru":  # written by the current runner: the flag is authoritative
            metrics = json.loads((run_dir / "metrics.json").read_text())
            (run_dir / "metrics.json").write_text(json.dumps({**metrics, "converged": 1.0}))
        if model == "lstm_small":  # an older folder whose history plateaued
            epochs = np.arange(1, 31)
            pd.DataFrame({"epoch": epochs, "train_loss": 1.0, "val_loss": 1 + np.exp(-epochs),
                          "seconds": 1.0}).to_csv(run_dir / "history.csv", index=False)
    out = build_report(config, dirs, REFERENCE, figures_too=False)
    table = pd.read_csv(io.BytesIO(out["tables/pendulum_filtering.csv"]))
    assert dict(zip(table["model"], table["n_converged"])) == {"rkn": 0, "lstm_small": 3,
                                                                "gru": 3}
    markdown = out["tables/pendulum_filtering.md"].decode()
    assert "| converged |" in markdown and "| rkn | 3 | 0/3 |" in markdown
    assert "| gru | 3 | 3/3 |" in markdown
    flat = json.loads(out["metrics.json"])
    assert flat["pendulum_filtering.rkn.converged"] == 0 and \
        flat["pendulum_filtering.gru.converged"] == 1
    assert "pendulum_filtering.gru.converged_std" not in flat  # a flag's std says nothing
    assert "pendulum_filtering.gru.log_lik_std" in flat


def test_learning_curves_mark_selected_epochs() -> None:
    """The markers at the selected epochs are drawn, filled or hollow by the flag."""
    epochs = np.arange(1, 11)
    histories = pd.DataFrame({"model": "rkn", "seed": np.repeat([0, 1], 10),
                              "epoch": np.tile(epochs, 2), "val_loss": np.tile(1 / epochs, 2)})
    selected = pd.DataFrame({"model": ["rkn", "rkn"], "seed": [0, 1], "selected_epoch": [10, 7],
                             "converged": [1.0, 1.0]})
    plain = learning_curves_figure(histories, ["rkn"], "t")
    marked = learning_curves_figure(histories, ["rkn"], "t", selected)
    hollow = learning_curves_figure(histories, ["rkn"], "t", selected.assign(converged=0.0))
    assert len({plain, marked, hollow}) == 3
    assert marked == learning_curves_figure(histories, ["rkn"], "t", selected)

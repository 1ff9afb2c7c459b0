"""Seed statistics: bootstrap intervals, per-model summaries, paired (same seed) differences.

Same inputs give identical numbers: the bootstrap uses a fixed seed.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd

N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 20190609  # fixed: intervals are reproducible to the byte
# Metrics of the paired comparison (the others are summaries of calibration and size).
PAIRED_METRICS = ("log_lik", "rmse", "bce_all", "bce_missing", "bce_observed")
# 0/1 flags of a run (harness.convergence): metrics.json gets their mean over seeds, no std.
FLAGS = ("converged",)


def bootstrap_ci(values, n_resamples: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; (nan, nan) for fewer than two finite values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_resamples, values.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def metric_names(frame: pd.DataFrame) -> list[str]:
    """The metric columns of a runs frame that hold at least one value."""
    return [c for c in frame.columns if c not in ("experiment", "model", "seed")
            and frame[c].notna().any()]


def summarize(runs: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """One row per model (given order): n_seeds, n_converged (seeds whose ``converged`` flag is
    1; a missing flag counts as not converged; only when the runs carry the flag), epochs_min and
    epochs_max (fewest and most epochs trained, when the runs record ``epochs_trained``), and
    {metric}_mean/_std/_ci_lo/_ci_hi."""
    rows = []
    for model in models:
        sub = runs[runs["model"] == model]
        row: dict = {"model": model, "n_seeds": len(sub)}
        if "converged" in runs:
            row["n_converged"] = int((sub["converged"] == 1).sum())
        if "epochs_trained" in runs and sub["epochs_trained"].notna().any():
            row["epochs_min"] = int(sub["epochs_trained"].min())
            row["epochs_max"] = int(sub["epochs_trained"].max())
        for metric in metric_names(runs):
            values = sub[metric].dropna().to_numpy()
            lo, hi = bootstrap_ci(values)
            row |= {f"{metric}_mean": statistics.fmean(values) if values.size else math.nan,
                    f"{metric}_std": statistics.stdev(values) if values.size > 1 else math.nan,
                    f"{metric}_ci_lo": lo, f"{metric}_ci_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(runs: pd.DataFrame, models: list[str],
                       reference: str | None) -> pd.DataFrame:
    """Per other model and metric: mean of (reference - model) over shared seeds, with its CI.

    Columns: baseline, metric, n_pairs, mean_diff, ci_lo, ci_hi, {reference}_mean,
    baseline_mean; empty when ``reference`` is None or not among ``models``.
    """
    columns = ["baseline", "metric", "n_pairs", "mean_diff", "ci_lo", "ci_hi",
               f"{reference}_mean", "baseline_mean"]
    if reference is None or reference not in models:
        return pd.DataFrame(columns=columns)
    ref = runs[runs["model"] == reference].set_index("seed")
    rows = []
    for baseline in (m for m in models if m != reference):
        base = runs[runs["model"] == baseline].set_index("seed")
        seeds = sorted(set(ref.index) & set(base.index))
        for metric in (m for m in PAIRED_METRICS if m in metric_names(runs)):
            a, b = ref.loc[seeds, metric].to_numpy(), base.loc[seeds, metric].to_numpy()
            keep = np.isfinite(a) & np.isfinite(b)
            diff = a[keep] - b[keep]
            rows.append([baseline, metric, int(keep.sum()), diff.mean() if diff.size else math.nan,
                         *bootstrap_ci(diff), a[keep].mean() if diff.size else math.nan,
                         b[keep].mean() if diff.size else math.nan])
    return pd.DataFrame(rows, columns=columns)


def round_sig(value: float, digits: int = 6) -> float:
    """Round to ``digits`` significant digits (stable diffs of metrics.json)."""
    return float(f"{value:.{digits}g}")


def flat_metrics(summaries: dict[str, pd.DataFrame]) -> dict[str, float]:
    """{experiment.model.metric: mean, ...metric_std: std}; non-finite values are left out, and
    so is the std of 0/1 flags (``converged``: its mean, the fraction of converged seeds, says
    all)."""
    flat = {}
    for experiment, table in summaries.items():
        for row in table.to_dict("records"):
            for col, value in row.items():
                for suffix, key_suffix in (("_mean", ""), ("_std", "_std")):
                    if (col.endswith(suffix) and math.isfinite(value)
                            and not (key_suffix and col[: -len(suffix)] in FLAGS)):
                        metric = col[: -len(suffix)]
                        flat[f"{experiment}.{row['model']}.{metric}{key_suffix}"] = round_sig(value)
    return dict(sorted(flat.items()))

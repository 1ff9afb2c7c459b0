"""Collect finished runs and turn them into the report: seed statistics, paired comparisons, tables.

Every expected (experiment, model, seed) of the config's grid must have its run folder
(``RunSpec.run_dir``) with ``metrics.json`` and ``history.csv``; otherwise ``collect_runs`` raises
``MissingRunsError`` listing the folders, before anything is written. ``build_report`` computes
every output in memory (``{relative path: bytes}``) and ``write_report`` writes them atomically, so
a failure never leaves a partial table. Same inputs give byte-identical csv/md/json outputs: the
bootstrap uses a fixed seed and floats are printed with 6 significant digits.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.config import resolve_run, run_grid
from analysis.extra_figures import extra_figure_names
from harness.io import atomic_write

log = logging.getLogger(__name__)

REFERENCE_MODEL = "rkn"
N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 20190609  # fixed: intervals are reproducible to the byte
PAIRED_METRICS = ("log_lik", "rmse", "bce_all", "bce_missing", "bce_observed")
KEY_METRICS = ("log_lik", "rmse", "coverage_1sigma", "coverage_2sigma",
               "bce_all", "bce_missing", "bce_observed")
REQUIRED_FILES = ("metrics.json", "history.csv")
FIGURES = ("metrics", "learning_curves", "calibration", "example")


class MissingRunsError(RuntimeError):
    """Expected runs are missing; the message lists their folders."""


@dataclass(frozen=True)
class Runs:
    """The collected runs: one metrics row per run (config order) and each run's folder."""

    metrics: pd.DataFrame          # columns experiment, model, seed, then one column per metric
    run_dirs: dict[tuple[str, str, int], Path]


def collect_runs(config: dict, results_dir: str | Path) -> Runs:
    """Read metrics.json of every run in the grid; MissingRunsError if any run is incomplete."""
    run_dirs = {key: resolve_run(config, *key).run_dir(results_dir) for key in run_grid(config)}
    missing = [d for d in run_dirs.values() if not all((d / f).is_file() for f in REQUIRED_FILES)]
    if missing:
        listing = "\n".join(f"  {d}" for d in missing)
        raise MissingRunsError(
            f"{len(missing)} of {len(run_dirs)} expected runs are missing or incomplete (no "
            f"{' / '.join(REQUIRED_FILES)}); train them first (Snakemake or "
            f"workflow/scripts/train.py), no report was written:\n{listing}")
    rows = []
    for (experiment, model, seed), run_dir in run_dirs.items():
        values = json.loads((run_dir / "metrics.json").read_text())
        rows.append({"experiment": experiment, "model": model, "seed": seed,
                     **{k: float(v) for k, v in values.items()}})
    frame = pd.DataFrame(rows)
    metric_cols = sorted(c for c in frame.columns if c not in ("experiment", "model", "seed"))
    return Runs(frame[["experiment", "model", "seed", *metric_cols]], run_dirs)


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
    """One row per model (given order): n_seeds, and {metric}_mean/_std/_ci_lo/_ci_hi."""
    rows = []
    for model in models:
        sub = runs[runs["model"] == model]
        row: dict = {"model": model, "n_seeds": len(sub)}
        for metric in metric_names(runs):
            values = sub[metric].dropna().to_numpy()
            lo, hi = bootstrap_ci(values)
            row |= {f"{metric}_mean": statistics.fmean(values) if values.size else math.nan,
                    f"{metric}_std": statistics.stdev(values) if values.size > 1 else math.nan,
                    f"{metric}_ci_lo": lo, f"{metric}_ci_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(runs: pd.DataFrame, models: list[str],
                       reference: str = REFERENCE_MODEL) -> pd.DataFrame:
    """Per baseline and metric: mean of (reference - baseline) over shared seeds, with its CI."""
    columns = ["baseline", "metric", "n_pairs", "mean_diff", "ci_lo", "ci_hi",
               f"{reference}_mean", "baseline_mean"]
    if reference not in models:
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
    """{experiment.model.metric: mean, ...metric_std: std}; non-finite values are left out."""
    flat = {}
    for experiment, table in summaries.items():
        for row in table.to_dict("records"):
            for col, value in row.items():
                for suffix, key_suffix in (("_mean", ""), ("_std", "_std")):
                    if col.endswith(suffix) and math.isfinite(value):
                        metric = col[: -len(suffix)]
                        flat[f"{experiment}.{row['model']}.{metric}{key_suffix}"] = round_sig(value)
    return dict(sorted(flat.items()))


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with 6 significant digits and blanks for NaN (deterministic bytes)."""
    return frame.to_csv(index=False, float_format="%.6g", na_rep="", lineterminator="\n").encode()


def fmt(value: float, digits: int = 4) -> str:
    """A number for a markdown table; 'n/a' for NaN."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def fmt_stat(mean: float, std: float, lo: float, hi: float) -> str:
    """'mean ± std [lo, hi]', or just the mean when std is undefined (one seed)."""
    if not math.isfinite(std):
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std, 2)} [{fmt(lo)}, {fmt(hi)}]"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]) + "\n"


def summary_markdown(summary: pd.DataFrame) -> str:
    """Key metrics per model as 'mean ± std [95% CI]', plus seeds and parameter count."""
    metrics = [m for m in KEY_METRICS if f"{m}_mean" in summary.columns]
    rows = []
    for r in summary.to_dict("records"):
        stats = [fmt_stat(r[f"{m}_mean"], r[f"{m}_std"], r[f"{m}_ci_lo"], r[f"{m}_ci_hi"])
                 for m in metrics]
        n_params = r.get("n_params_mean", math.nan)
        n_params = f"{n_params:,.0f}" if math.isfinite(n_params) else "n/a"
        rows.append([r["model"], r["n_seeds"], *stats, n_params])
    return markdown_table(["model", "seeds", *metrics, "n_params"], rows)


def paired_markdown(paired: pd.DataFrame, reference: str = REFERENCE_MODEL) -> str:
    """The paired differences as a markdown table."""
    if paired.empty:
        return f"No paired comparison: the experiment has no '{reference}' model or no baseline.\n"
    rows = [[r["baseline"], r["metric"], r["n_pairs"], fmt(r["mean_diff"]),
             f"[{fmt(r['ci_lo'])}, {fmt(r['ci_hi'])}]"] for r in paired.to_dict("records")]
    return markdown_table(["baseline", "metric", "seeds paired", f"{reference} − baseline",
                           "95% CI"], rows)


def experiment_markdown(config: dict, experiment: str, summary: pd.DataFrame,
                        paired: pd.DataFrame) -> str:
    """The readable table of one experiment: settings, per-model summary, paired comparison."""
    spec = config["experiments"][experiment]
    run = resolve_run(config, experiment, spec["models"][0], spec["seeds"][0])
    params = ", ".join(f"{k} {v}" for k, v in sorted(run.dataset_params.items()))
    return (f"# {experiment} (scale {config['scale']})\n\n"
            f"Dataset {run.dataset} ({params}); {run.training.epochs} epochs; seeds "
            f"{list(spec['seeds'])}.\nCells: mean ± std (ddof 1) [bootstrap 95% CI of the mean, "
            f"{N_BOOTSTRAP} percentile resamples]. All metrics: `{experiment}.csv`.\n\n"
            f"{summary_markdown(summary)}\n## Paired comparison ({REFERENCE_MODEL} − baseline, "
            f"same seeds)\n\nLog-likelihood: positive favours {REFERENCE_MODEL}; RMSE and BCE: "
            f"negative favours {REFERENCE_MODEL}. All values: `{experiment}_paired.csv`.\n\n"
            f"{paired_markdown(paired)}")


def expected_outputs(config: dict) -> list[str]:
    """Every file ``build_report`` writes, relative to the report folder (for workflow rules)."""
    paths = ["metrics.json", "claims.md"]
    for experiment in config["experiments"]:
        paths += [f"tables/{experiment}{s}" for s in (".csv", ".md", "_paired.csv")]
        paths += [f"figures/{experiment}_{name}.png" for name in FIGURES]
        paths += [f"figures/{experiment}_{name}.png" for name in extra_figure_names(experiment)]
    return paths


def build_report(config: dict, results_dir: str | Path, reference: dict,
                 figures: bool = True) -> dict[str, bytes]:
    """Every report file as {relative path: bytes}; raises MissingRunsError before any work."""
    # matplotlib is imported only when reporting
    from analysis import claims, extra_figures  # noqa: PLC0415
    from analysis import figures as report_figures  # noqa: PLC0415

    runs = collect_runs(config, results_dir)
    outputs: dict[str, bytes] = {}
    summaries, paireds = {}, {}
    for experiment, spec in config["experiments"].items():
        models = list(spec["models"])
        sub = runs.metrics[runs.metrics["experiment"] == experiment]
        summaries[experiment] = summarize(sub, models)
        paireds[experiment] = paired_differences(sub, models)
        outputs[f"tables/{experiment}.csv"] = to_csv_bytes(summaries[experiment])
        outputs[f"tables/{experiment}_paired.csv"] = to_csv_bytes(paireds[experiment])
        outputs[f"tables/{experiment}.md"] = experiment_markdown(
            config, experiment, summaries[experiment], paireds[experiment]).encode()
        if figures:
            dirs = {(m, s): d for (e, m, s), d in runs.run_dirs.items() if e == experiment}
            pngs = report_figures.experiment_figures(experiment, sub, dirs, models)
            pngs |= extra_figures.extra_figures(config, results_dir, experiment, sub, dirs, models)
            outputs |= {f"figures/{experiment}_{name}.png": png for name, png in pngs.items()}
    outputs["metrics.json"] = (json.dumps(flat_metrics(summaries), indent=2, sort_keys=True)
                               + "\n").encode()
    outputs["claims.md"] = claims.claims_markdown(config, summaries, paireds, reference).encode()
    return outputs


def write_report(outputs: dict[str, bytes], out_dir: str | Path) -> None:
    """Write each output atomically under ``out_dir``."""
    for rel, payload in sorted(outputs.items()):
        atomic_write(Path(out_dir) / rel, lambda handle, data=payload: handle.write(data))
        log.info("wrote %s", Path(out_dir) / rel)

"""Report tables: deterministic CSV bytes and readable markdown (6 significant digits, n/a for NaN)."""

from __future__ import annotations

import math

import pandas as pd

from analysis.runs import ExperimentRuns
from analysis.stats import N_BOOTSTRAP

# Metrics shown in the markdown tables (every metric is in the CSV).
KEY_METRICS = ("log_lik", "rmse", "coverage_1sigma", "coverage_2sigma",
               "bce_all", "bce_missing", "bce_observed")


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
    """Key metrics per model as 'mean ± std [95% CI]', plus seeds, converged seeds (k/n, by
    harness.convergence) and parameter count."""
    metrics = [m for m in KEY_METRICS if f"{m}_mean" in summary.columns]
    epochs = "epochs_min" in summary.columns
    rows = []
    for r in summary.to_dict("records"):
        stats = [fmt_stat(r[f"{m}_mean"], r[f"{m}_std"], r[f"{m}_ci_lo"], r[f"{m}_ci_hi"])
                 for m in metrics]
        n_params = r.get("n_params_mean", math.nan)
        n_params = f"{n_params:,.0f}" if math.isfinite(n_params) else "n/a"
        converged = f"{r['n_converged']}/{r['n_seeds']}" if "n_converged" in r else "n/a"
        trained = [epochs_cell(r.get("epochs_min"), r.get("epochs_max"))] if epochs else []
        rows.append([r["model"], r["n_seeds"], converged, *trained, *stats, n_params])
    return markdown_table(["model", "seeds", "converged", *(["epochs"] if epochs else []),
                           *metrics, "n_params"], rows)


def epochs_cell(fewest: float | None, most: float | None) -> str:
    """Epochs trained over the seeds: '500', or 'fewest–most' when early stopping ended some
    runs sooner than others; 'n/a' when unknown."""
    if fewest is None or most is None or not (math.isfinite(fewest) and math.isfinite(most)):
        return "n/a"
    return f"{int(fewest)}" if fewest == most else f"{int(fewest)}–{int(most)}"


def paired_markdown(paired: pd.DataFrame, reference: str | None) -> str:
    """The paired differences as a markdown table."""
    if paired.empty:
        return ("No paired comparison: the experiment has no model with role 'rkn' or no other "
                "model.\n")
    rows = [[r["baseline"], r["metric"], r["n_pairs"], fmt(r["mean_diff"]),
             f"[{fmt(r['ci_lo'])}, {fmt(r['ci_hi'])}]"] for r in paired.to_dict("records")]
    return markdown_table(["baseline", "metric", "seeds paired", f"{reference} − baseline",
                           "95% CI"], rows)


def experiment_markdown(scale: str, runs: ExperimentRuns, summary: pd.DataFrame,
                        paired: pd.DataFrame) -> str:
    """The readable table of one experiment: settings, per-model summary, paired comparison."""
    settings = runs.settings
    params = ", ".join(f"{k} {v}" for k, v in sorted(settings["dataset_params"].items()))
    ref = runs.reference
    return (f"# {runs.name} (scale {scale})\n\n"
            f"Dataset {settings['dataset']} ({params}); {settings['training']['epochs']} epochs; "
            f"seeds {runs.seeds}.\nCells: mean ± std (ddof 1) [bootstrap 95% CI of the mean, "
            f"{N_BOOTSTRAP} percentile resamples]. Converged: seeds whose run converged (rule in "
            f"claims.md). Epochs: epochs trained (a range when early stopping ended some seeds "
            f"sooner). All metrics: `{runs.name}.csv`.\n\n"
            f"{summary_markdown(summary)}\n## Paired comparison ({ref} − baseline, "
            f"same seeds)\n\nLog-likelihood: positive favours {ref}; RMSE and BCE: "
            f"negative favours {ref}. All values: `{runs.name}_paired.csv`.\n\n"
            f"{paired_markdown(paired, ref)}")

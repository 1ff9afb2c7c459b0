"""What a claim plug-in declares and what its rule sees (analysis/claims/, one module per claim).

A claim module defines ``CLAIM = Claim(...)``: its number and text (paper.md §7), the experiments
it judges, its rule as code (``judge``) and as the sentence printed in claims.md, the roles it
compares with the RKN, and its extra figures. Rules select models by the role the config gives
them (``models.<name>.role``), never by name, so a user's model with role ``baseline`` enters
claims 1, 3 and 5 like the LSTM.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from analysis.runs import ExperimentRuns
from analysis.tables import fmt

# Fewest paired seeds for a verdict other than "inconclusive": a bootstrap over fewer seeds
# understates the uncertainty. Every rule uses this one value.
MIN_SEEDS = 3
VERDICTS = ("reproduced", "not reproduced", "inconclusive")


@dataclass(frozen=True)
class Verdict:
    """A verdict (one of ``VERDICTS``) and its reasons, one a line."""

    verdict: str
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


@dataclass(frozen=True)
class Evidence:
    """What a rule sees of one experiment: its runs, per-model summary and paired comparison.

    ``summary`` has one row per model (``analysis.stats.summarize``); ``paired`` one row per
    (other model, metric) with the differences reference − model (``paired_differences``).
    """

    runs: ExperimentRuns
    summary: pd.DataFrame
    paired: pd.DataFrame

    @property
    def reference(self) -> str | None:
        """The model with role ``rkn`` (None when the experiment has none)."""
        return self.runs.reference

    def with_role(self, *roles: str) -> list[str]:
        """Models of the experiment with one of ``roles``, in config order."""
        return self.runs.with_role(*roles)

    def paired_row(self, model: str, metric: str) -> dict | None:
        """The paired row of (reference − ``model``) on ``metric``, or None."""
        rows = self.paired[(self.paired["baseline"] == model) & (self.paired["metric"] == metric)]
        return rows.iloc[0].to_dict() if len(rows) else None

    def summary_row(self, model: str) -> dict | None:
        """The summary row of ``model``, or None."""
        rows = self.summary[self.summary["model"] == model]
        return rows.iloc[0].to_dict() if len(rows) else None


def interval(row: dict) -> str:
    """'mean [lo, hi]' of a paired row."""
    return f"{fmt(row['mean_diff'])} [{fmt(row['ci_lo'])}, {fmt(row['ci_hi'])}]"


def side_of_zero(row: dict) -> str:
    """Where the paired interval lies: 'above 0', 'below 0' or 'contains 0'."""
    return "above 0" if row["ci_lo"] > 0 else "below 0" if row["ci_hi"] < 0 else "contains 0"


def too_few_seeds(n_pairs: list[int], reasons: list[str]) -> Verdict | None:
    """The inconclusive verdict when fewer than ``MIN_SEEDS`` seeds are paired, else None."""
    if n_pairs and min(n_pairs) < MIN_SEEDS:
        return Verdict("inconclusive", (f"only {min(n_pairs)} paired seeds (< {MIN_SEEDS})",
                                        *reasons))
    return None


def stat(row: dict, metric: str) -> str:
    """'mean ± std [lo, hi]' of a summary row, 'n/a' when the metric is absent or not finite."""
    if not math.isfinite(row.get(f"{metric}_mean", math.nan)):
        return "n/a"
    return (f"{fmt(row[f'{metric}_mean'])} ± {fmt(row[f'{metric}_std'], 2)} "
            f"[{fmt(row[f'{metric}_ci_lo'])}, {fmt(row[f'{metric}_ci_hi'])}]")


def log_lik_rmse_table(evidence: Evidence, published: Mapping[str, dict]) -> str:
    """Per model: published id and value (if mapped), our log-likelihood and RMSE, seeds."""
    lines = ["| model | published id | published LL | reproduced LL | reproduced RMSE | seeds |",
             "|---|---|---|---|---|---|"]
    for r in evidence.summary.to_dict("records"):
        pub = published.get(r["model"])
        pub_cells = f"{pub['id']} | {pub['as_printed']}" if pub else "– | –"
        lines.append(f"| {r['model']} | {pub_cells} | {stat(r, 'log_lik')} | {stat(r, 'rmse')} "
                     f"| {r['n_seeds']} |")
    sources = sorted({p["source"] for p in published.values()})
    note = f"\nPublished: {'; '.join(sources)}." if sources else "\nNo published values mapped."
    return "\n".join(lines) + "\n" + note + " Reproduced: mean ± std [bootstrap 95% CI].\n"


Rule = Callable[[Evidence], Verdict]
NumbersTable = Callable[[Evidence, Mapping[str, dict]], str]
FigureMaker = Callable[[ExperimentRuns], bytes]


@dataclass(frozen=True)
class Claim:
    """One headline claim of the paper as a plug-in.

    Attributes:
        number: the claim's number (paper.md §7); claims.md lists claims in this order.
        text: the claim in one sentence.
        experiments: the config's experiments that test it (each judged separately).
        rule: the rule as the sentence printed in claims.md.
        judge: the rule as code; None for claims outside the pipeline.
        compares: the roles whose models the rule compares with the RKN (documentation and the
            check that an experiment has such models).
        figures: extra figures of the claim's experiments, name -> maker; written as
            ``figures/{experiment}_{name}.png``.
        numbers_table: the table of our (and the published) numbers beside the verdict.
        not_in_pipeline: why the claim is not judged here ("" when it is).
    """

    number: int
    text: str
    experiments: tuple[str, ...] = ()
    rule: str = ""
    judge: Rule | None = None
    compares: tuple[str, ...] = ()
    figures: Mapping[str, FigureMaker] = field(default_factory=dict)
    numbers_table: NumbersTable = log_lik_rmse_table
    not_in_pipeline: str = ""

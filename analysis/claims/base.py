"""What a claim plug-in declares and what its rule sees (analysis/claims/, one module per claim).

A claim module defines ``CLAIM = Claim(...)``: its number and text (docs/experiments.md#headline-claims), the experiments
it judges (or the non-experiment measurements it reads, e.g. ``efficiency``), its rule as code
(``judge``) and as the sentence printed in claims.md, the roles it compares with the RKN, and its
extra figures. Rules select models by the role the config gives them (``models.<name>.role``),
never by name, so a user's model with role ``baseline`` enters claims 1, 3 and 5 like the LSTM.

``Claim.assess`` is what the report calls: the rule's verdict, then the convergence gate
(``convergence_gate``), the same for every experiment claim.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.convergence import unconverged
from analysis.runs import ExperimentRuns
from analysis.tables import fmt
from harness.convergence import RULE_TEXT as CONVERGENCE_RULE

# Fewest paired seeds for a verdict other than "inconclusive": a bootstrap over fewer seeds
# understates the uncertainty. Every rule uses this one value.
MIN_SEEDS = 3
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
CONVERGENCE_POLICY = (
    f"Convergence: {CONVERGENCE_RULE} A comparison in which a compared model has seeds that did "
    f"not converge is never **not reproduced**: it becomes **inconclusive (not converged: ...)**, "
    f"naming the models. It stays **reproduced** only if the claim holds anyway, i.e. when the "
    f"only unconverged models are the RKN itself (further training can only lower the "
    f"validation loss its model selection keeps, which favours the claim) and the claim says so "
    f"(not claim 3, whose calibration part need not improve with training).")


@dataclass(frozen=True)
class Verdict:
    """A verdict (one of ``VERDICTS``), its reasons (one a line) and an optional note printed in
    brackets after it (e.g. "not converged: lstm, gru")."""

    verdict: str
    reasons: tuple[str, ...]
    note: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")

    @property
    def headline(self) -> str:
        """'inconclusive (not converged: lstm)', or the bare verdict without a note."""
        return f"{self.verdict} ({self.note})" if self.note else self.verdict


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


def paired_with(evidence: Evidence, role: str) -> tuple[list[str], Verdict | None]:
    """The experiment's models of ``role`` to pair with the RKN, and the inconclusive verdict
    when there is no RKN (role ``rkn``) or no such model (else None)."""
    models = evidence.with_role(role)
    if evidence.reference is None or not models:
        return models, Verdict("inconclusive",
                               (f"no model with role 'rkn' and role '{role}' to pair",))
    return models, None


def too_few_seeds(n_pairs: list[int], reasons: list[str]) -> Verdict | None:
    """The inconclusive verdict when fewer than ``MIN_SEEDS`` seeds are paired, else None."""
    if n_pairs and min(n_pairs) < MIN_SEEDS:
        return Verdict("inconclusive", (f"only {min(n_pairs)} paired seeds (< {MIN_SEEDS})",
                                        *reasons))
    return None


def convergence_gate(verdict: Verdict, evidence: Evidence, compared: list[str],
                     unconverged_ok: tuple[str, ...]) -> Verdict:
    """The verdict after the convergence policy (``CONVERGENCE_POLICY``).

    Args:
        verdict: what the claim's rule says on its own.
        evidence: the experiment (its runs carry the ``converged`` flags).
        compared: the models the rule compares (the RKN and the deciding roles).
        unconverged_ok: roles whose unconverged seeds cannot overturn a "reproduced".

    Returns:
        ``verdict`` when every compared seed converged; a "reproduced" that holds anyway (only
        models with a role in ``unconverged_ok`` unconverged) with a reason added; otherwise
        "inconclusive" with the note "not converged: <models>" and the rule's own verdict as
        the first reason.
    """
    bad = unconverged(evidence.runs, compared)
    if not bad:
        return verdict
    names = ", ".join(bad)
    detail = "not converged: " + ", ".join(f"{m} ({n} of {k} seeds)" for m, (n, k) in bad.items())
    if verdict.verdict == "reproduced" and all(evidence.runs.roles[m] in unconverged_ok
                                               for m in bad):
        return Verdict("reproduced", (*verdict.reasons, f"{detail}; the claim holds anyway: "
                                      f"further training can only lower the selected validation "
                                      f"loss of {names}, which favours the claim"))
    return Verdict("inconclusive", (f"{detail} (the rule alone says: {verdict.verdict})",
                                    *verdict.reasons), note=f"not converged: {names}")


def seeds_cell(row: dict) -> str:
    """'3 (2 converged)' of a summary row, or just the number of seeds without flags."""
    if "n_converged" in row and row["n_converged"] == row["n_converged"]:  # not NaN
        return f"{row['n_seeds']} ({int(row['n_converged'])} converged)"
    return str(row["n_seeds"])


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
                     f"| {seeds_cell(r)} |")
    sources = sorted({p["source"] for p in published.values()})
    note = f"\nPublished: {'; '.join(sources)}." if sources else "\nNo published values mapped."
    return "\n".join(lines) + "\n" + note + " Reproduced: mean ± std [bootstrap 95% CI].\n"


# A rule reads an experiment's Evidence, or, for a claim with ``measurement``, what the report
# read of that measurement (e.g. analysis.efficiency.EfficiencyEvidence).
Rule = Callable[[Any], Verdict]
NumbersTable = Callable[[Any, Mapping[str, dict]], str]
FigureMaker = Callable[[ExperimentRuns], bytes]


@dataclass(frozen=True)
class Claim:
    """One headline claim of the paper as a plug-in.

    Attributes:
        number: the claim's number (docs/experiments.md#headline-claims); claims.md lists claims in this order.
        text: the claim in one sentence.
        experiments: the config's experiments that test it (each judged separately).
        rule: the rule as the sentence printed in claims.md.
        judge: the rule as code; None for claims outside the pipeline.
        compares: the roles whose models decide the verdict beside the RKN; their seeds (and
            the RKN's) must have converged (``convergence_gate``).
        context: roles listed beside the verdict that do not decide it.
        unconverged_ok: roles whose unconverged seeds leave a "reproduced" standing (default
            the RKN: more training can only help it); () when no role may be unconverged.
        figures: extra figures of the claim's experiments, name -> maker; written as
            ``figures/{experiment}_{name}.png``.
        numbers_table: the table of our (and the published) numbers beside the verdict.
        measurement: the name of a non-experiment input the claim reads instead of
            experiments (e.g. "efficiency"); the report passes what it read of it to ``judge``
            and ``numbers_table``; "" for experiment claims.
        not_in_pipeline: why the claim is not judged here ("" when it is).
        sources: markdown printed below the claim's numbers: which setting follows which of the
            authors' sources and what differs from them ("" for none).
    """

    number: int
    text: str
    experiments: tuple[str, ...] = ()
    rule: str = ""
    judge: Rule | None = None
    compares: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    unconverged_ok: tuple[str, ...] = ("rkn",)
    figures: Mapping[str, FigureMaker] = field(default_factory=dict)
    numbers_table: NumbersTable = log_lik_rmse_table
    measurement: str = ""
    not_in_pipeline: str = ""
    sources: str = ""

    def assess(self, evidence: Any) -> Verdict:
        """The verdict the report prints: the rule's, then (experiment claims) the convergence
        gate over the RKN and the models of the ``compares`` roles."""
        verdict = self.judge(evidence)
        if self.measurement or not isinstance(evidence, Evidence):
            return verdict
        compared = [m for m in [evidence.reference] if m] + evidence.with_role(*self.compares)
        return convergence_gate(verdict, evidence, compared, self.unconverged_ok)

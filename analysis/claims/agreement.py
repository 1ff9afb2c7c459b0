"""Do our numbers agree with the published ones? One line per published row, never a verdict.

Verdicts compare models within this reproduction (paired by seed). Whether our absolute numbers
match the paper's is a separate question with its own rule (``RULE``), printed in claims.md below
each experiment's numbers table. It is a finding only at scale ``paper`` (the paper's data sizes,
epochs and seeds); at smaller scales the lines are context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from analysis.claims.base import Evidence
from analysis.tables import fmt

# Published metric ids (config/reference_numbers.yaml `metrics`) -> our metric of the same
# definition; rows of any other metric (e.g. the ICLR image likelihood) are not comparable.
OUR_METRIC = {"gaussian_log_likelihood": "log_lik"}
FINDING_SCALE = "paper"
RULE = (
    "A published value is **within** when the published mean lies inside our bootstrap 95% "
    "interval of the mean widened on both sides by the published standard deviation "
    "([lo − std, hi + std]), **outside** otherwise, and **not assessable** when our interval is "
    "undefined (fewer than 2 seeds), the published row has no mean or std, or its metric is not "
    "one we compute. The widening allows for the published runs' own seed spread (their number "
    "of runs is unknown, so no standard error can be formed).")


def agreement(summary_row: Mapping, published: Mapping) -> tuple[str, str]:
    """('within' | 'outside' | 'not assessable', the numbers behind it) for one published row.

    Args:
        summary_row: our summary row of the model (``analysis.stats.summarize``).
        published: the published result (config/reference_numbers.yaml: mean, std, metric).
    """
    metric = OUR_METRIC.get(published.get("metric", "gaussian_log_likelihood"))
    mean, std = published.get("mean"), published.get("std")
    if metric is None:
        return "not assessable", f"published metric {published.get('metric')} is not ours"
    if mean is None or std is None:
        return "not assessable", "no published mean and std"
    lo, hi = summary_row.get(f"{metric}_ci_lo", math.nan), summary_row.get(f"{metric}_ci_hi",
                                                                          math.nan)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "not assessable", "our 95% interval is undefined (fewer than 2 seeds)"
    wide_lo, wide_hi = lo - std, hi + std
    status = "within" if wide_lo <= mean <= wide_hi else "outside"
    return status, (f"our {metric} 95% CI [{fmt(lo)}, {fmt(hi)}] widened by {fmt(std)}: "
                    f"[{fmt(wide_lo)}, {fmt(wide_hi)}]")


def agreement_section(evidence: Evidence, published: Mapping[str, dict], scale: str) -> str:
    """The agreement lines of one experiment ("" when no published row is mapped to it)."""
    lines = []
    for model, row in published.items():
        ours = evidence.summary_row(model)
        if ours is None:
            continue
        status, detail = agreement(ours, row)
        shown = row.get("as_printed", fmt(row.get("mean", math.nan)))
        lines.append(f"- {model} ↔ {row['id']} ({shown}): **published value: {status}** "
                     f"({detail})\n")
    if not lines:
        return ""
    weight = ("a finding at this scale" if scale == FINDING_SCALE else
              f"context only: scale `{scale}` is not the paper's setting, a finding only at "
              f"scale `{FINDING_SCALE}`")
    return (f"Agreement with the published values (separate from the verdict; {weight}; rule at "
            f"the top of this file):\n\n" + "".join(lines))

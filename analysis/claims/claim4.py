"""Claim 4 (paper.md §7): with the masked update the RKN beats generative models at imputation.

The verdict reads the paired (same seed) differences rkn − baseline of ``results.paired_differences``
on ``bce_missing`` (the imputed frames; lower is better); the reference rows (§5.3) give context.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from analysis.claims import Verdict

GENERATIVE = ("kvae_filter", "kvae_smooth", "e2c", "dks", "dks_filter")
REFERENCE_ROWS = ("hold_last_frame", "mean_image", "entropy_floor")
METRIC = "bce_missing"
MIN_SEEDS = 3
RULE_4 = (
    f"For every generative baseline present ({', '.join(GENERATIVE)}), take the paired (same "
    f"seed) differences rkn − baseline of `{METRIC}` (BCE per image on the missing frames) and "
    f"their bootstrap 95% interval of the mean. **Reproduced** if every interval lies below 0 "
    f"(the RKN imputes better than each of them); **not reproduced** if any interval lies above 0; "
    f"otherwise, or with fewer than {MIN_SEEDS} paired seeds, **inconclusive**. The reference rows "
    f"(hold_last_frame, mean_image, entropy_floor; §5.3) are listed for context and do not enter "
    f"the verdict.")


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def claim4_verdict(paired: pd.DataFrame, reference: str = "rkn") -> Verdict:
    """Judge claim 4 from the paired differences (columns of results.paired_differences)."""
    from analysis.claims import Verdict  # noqa: PLC0415, F811 (claims imports this module)

    rows = {r["baseline"]: r for r in paired.to_dict("records") if r["metric"] == METRIC}
    baselines = [b for b in GENERATIVE if b in rows]
    if not baselines:
        return Verdict("inconclusive", (f"no generative baseline paired with {reference} on {METRIC}",))
    reasons, better, worse = [], [], []
    for b in baselines:
        r = rows[b]
        better.append(r["ci_hi"] < 0)
        worse.append(r["ci_lo"] > 0)
        side = "below 0" if r["ci_hi"] < 0 else "above 0" if r["ci_lo"] > 0 else "contains 0"
        reasons.append(f"{b}: Δ{METRIC} {_f(r['mean_diff'])} [{_f(r['ci_lo'])}, {_f(r['ci_hi'])}] "
                       f"({side}; {reference} {_f(r[f'{reference}_mean'])} vs {_f(r['baseline_mean'])}, "
                       f"{r['n_pairs']} seeds)")
    for b in (x for x in REFERENCE_ROWS if x in rows):
        reasons.append(f"context, {b}: {METRIC} {_f(rows[b]['baseline_mean'])}")
    if min(rows[b]["n_pairs"] for b in baselines) < MIN_SEEDS:
        return Verdict("inconclusive", (f"fewer than {MIN_SEEDS} paired seeds", *reasons))
    verdict = "not reproduced" if any(worse) else "reproduced" if all(better) else "inconclusive"
    return Verdict(verdict, tuple(reasons))


def bce_numbers_table(summary: pd.DataFrame, published: dict) -> str:
    """Per model: BCE per image on all / missing / observed frames (mean ± std [95% CI])."""
    del published  # no published BCE values exist (§6)

    def stat(r: dict, m: str) -> str:
        if f"{m}_mean" not in r or not math.isfinite(r[f"{m}_mean"]):
            return "n/a"
        return (f"{_f(r[f'{m}_mean'])} ± {_f(r[f'{m}_std'], 2)} "
                f"[{_f(r[f'{m}_ci_lo'])}, {_f(r[f'{m}_ci_hi'])}]")

    lines = ["| model | bce_all | bce_missing | bce_observed | seeds |", "|---|---|---|---|---|"]
    for r in summary.to_dict("records"):
        lines.append(f"| {r['model']} | {stat(r, 'bce_all')} | {stat(r, 'bce_missing')} | "
                     f"{stat(r, 'bce_observed')} | {r['n_seeds']} |")
    return ("\n".join(lines) + "\n\nNo published BCE values exist (the ICML tables were not "
            "available; the ICLR image likelihood is not comparable). Reproduced: mean ± std "
            "[bootstrap 95% CI], nats per image, lower is better.\n")

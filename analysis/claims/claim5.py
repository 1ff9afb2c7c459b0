"""Verdict rule of claim 5 (paper.md §7): on the quad-link (E4) the RKN clearly beats LSTM/GRU.

Called from ``analysis.claims`` once per E4 experiment (``quad_link`` without and ``quad_link_noisy``
with image noise), on the paired (same seed) differences of ``analysis.report.paired_differences``.
The claim's second half (the m = 100 baselines are worse and less stable than m = 50) is reported
beside the verdict but does not decide it: the paired table holds only rkn − baseline pairs.
"""

from __future__ import annotations

import math

import pandas as pd

MIN_SEEDS = 3
# "Clearly beats": half the smaller published gap (ICLR Table 2 with noise: 6.259 - 5.21 = 1.05
# nats per time step). A mean advantage below it is not "clear" even with a tight interval.
CLEAR_MARGIN = 0.5
# Baselines of the same cell at m = 50 and m = 100 (our registry names).
SIZE_PAIRS = (("lstm", "lstm_m100"), ("gru", "gru_m100"))
RULE_5 = (
    f"For every LSTM/GRU baseline (m = 50 and m = 100), take the paired (same seed) differences "
    f"rkn − baseline of the log-likelihood and their bootstrap 95% interval of the mean. "
    f"**Reproduced** if every interval lies above 0 and every mean difference is at least "
    f"{CLEAR_MARGIN} nats per time step (\"clearly\": half the smaller published gap, 1.05). "
    f"**Not reproduced** if some interval lies "
    f"entirely below 0. **Inconclusive** otherwise, and whenever fewer than {MIN_SEEDS} seeds "
    f"are paired. The RMSE differences and the m = 100 vs m = 50 comparison (claim 5's second "
    f"half) are listed for information and do not enter the verdict.")


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def _interval(row: dict) -> str:
    return f"{_f(row['mean_diff'])} [{_f(row['ci_lo'])}, {_f(row['ci_hi'])}]"


def claim5_verdict(paired: pd.DataFrame, reference: str = "rkn") -> tuple[str, tuple[str, ...]]:
    """(verdict, reasons) of claim 5 for one E4 experiment from its paired differences.

    Args:
        paired: rows of ``analysis.report.paired_differences`` (baseline, metric, n_pairs, mean_diff,
            ci_lo, ci_hi, {reference}_mean, baseline_mean).
        reference: the RKN's model name.

    Returns:
        verdict ("reproduced" | "not reproduced" | "inconclusive") and one reason a line.
    """
    baselines = [b for b in dict.fromkeys(paired["baseline"]) if b.startswith(("lstm", "gru"))]
    if not baselines:
        return "inconclusive", (f"no LSTM/GRU baseline paired with {reference}",)
    rows = {(r["baseline"], r["metric"]): r for r in paired.to_dict("records")}
    reasons, above, below, n_pairs = [], [], [], []
    for b in baselines:
        ll = rows.get((b, "log_lik"))
        if ll is None:
            return "inconclusive", (f"{b}: log_lik missing",)
        n_pairs.append(ll["n_pairs"])
        above.append(ll["ci_lo"] > 0 and ll["mean_diff"] >= CLEAR_MARGIN)
        below.append(ll["ci_hi"] < 0)
        side = ("below 0" if below[-1] else "contains 0" if ll["ci_lo"] <= 0 else
                "above 0" if above[-1] else f"above 0, mean below the {CLEAR_MARGIN} margin")
        rmse = rows.get((b, "rmse"))
        rmse_text = f"; ΔRMSE {_interval(rmse)}" if rmse else ""
        reasons.append(f"{b}: ΔLL {_interval(ll)} ({side}){rmse_text} ({ll['n_pairs']} seeds)")
    for small, large in SIZE_PAIRS:
        if (small, "log_lik") in rows and (large, "log_lik") in rows:
            ll_small, ll_large = rows[(small, "log_lik")], rows[(large, "log_lik")]
            reasons.append(f"information: {large} mean LL {_f(ll_large['baseline_mean'])} vs "
                           f"{small} {_f(ll_small['baseline_mean'])} (paper: m = 100 worse)")
    if min(n_pairs) < MIN_SEEDS:
        return "inconclusive", (f"only {min(n_pairs)} paired seeds (< {MIN_SEEDS})", *reasons)
    verdict = "not reproduced" if any(below) else "reproduced" if all(above) else "inconclusive"
    return verdict, tuple(reasons)

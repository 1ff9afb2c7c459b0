"""Verdict rules of claim 2 (ablations, E8) and claim 3 (multiple pendulums, E3); see rkn/claims.py.

Each rule reads the paired (same seed) differences ``rkn − model``
(``analysis.report.paired_differences``) and the per-model summary (``analysis.report.summarize``) and
returns a ``analysis.claims.Verdict``. The rule texts (RULE_2, RULE_3) are printed in claims.md next
to each verdict.
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from analysis.claims import Verdict

# Fewest paired seeds for a verdict; the same as rkn.MIN_SEEDS (a test keeps them equal;
# analysis.claims imports this module, so it cannot be imported from there at module level).
MIN_SEEDS = 3

# Claim 2: the approximations may cost at most this much log-likelihood (nats per step, summed
# over the two targets). About one seed-std of the ICLR E1 rows (0.12-0.25), twice the largest
# ICLR difference between the RKN variants (6.161-6.248).
NONINFERIORITY_MARGIN = 0.25
# The exact counterparts of the RKN's two approximations: full covariance, full transition.
EXACT_VARIANTS = {"rkn_full_cov": "full 2m x 2m covariance (factorization)",
                  "rkn_b15": "full transition blocks, b = m = 15 (band b = 3)"}
# Claim 3: coverage of N(0, 1) within 1 and 2 standard deviations, and how far a model's
# coverages may lie from them (sum of both absolute gaps) to count as calibrated.
NORMAL_COVERAGE = {"coverage_1sigma": 0.6827, "coverage_2sigma": 0.9545}
CALIBRATION_TOLERANCE = 0.08

RULE_2 = (
    f"For each exact variant ({', '.join(f'`{m}`: {d}' for m, d in EXACT_VARIANTS.items())}) take "
    f"the paired differences rkn − variant of the log-likelihood and their bootstrap 95% "
    f"interval of the mean. **Reproduced** if for both variants the interval's lower end is above "
    f"−{NONINFERIORITY_MARGIN} (the approximation costs less than {NONINFERIORITY_MARGIN} nats "
    f"per step, about one seed-std of the ICLR rows; being better is allowed). **Not reproduced** "
    f"if for some variant the whole interval lies below −{NONINFERIORITY_MARGIN}. "
    f"**Inconclusive** otherwise, when a variant is missing, and whenever fewer than "
    f"{MIN_SEEDS} seeds are paired. The bandwidth and basis-count sweeps are listed as context "
    f"only.")
RULE_3 = (
    f"(a) Log-likelihood: for every LSTM/GRU baseline the bootstrap 95% interval of the paired "
    f"differences rkn − baseline lies above 0. (b) Calibration: the calibration gap "
    f"|coverage_1sigma − {NORMAL_COVERAGE['coverage_1sigma']}| + |coverage_2sigma − "
    f"{NORMAL_COVERAGE['coverage_2sigma']}| (seed means; N(0, 1) values) of the RKN is at most "
    f"{CALIBRATION_TOLERANCE} and smaller than that of every LSTM. **Reproduced** if (a) and (b) "
    f"hold. **Not reproduced** if some baseline's log-likelihood interval lies entirely below 0, "
    f"or the RKN's calibration gap exceeds {2 * CALIBRATION_TOLERANCE}. **Inconclusive** "
    f"otherwise, and whenever fewer than {MIN_SEEDS} seeds are paired. The shape of the "
    f"LSTM's error histogram (multimodal in the paper) is shown in the figure, not judged.")


def _rows(paired: pd.DataFrame) -> dict[tuple[str, str], dict]:
    return {(r["baseline"], r["metric"]): r for r in paired.to_dict("records")}


def claim2_verdict(paired: pd.DataFrame, *, summary: pd.DataFrame | None = None) -> "Verdict":
    """Judge claim 2 (see RULE_2) from the paired log-likelihood differences rkn − variant."""
    from analysis import claims  # noqa: PLC0415 (circular at module level)

    rows = _rows(paired)
    reasons, costs_little, costs_much, n_pairs = [], [], [], []
    for variant, what in EXACT_VARIANTS.items():
        ll = rows.get((variant, "log_lik"))
        if ll is None:
            return claims.Verdict("inconclusive", (f"{variant} ({what}) was not run",))
        n_pairs.append(ll["n_pairs"])
        costs_little.append(ll["ci_lo"] > -NONINFERIORITY_MARGIN)
        costs_much.append(ll["ci_hi"] < -NONINFERIORITY_MARGIN)
        reasons.append(f"{variant} ({what}): ΔLL rkn − {variant} {claims._interval(ll)} vs "
                       f"margin −{NONINFERIORITY_MARGIN} ({ll['n_pairs']} seeds)")
    context = [b for b in dict.fromkeys(paired["baseline"]) if b not in EXACT_VARIANTS]
    for variant in context:
        ll = rows.get((variant, "log_lik"))
        if ll is not None:
            reasons.append(f"context {variant}: ΔLL rkn − {variant} {claims._interval(ll)}")
    if min(n_pairs) < MIN_SEEDS:
        return claims.Verdict("inconclusive", (f"only {min(n_pairs)} paired seeds (< {MIN_SEEDS})",
                                               *reasons))
    verdict = ("not reproduced" if any(costs_much) else
               "reproduced" if all(costs_little) else "inconclusive")
    return claims.Verdict(verdict, tuple(reasons))


def calibration_gap(row: dict) -> float:
    """|coverage_1sigma − 0.6827| + |coverage_2sigma − 0.9545| of a summary row (seed means)."""
    return sum(abs(row.get(f"{m}_mean", math.nan) - v) for m, v in NORMAL_COVERAGE.items())


def claim3_verdict(paired: pd.DataFrame, *, summary: pd.DataFrame | None = None,
                   reference: str = "rkn") -> "Verdict":
    """Judge claim 3 (see RULE_3) from the paired differences and the per-model coverages."""
    from analysis import claims  # noqa: PLC0415 (circular at module level)

    baselines = [b for b in dict.fromkeys(paired["baseline"]) if b.startswith(("lstm", "gru"))]
    if not baselines or summary is None:
        return claims.Verdict("inconclusive", (f"no LSTM/GRU baseline paired with {reference} "
                                               "or no per-model summary",))
    rows = _rows(paired)
    reasons, better, worse, n_pairs = [], [], [], []
    for b in baselines:
        ll = rows.get((b, "log_lik"))
        if ll is None:
            return claims.Verdict("inconclusive", (f"{b}: log_lik missing",))
        n_pairs.append(ll["n_pairs"])
        better.append(ll["ci_lo"] > 0)
        worse.append(ll["ci_hi"] < 0)
        reasons.append(f"{b}: ΔLL {claims._interval(ll)} ({ll['n_pairs']} seeds)")
    by_model = {r["model"]: r for r in summary.to_dict("records")}
    gaps = {m: calibration_gap(by_model[m]) for m in [reference, *baselines] if m in by_model}
    rkn_gap = gaps.get(reference, math.nan)
    lstm_gaps = [g for m, g in gaps.items() if m.startswith("lstm")]
    reasons.append("calibration gap " + ", ".join(f"{m} {claims._f(g, 3)}" for m, g in gaps.items())
                   + f" (tolerance {CALIBRATION_TOLERANCE})")
    calibrated = rkn_gap <= CALIBRATION_TOLERANCE and all(rkn_gap < g for g in lstm_gaps)
    if min(n_pairs) < MIN_SEEDS:
        return claims.Verdict("inconclusive", (f"only {min(n_pairs)} paired seeds (< {MIN_SEEDS})",
                                               *reasons))
    if not math.isfinite(rkn_gap):
        return claims.Verdict("inconclusive", ("no coverage metrics for the RKN", *reasons))
    if any(worse) or rkn_gap > 2 * CALIBRATION_TOLERANCE:
        return claims.Verdict("not reproduced", tuple(reasons))
    verdict = "reproduced" if all(better) and calibrated else "inconclusive"
    return claims.Verdict(verdict, tuple(reasons))


RULES = {2: (claim2_verdict, RULE_2), 3: (claim3_verdict, RULE_3)}
# Published rows (config/reference_numbers.yaml) and settings of the experiments judged here.
REFERENCE_KEYS = {"multiple_pendulums": "E3_multiple_pendulums",
                  "ablations": "E1_pendulum_filtering"}
REFERENCE_IDS = {
    "multiple_pendulums": {"rkn": "rkn_m45_b3_k15", "lstm": "lstm_m50", "lstm_small": "lstm_m12",
                           "gru": "gru_m50", "gru_small": "gru_m12"},
    # rkn_b15 has K = 15; the ICLR full-transition row has K = 3, so it is not mapped.
    "ablations": {"rkn": "rkn_m15_b3_k15", "rkn_full_cov": "rkn_m15_b3_k15_fc"},
}
PAPER_SETTINGS = {
    "multiple_pendulums": "sizes and epochs unknown (TF-icml run script: 50 / 500 sequences "
                          "of 150); project default 2000 train / 1000 test sequences of 75 "
                          "steps, batch 50 (paper.md §2.6, §4 E3)",
    "ablations": "inside E1: 2000 train / 1000 test sequences of 75 steps, 500 epochs, batch 50 "
                 "(paper.md §4 E1, E8)",
}

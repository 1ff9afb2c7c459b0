"""Claim 1 (E1; docs/experiments.md#headline-claims): the RKN's uncertainty beats LSTM/GRU on noisy pendulum
filtering."""

from __future__ import annotations

from analysis.claims.base import (MIN_SEEDS, Claim, Evidence, Verdict, interval, paired_with,
                                  side_of_zero, too_few_seeds)
from analysis.tables import fmt

# How much worse than a baseline the RKN's RMSE may be, as a fraction of the baseline's mean
# RMSE, for "similar or slightly better" (paired interval's upper end below it).
RMSE_TOLERANCE = 0.10
RULE = (
    f"For every baseline (role `baseline`: the LSTMs and GRUs, or your own model), take the "
    f"paired (same seed) differences rkn − baseline and their bootstrap 95% interval of the "
    f"mean. **Reproduced** if for every baseline the log-likelihood interval lies above 0 and the "
    f"RMSE interval's upper end is below +{RMSE_TOLERANCE:.0%} of the baseline's mean RMSE. "
    f"**Not reproduced** if for some baseline the log-likelihood interval lies entirely below 0, "
    f"or the RMSE interval's lower end is above +{RMSE_TOLERANCE:.0%} of the baseline's RMSE "
    f"(clearly worse prediction). **Inconclusive** otherwise, and whenever fewer than {MIN_SEEDS} "
    f"seeds are paired (a bootstrap over so few seeds understates the uncertainty).")


def judge(evidence: Evidence) -> Verdict:
    """Judge claim 1 (see RULE) from the paired differences rkn − baseline."""
    baselines, missing = paired_with(evidence, "baseline")
    if missing:
        return missing
    reasons, better, worse, n_pairs = [], [], [], []
    for b in baselines:
        ll, rmse = evidence.paired_row(b, "log_lik"), evidence.paired_row(b, "rmse")
        if ll is None or rmse is None:
            return Verdict("inconclusive", (f"{b}: log_lik or rmse missing",))
        n_pairs.append(min(ll["n_pairs"], rmse["n_pairs"]))
        limit = RMSE_TOLERANCE * rmse["baseline_mean"]
        better.append(ll["ci_lo"] > 0 and rmse["ci_hi"] < limit)
        worse.append(ll["ci_hi"] < 0 or rmse["ci_lo"] > limit)
        reasons.append(f"{b}: ΔLL {interval(ll)} ({side_of_zero(ll)}); ΔRMSE {interval(rmse)} "
                       f"vs limit +{fmt(limit)} ({ll['n_pairs']} seeds)")
    few = too_few_seeds(n_pairs, reasons)
    if few:
        return few
    verdict = "not reproduced" if any(worse) else "reproduced" if all(better) else "inconclusive"
    return Verdict(verdict, tuple(reasons))


CLAIM = Claim(
    number=1,
    text="Uncertainty on noisy pendulum filtering (E1): RKN (m = 15, b = 3, K = 15) reaches a "
         "higher Gaussian log-likelihood than parameter-matched and large LSTM/GRU, with similar "
         "or slightly better RMSE.",
    experiments=("pendulum_filtering",),
    rule=RULE,
    judge=judge,
    compares=("baseline",),
)

"""Claim 7 (docs/experiments.md#headline-claims): efficiency. The RKN's transition parameters grow linearly in m,
it needs no matrix inversion, and its step gets cheaper relative to the full-covariance step as m grows.

Judged from the claim-7 measurements (``measurement="efficiency"``: the pipeline's efficiency
rule, read by ``analysis.efficiency``), not from an experiment; models enter by role.
"""

from __future__ import annotations

from collections.abc import Mapping

from analysis.claims.base import Claim, Verdict
from analysis.efficiency import COST, EfficiencyEvidence, cost_ratio, fit_exponent
from analysis.tables import fmt, markdown_table

# Fewest latent sizes for a verdict: two points fit any power law, and at small m a step's time
# is mostly per-call overhead rather than arithmetic.
MIN_SIZES = 3
# How far a fitted parameter exponent may lie from 1 (linear) or 2 (quadratic). The exact counts
# have lower-order terms: the RKN's band of width b loses b(b + 1) entries per block, the LSTM's
# input kernel adds a term linear in m; over m = 15..200 they move the exponents by < 0.05.
PARAM_TOLERANCE = 0.15
# A cost ratio "falls" when its fitted exponent is below -RATIO_MARGIN; within +-RATIO_MARGIN it
# is flat (timing noise of medians is about +-0.05 in the exponent over m = 15..200).
RATIO_MARGIN = 0.1
RULE = (
    f"Fit value ∝ m^k (least squares on log-log over the measured latent sizes) to the claim-7 "
    f"measurements (efficiency.md: trained parameters of each recurrent core, exact; median "
    f"time per filter step of a forward + backward pass on the device of the runs). "
    f"**Reproduced** if the RKN's (role `rkn`) parameter exponent is within {PARAM_TOLERANCE} of "
    f"1 (linear in m), every baseline's (role `baseline`: LSTM, GRU) within {PARAM_TOLERANCE} of "
    f"2 (quadratic), and the cost of the factorized step relative to the full-covariance step "
    f"(role `full_covariance`), t_rkn / t_full, falls as m grows (exponent below "
    f"−{RATIO_MARGIN}). **Not reproduced** if the RKN's parameter exponent lies outside "
    f"1 ± {PARAM_TOLERANCE}, or the ratio's exponent is above +{RATIO_MARGIN} (the factorized "
    f"step gets relatively dearer). **Inconclusive** otherwise (a flat ratio, a baseline that is "
    f"not quadratic), when a role is missing, and with fewer than {MIN_SIZES} latent sizes (two "
    f"points fit any power law; at small m a step's time is mostly per-call overhead). Peak "
    f"memory is reported, not judged. No matrix inversion: the factorized update divides "
    f"elementwise (rkn/kalman.py); the full-covariance update uses a Cholesky factor and "
    f"triangular solves (rkn/kalman_full.py).")


def _counts(evidence: EfficiencyEvidence, model: str) -> str:
    params = evidence.series(model, "n_params")
    return f"{int(params.iloc[0]):,} at m = {params.index[0]} … {int(params.iloc[-1]):,} at " \
           f"m = {params.index[-1]}"


def judge(evidence: EfficiencyEvidence) -> Verdict:
    """Judge claim 7 (see RULE) from the measurements."""
    rkn, full = evidence.with_role("rkn"), evidence.with_role("full_covariance")
    baselines = evidence.with_role("baseline")
    if not rkn or not full or not baselines:
        return Verdict("inconclusive", ("needs measured models with the roles rkn, "
                                        "full_covariance and baseline (efficiency.models)",))
    rkn, full = rkn[0], full[0]
    exponent = {m: fit_exponent(evidence.series(m, "n_params")) for m in [rkn, full, *baselines]}
    reasons = [f"{m} ({evidence.roles[m]}): trained core parameters ∝ m^{fmt(e, 3)} "
               f"({_counts(evidence, m)})" for m, e in exponent.items()]
    sizes = evidence.sizes
    if len(sizes) < MIN_SIZES:
        return Verdict("inconclusive", (f"only {len(sizes)} latent sizes {sizes} (< {MIN_SIZES}): "
                                        "not judged; times and memory in efficiency.md",
                                        *reasons))
    ratio = cost_ratio(evidence, rkn, full)
    slope = fit_exponent(ratio)
    memory = cost_ratio(evidence, rkn, full, "peak_memory_mib")
    reasons += [
        f"cost: forward + backward time per step {rkn} / {full} {fmt(ratio.iloc[0], 2)} at "
        f"m = {sizes[0]} … {fmt(ratio.iloc[-1], 2)} at m = {sizes[-1]}, ∝ m^{fmt(slope, 2)} "
        f"(on {evidence.device}; all times in efficiency.md)",
        f"information: peak memory {rkn} / {full} {fmt(memory.iloc[0], 2)} at m = {sizes[0]} … "
        f"{fmt(memory.iloc[-1], 2)} at m = {sizes[-1]}"]
    linear = abs(exponent[rkn] - 1) <= PARAM_TOLERANCE
    quadratic = all(abs(exponent[b] - 2) <= PARAM_TOLERANCE for b in baselines)
    if not linear or slope > RATIO_MARGIN:
        return Verdict("not reproduced", tuple(reasons))
    verdict = "reproduced" if quadratic and slope < -RATIO_MARGIN else "inconclusive"
    return Verdict(verdict, tuple(reasons))


def parameter_table(evidence: EfficiencyEvidence, published: Mapping[str, dict]) -> str:
    """Exact trained parameters of each core by latent size (times: efficiency.md)."""
    del published  # the paper gives no efficiency numbers
    rows = [[m, evidence.roles[m], *(f"{int(v):,}" for v in evidence.series(m, "n_params"))]
            for m in evidence.models]
    header = ["model", "role", *(f"m = {m}" for m in evidence.sizes)]
    return ("Trained parameters of the recurrent core (exact; also in metrics.json):\n\n"
            + markdown_table(header, rows)
            + f"\nTimes ({COST}: forward + backward per step) and memory depend on the machine: "
              "efficiency.md, efficiency.csv and efficiency.png beside this file (cached by DVC, "
              "not committed). The paper gives no efficiency numbers.\n")


CLAIM = Claim(
    number=7,
    text="Efficiency: transition parameters linear in m for fixed b and K, no matrix inversion; "
         "the factorized step gets cheaper than the full-covariance step as m grows.",
    rule=RULE,
    judge=judge,
    compares=("baseline", "full_covariance"),
    numbers_table=parameter_table,
    measurement="efficiency",
)

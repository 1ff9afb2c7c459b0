"""Claim 2 (E8; docs/experiments.md#headline-claims): the RKN's two approximations cost little log-likelihood."""

from __future__ import annotations

from analysis.claim_figures import sweeps_figure
from analysis.claims.base import MIN_SEEDS, Claim, Evidence, Verdict, interval, too_few_seeds

# The approximations may cost at most this much log-likelihood (nats per step, summed over the
# two targets). About one seed-std of the ICLR E1 rows (0.12-0.25), twice the largest ICLR
# difference between the RKN variants (6.161-6.248).
NONINFERIORITY_MARGIN = 0.25
# The exact counterparts of the RKN's two approximations, by role.
EXACT_ROLES = {"full_covariance": "full 2m x 2m covariance (factorization)",
               "full_transition": "full transition blocks (band matrices)"}
RULE = (
    f"For each exact variant ({', '.join(f'role `{r}`: {d}' for r, d in EXACT_ROLES.items())}) "
    f"take the paired differences rkn − variant of the log-likelihood and their bootstrap 95% "
    f"interval of the mean. **Reproduced** if for both kinds of variant the interval's lower end "
    f"is above −{NONINFERIORITY_MARGIN} (the approximation costs less than {NONINFERIORITY_MARGIN} "
    f"nats per step, about one seed-std of the ICLR rows; being better is allowed). **Not "
    f"reproduced** if for some variant the whole interval lies below −{NONINFERIORITY_MARGIN}. "
    f"**Inconclusive** otherwise, when a kind of variant is missing, and whenever fewer than "
    f"{MIN_SEEDS} seeds are paired. The bandwidth and basis-count sweeps (role `ablation`) are "
    f"listed as context only.")


def judge(evidence: Evidence) -> Verdict:
    """Judge claim 2 (see RULE) from the paired log-likelihood differences rkn − variant."""
    reasons, costs_little, costs_much, n_pairs = [], [], [], []
    for role, what in EXACT_ROLES.items():
        variants = evidence.with_role(role)
        if evidence.reference is None or not variants:
            return Verdict("inconclusive", (f"no model with role '{role}' ({what}) was run",))
        for variant in variants:
            ll = evidence.paired_row(variant, "log_lik")
            if ll is None:
                return Verdict("inconclusive", (f"{variant}: log_lik missing",))
            n_pairs.append(ll["n_pairs"])
            costs_little.append(ll["ci_lo"] > -NONINFERIORITY_MARGIN)
            costs_much.append(ll["ci_hi"] < -NONINFERIORITY_MARGIN)
            reasons.append(f"{variant} ({what}): ΔLL {evidence.reference} − {variant} "
                           f"{interval(ll)} vs margin −{NONINFERIORITY_MARGIN} "
                           f"({ll['n_pairs']} seeds)")
    for variant in evidence.with_role("ablation"):
        ll = evidence.paired_row(variant, "log_lik")
        if ll is not None:
            reasons.append(f"context {variant}: ΔLL {evidence.reference} − {variant} "
                           f"{interval(ll)}")
    few = too_few_seeds(n_pairs, reasons)
    if few:
        return few
    verdict = ("not reproduced" if any(costs_much) else
               "reproduced" if all(costs_little) else "inconclusive")
    return Verdict(verdict, tuple(reasons))


CLAIM = Claim(
    number=2,
    text="The approximations cost little (E8): factorized vs full covariance and b = 3 vs full "
         "transition give similar log-likelihood.",
    experiments=("ablations",),
    rule=RULE,
    judge=judge,
    compares=tuple(EXACT_ROLES),
    context=("ablation",),
    figures={"sweeps": sweeps_figure},
)

"""Agreement of our numbers with the published ones (analysis.claims.agreement): the rule's three
outcomes, its wording by scale, and that it never touches a verdict."""

from __future__ import annotations

import math

import pytest

from analysis.claims.agreement import agreement, agreement_section
from analysis.claims.markdown import claims_markdown
from tests.analysis.synthetic import evidence
from tests.analysis.test_claim1 import ROLES, runs

OURS = {"log_lik_mean": 6.0, "log_lik_ci_lo": 5.9, "log_lik_ci_hi": 6.1}


def published(mean, std=0.1, metric="gaussian_log_likelihood") -> dict:
    return {"id": "rkn_m15_b3_k15", "mean": mean, "std": std, "metric": metric,
            "as_printed": f"{mean} ± {std}", "source": "ICLR T1"}


@pytest.mark.parametrize(("mean", "status"), [
    (6.0, "within"), (6.19, "within"), (5.81, "within"),   # inside [5.9 − 0.1, 6.1 + 0.1]
    (6.21, "outside"), (5.79, "outside"), (7.0, "outside"),
])
def test_within_or_outside_the_widened_interval(mean: float, status: str) -> None:
    """Within iff the published mean lies in our 95% CI widened by the published std."""
    assert agreement(OURS, published(mean))[0] == status


def test_not_assessable_cases() -> None:
    """Undefined interval (one seed), no published std, or a metric we do not compute."""
    one_seed = dict(OURS, log_lik_ci_lo=math.nan, log_lik_ci_hi=math.nan)
    assert agreement(one_seed, published(6.0)) == ("not assessable", "our 95% interval is "
                                                   "undefined (fewer than 2 seeds)")
    assert agreement(OURS, published(6.0, std=None))[0] == "not assessable"
    image_ll = published(1751.0, 15.1, "gaussian_image_log_likelihood_scalar_variance")
    assert agreement(OURS, image_ll)[0] == "not assessable"


def test_section_is_a_finding_only_at_paper_scale() -> None:
    """The lines name the model, the published id and value; at quick they are context."""
    ev = evidence("pendulum_filtering", runs(0.5, 0.05), ROLES)
    lines = agreement_section(ev, {"rkn": published(6.5, 0.155)}, "quick")
    assert "- rkn ↔ rkn_m15_b3_k15 (6.5 ± 0.155): **published value: within**" in lines
    assert "context only" in lines and "a finding at this scale" not in lines
    paper = agreement_section(ev, {"rkn": published(9.0)}, "paper")
    assert "**published value: outside**" in paper and "a finding at this scale" in paper
    assert agreement_section(ev, {}, "paper") == ""


def test_agreement_never_changes_the_verdict() -> None:
    """The verdict line is the same whether the published values are within or outside."""
    frame = runs(0.5, 0.05)
    texts = []
    for mean in (6.5, 60.0):
        reference = {"experiments": {"E1": {"results": [published(mean)]}},
                     "reproduction": {"pendulum_filtering": {"published": "E1", "models": {
                         "rkn": "rkn_m15_b3_k15"}}}}
        texts.append(claims_markdown("paper", {"pendulum_filtering": evidence(
            "pendulum_filtering", frame, ROLES)}, reference))
    assert "published value: within" in texts[0] and "published value: outside" in texts[1]
    assert "widened on both sides by the published standard deviation" in texts[0]  # the rule
    verdicts = [t[t.index("**Verdict:"):t.index("Rule:")] for t in texts]
    assert verdicts[0] == verdicts[1] == "**Verdict: reproduced**\n\n"

"""The convergence gate (analysis.claims.base.convergence_gate) on every experiment claim (1-5):
each verdict it can produce, on synthetic runs with chosen ``converged`` flags."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.claims import all_claims
from analysis.claims.markdown import claims_markdown
from tests.analysis.synthetic import evidence
from tests.analysis.test_claim1 import ROLES as E1_ROLES
from tests.analysis.test_claim1 import runs as e1_runs
from tests.analysis.test_claim5 import ROLES as E4_ROLES
from tests.analysis.test_claim5 import SIZES as E4_SIZES
from tests.analysis.test_claim5 import runs as e4_runs
from tests.analysis.test_claims_2_3 import ABLATION_ROLES, E3_ROLES, ablation_runs, e3_runs

E2_ROLES = {"rkn": "rkn", "kvae_filter": "generative", "e2c": "generative",
            "hold_last_frame": "reference_row"}


def e2_runs(rkn_bce: float, seeds: int = 5) -> pd.DataFrame:
    """bce_missing 30 for the generative models (+ noise), ``rkn_bce`` for the RKN, 84 for the
    reference row."""
    rng = np.random.default_rng(2)
    level = {"rkn": rkn_bce, "kvae_filter": 30.0, "e2c": 30.0, "hold_last_frame": 84.0}
    return pd.DataFrame([{"experiment": "pendulum_imputation", "model": m, "seed": s,
                          "bce_missing": level[m] + 0.2 * rng.normal()}
                         for m in E2_ROLES for s in range(seeds)])


# claim number -> (experiment, roles, reproduced frame, not-reproduced frame, a deciding
# competitor, a context-only model or None, extra Evidence arguments)
CASES = {
    1: ("pendulum_filtering", E1_ROLES, e1_runs(0.5, 0.05), e1_runs(-0.5, 0.05), "lstm",
        None, {}),
    2: ("ablations", ABLATION_ROLES, ablation_runs(0.05), ablation_runs(1.0), "rkn_full_cov",
        "rkn_k1", {}),
    3: ("multiple_pendulums", E3_ROLES, e3_runs(2.0, 0.69, 0.50), e3_runs(-2.0, 0.69, 0.50),
        "gru_small", None, {}),
    4: ("pendulum_imputation", E2_ROLES, e2_runs(20.0), e2_runs(40.0), "e2c",
        "hold_last_frame", {}),
    5: ("quad_link", E4_ROLES, e4_runs("quad_link", 2.0, 0.1), e4_runs("quad_link", -2.0, 0.1),
        "gru_m100", None, {"model_configs": E4_SIZES}),
}
CLAIMS = {c.number: c for c in all_claims()}


def assess(number: int, frame: pd.DataFrame, unconverged: tuple[str, ...] = (),
           flag: float = 0.0):
    """Claim ``number``'s verdict on ``frame`` where the first seed of each model in
    ``unconverged`` has converged = ``flag`` and every other run converged."""
    experiment, roles, *_, extra = CASES[number]
    frame = frame.assign(converged=1.0)
    frame.loc[frame["model"].isin(unconverged) & (frame["seed"] == 0), "converged"] = flag
    return CLAIMS[number].assess(evidence(experiment, frame, roles, **extra))


@pytest.mark.parametrize("number", sorted(CASES))
def test_converged_runs_keep_the_rules_verdict(number: int) -> None:
    """With every seed converged the gate changes nothing (both definite verdicts occur)."""
    _, _, good, bad, *_ = CASES[number]
    assert assess(number, good).headline == "reproduced"
    assert assess(number, bad).headline == "not reproduced"


@pytest.mark.parametrize("number", sorted(CASES))
def test_unconverged_competitor_makes_it_inconclusive(number: int) -> None:
    """One unconverged seed of a deciding competitor: "reproduced" and "not reproduced" both
    become "inconclusive (not converged: <model>)", the rule's own verdict kept as a reason."""
    _, _, good, bad, competitor, *_ = CASES[number]
    for frame, alone in ((good, "reproduced"), (bad, "not reproduced")):
        verdict = assess(number, frame, (competitor,))
        assert verdict.headline == f"inconclusive (not converged: {competitor})"
        assert verdict.reasons[0] == (f"not converged: {competitor} (1 of 5 seeds) "
                                      f"(the rule alone says: {alone})")


@pytest.mark.parametrize("number", sorted(CASES))
def test_unconverged_rkn(number: int) -> None:
    """An unconverged RKN never leaves "not reproduced"; a "reproduced" holds anyway (more
    training can only help the RKN), except in claim 3, whose calibration part need not."""
    _, _, good, bad, *_ = CASES[number]
    assert assess(number, bad, ("rkn",)).headline == "inconclusive (not converged: rkn)"
    verdict = assess(number, good, ("rkn",))
    if number == 3:
        assert verdict.headline == "inconclusive (not converged: rkn)"
    else:
        assert verdict.headline == "reproduced"
        assert "the claim holds anyway" in verdict.reasons[-1]


@pytest.mark.parametrize("number", [n for n in sorted(CASES) if CASES[n][5]])
def test_context_models_do_not_count(number: int) -> None:
    """Models listed for context only (ablations, reference rows) may be unconverged."""
    _, _, good, bad, _, context, _ = CASES[number]
    assert assess(number, good, (context,)).headline == "reproduced"
    assert assess(number, bad, (context,)).headline == "not reproduced"


def test_missing_flag_counts_as_not_converged() -> None:
    """A run without a flag (NaN) is treated as not converged."""
    assert assess(1, e1_runs(0.5, 0.05), ("gru",), flag=math.nan).headline == \
        "inconclusive (not converged: gru)"


def test_claims_md_states_the_policy_and_prints_the_note() -> None:
    """claims.md states the convergence rule and policy and prints the note with the verdict;
    the numbers table counts the converged seeds."""
    frame = e1_runs(-0.5, 0.05).assign(converged=1.0)
    frame.loc[frame["model"].isin(["lstm", "gru"]), "converged"] = 0.0
    text = claims_markdown("quick", {"pendulum_filtering": evidence("pendulum_filtering", frame,
                                                                    E1_ROLES)}, {})
    assert "**Verdict: inconclusive (not converged: lstm, gru)**" in text
    assert "by at most 1% of its whole improvement" in text and "last 20% of its epochs" in text
    assert "never **not reproduced**" in text
    assert "| 5 (0 converged) |" in text and "| 5 (5 converged) |" in text

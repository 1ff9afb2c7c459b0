"""Verdict rules of claim 2 (E8 ablations) and claim 3 (E3 multiple pendulums)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.claims import claim2, claim3
from analysis.claims.markdown import claims_markdown
from tests.analysis.synthetic import evidence

ABLATION_ROLES = {"rkn": "rkn", "rkn_b0": "ablation", "rkn_b15": "full_transition",
                  "rkn_k1": "ablation", "rkn_full_cov": "full_covariance"}
E3_ROLES = {"rkn": "rkn", "lstm": "baseline", "lstm_small": "baseline", "gru": "baseline",
            "gru_small": "baseline"}


def ablation_runs(full_cov_gain: float, noise: float = 0.02, seeds: int = 5) -> pd.DataFrame:
    """LL 6 for every model (+ seed noise); rkn_full_cov and rkn_b15 are ``full_cov_gain`` higher."""
    rng = np.random.default_rng(0)
    rows = []
    for model in ABLATION_ROLES:
        gain = full_cov_gain if model in ("rkn_full_cov", "rkn_b15") else 0.0
        for seed in range(seeds):
            rows.append({"experiment": "ablations", "model": model, "seed": seed,
                         "log_lik": 6.0 + gain + noise * rng.normal(), "rmse": 0.1})
    return pd.DataFrame(rows)


def verdict2(frame: pd.DataFrame, roles: dict[str, str] = ABLATION_ROLES) -> str:
    return claim2.judge(evidence("ablations", frame, roles)).verdict


def test_claim2_similar_is_reproduced() -> None:
    """Exact variants only 0.05 nats better (inside the 0.25 margin): reproduced."""
    assert verdict2(ablation_runs(full_cov_gain=0.05)) == "reproduced"


def test_claim2_factorized_better_is_reproduced() -> None:
    """The approximation being better costs nothing: reproduced."""
    assert verdict2(ablation_runs(full_cov_gain=-0.5)) == "reproduced"


def test_claim2_large_cost_not_reproduced() -> None:
    """Exact variants 1 nat better: the approximation clearly costs more than the margin."""
    assert verdict2(ablation_runs(full_cov_gain=1.0)) == "not reproduced"


def test_claim2_noisy_or_few_seeds_or_missing_inconclusive() -> None:
    """Wide intervals straddling the margin, two seeds, or a missing variant: inconclusive."""
    assert verdict2(ablation_runs(full_cov_gain=0.25, noise=0.5)) == "inconclusive"
    assert verdict2(ablation_runs(full_cov_gain=0.05, seeds=2)) == "inconclusive"
    frame = ablation_runs(full_cov_gain=0.05)
    roles = {m: r for m, r in ABLATION_ROLES.items() if r != "full_covariance"}
    assert verdict2(frame[frame["model"] != "rkn_full_cov"], roles) == "inconclusive"


def test_claim2_exact_variants_by_role() -> None:
    """Any model with role full_transition is an exact variant, whatever its name."""
    frame = ablation_runs(full_cov_gain=0.05)
    frame.loc[frame["model"] == "rkn_k1", "log_lik"] += 1.0
    roles = dict(ABLATION_ROLES, rkn_k1="full_transition")  # now a clearly better exact variant
    assert verdict2(frame, roles) == "not reproduced"


def e3_runs(ll_shift: float, rkn_cov1: float, lstm_cov1: float, seeds: int = 5) -> pd.DataFrame:
    """Baselines LL 7, rkn 7 + shift; coverage_2sigma 0.95 for all; coverage_1sigma as given."""
    rng = np.random.default_rng(1)
    rows = []
    for model in E3_ROLES:
        rkn = model == "rkn"
        for seed in range(seeds):
            rows.append({"experiment": "multiple_pendulums", "model": model, "seed": seed,
                         "log_lik": 7.0 + (ll_shift if rkn else 0.0) + 0.05 * rng.normal(),
                         "rmse": 0.1, "coverage_1sigma": rkn_cov1 if rkn else lstm_cov1,
                         "coverage_2sigma": 0.95})
    return pd.DataFrame(rows)


def verdict3(frame: pd.DataFrame, roles: dict[str, str] = E3_ROLES) -> str:
    return claim3.judge(evidence("multiple_pendulums", frame, roles)).verdict


def test_claim3_better_and_calibrated_reproduced() -> None:
    assert verdict3(e3_runs(ll_shift=2.0, rkn_cov1=0.69, lstm_cov1=0.50)) == "reproduced"


def test_claim3_lower_ll_not_reproduced() -> None:
    assert verdict3(e3_runs(ll_shift=-2.0, rkn_cov1=0.69, lstm_cov1=0.50)) == "not reproduced"


def test_claim3_badly_calibrated_rkn_not_reproduced() -> None:
    """Higher LL but the RKN's 1-sigma coverage 0.45 (gap > 0.16): not reproduced."""
    assert verdict3(e3_runs(ll_shift=2.0, rkn_cov1=0.45, lstm_cov1=0.30)) == "not reproduced"


def test_claim3_lstm_better_calibrated_inconclusive() -> None:
    """RKN within tolerance but the LSTM closer to N(0, 1): inconclusive."""
    assert verdict3(e3_runs(ll_shift=2.0, rkn_cov1=0.63, lstm_cov1=0.68)) == "inconclusive"


def test_claim3_few_seeds_or_no_baseline_inconclusive() -> None:
    assert verdict3(e3_runs(ll_shift=2.0, rkn_cov1=0.69, lstm_cov1=0.5, seeds=2)) == "inconclusive"
    frame = e3_runs(ll_shift=2.0, rkn_cov1=0.69, lstm_cov1=0.5)
    assert verdict3(frame, {m: "rkn" if m == "rkn" else "ablation" for m in E3_ROLES}) \
        == "inconclusive"


def test_claims_markdown_judges_claims_2_and_3() -> None:
    """claims.md prints the rules and verdicts of claims 2 and 3 with their published rows."""
    ablations = ablation_runs(full_cov_gain=0.05)
    e3 = e3_runs(ll_shift=2.0, rkn_cov1=0.69, lstm_cov1=0.50)
    reference = {
        "experiments": {
            "E1_pendulum_filtering": {"results": [{"id": "rkn_m15_b3_k15_fc",
                                                   "as_printed": "6.161 ± 0.23",
                                                   "source": "ICLR T1"}]},
            "E3_multiple_pendulums": {"results": [{"id": "lstm_m12",
                                                   "as_printed": "7.429 ± 1.307",
                                                   "source": "ICLR F2"}]}},
        "reproduction": {
            "ablations": {"published": "E1_pendulum_filtering",
                          "models": {"rkn_full_cov": "rkn_m15_b3_k15_fc"}},
            "multiple_pendulums": {"published": "E3_multiple_pendulums",
                                   "models": {"lstm_small": "lstm_m12"}}}}
    text = claims_markdown("quick", {
        "ablations": evidence("ablations", ablations, ABLATION_ROLES),
        "multiple_pendulums": evidence("multiple_pendulums", e3, E3_ROLES)}, reference)
    claim2_text = text[text.index("## Claim 2"):text.index("## Claim 3")]
    claim3_text = text[text.index("## Claim 3"):text.index("## Claim 4")]
    assert "**Verdict: reproduced**" in claim2_text and "−0.25" in claim2_text
    assert "6.161 ± 0.23" in claim2_text and "context rkn_k1" in claim2_text
    assert "**Verdict: reproduced**" in claim3_text and "calibration gap" in claim3_text
    assert "7.429 ± 1.307" in claim3_text

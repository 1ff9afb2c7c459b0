"""Verdict rules of claim 2 (E8 ablations) and claim 3 (E3 multiple pendulums)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import claims
from analysis.claims.claim_rules import MIN_SEEDS, claim2_verdict, claim3_verdict
from analysis.report import paired_differences, summarize

ABLATION_MODELS = ["rkn", "rkn_b0", "rkn_b15", "rkn_k1", "rkn_full_cov"]
E3_MODELS = ["rkn", "lstm", "lstm_small", "gru", "gru_small"]


def ablation_runs(full_cov_gain: float, noise: float = 0.02, seeds: int = 5) -> pd.DataFrame:
    """LL 6 for every model (+ seed noise); rkn_full_cov and rkn_b15 are ``full_cov_gain`` higher."""
    rng = np.random.default_rng(0)
    rows = []
    for model in ABLATION_MODELS:
        gain = full_cov_gain if model in ("rkn_full_cov", "rkn_b15") else 0.0
        for seed in range(seeds):
            rows.append({"experiment": "ablations", "model": model, "seed": seed,
                         "log_lik": 6.0 + gain + noise * rng.normal(), "rmse": 0.1})
    return pd.DataFrame(rows)


def claim2(frame: pd.DataFrame) -> str:
    return claim2_verdict(paired_differences(frame, ABLATION_MODELS)).verdict


def test_min_seeds_agrees_with_claims() -> None:
    assert MIN_SEEDS == claims.MIN_SEEDS


def test_claim2_similar_is_reproduced() -> None:
    """Exact variants only 0.05 nats better (inside the 0.25 margin): reproduced."""
    assert claim2(ablation_runs(full_cov_gain=0.05)) == "reproduced"


def test_claim2_factorized_better_is_reproduced() -> None:
    """The approximation being better costs nothing: reproduced."""
    assert claim2(ablation_runs(full_cov_gain=-0.5)) == "reproduced"


def test_claim2_large_cost_not_reproduced() -> None:
    """Exact variants 1 nat better: the approximation clearly costs more than the margin."""
    assert claim2(ablation_runs(full_cov_gain=1.0)) == "not reproduced"


def test_claim2_noisy_or_few_seeds_or_missing_inconclusive() -> None:
    """Wide intervals straddling the margin, two seeds, or a missing variant: inconclusive."""
    assert claim2(ablation_runs(full_cov_gain=0.25, noise=0.5)) == "inconclusive"
    assert claim2(ablation_runs(full_cov_gain=0.05, seeds=2)) == "inconclusive"
    frame = ablation_runs(full_cov_gain=0.05)
    models = [m for m in ABLATION_MODELS if m != "rkn_full_cov"]
    assert claim2_verdict(paired_differences(frame[frame["model"] != "rkn_full_cov"], models)).verdict \
        == "inconclusive"


def e3_runs(ll_shift: float, rkn_cov1: float, lstm_cov1: float, seeds: int = 5) -> pd.DataFrame:
    """Baselines LL 7, rkn 7 + shift; coverage_2sigma 0.95 for all; coverage_1sigma as given."""
    rng = np.random.default_rng(1)
    rows = []
    for model in E3_MODELS:
        rkn = model == "rkn"
        for seed in range(seeds):
            rows.append({"experiment": "multiple_pendulums", "model": model, "seed": seed,
                         "log_lik": 7.0 + (ll_shift if rkn else 0.0) + 0.05 * rng.normal(),
                         "rmse": 0.1, "coverage_1sigma": rkn_cov1 if rkn else lstm_cov1,
                         "coverage_2sigma": 0.95})
    return pd.DataFrame(rows)


def claim3(frame: pd.DataFrame) -> str:
    return claim3_verdict(paired_differences(frame, E3_MODELS),
                          summary=summarize(frame, E3_MODELS)).verdict


def test_claim3_better_and_calibrated_reproduced() -> None:
    assert claim3(e3_runs(ll_shift=2.0, rkn_cov1=0.69, lstm_cov1=0.50)) == "reproduced"


def test_claim3_lower_ll_not_reproduced() -> None:
    assert claim3(e3_runs(ll_shift=-2.0, rkn_cov1=0.69, lstm_cov1=0.50)) == "not reproduced"


def test_claim3_badly_calibrated_rkn_not_reproduced() -> None:
    """Higher LL but the RKN's 1-sigma coverage 0.45 (gap > 0.16): not reproduced."""
    assert claim3(e3_runs(ll_shift=2.0, rkn_cov1=0.45, lstm_cov1=0.30)) == "not reproduced"


def test_claim3_lstm_better_calibrated_inconclusive() -> None:
    """RKN within tolerance but the LSTM closer to N(0, 1): inconclusive."""
    assert claim3(e3_runs(ll_shift=2.0, rkn_cov1=0.63, lstm_cov1=0.68)) == "inconclusive"


def test_claim3_few_seeds_or_no_summary_inconclusive() -> None:
    assert claim3(e3_runs(ll_shift=2.0, rkn_cov1=0.69, lstm_cov1=0.5, seeds=2)) == "inconclusive"
    frame = e3_runs(ll_shift=2.0, rkn_cov1=0.69, lstm_cov1=0.5)
    assert claim3_verdict(paired_differences(frame, E3_MODELS)).verdict == "inconclusive"


def test_claims_markdown_judges_claims_2_and_3() -> None:
    """claims.md prints the rules and verdicts of claims 2 and 3 with their published rows."""
    ablations = ablation_runs(full_cov_gain=0.05)
    e3 = e3_runs(ll_shift=2.0, rkn_cov1=0.69, lstm_cov1=0.50)
    config = {"scale": "quick", "results_dir": "results", "training": {"epochs": 30},
              "datasets": {"pendulum_filtering": {"generator": "pendulum_filtering"},
                           "multiple_pendulums": {"generator": "multiple_pendulums"}},
              "experiments": {"ablations": {"dataset": "pendulum_filtering", "models": ABLATION_MODELS,
                                            "seeds": list(range(5))},
                              "multiple_pendulums": {"dataset": "multiple_pendulums", "models": E3_MODELS,
                                                     "seeds": list(range(5))}}}
    reference = {"experiments": {
        "E1_pendulum_filtering": {"results": [{"id": "rkn_m15_b3_k15_fc", "as_printed": "6.161 ± 0.23",
                                               "source": "ICLR T1"}]},
        "E3_multiple_pendulums": {"results": [{"id": "lstm_m12", "as_printed": "7.429 ± 1.307",
                                               "source": "ICLR F2"}]}}}
    summaries = {"ablations": summarize(ablations, ABLATION_MODELS),
                 "multiple_pendulums": summarize(e3, E3_MODELS)}
    paireds = {"ablations": paired_differences(ablations, ABLATION_MODELS),
               "multiple_pendulums": paired_differences(e3, E3_MODELS)}
    text = claims.claims_markdown(config, summaries, paireds, reference)
    claim2_text = text[text.index("## Claim 2"):text.index("## Claim 3")]
    claim3_text = text[text.index("## Claim 3"):text.index("## Claim 4")]
    assert "**Verdict: reproduced**" in claim2_text and "−0.25" in claim2_text
    assert "6.161 ± 0.23" in claim2_text and "context rkn_k1" in claim2_text
    assert "**Verdict: reproduced**" in claim3_text and "calibration gap" in claim3_text
    assert "7.429 ± 1.307" in claim3_text

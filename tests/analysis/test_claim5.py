"""The verdict rule of claim 5 (quad-link, E4) and its section in claims.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.claims.claim5 import judge
from analysis.claims.markdown import claims_markdown
from tests.analysis.synthetic import evidence

BASELINES = ["lstm", "lstm_m100", "gru", "gru_m100"]
MODELS = ["rkn", *BASELINES]
ROLES = {"rkn": "rkn", **{b: "baseline" for b in BASELINES}}
SIZES = {m: {"latent_obs_dim": 100 if m in ("rkn", "lstm_m100", "gru_m100") else 50}
         for m in MODELS}


def claim5(experiment: str, frame: pd.DataFrame):
    return judge(evidence(experiment, frame, ROLES, model_configs=SIZES))


def runs(experiment: str, ll_shift: float, ll_noise: float, seeds: int = 5) -> pd.DataFrame:
    """Synthetic runs: baselines LL 10 (+ noise), rkn LL 10 + shift (+ noise); RMSE 0.2."""
    rng = np.random.default_rng(1)
    rows = [{"experiment": experiment, "model": model, "seed": seed,
             "log_lik": 10.0 + (ll_shift if model == "rkn" else 0.0) + ll_noise * rng.normal(),
             "rmse": 0.2 + 0.001 * rng.normal()}
            for model in MODELS for seed in range(seeds)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("shift, noise, seeds, expected", [
    (2.0, 0.1, 5, "reproduced"),         # clearly better than every baseline
    (-2.0, 0.1, 5, "not reproduced"),    # clearly worse
    (0.05, 2.0, 5, "inconclusive"),      # swamped by seed noise
    (0.2, 0.01, 5, "inconclusive"),      # tight but below the 0.5-nat margin of "clearly"
    (2.0, 0.1, 2, "inconclusive"),       # too few paired seeds
])
def test_claim5_verdicts(shift: float, noise: float, seeds: int, expected: str) -> None:
    """The rule's three outcomes on synthetic paired runs."""
    result = claim5("quad_link", runs("quad_link", shift, noise, seeds))
    assert result.verdict == expected
    assert any(r.startswith("information: baseline mean LL by latent size: lstm (m = 50)")
               and "lstm_m100 (m = 100)" in r for r in result.reasons)


def test_one_baseline_clearly_better_is_not_reproduced() -> None:
    """One baseline clearly above the RKN is enough for 'not reproduced'."""
    frame = runs("quad_link", 2.0, 0.1)
    frame.loc[frame["model"] == "gru", "log_lik"] += 4.0
    assert claim5("quad_link", frame).verdict == "not reproduced"


def test_claims_markdown_judges_both_e4_variants_with_published_values() -> None:
    """Claim 5 lists quad_link and quad_link_noisy with their own ICLR Table 2 columns."""
    reference = yaml.safe_load((Path(__file__).parents[2] / "config" / "reference_numbers.yaml").read_text())
    frames = {"quad_link": runs("quad_link", 2.0, 0.1),
              "quad_link_noisy": runs("quad_link_noisy", -2.0, 0.1)}
    text = claims_markdown("quick", {e: evidence(e, f, ROLES, model_configs=SIZES)
                                     for e, f in frames.items()}, reference)
    claim5 = text[text.index("## Claim 5"):text.index("## Claim 6")]
    assert "Experiment `quad_link`." in claim5 and "Experiment `quad_link_noisy`." in claim5
    assert "**Verdict: reproduced**" in claim5 and "**Verdict: not reproduced**" in claim5
    assert "14.534 ± 0.176" in claim5 and "6.259 ± 0.412" in claim5   # without / with noise
    assert "7.858 ± 4.680" in claim5 and "1.2 ± 1.105" in claim5       # lstm_m100, gru_m100

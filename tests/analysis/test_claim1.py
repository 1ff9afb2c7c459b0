"""The verdict rule of claim 1 and the claims.md report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.claims import all_claims
from analysis.claims.claim1 import judge
from analysis.claims.markdown import claims_markdown
from tests.analysis.synthetic import evidence

BASELINES = ["lstm", "lstm_small", "gru", "gru_small"]
ROLES = {"rkn": "rkn", **{b: "baseline" for b in BASELINES}}


def runs(ll_shift: float, ll_noise: float, rmse_shift: float = 0.0, seeds: int = 5,
         roles: dict[str, str] = ROLES) -> pd.DataFrame:
    """Synthetic runs: baselines LL 6 (+ noise), rkn LL 6 + shift; RMSE 0.1 (rkn + rmse_shift)."""
    rng = np.random.default_rng(0)
    rows = []
    for model, role in roles.items():
        for seed in range(seeds):
            rkn = role == "rkn"
            rows.append({"experiment": "pendulum_filtering", "model": model, "seed": seed,
                         "log_lik": 6.0 + (ll_shift if rkn else 0.0) + ll_noise * rng.normal(),
                         "rmse": 0.1 + (rmse_shift if rkn else 0.0) + 0.001 * rng.normal()})
    return pd.DataFrame(rows)


def verdict(frame: pd.DataFrame, roles: dict[str, str] = ROLES) -> str:
    return judge(evidence("pendulum_filtering", frame, roles)).verdict


def test_clearly_better_reproduced():
    """RKN clearly higher LL and equal RMSE against every baseline: reproduced."""
    assert verdict(runs(ll_shift=0.5, ll_noise=0.05)) == "reproduced"


def test_clearly_worse_not_reproduced():
    """RKN clearly lower LL: not reproduced."""
    assert verdict(runs(ll_shift=-0.5, ll_noise=0.05)) == "not reproduced"


def test_much_worse_rmse_not_reproduced():
    """Higher LL but RMSE clearly more than 10% worse: not reproduced."""
    assert verdict(runs(ll_shift=0.5, ll_noise=0.05, rmse_shift=0.05)) == "not reproduced"


def test_noisy_inconclusive():
    """Differences swamped by seed noise: inconclusive."""
    assert verdict(runs(ll_shift=0.05, ll_noise=1.0)) == "inconclusive"


def test_two_seeds_inconclusive():
    """Even a clear difference with only two paired seeds: inconclusive."""
    assert verdict(runs(ll_shift=0.5, ll_noise=0.05, seeds=2)) == "inconclusive"


def test_models_enter_by_role_not_by_name():
    """A baseline of any name counts (it used to be left out unless named lstm*/gru*); a model
    named like a baseline but with another role does not."""
    roles = {"my_rkn": "rkn", "transformer": "baseline", "lstm": "ablation"}
    frame = runs(ll_shift=0.5, ll_noise=0.05, roles=roles)
    frame.loc[frame["model"] == "transformer", "log_lik"] += 1.0  # better than the RKN
    ev = evidence("pendulum_filtering", frame, roles)
    result = judge(ev)
    assert result.verdict == "not reproduced"
    assert any(r.startswith("transformer:") for r in result.reasons)
    assert not any(r.startswith("lstm:") for r in result.reasons)


def test_claims_markdown_sources_rule_and_unrun_claims():
    """claims.md names the ICLR source, the rule, the published values (mapped through the
    reference file's reproduction section), and marks unrun claims."""
    frame = runs(ll_shift=0.5, ll_noise=0.05)
    reference = {"paper": {"earlier_version": "ICLR 2019 OpenReview rkx1m2C5YQ",
                           "icml_values": "absent"},
                 "experiments": {"E1_pendulum_filtering": {"results": [
                     {"id": "rkn_m15_b3_k15", "as_printed": "6.182 ± 0.155",
                      "source": "ICLR T1"}]}},
                 "reproduction": {"pendulum_filtering": {
                     "published": "E1_pendulum_filtering", "paper_settings": "PAPER SETTINGS",
                     "models": {"rkn": "rkn_m15_b3_k15"}}}}
    text = claims_markdown("quick", {"pendulum_filtering": evidence("pendulum_filtering", frame,
                                                                    ROLES)}, reference)
    assert "ICLR 2019 OpenReview" in text and "ICML 2019 values are absent" in text
    assert "**Verdict: reproduced**" in text and "Reproduced** if for every baseline" in text
    assert "6.182 ± 0.155" in text and "30 epochs" in text and "PAPER SETTINGS" in text
    assert text.count("**Verdict: not run**") == len(all_claims()) - 1

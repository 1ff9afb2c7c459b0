"""Claim 4 verdict rule on synthetic paired differences."""

from __future__ import annotations

import pandas as pd

from analysis.claims.base import Evidence
from analysis.claims.claim4 import judge
from tests.analysis.synthetic import experiment_runs

ROLES = {"rkn": "rkn", "kvae_filter": "generative", "kvae_smooth": "generative",
         "e2c": "generative", "dks": "generative", "lstm": "baseline",
         "hold_last_frame": "reference_row"}


def verdict(rows: list[tuple[str, float, float, int]], roles: dict[str, str] = ROLES) -> str:
    """Verdict on a paired-differences frame of bce_missing rows (model, ci_lo, ci_hi, n_pairs)."""
    paired = pd.DataFrame([{"baseline": b, "metric": "bce_missing", "n_pairs": n,
                            "mean_diff": (lo + hi) / 2, "ci_lo": lo, "ci_hi": hi,
                            "rkn_mean": 20.0, "baseline_mean": 30.0} for b, lo, hi, n in rows])
    runs = experiment_runs("pendulum_imputation",
                           pd.DataFrame({"experiment": [], "model": [], "seed": []}), roles)
    return judge(Evidence(runs=runs, summary=pd.DataFrame(), paired=paired)).verdict


def test_reproduced_when_every_generative_interval_is_below_zero() -> None:
    """All generative CIs below 0 -> reproduced; reference rows do not matter."""
    assert verdict([("kvae_filter", -5, -1, 3), ("dks", -9, -2, 3),
                    ("hold_last_frame", 1, 2, 3)]) == "reproduced"


def test_not_reproduced_when_one_interval_is_above_zero() -> None:
    """One generative baseline clearly better than the RKN -> not reproduced."""
    assert verdict([("kvae_filter", -5, -1, 3), ("e2c", 0.5, 2, 3)]) == "not reproduced"


def test_inconclusive_for_overlap_few_seeds_or_no_baseline() -> None:
    """An interval containing 0, fewer than 3 seeds, or no generative baseline -> inconclusive."""
    assert verdict([("kvae_smooth", -1, 1, 3)]) == "inconclusive"
    assert verdict([("kvae_smooth", -3, -1, 2)]) == "inconclusive"
    assert verdict([("lstm", -3, -1, 3)]) == "inconclusive"


def test_generative_by_role() -> None:
    """A model enters by its role: an LSTM given role generative counts, a KVAE given role
    ablation does not."""
    roles = dict(ROLES, lstm="generative", kvae_filter="ablation")
    assert verdict([("kvae_filter", 1, 2, 3), ("lstm", -3, -1, 3)], roles) == "reproduced"

"""Claim 4 verdict rule on synthetic paired differences."""

from __future__ import annotations

import pandas as pd

from analysis.claims.claim4 import claim4_verdict


def paired(rows: list[tuple[str, float, float, int]]) -> pd.DataFrame:
    """Paired-differences frame with bce_missing rows (baseline, ci_lo, ci_hi, n_pairs)."""
    return pd.DataFrame([{"baseline": b, "metric": "bce_missing", "n_pairs": n, "mean_diff": (lo + hi) / 2,
                          "ci_lo": lo, "ci_hi": hi, "rkn_mean": 20.0, "baseline_mean": 30.0}
                         for b, lo, hi, n in rows])


def test_reproduced_when_every_generative_interval_is_below_zero() -> None:
    """All generative CIs below 0 -> reproduced; reference rows do not matter."""
    frame = paired([("kvae_filter", -5, -1, 3), ("dks", -9, -2, 3), ("hold_last_frame", 1, 2, 3)])
    assert claim4_verdict(frame).verdict == "reproduced"


def test_not_reproduced_when_one_interval_is_above_zero() -> None:
    """One generative baseline clearly better than the RKN -> not reproduced."""
    frame = paired([("kvae_filter", -5, -1, 3), ("e2c", 0.5, 2, 3)])
    assert claim4_verdict(frame).verdict == "not reproduced"


def test_inconclusive_for_overlap_few_seeds_or_no_baseline() -> None:
    """An interval containing 0, fewer than 3 seeds, or no generative baseline -> inconclusive."""
    assert claim4_verdict(paired([("kvae_smooth", -1, 1, 3)])).verdict == "inconclusive"
    assert claim4_verdict(paired([("kvae_smooth", -3, -1, 2)])).verdict == "inconclusive"
    assert claim4_verdict(paired([("lstm", -3, -1, 3)])).verdict == "inconclusive"

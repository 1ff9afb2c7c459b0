"""Claim 7 (paper.md §7): efficiency. Measured by the benchmark scripts, not judged here yet."""

from __future__ import annotations

from analysis.claims.base import Claim

CLAIM = Claim(
    number=7,
    text="Efficiency: transition parameters linear in m for fixed b and K, no matrix inversion.",
    not_in_pipeline="measured outside the pipeline (benchmarks/, see the README); not judged here",
)

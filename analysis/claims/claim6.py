"""Claim 6 (E6; docs/experiments.md#headline-claims): competitive KITTI odometry. Needs real data: not in this
benchmark."""

from __future__ import annotations

from analysis.claims.base import Claim

CLAIM = Claim(
    number=6,
    text="Real data (E6): competitive monocular KITTI odometry errors.",
    not_in_pipeline="needs the real KITTI data; not part of this benchmark",
)

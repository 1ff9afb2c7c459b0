"""The wall-time projection of benchmarks/paper_scale_cost.py (list scheduling of one-core runs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "paper_scale_cost.py"


@pytest.fixture(scope="module")
def cost():
    spec = importlib.util.spec_from_file_location("paper_scale_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("runs", "cores", "wall"), [
    ([5.0] * 25, 2, 65.0),          # 13 runs on one core, 12 on the other
    ([5.0] * 25, 64, 5.0),          # more cores than runs: the longest run
    ([10.0, 1.0, 1.0, 1.0], 2, 10.0),  # one long run bounds the wall time
    ([3.0, 3.0, 2.0, 2.0, 2.0], 2, 7.0),  # greedy, as a scheduler does (the optimum is 6)
    ([], 16, 0.0),
])
def test_wall_hours(cost, runs: list[float], cores: int, wall: float) -> None:
    assert cost.wall_hours(runs, cores) == pytest.approx(wall)

"""CI regression of the smoke pipeline's metrics against a committed reference.

`make test` runs the smoke pipeline from scratch and then this file (marker `regression`), which
compares reports/smoke/metrics.json with tests/reference/smoke_metrics.json. The smoke scale trains
for two epochs on tiny data, deterministically on the CPU, so on the same kind of machine the
values agree to rounding; the tolerances below are tight on purpose: a change that moves any smoke
metric is a change in behaviour and must be looked at.

To accept a deliberate change (new model default, data generator fix, ...): run
`make refresh-smoke-reference`, which reruns the smoke pipeline and copies the new
reports/smoke/metrics.json over the reference, and commit the reference with a message that
says why the numbers moved.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "reference" / "smoke_metrics.json"
CURRENT = ROOT / "reports" / "smoke" / "metrics.json"
# Relative and absolute tolerance of every metric (same CPU kind, deterministic algorithms).
RTOL = 1e-4
ATOL = 1e-6


def compare_metrics(current: dict[str, float], reference: dict[str, float]) -> list[str]:
    """Every difference between two flat metric dicts beyond the tolerances, as readable lines."""
    problems = [f"missing metric {key}" for key in sorted(set(reference) - set(current))]
    problems += [f"unexpected metric {key} (not in the reference)" for key in sorted(set(current) - set(reference))]
    for key in sorted(set(current) & set(reference)):
        got, want = current[key], reference[key]
        if not math.isclose(got, want, rel_tol=RTOL, abs_tol=ATOL):
            problems.append(f"{key}: {got!r} != reference {want!r}")
    return problems


@pytest.mark.regression
def test_smoke_metrics_match_reference() -> None:
    """The smoke pipeline's metrics equal the committed reference within RTOL/ATOL."""
    assert CURRENT.is_file(), f"{CURRENT} is missing: run the smoke pipeline first (make test does)"
    problems = compare_metrics(json.loads(CURRENT.read_text()), json.loads(REFERENCE.read_text()))
    assert not problems, "smoke metrics moved:\n" + "\n".join(problems) + \
        "\nIf the change is deliberate: make refresh-smoke-reference (see this file's docstring)."


def test_perturbed_reference_is_caught() -> None:
    """A 1e-3 relative change, a removed and an added metric each make the comparison fail."""
    reference = json.loads(REFERENCE.read_text())
    assert reference, "the committed reference is empty"
    assert compare_metrics(dict(reference), reference) == []
    key = sorted(reference)[0]
    nudged = dict(reference, **{key: reference[key] * (1 + 1e-3) + 1e-3})
    assert compare_metrics(nudged, reference) == [f"{key}: {nudged[key]!r} != reference {reference[key]!r}"]
    fewer = {k: v for k, v in reference.items() if k != key}
    assert compare_metrics(fewer, reference) == [f"missing metric {key}"]
    assert compare_metrics(dict(reference, extra=1.0), reference) == ["unexpected metric extra (not in the reference)"]


def test_reference_is_flat_and_numeric() -> None:
    """The reference holds experiment.model.metric keys with finite numbers only."""
    reference = json.loads(REFERENCE.read_text())
    assert all(key.count(".") >= 2 and isinstance(v, (int, float)) and math.isfinite(v) for key, v in reference.items())


@pytest.mark.regression
def test_smoke_pipeline_leaves_the_committed_report_unchanged() -> None:
    """Regenerating reports/smoke gives the committed bytes (report.html, which embeds run times,
    is a DVC output that git ignores): `make test` leaves a clean working tree."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--",
                             "reports/smoke"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    assert status == "", ("the smoke pipeline changed the committed report:\n" + status
                          + "commit the regenerated reports/smoke with the reason it moved")

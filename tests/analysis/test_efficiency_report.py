"""Claim 7 in the report: reading the measurements, fitted exponents, the verdict rule on synthetic
measurements (every outcome), and the report files and metrics built from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.claims.claim7 import CLAIM, judge
from analysis.claims.markdown import claims_markdown
from analysis.efficiency import fit_exponent, read_efficiency
from analysis.report import EFFICIENCY_FILES, build_report, expected_outputs
from analysis.runs import MissingRunsError
from harness.config import load_config
from tests.analysis.test_report import REFERENCE, make_runs

ROOT = Path(__file__).resolve().parents[2]
SIZES = [15, 30, 60, 100, 200]
MODELS = ["rkn", "rkn_full_cov", "lstm", "gru"]


def config(sizes=SIZES) -> dict:
    cfg = load_config([ROOT / "config" / "config.yaml"])
    cfg["efficiency"] = {**cfg["efficiency"], "models": MODELS, "latent_sizes": list(sizes)}
    return cfg


def measurements(tmp_path: Path, sizes=SIZES, rkn_params_power=1.0, rkn_time_power=1.0,
                 gru_params_power=2.0, time_scale=1.0) -> Path:
    """A measurements file with power laws: parameters rkn/full c m^p, lstm/gru c m^2; times
    rkn 0.01 m^q, full 0.001 m^2 (ratio ∝ m^(q - 2)), lstm/gru 0.001 m."""
    params = {"rkn": (400, rkn_params_power), "rkn_full_cov": (400, rkn_params_power),
              "lstm": (96, 2.0), "gru": (72, gru_params_power)}
    times = {"rkn": (0.01, rkn_time_power), "rkn_full_cov": (0.001, 2.0),
             "lstm": (0.001, 1.0), "gru": (0.001, 1.0)}
    rows = [{"model": model, "class": model, "latent_obs_dim": m,
             "n_params": round(params[model][0] * m ** params[model][1]),
             "forward_ms": time_scale * times[model][0] * m ** times[model][1] / 3,
             "forward_backward_ms": time_scale * times[model][0] * m ** times[model][1],
             "peak_memory_mib": 0.01 * m ** 2} for model in MODELS for m in sizes]
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"efficiency-{len(list(tmp_path.glob('*.json')))}.json"
    path.write_text(json.dumps({"settings": {**config(sizes)["efficiency"]}, "device": "cpu",
                                "device_name": "cpu", "torch": "2.13.0", "threads": 1,
                                "rows": rows}))
    return path


def verdict(tmp_path: Path, sizes=SIZES, **kwargs) -> str:
    return judge(read_efficiency(measurements(tmp_path, sizes, **kwargs), config(sizes))).verdict


def test_fit_exponent_recovers_power_laws() -> None:
    """A clean power law gives its exponent; fewer than two positive values give NaN."""
    m = pd.Index(SIZES)
    assert fit_exponent(pd.Series(3.0 * m.to_numpy() ** 1.7, index=m)) == pytest.approx(1.7)
    assert np.isnan(fit_exponent(pd.Series([1.0, np.nan, 0.0, -1.0, np.nan], index=m)))


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, "reproduced"),                                  # linear vs quadratic, ratio ∝ 1/m
    ({"rkn_params_power": 2.0}, "not reproduced"),       # RKN parameters quadratic
    ({"rkn_time_power": 2.5}, "not reproduced"),         # factorized step relatively dearer
    ({"rkn_time_power": 2.0}, "inconclusive"),           # ratio flat
    ({"gru_params_power": 1.0}, "inconclusive"),         # a baseline that is not quadratic
])
def test_claim7_verdicts(tmp_path: Path, kwargs: dict, expected: str) -> None:
    """Every outcome of the rule on synthetic measurements over m = 15..200."""
    assert verdict(tmp_path, **kwargs) == expected


def test_two_sizes_inconclusive_without_timings(tmp_path: Path) -> None:
    """With two latent sizes claim 7 is inconclusive, and its claims.md section does not depend
    on the timings (the committed smoke report stays byte-stable across machines)."""
    texts = []
    for scale in (1.0, 7.0):
        data = read_efficiency(measurements(tmp_path, [15, 30], time_scale=scale),
                               config([15, 30]))
        assert judge(data).verdict == "inconclusive"
        texts.append(claims_markdown("smoke", {}, {}, {"efficiency": data}))
    assert texts[0] == texts[1]
    section = texts[0][texts[0].index("## Claim 7"):]
    assert "only 2 latent sizes [15, 30] (< 3)" in section and "| rkn | rkn | 6,000 |" in section


def test_missing_role_inconclusive(tmp_path: Path) -> None:
    """Without a measured full-covariance model there is nothing to compare the cost with."""
    cfg = config()
    cfg["models"]["rkn_full_cov"] = {**cfg["models"]["rkn_full_cov"], "role": "ablation"}
    assert judge(read_efficiency(measurements(tmp_path), cfg)).verdict == "inconclusive"


def test_stale_or_missing_file_is_refused(tmp_path: Path) -> None:
    """A file measured for other sizes, or no file, stops the report."""
    with pytest.raises(MissingRunsError, match="the config asks for"):
        read_efficiency(measurements(tmp_path, [15, 30]), config())
    with pytest.raises(MissingRunsError, match="are missing"):
        read_efficiency(tmp_path / "none.json", config())


def test_report_files_metrics_and_claim(tmp_path: Path) -> None:
    """build_report writes efficiency.csv|md|png, puts the exact parameter counts (and no timings)
    into metrics.json, judges claim 7 in claims.md; without the file it refuses."""
    cfg, dirs = make_runs(tmp_path)
    cfg["efficiency"] = config()["efficiency"]
    path = measurements(tmp_path / "eff")
    with pytest.raises(MissingRunsError, match="no measurements file"):
        build_report(cfg, dirs, REFERENCE, figures_too=False)
    out = build_report(cfg, dirs, REFERENCE, efficiency=path)
    assert set(EFFICIENCY_FILES) <= set(out) and set(out) == set(expected_outputs(cfg))
    assert out["efficiency.png"].startswith(b"\x89PNG")
    flat = json.loads(out["metrics.json"])
    assert flat["efficiency.rkn.m15.n_params"] == 6000 and flat["efficiency.lstm.m200.n_params"] \
        == 96 * 200**2
    assert not any(k.startswith("efficiency.") and not k.endswith(".n_params") for k in flat)
    table = out["efficiency.md"].decode()
    assert "| rkn | rkn | 15 | 6,000 |" in table and "## rkn relative to rkn_full_cov" in table
    claims = out["claims.md"].decode()
    claim7 = claims[claims.index("## Claim 7"):]
    assert "**Verdict: reproduced**" in claim7 and "∝ m^1" in claim7
    assert CLAIM.measurement == "efficiency" and "not run" not in claim7

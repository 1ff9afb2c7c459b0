"""Claim-7 measurements (harness.efficiency): exact parameter counts against closed forms written
here, sane times and memory, the cores it accepts, the script and the hashed file name."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from harness.config import ConfigError, load_config
from harness.efficiency import measure, recurrent_core
from harness.registry import build_configured
from harness.runspec import efficiency_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
import efficiency as efficiency_cli  # noqa: E402

SIZES = [4, 9]


def expected_params(cls: str, m: int) -> int:
    """Trained core parameters by hand (E1 settings: K = 15 bases, bandwidth b = 3).

    RKN cell: K bases of four m x m band blocks with m(2b + 1) - b(b + 1) entries each, the
    coefficient net Linear(2m -> K), the transition noise (2m). LSTM / GRU ("paper" layout):
    4m units on inputs of 2m + 1, two bias vectors: 4 and 3 gates.
    """
    k, b = 15, 3
    if cls in ("rkn", "rkn_full_cov"):
        band = m * (2 * b + 1) - b * (b + 1)
        return k * 4 * band + (2 * m * k + k) + 2 * m
    gates = {"lstm": 4, "gru": 3}[cls]
    units, inputs = 4 * m, 2 * m + 1
    return gates * units * (inputs + units) + 2 * gates * units


@pytest.fixture(scope="module")
def measured() -> dict:
    config = load_config([ROOT / "config" / "config.yaml"])
    config["efficiency"] = {"models": ["rkn", "rkn_full_cov", "lstm", "gru"],
                            "latent_sizes": SIZES, "batch_size": 2, "seq_len": 3, "repeats": 2,
                            "warmup": 1}
    torch.set_num_threads(1)
    return measure(config, torch.device("cpu"))


def test_parameter_counts_are_exact(measured: dict) -> None:
    """Every count equals the closed form; the RKN's grows linearly, the LSTM's quadratically."""
    for row in measured["rows"]:
        assert row["n_params"] == expected_params(row["class"], row["latent_obs_dim"]), row
    assert [(r["model"], r["latent_obs_dim"]) for r in measured["rows"]] == \
        [(m, s) for m in ("rkn", "rkn_full_cov", "lstm", "gru") for s in SIZES]


def test_times_and_memory_are_positive(measured: dict) -> None:
    """Per-step times are positive and finite (their sizes depend on a shared machine), and the
    CPU allocator's peak of a forward+backward pass is positive; the device is recorded."""
    assert measured["device"] == "cpu" and measured["threads"] == 1
    for row in measured["rows"]:
        assert 0 < row["forward_ms"] < math.inf and 0 < row["forward_backward_ms"] < math.inf
        assert row["peak_memory_mib"] > 0, row
    full = {r["latent_obs_dim"]: r["peak_memory_mib"] for r in measured["rows"]
            if r["model"] == "rkn_full_cov"}
    assert full[9] > full[4]  # a larger covariance needs more memory


def test_models_without_a_recurrent_core_are_refused() -> None:
    """A reference predictor has no core to measure: a ValueError names it."""
    config = load_config([ROOT / "config" / "config.yaml"])
    with pytest.raises(ValueError, match="'mean_image'.*no recurrent core"):
        recurrent_core(build_configured(config, "mean_image"), "mean_image")


def test_file_name_hashes_the_settings_and_models() -> None:
    """The measurements file's name changes with the efficiency settings and with the measured
    models' entries, not with other models; no section, no file."""
    base = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"])
    path = efficiency_file(base)
    assert path.parent == Path("results/smoke/efficiency") and path.suffix == ".json"
    more = dict(base, efficiency={**base["efficiency"], "repeats": 4})
    lstm = dict(base, models={**base["models"], "lstm": {**base["models"]["lstm"],
                                                         "params": {"latent_obs_dim": 51}}})
    other = dict(base, models={**base["models"], "e2c": {"class": "e2c", "role": "ablation"}})
    assert len({path, efficiency_file(more), efficiency_file(lstm)}) == 3
    assert efficiency_file(other) == path
    assert efficiency_file({k: v for k, v in base.items() if k != "efficiency"}) is None


def test_unknown_model_in_the_section_is_a_config_error(tmp_path: Path) -> None:
    """efficiency.models must name models of the config."""
    overlay = tmp_path / "o.yaml"
    overlay.write_text("efficiency: {models: [rkn, transformer]}\n")
    with pytest.raises(ConfigError, match="efficiency.models: unknown model 'transformer'"):
        load_config([ROOT / "config" / "config.yaml", overlay])


def test_script_writes_the_file(tmp_path: Path) -> None:
    """workflow/scripts/efficiency.py writes the measurements as JSON; bad input exits with 2."""
    overlay = tmp_path / "o.yaml"
    overlay.write_text("efficiency: {models: [rkn, gru], latent_sizes: [3], batch_size: 1, "
                       "seq_len: 2, repeats: 1, warmup: 0}\n")
    args = ["--config", str(ROOT / "config" / "config.yaml"), "--config", str(overlay)]
    out = tmp_path / "e.json"
    assert efficiency_cli.main([*args, "--out", str(out), "--device", "cpu"]) == 0
    data = json.loads(out.read_text())
    assert [r["n_params"] for r in data["rows"]] == [expected_params("rkn", 3),
                                                     expected_params("gru", 3)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("efficiency: {models: [rkn, mean_image]}\n")
    assert efficiency_cli.main([*args, "--config", str(bad), "--out", str(out)]) == 2

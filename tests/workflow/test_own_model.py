"""Bring your own model: a class defined in the test folder, named in a config overlay, goes
through the same validation, training loop, tables, paired comparison and claim as ours."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.config import ConfigError, load_config
from tests.reduced_config import reduced_smoke
from tests.workflow.test_snakemake import WORKFLOW_S, snakemake

OWN = {"class": "tests.workflow.own_model:PixelGRU", "role": "baseline", "params": {"hidden": 6}}


def own_overlay(folder: Path, model: dict = OWN) -> Path:
    """An overlay that adds the model `pixel_gru` to E1 beside the RKN and the small LSTM."""
    path = folder / "own.yaml"
    path.write_text(yaml.safe_dump({
        "models": {"pixel_gru": model},
        "experiments": {"pendulum_filtering": {"models": ["rkn", "lstm_small", "pixel_gru"]}}}))
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"params": {"hiden": 6}}, "unknown config key 'hiden' of PixelGRUConfig"),
    ({"params": {"hidden": "six"}}, "hidden must be int, got 'six'"),
    ({"params": {"hidden": 0}}, "hidden must be >= 1"),
    ({"class": "tests.workflow.own_model:Missing"}, "is not a subclass of rkn.interface"),
])
def test_own_model_is_validated_like_ours(tmp_path: Path, change: dict, message: str) -> None:
    """Its params are checked against its config dataclass (keys, types, ranges) before any run."""
    base, smoke = reduced_smoke(tmp_path, {"pendulum_filtering": None})
    with pytest.raises(ConfigError, match=message):
        load_config([base, smoke, own_overlay(tmp_path, {**OWN, **change})])


@pytest.mark.slow
def test_own_model_runs_through_the_smoke_pipeline(tmp_path: Path) -> None:
    """Trained by the same loop, in every table, paired with the RKN, judged in claim 1."""
    base, smoke = reduced_smoke(tmp_path / "cfg", {"pendulum_filtering": None})
    run = snakemake(tmp_path, configs=[base, smoke, own_overlay(tmp_path / "cfg")],
                    timeout=WORKFLOW_S)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = tmp_path / "results" / "smoke" / "report"  # make pipeline publishes it as reports/
    table = pd.read_csv(report / "tables" / "pendulum_filtering.csv")
    assert list(table["model"]) == ["rkn", "lstm_small", "pixel_gru"]
    row = table.set_index("model").loc["pixel_gru"]
    assert row["n_seeds"] == 2 and row["n_params_mean"] > 0
    paired = pd.read_csv(report / "tables" / "pendulum_filtering_paired.csv")
    assert set(paired["baseline"]) == {"lstm_small", "pixel_gru"}
    claims = (report / "claims.md").read_text()
    claim1 = claims[claims.index("## Claim 1"):claims.index("## Claim 2")]
    assert "- pixel_gru: ΔLL" in claim1
    assert "pendulum_filtering.pixel_gru.log_lik" in (report / "metrics.json").read_text()

"""Extra figures of E3 and E8: declared as report outputs, drawn from run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.config import load_config
from analysis.extra_figures import _ablation_frame, sweeps_figure, visibility_example_figure
from analysis.report import expected_outputs

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG"


def test_expected_outputs_include_the_extra_figures() -> None:
    config = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"])
    outputs = set(expected_outputs(config))
    assert {"figures/multiple_pendulums_error_histograms.png",
            "figures/multiple_pendulums_visibility_example.png",
            "figures/ablations_sweeps.png"} <= outputs
    assert not any(p.startswith("figures/pendulum_filtering_sweeps") for p in outputs)


def test_sweeps_figure_reads_b_and_k_from_run_configs(tmp_path: Path) -> None:
    """b and K come from each run's config.json; the figure is a PNG."""
    settings = {"rkn": (3, 15), "rkn_b0": (0, 15), "rkn_b15": (15, 15), "rkn_k1": (3, 1),
                "rkn_full_cov": (3, 15)}
    rows, dirs = [], {}
    for model, (b, k) in settings.items():
        for seed in range(3):
            run_dir = tmp_path / model / str(seed)
            run_dir.mkdir(parents=True)
            (run_dir / "config.json").write_text(json.dumps(
                {"model_config": {"bandwidth": b, "num_basis": k}}))
            dirs[(model, seed)] = run_dir
            rows.append({"experiment": "ablations", "model": model, "seed": seed,
                         "log_lik": 5.0 + 0.01 * b + 0.1 * seed, "rmse": 0.1})
    runs = pd.DataFrame(rows)
    frame = _ablation_frame(runs, dirs)
    assert frame.set_index(["model", "seed"]).loc[("rkn_k1", 2), "num_basis"] == 1
    assert frame.set_index(["model", "seed"]).loc[("rkn_b15", 0), "bandwidth"] == 15
    assert sweeps_figure(runs, dirs, "ablations").startswith(PNG)


def test_visibility_example_figure_is_a_png() -> None:
    t = np.linspace(0, 3, 12)
    targets = np.tile(np.sin(t)[None, :, None], (2, 1, 6))
    examples = {m: {"mean": targets + 0.1, "var": np.full_like(targets, 0.04), "targets": targets}
                for m in ("rkn", "lstm")}
    visibility = np.tile(np.linspace(0, 1, 12)[:, None], (1, 3))
    assert visibility_example_figure(examples, visibility, "multiple_pendulums").startswith(PNG)

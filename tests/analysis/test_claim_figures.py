"""Extra figures of E3 and E8: declared by their claims as report outputs, drawn from run folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.claim_figures import (_with_structure, error_histograms_figure, sweeps_figure,
                                    visibility_example_figure)
from analysis.report import expected_outputs
from harness.config import load_config
from tests.analysis.synthetic import experiment_runs

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG"
E3_ROLES = {"rkn": "rkn", "lstm": "baseline", "gru": "baseline"}


def test_expected_outputs_include_the_extra_figures() -> None:
    config = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"])
    outputs = set(expected_outputs(config))
    assert {"figures/multiple_pendulums_error_histograms.png",
            "figures/multiple_pendulums_visibility_example.png",
            "figures/ablations_sweeps.png"} <= outputs
    assert not any(p.startswith("figures/pendulum_filtering_sweeps") for p in outputs)


def test_sweeps_figure_reads_b_and_k_from_run_configs() -> None:
    """b and K come from each model's config.json (model_configs); the figure is a PNG."""
    structure = {"rkn": (3, 15), "rkn_b0": (0, 15), "rkn_b15": (15, 15), "rkn_k1": (3, 1),
                 "rkn_full_cov": (3, 15)}
    roles = {"rkn": "rkn", "rkn_b0": "ablation", "rkn_b15": "full_transition",
             "rkn_k1": "ablation", "rkn_full_cov": "full_covariance"}
    frame = pd.DataFrame([{"experiment": "ablations", "model": m, "seed": s,
                           "log_lik": 5.0 + 0.01 * b + 0.1 * s, "rmse": 0.1}
                          for m, (b, k) in structure.items() for s in range(3)])
    runs = experiment_runs("ablations", frame, roles, model_configs={
        m: {"bandwidth": b, "num_basis": k} for m, (b, k) in structure.items()})
    with_structure = _with_structure(runs).set_index(["model", "seed"])
    assert with_structure.loc[("rkn_k1", 2), "num_basis"] == 1
    assert with_structure.loc[("rkn_b15", 0), "bandwidth"] == 15
    assert sweeps_figure(runs).startswith(PNG)


def e3_runs(tmp_path: Path, visibility: bool = True):
    """Run folders of three models x 2 seeds with calibration.csv and examples.npz."""
    t = np.linspace(0, 3, 12)
    targets = np.tile(np.sin(t)[None, :, None], (2, 1, 6))
    edges = np.linspace(-4, 4, 101)
    dirs = {}
    for model in E3_ROLES:
        for seed in range(2):
            run_dir = tmp_path / model / str(seed)
            run_dir.mkdir(parents=True)
            pd.DataFrame({"bin_left": edges[:-1], "bin_right": edges[1:],
                          "density": np.full(100, 0.125)}).to_csv(run_dir / "calibration.csv",
                                                                  index=False)
            arrays = {"mean": targets + 0.1, "var": np.full_like(targets, 0.04),
                      "targets": targets}
            if visibility:
                arrays["visibility"] = np.tile(np.linspace(0, 1, 12)[None, :, None], (2, 1, 3))
            np.savez(run_dir / "examples.npz", **arrays)
            dirs[(model, seed)] = run_dir
    frame = pd.DataFrame([{"experiment": "multiple_pendulums", "model": m, "seed": s}
                          for m, s in dirs])
    runs = experiment_runs("multiple_pendulums", frame, E3_ROLES)
    return runs.__class__(**{**runs.__dict__, "run_dirs": dirs})


def test_e3_figures_are_pngs_from_run_folders(tmp_path: Path) -> None:
    """Both E3 figures read only the run folders (the visibility is saved in examples.npz)."""
    runs = e3_runs(tmp_path)
    assert error_histograms_figure(runs).startswith(PNG)
    assert visibility_example_figure(runs).startswith(PNG)


def test_visibility_figure_without_visibility_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="visibility"):
        visibility_example_figure(e3_runs(tmp_path, visibility=False))

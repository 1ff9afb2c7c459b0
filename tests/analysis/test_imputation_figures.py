"""The imputation grid: truth, input and one row per model for each shown test sequence."""

from __future__ import annotations

import numpy as np

from analysis.imputation_figures import imputation_grid_figure
from analysis.figures import example_figure


def examples(models: list[str], steps: int = 20) -> dict[str, dict[str, np.ndarray]]:
    """Synthetic examples.npz contents for image models (4 sequences, 24x24x1)."""
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 256, (4, steps, 24, 24, 1), dtype=np.uint8)
    valid = rng.random((4, steps)) < 0.5
    inputs = np.where(valid[..., None, None, None], targets, 0).astype(np.uint8)
    return {m: {"probs": rng.random((4, steps, 24, 24, 1)), "targets": targets, "inputs": inputs,
                "obs_valid": valid} for m in models}


def test_grid_has_truth_input_and_model_rows() -> None:
    """2 sequences x (truth, input, 3 models) rows, consecutive frames from t = 4."""
    fig = imputation_grid_figure(examples(["rkn", "kvae_filter", "hold_last_frame"]), "e2", frames=3)
    axes = np.array(fig.axes).reshape(10, 3)
    assert axes[0, 0].get_title().startswith("t=4") and axes[0, -1].get_title().startswith("t=6")
    assert [axes[r, 0].get_ylabel().split("\n")[-1] for r in range(5)] == ["truth", "input", "rkn",
                                                                          "kvae_filter", "hold_last_frame"]


def test_report_example_figure_uses_the_grid_for_imputation() -> None:
    """The report's example figure for image models with inputs is a PNG of the grid."""
    png = example_figure(examples(["rkn"], steps=2), "e2")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

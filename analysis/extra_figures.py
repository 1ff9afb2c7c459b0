"""Experiment-specific report figures (E3 multiple pendulums, E8 ablations), beside the four
common figures of ``analysis.figures``.

``EXTRA_FIGURES[experiment]`` lists the extra figure names; ``extra_figures(...)`` returns their
PNG bytes. Matplotlib is imported only when figures are drawn, so the workflow can ask for the
names cheaply.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

EXTRA_FIGURES: dict[str, tuple[str, ...]] = {
    "multiple_pendulums": ("error_histograms", "visibility_example"),
    "ablations": ("sweeps",),
}
# The reference model of both experiments and the models drawn beside it in E3.
REFERENCE = "rkn"
E3_COMPARED = ("rkn", "lstm")
FULL_COV = "rkn_full_cov"
N_PENDULUMS = 3


def extra_figure_names(experiment: str) -> tuple[str, ...]:
    """Names of the extra figures of an experiment (empty for the others)."""
    return EXTRA_FIGURES.get(experiment, ())


def _normal_density(x: np.ndarray) -> np.ndarray:
    return np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)


def error_histograms_figure(run_dirs: dict[tuple[str, int], Path], models: list[str],
                            title: str) -> bytes:
    """Normalised-error density of RKN and LSTM side by side (mean over seeds) against N(0, 1)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from analysis.figures import _png  # noqa: PLC0415

    shown = [m for m in E3_COMPARED if m in models]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(4.2 * max(len(shown), 1), 3.4),
                             squeeze=False, sharey=True)
    x = np.linspace(-4, 4, 401)
    for ax, model in zip(axes[0], shown):
        tables = [pd.read_csv(d / "calibration.csv") for (m, _), d in sorted(run_dirs.items())
                  if m == model and (d / "calibration.csv").is_file()]
        if tables:
            density = np.mean([t["density"].to_numpy() for t in tables], axis=0)
            left, right = tables[0]["bin_left"].to_numpy(), tables[0]["bin_right"].to_numpy()
            ax.bar(left, density, width=right - left, align="edge", alpha=0.6,
                   label=f"{model} ({len(tables)} seeds)")
        ax.plot(x, _normal_density(x), "k--", label="N(0, 1)")
        ax.set(title=model, xlabel="normalised error (y - mu) / sigma")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("density")
    fig.suptitle(f"{title}: normalised errors of all six outputs, test set")
    fig.tight_layout()
    return _png(fig)


def visibility_example_figure(examples: dict[str, dict[str, np.ndarray]], visibility: np.ndarray,
                              title: str) -> bytes:
    """Test sequence 0: sin of each pendulum's angle, prediction ±2σ, grey where not visible.

    Args:
        examples: model -> examples.npz arrays (mean, var, targets: (S, T, 6)).
        visibility: (T, 3) visibility factors of test sequence 0 (1 visible, 0 hidden or noise).
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from analysis.figures import _png  # noqa: PLC0415

    shown = [m for m in E3_COMPARED if m in examples and "mean" in examples[m]]
    cols = max(len(shown), 1)
    fig, axes = plt.subplots(N_PENDULUMS, cols, figsize=(4.5 * cols, 6.4), squeeze=False,
                             sharex=True, sharey=True)
    steps = np.arange(visibility.shape[0])
    for col, model in enumerate(shown):
        ex = examples[model]
        for k in range(N_PENDULUMS):
            ax, dim = axes[k, col], 2 * k  # sin(theta_k) is output 2k
            for t in steps:  # darker grey = less visible
                ax.axvspan(t - 0.5, t + 0.5, color="0.5", alpha=0.5 * (1 - visibility[t, k]), lw=0)
            mu, sd = ex["mean"][0, :, dim], 2 * np.sqrt(ex["var"][0, :, dim])
            ax.fill_between(steps, mu - sd, mu + sd, alpha=0.35, label="±2σ")
            ax.plot(steps, mu, label="prediction")
            ax.plot(steps, ex["targets"][0, :, dim], "k", lw=0.8, label="target")
            ax.set_title(f"{model}: pendulum {k + 1}, sin θ", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time step (grey: pendulum hidden by noise or another pendulum)")
    fig.suptitle(f"{title}: test sequence 0 (first seed)")
    fig.tight_layout()
    return _png(fig)


def _ablation_frame(runs: pd.DataFrame, run_dirs: dict[tuple[str, int], Path]) -> pd.DataFrame:
    """Runs with their bandwidth b and basis count K (from each run's config.json)."""
    settings = {}
    for (model, seed), run_dir in run_dirs.items():
        model_config = json.loads((run_dir / "config.json").read_text())["model_config"]
        settings[(model, seed)] = (model_config["bandwidth"], model_config["num_basis"])
    frame = runs.copy()
    frame["bandwidth"] = [settings[(m, s)][0] for m, s in zip(frame["model"], frame["seed"])]
    frame["num_basis"] = [settings[(m, s)][1] for m, s in zip(frame["model"], frame["seed"])]
    return frame


def sweeps_figure(runs: pd.DataFrame, run_dirs: dict[tuple[str, int], Path], title: str) -> bytes:
    """Log-likelihood and RMSE against b (K fixed) and against K (b fixed): seeds, mean, 95% CI.

    The sweeps hold the reference model's other setting fixed; the full-covariance RKN is drawn as
    a dashed line (mean) with its 95% interval band.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import seaborn as sns  # noqa: PLC0415

    from analysis.figures import SEED, _png  # noqa: PLC0415
    from analysis.report import bootstrap_ci  # noqa: PLC0415

    frame = _ablation_frame(runs, run_dirs)
    factorized = frame[frame["model"] != FULL_COV]
    ref = factorized[factorized["model"] == REFERENCE]
    ref_b, ref_k = ((int(ref["bandwidth"].iloc[0]), int(ref["num_basis"].iloc[0])) if len(ref)
                    else (3, 15))
    sweeps = [("bandwidth", f"bandwidth b (K = {ref_k})",
               factorized[factorized["num_basis"] == ref_k]),
              ("num_basis", f"basis matrices K (b = {ref_b})",
               factorized[factorized["bandwidth"] == ref_b])]
    metrics = [m for m in ("log_lik", "rmse") if m in frame]
    full = frame[frame["model"] == FULL_COV]
    fig, axes = plt.subplots(len(metrics), 2, figsize=(9, 3.3 * len(metrics)), squeeze=False)
    for row, metric in enumerate(metrics):
        for col, (key, label, sub) in enumerate(sweeps):
            ax = axes[row, col]
            sns.stripplot(sub, x=key, y=metric, native_scale=True, color="0.6", jitter=False, ax=ax)
            sns.pointplot(sub, x=key, y=metric, native_scale=True, errorbar=("ci", 95), seed=SEED,
                          markers="D", capsize=0.1, ax=ax, label="factorized (mean, 95% CI)")
            if len(full):
                lo, hi = bootstrap_ci(full[metric].to_numpy())
                ax.axhline(full[metric].mean(), color="C3", ls="--",
                           label="full covariance (b, K of rkn)")
                if np.isfinite(lo):
                    ax.axhspan(lo, hi, color="C3", alpha=0.15)
            ax.set(xlabel=label, ylabel=metric)
            ax.legend(fontsize=7)
    fig.suptitle(f"{title}: per seed (grey), mean and bootstrap 95% CI")
    fig.tight_layout()
    return _png(fig)


def _load_examples(run_dirs: dict[tuple[str, int], Path]) -> dict[str, dict[str, np.ndarray]]:
    """examples.npz of each model's first seed (config order)."""
    examples: dict[str, dict[str, np.ndarray]] = {}
    for (model, _), run_dir in run_dirs.items():
        if model not in examples and (run_dir / "examples.npz").is_file():
            with np.load(run_dir / "examples.npz") as npz:
                examples[model] = {k: npz[k] for k in npz.files}
    return examples


def _test_visibility(config: dict, results_dir: str | Path, experiment: str) -> np.ndarray:
    """Visibility (T, 3) of test sequence 0 from the experiment's stored test split."""
    from datasets.store import load_split  # noqa: PLC0415
    from harness.config import dataset_dir  # noqa: PLC0415

    dataset = config["experiments"][experiment]["dataset"]
    spec = config["datasets"][dataset]
    folder = dataset_dir(results_dir, config["scale"], dataset, spec["generator"],
                         spec.get("params", {}))
    split = load_split(folder, "test")
    if "visibility" not in split:
        raise ValueError(f"{folder}/test.npz has no 'visibility' array; the figure needs the "
                         "multiple_pendulums generator's output (regenerate the dataset)")
    return split["visibility"][0]


def extra_figures(config: dict, results_dir: str | Path, experiment: str, runs: pd.DataFrame,
                  run_dirs: dict[tuple[str, int], Path], models: list[str]) -> dict[str, bytes]:
    """{name: PNG bytes} of the experiment's extra figures (see EXTRA_FIGURES)."""
    if experiment == "multiple_pendulums":
        visibility = _test_visibility(config, results_dir, experiment)
        return {"error_histograms": error_histograms_figure(run_dirs, models, experiment),
                "visibility_example": visibility_example_figure(
                    _load_examples(run_dirs), visibility, experiment)}
    if experiment == "ablations":
        return {"sweeps": sweeps_figure(runs, run_dirs, experiment)}
    return {}

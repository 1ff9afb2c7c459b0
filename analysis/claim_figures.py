"""Figures that belong to one claim (declared by the claim modules): E3's error histograms and
visibility example (claim 3), E8's bandwidth and basis-count sweeps (claim 2).

Every maker takes the experiment's runs (``analysis.runs.ExperimentRuns``) and returns PNG bytes;
models are chosen by their role in the config, and everything is read from the run folders.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.figures import SEED, load_examples, png_bytes, read_calibration
from analysis.runs import ExperimentRuns
from analysis.stats import bootstrap_ci

N_PENDULUMS = 3


def _normal_density(x: np.ndarray) -> np.ndarray:
    return np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)


def error_histograms_figure(runs: ExperimentRuns) -> bytes:
    """Normalised-error density (mean over seeds) of the RKN and every baseline, side by side,
    against N(0, 1)."""
    shown = [m for m in [runs.reference, *runs.with_role("baseline")] if m is not None]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(4.2 * max(len(shown), 1), 3.4),
                             squeeze=False, sharey=True)
    x = np.linspace(-4, 4, 401)
    for ax, model in zip(axes[0], shown):
        tables = [read_calibration(d) for (m, _), d in runs.run_dirs.items() if m == model]
        tables = [t for t in tables if len(t)]
        if tables:
            density = np.mean([t["density"].to_numpy() for t in tables], axis=0)
            left, right = tables[0]["bin_left"].to_numpy(), tables[0]["bin_right"].to_numpy()
            ax.bar(left, density, width=right - left, align="edge", alpha=0.6,
                   label=f"{model} ({len(tables)} seeds)")
        ax.plot(x, _normal_density(x), "k--", label="N(0, 1)")
        ax.set(title=model, xlabel="normalised error (y - mu) / sigma")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("density")
    fig.suptitle(f"{runs.name}: normalised errors of all outputs, test set")
    fig.tight_layout()
    return png_bytes(fig)


def visibility_example_figure(runs: ExperimentRuns) -> bytes:
    """Test sequence 0 of the RKN and the first baseline: sin of each pendulum's angle,
    prediction ±2σ, grey where the pendulum is not visible.

    The visibility (T, 3) comes from the run folder's examples.npz (``visibility``, saved there
    from the dataset by the runner: 1 visible, 0 hidden by noise or another pendulum).

    Raises:
        ValueError: the examples hold no visibility (the dataset is not multiple_pendulums).
    """
    examples = load_examples(runs)
    candidates = [runs.reference, *runs.with_role("baseline")[:1]]
    shown = [m for m in candidates if m in examples and "mean" in examples[m]]
    if not shown or "visibility" not in examples[shown[0]]:
        raise ValueError(f"the runs of {runs.name} saved no 'visibility' in examples.npz; the "
                         "figure needs the multiple_pendulums generator's data")
    visibility = examples[shown[0]]["visibility"][0]
    cols = len(shown)
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
    fig.suptitle(f"{runs.name}: test sequence 0 (first seed)")
    fig.tight_layout()
    return png_bytes(fig)


def _with_structure(runs: ExperimentRuns) -> pd.DataFrame:
    """The runs with each model's bandwidth b and basis count K (from its config.json)."""
    frame = runs.metrics.copy()
    frame["bandwidth"] = [runs.model_configs[m]["bandwidth"] for m in frame["model"]]
    frame["num_basis"] = [runs.model_configs[m]["num_basis"] for m in frame["model"]]
    return frame


def sweeps_figure(runs: ExperimentRuns) -> bytes:
    """Log-likelihood and RMSE against b (K fixed) and against K (b fixed): seeds, mean, 95% CI.

    The sweeps hold the RKN's other setting fixed; the full-covariance models (role
    ``full_covariance``) are drawn as a dashed line (mean) with their 95% interval band.
    """
    frame = _with_structure(runs)
    full_cov = runs.with_role("full_covariance")
    factorized = frame[~frame["model"].isin(full_cov)]
    ref = factorized[factorized["model"] == runs.reference]
    ref_b, ref_k = ((int(ref["bandwidth"].iloc[0]), int(ref["num_basis"].iloc[0])) if len(ref)
                    else (3, 15))
    sweeps = [("bandwidth", f"bandwidth b (K = {ref_k})",
               factorized[factorized["num_basis"] == ref_k]),
              ("num_basis", f"basis matrices K (b = {ref_b})",
               factorized[factorized["bandwidth"] == ref_b])]
    metrics = [m for m in ("log_lik", "rmse") if m in frame]
    full = frame[frame["model"].isin(full_cov)]
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
    fig.suptitle(f"{runs.name}: per seed (grey), mean and bootstrap 95% CI")
    fig.tight_layout()
    return png_bytes(fig)

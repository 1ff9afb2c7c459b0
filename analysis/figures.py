"""The four figures of every experiment (seaborn, PNG bytes): metrics, learning curves,
calibration, an example sequence. Each function returns the PNG as bytes; the caller writes it
atomically. Claim-specific figures are in ``analysis.claim_figures``.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis.imputation_figures import imputation_grid_figure  # noqa: E402
from analysis.runs import ExperimentRuns  # noqa: E402

DPI = 120
SEED = 0  # seaborn's bootstrap for the plotted intervals


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes without a timestamp (same figure, same bytes); closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def palette(models: list[str]) -> dict[str, tuple]:
    return dict(zip(models, sns.color_palette("colorblind", len(models))))


def metrics_figure(runs: pd.DataFrame, models: list[str], title: str) -> bytes:
    """Log-likelihood and RMSE (or the BCEs) by model: one point per seed, mean with 95% CI."""
    present = [m for m in ("log_lik", "rmse", "bce_all", "bce_missing")
               if m in runs and runs[m].notna().any()]
    metrics = [m for m in present if not m.startswith("bce")] or present
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sns.stripplot(runs, x="model", y=metric, order=models, color="0.6", jitter=False, ax=ax)
        sns.pointplot(runs, x="model", y=metric, order=models, hue="model", hue_order=models,
                      palette=palette(models), errorbar=("ci", 95), seed=SEED, linestyle="none",
                      markers="D", capsize=0.2, legend=False, ax=ax)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{title}: per seed (grey), mean and bootstrap 95% CI")
    fig.tight_layout()
    return png_bytes(fig)


def learning_curves_figure(histories: pd.DataFrame, models: list[str], title: str,
                           selected: pd.DataFrame | None = None,
                           stopped: pd.DataFrame | None = None) -> bytes:
    """Validation loss against epoch per model: mean over seeds with a 95% band, one marker per
    seed at its selected epoch (filled: the run converged, hollow: it did not), and a cross at
    the last epoch of every run that early stopping ended.

    Args:
        histories: history.csv rows with columns model, seed, epoch, val_loss.
        selected: one row per run with model, seed, selected_epoch and converged (1/0/NaN);
            None draws no markers.
        stopped: model, seed, epochs_trained of the runs that stopped early; None or empty:
            no crosses.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = palette(models)
    sns.lineplot(histories, x="epoch", y="val_loss", hue="model", hue_order=models,
                 palette=colours, errorbar=("ci", 95), seed=SEED, ax=ax)
    if selected is not None and len(selected):
        points = selected.merge(histories, left_on=["model", "seed", "selected_epoch"],
                                right_on=["model", "seed", "epoch"])
        for model, group in points.groupby("model", sort=False):
            done = group["converged"] == 1
            ax.scatter(group["epoch"], group["val_loss"], s=28, zorder=3, linewidths=1.2,
                       edgecolors=[colours[model]] * len(group),
                       facecolors=[colours[model] if d else "none" for d in done])
        handles, labels = ax.get_legend_handles_labels()
        for filled, label in ((True, "selected epoch, converged"),
                              (False, "selected epoch, not converged")):
            handles.append(plt.Line2D([], [], ls="none", marker="o", color="0.3",
                                      markerfacecolor="0.3" if filled else "none"))
            labels.append(label)
        if stopped is not None and len(stopped):
            ends = stopped.merge(histories, left_on=["model", "seed", "epochs_trained"],
                                 right_on=["model", "seed", "epoch"])
            for model, group in ends.groupby("model", sort=False):
                ax.scatter(group["epoch"], group["val_loss"], s=40, zorder=3, marker="x",
                           color=colours[model])
            handles.append(plt.Line2D([], [], ls="none", marker="x", color="0.3"))
            labels.append("stopped early")
        ax.legend(handles, labels, fontsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set(title=f"{title}: validation loss (mean over seeds, 95% band)")
    fig.tight_layout()
    return png_bytes(fig)


def calibration_figure(calibration: pd.DataFrame, models: list[str], title: str) -> bytes:
    """Normalised-error density per model (mean over seeds) against the N(0, 1) density."""
    fig, ax = plt.subplots(figsize=(6, 4))
    if not calibration.empty:
        mean = calibration.groupby(["model", "centre"], as_index=False)["density"].mean()
        sns.lineplot(mean, x="centre", y="density", hue="model", hue_order=models,
                     palette=palette(models), drawstyle="steps-mid", errorbar=None, ax=ax)
    x = np.linspace(-4, 4, 401)
    ax.plot(x, np.exp(-x**2 / 2) / np.sqrt(2 * np.pi), "k--", label="N(0, 1)")
    ax.legend()
    ax.set(title=f"{title}: normalised errors (y - mu) / sigma", xlabel="normalised error")
    fig.tight_layout()
    return png_bytes(fig)


def example_figure(examples: dict[str, dict[str, np.ndarray]], title: str) -> bytes:
    """Test sequence 0: per model and target dimension, the target, mean and ±2σ band."""
    gaussian = {m: e for m, e in examples.items() if "mean" in e and "var" in e}
    if not gaussian:
        return image_example_figure(examples, title)
    dims = next(iter(gaussian.values()))["targets"].shape[-1]
    fig, axes = plt.subplots(dims, len(gaussian), figsize=(3.2 * len(gaussian), 2.2 * dims),
                             squeeze=False, sharex=True, sharey="row")
    for col, (model, ex) in enumerate(gaussian.items()):
        t = np.arange(ex["targets"].shape[1])
        for d in range(dims):
            ax, mu, sd = axes[d, col], ex["mean"][0, :, d], 2 * np.sqrt(ex["var"][0, :, d])
            ax.fill_between(t, mu - sd, mu + sd, alpha=0.3, label="±2σ")
            ax.plot(t, mu, label="mean")
            ax.plot(t, ex["targets"][0, :, d], "k", lw=0.8, label="target")
            ax.set_title(f"{model}, dim {d}", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{title}: test sequence 0 (first seed)")
    fig.tight_layout()
    return png_bytes(fig)


def image_example_figure(examples: dict[str, dict[str, np.ndarray]], title: str,
                         frames: int = 8) -> bytes:
    """Image models: targets and each model's predicted images at evenly spaced frames."""
    models = [m for m, e in examples.items() if "probs" in e]
    if models and "inputs" in examples[models[0]]:  # imputation: truth, input, each model
        return png_bytes(imputation_grid_figure(examples, title))
    rows = [("target", examples[models[0]]["targets"])] if models else []
    rows += [(m, examples[m]["probs"]) for m in models]
    fig, axes = plt.subplots(max(len(rows), 1), frames, figsize=(frames, max(len(rows), 1)),
                             squeeze=False)
    for r, (name, images) in enumerate(rows):
        steps = np.linspace(0, images.shape[1] - 1, frames).astype(int)
        for c, t in enumerate(steps):
            axes[r, c].imshow(np.squeeze(images[0, t]), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(f"{name} t={t}" if c == 0 else f"t={t}", fontsize=6)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"{title}: test sequence 0 (first seed)")
    return png_bytes(fig)


def load_examples(runs: ExperimentRuns) -> dict[str, dict[str, np.ndarray]]:
    """examples.npz of each model's first seed (config order)."""
    examples: dict[str, dict[str, np.ndarray]] = {}
    for (model, _), run_dir in runs.run_dirs.items():
        if model not in examples and (run_dir / "examples.npz").is_file():
            with np.load(run_dir / "examples.npz") as npz:
                examples[model] = {k: npz[k] for k in npz.files}
    return examples


def read_calibration(run_dir) -> pd.DataFrame:
    """calibration.csv of a run (empty for image models, whose file holds the header only)."""
    return pd.read_csv(run_dir / "calibration.csv")


def _selected_epochs(metrics: pd.DataFrame) -> pd.DataFrame | None:
    """model, seed, selected_epoch, converged of every run (None without selected epochs)."""
    if "selected_epoch" not in metrics:
        return None
    selected = metrics[["model", "seed", "selected_epoch"]].copy()
    selected["selected_epoch"] = selected["selected_epoch"].astype(int)  # history's epoch dtype
    selected["converged"] = metrics["converged"] if "converged" in metrics else np.nan
    return selected


def _stopped_early(metrics: pd.DataFrame, epochs: int) -> pd.DataFrame | None:
    """model, seed, epochs_trained of the runs that trained fewer than ``epochs`` epochs."""
    if "epochs_trained" not in metrics:
        return None
    short = metrics[(metrics["epochs_trained"] >= 1) & (metrics["epochs_trained"] < epochs)]
    stopped = short[["model", "seed", "epochs_trained"]].copy()
    stopped["epochs_trained"] = stopped["epochs_trained"].astype(int)
    return stopped


def experiment_figures(runs: ExperimentRuns) -> dict[str, bytes]:
    """The four figures of an experiment from its run folders: {name: PNG bytes}."""
    histories, calibrations = [], []
    for (model, seed), run_dir in runs.run_dirs.items():  # config order: first seed first
        histories.append(runs.histories[(model, seed)].assign(model=model, seed=seed))
        cal = read_calibration(run_dir)
        if len(cal):
            calibrations.append(cal.assign(model=model, seed=seed,
                                           centre=(cal["bin_left"] + cal["bin_right"]) / 2))
    calibration = pd.concat(calibrations) if calibrations else pd.DataFrame()
    models, title = runs.models, runs.name
    return {"metrics": metrics_figure(runs.metrics, models, title),
            "learning_curves": learning_curves_figure(
                pd.concat(histories), models, title, _selected_epochs(runs.metrics),
                _stopped_early(runs.metrics, int(runs.settings["training"]["epochs"]))),
            "calibration": calibration_figure(calibration, models, title),
            "example": example_figure(load_examples(runs), title)}

"""Image-imputation figure (E2): ground truth, the model input and each model's imputation.

One block of rows per test sequence: "truth", "input" (missing frames black, their column title
marked "miss") and one row per model (first seed's run), at consecutive frames from t = 4.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SEQUENCES = 2
FRAMES = 12
FIRST_FRAME = 4


def imputation_grid_figure(examples: dict[str, dict[str, np.ndarray]], title: str,
                           sequences: int = SEQUENCES, frames: int = FRAMES) -> plt.Figure:
    """The grid as a matplotlib figure (the caller saves and closes it).

    Args:
        examples: model -> arrays of its examples.npz: "probs" (S, T, H, W, C), "targets"
            uint8, "inputs" uint8 and "obs_valid" (S, T) bool.
        title: figure title (the experiment name).
    """
    models = [m for m, e in examples.items() if "probs" in e]
    first = examples[models[0]]
    sequences = min(sequences, first["targets"].shape[0])
    total = first["targets"].shape[1]
    # consecutive frames from t = 4 (the first 5 are always observed), so gaps are visible
    start = max(0, min(FIRST_FRAME, total - frames))
    steps = np.arange(start, min(total, start + frames))
    row_names = ["truth", "input", *models]
    n_rows = sequences * len(row_names)
    fig, axes = plt.subplots(n_rows, len(steps), figsize=(0.45 * len(steps) + 0.9, 0.45 * n_rows),
                             squeeze=False)
    for s in range(sequences):
        valid = first["obs_valid"][s]
        images = [first["targets"][s] / 255.0, first["inputs"][s] / 255.0,
                  *(examples[m]["probs"][s] for m in models)]
        for r, (name, seq) in enumerate(zip(row_names, images)):
            row = s * len(row_names) + r
            for c, t in enumerate(steps):
                ax = axes[row, c]
                ax.imshow(np.squeeze(seq[t]), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"t={t}" + ("" if valid[t] else " miss"), fontsize=5,
                                 color="black" if valid[t] else "red")
            axes[row, 0].set_ylabel(f"seq {s}\n{name}" if r == 0 else name, fontsize=5, rotation=0,
                                    ha="right", va="center")
    fig.suptitle(f"{title}: test sequences, first seed (red 'miss': frame missing from the input)",
                 fontsize=8)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.97))
    return fig

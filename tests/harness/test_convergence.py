"""The convergence rule of harness.convergence on synthetic validation-loss histories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.convergence import MIN_EPOCHS, TOLERANCE, converged


def history(losses) -> list[dict[str, float]]:
    """History rows for epochs 1..E with the given validation losses."""
    return [{"epoch": e, "train_loss": 0.0, "val_loss": float(v)}
            for e, v in enumerate(losses, start=1)]


def test_plateaued_curve_converged() -> None:
    """An exponential decay that has flattened out well before the last 20 % converged."""
    epochs = np.arange(1, 51)
    assert converged(history(2.0 - 5.0 * (1 - np.exp(-epochs / 5))))


def test_still_falling_curve_not_converged() -> None:
    """A loss still falling steadily at the end (the quick E1 situation) did not converge."""
    assert not converged(history(np.linspace(2.0, -3.0, 50)))
    epochs = np.arange(1, 51)  # slow exponential: about 4 % of the gain in the last 10 epochs
    assert not converged(history(2.0 - 5.0 * (1 - np.exp(-epochs / 15))))


def test_overfitting_after_the_best_epoch_converged() -> None:
    """A loss that rises again after its minimum converged: the best epoch is behind it."""
    losses = np.concatenate([np.linspace(3.0, 1.0, 20), np.linspace(1.0, 2.0, 30)])
    assert converged(history(losses))


def test_noise_spikes_after_the_best_do_not_matter() -> None:
    """Only the best-so-far loss counts: spikes above it in the last window change nothing."""
    losses = list(np.linspace(5.0, 1.0, 40)) + [1.0, 3.0, 1.2, 4.0, 1.1, 2.0, 1.0, 1.5, 1.3, 1.0]
    assert converged(history(losses))


def test_tolerance_boundary_and_window() -> None:
    """Over 50 epochs the window is epochs 41-50: a late gain of exactly 1 % of the total passes,
    slightly more fails, and the same gain at epoch 40 is outside the window."""
    def late_gain(gain: float, at_epoch: int) -> list[float]:
        """Loss 10 at epoch 1, ``gain`` from epoch 2, 0 from ``at_epoch`` on (total gain 10)."""
        return [10.0] + [gain] * (at_epoch - 2) + [0.0] * (51 - at_epoch)
    assert converged(history(late_gain(TOLERANCE * 10.0 * 0.999, at_epoch=41)))
    assert not converged(history(late_gain(TOLERANCE * 10.0 * 1.2, at_epoch=41)))
    assert converged(history(late_gain(1.0, at_epoch=40)))
    assert not converged(history(late_gain(1.0, at_epoch=41)))


def test_short_runs_are_not_converged_reference_rows_are() -> None:
    """Fewer than MIN_EPOCHS epochs (smoke runs) give False even when flat; an untrained
    reference row (one row, epoch 0) gives True; MIN_EPOCHS flat epochs give True."""
    assert MIN_EPOCHS == 5
    assert not converged(history([1.0]))
    assert not converged(history([2.0, 1.0]))
    assert not converged(history([1.0] * (MIN_EPOCHS - 1)))
    assert converged(history([1.0] * MIN_EPOCHS))
    assert converged([{"epoch": 0, "train_loss": math.nan, "val_loss": 44.9}])


def test_non_finite_or_empty_history() -> None:
    """A NaN validation loss means not converged; an empty history is an error."""
    assert not converged(history([3.0, 2.0, math.nan, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="empty history"):
        converged([])


def test_negative_losses_and_pandas_rows() -> None:
    """Losses of any sign work (Gaussian NLL is often negative); history.csv rows as read by
    pandas (numpy floats, float epochs) are accepted."""
    import pandas as pd

    epochs = np.arange(1, 21)
    frame = pd.DataFrame({"epoch": epochs.astype(float),
                          "val_loss": -3.0 - 2.0 * (1 - np.exp(-epochs / 2))})
    assert converged(frame.to_dict("records"))
    frame["val_loss"] = np.linspace(-1.0, -6.0, 20)
    assert not converged(frame.to_dict("records"))

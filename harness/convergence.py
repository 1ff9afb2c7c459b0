"""Did a run converge? One rule on its validation-loss history, used by the runner and the report.

The rule (stated in the README and in claims.md): over a run of E trained epochs, let
W = ceil(WINDOW_FRACTION * E) be the last 20 % of the epochs, ``best_before`` the lowest validation
loss of epochs 1..E-W, ``best`` the lowest of all epochs and ``first`` the loss after epoch 1.
The run **converged** when

    best_before - best <= TOLERANCE * (first - best)

i.e. the best validation loss improved during the last 20 % of the epochs by at most 1 % of its
whole improvement since the first epoch.

Why this form: the best-so-far loss is what model selection (``best_val``) keeps, so noise
spikes after the best epoch do not matter and a run that has started to overfit counts as
converged; the scale is the run's own improvement, so the rule works for losses of any sign and
unit (Gaussian NLL per step can be negative, BCE is in nats per image). At 1 % a still-falling
curve is caught (the quick E1 curves improved by about 4 % of their total in their last 10 of 50
epochs), while on an E1-like curve (about 5 nats of improvement) the remaining drift, 0.05 nats
per 20 % of the epochs, is far below the verdict margins (0.25 nats in claim 2, 0.5 in claim 5).

Defined values for the edge cases:
- No trained epoch (reference predictors: one history row, epoch 0): converged, nothing was
  trained.
- Fewer than ``MIN_EPOCHS`` trained epochs (smoke runs of 1-2 epochs): not converged; a 20 %
  window shorter than one epoch, or an "earlier part" of one or two epochs, shows nothing.
- A non-finite validation loss in the history: not converged.
- No improvement at all since epoch 1 (first == best): converged (0 <= 0); the run stopped
  improving, e.g. it overfits from the start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

WINDOW_FRACTION = 0.2
TOLERANCE = 0.01
MIN_EPOCHS = 5

RULE_TEXT = (
    f"A run **converged** when its best validation loss improved during the last "
    f"{WINDOW_FRACTION:.0%} of its epochs (W = ceil({WINDOW_FRACTION} E) of E) by at most "
    f"{TOLERANCE:.0%} of its whole improvement since the first epoch "
    f"(best of epochs 1..E−W minus best of all ≤ {TOLERANCE} × (epoch-1 loss minus best)). "
    f"Runs with fewer than {MIN_EPOCHS} epochs count as not converged; untrained reference rows "
    f"(no training epoch) as converged.")


def converged(history: Iterable[Mapping[str, float]]) -> bool:
    """Apply the module's rule to a run's history.

    Args:
        history: rows with ``epoch`` (1, 2, ...; 0 for the single row of an untrained
            predictor) and ``val_loss`` (any unit, lower is better), in epoch order: the
            runner's ``FitResult.history`` or the rows of a run's history.csv.

    Returns:
        True when the run converged by the rule (see the module docstring for edge cases).

    Raises:
        ValueError: an empty history (every run writes at least one row).
    """
    rows = list(history)
    if not rows:
        raise ValueError("empty history: every run writes at least one history row")
    trained = [float(r["val_loss"]) for r in rows if float(r["epoch"]) >= 1]
    if not trained:
        return True
    if len(trained) < MIN_EPOCHS or not all(math.isfinite(v) for v in trained):
        return False
    window = math.ceil(WINDOW_FRACTION * len(trained))
    best, best_before = min(trained), min(trained[:-window])
    return best_before - best <= TOLERANCE * (trained[0] - best)

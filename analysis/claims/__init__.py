"""The paper's headline claims (docs/experiments.md#headline-claims) as plug-ins: one module ``claim<N>.py``
per claim.

Each module defines ``CLAIM`` (``analysis.claims.base.Claim``); ``all_claims`` finds them, so a
new claim is one new module. ``claims_markdown`` (``analysis.claims.markdown``) writes claims.md.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache

from analysis.claims.base import MIN_SEEDS, Claim, Evidence, Verdict

__all__ = ["MIN_SEEDS", "Claim", "Evidence", "Verdict", "all_claims", "extra_figure_names",
           "figure_makers"]


@cache
def all_claims() -> tuple[Claim, ...]:
    """Every claim module's ``CLAIM``, ordered by number.

    Raises:
        ValueError: a claim module without ``CLAIM``, or two claims with the same number or the
            same experiment.
    """
    claims = []
    for info in pkgutil.iter_modules(__path__):
        if re.fullmatch(r"claim\d+", info.name):
            module = importlib.import_module(f"{__name__}.{info.name}")
            if not isinstance(getattr(module, "CLAIM", None), Claim):
                raise ValueError(f"{module.__name__} defines no CLAIM = Claim(...)")
            claims.append(module.CLAIM)
    claims.sort(key=lambda c: c.number)
    numbers = [c.number for c in claims]
    experiments = [e for c in claims for e in c.experiments]
    if len(set(numbers)) != len(numbers) or len(set(experiments)) != len(experiments):
        raise ValueError(f"claim numbers {numbers} or experiments {experiments} repeat")
    return tuple(claims)


def figure_makers(experiment: str) -> dict:
    """{name: maker} of the extra figures the claims declare for ``experiment``."""
    return {name: maker for claim in all_claims() if experiment in claim.experiments
            for name, maker in claim.figures.items()}


def extra_figure_names(experiment: str) -> tuple[str, ...]:
    """Names of the extra figures of ``experiment`` (figures/{experiment}_{name}.png)."""
    return tuple(figure_makers(experiment))

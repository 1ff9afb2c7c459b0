"""Claim 7's measurements as the report reads them: tables, fitted exponents, figure, metrics.

The ``efficiency`` rule (harness/efficiency.py) writes one JSON file per scale; this module only
reads it. Parameter counts are exact and go into metrics.json
(``efficiency.<model>.m<m>.n_params``); times and memory depend on the machine and appear in
efficiency.csv, efficiency.md and efficiency.png (cached by DVC, ignored by git, like
report.html), and rounded in claims.md where claim 7 is judged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # no display needed (as analysis.figures)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.figures import palette, png_bytes  # noqa: E402
from analysis.runs import MissingRunsError  # noqa: E402
from analysis.tables import fmt, markdown_table, to_csv_bytes  # noqa: E402

# Measured quantities: column -> (label, unit).
QUANTITIES = {"n_params": ("trained parameters", ""),
              "forward_ms": ("forward", "ms per step"),
              "forward_backward_ms": ("forward + backward", "ms per step"),
              "peak_memory_mib": ("peak memory (forward + backward)", "MiB")}
COST = "forward_backward_ms"  # the cost claim 7 compares (a training step's filter part)


@dataclass(frozen=True)
class EfficiencyEvidence:
    """What the report knows of the claim-7 measurements.

    Attributes:
        frame: one row per (model, latent size) in measurement order: model, role, class,
            latent_obs_dim, then ``QUANTITIES`` (peak_memory_mib NaN where not measured).
        roles: model -> role (the config's models section).
        device, device_name, torch, threads: where and with what they were measured.
        settings: the config's efficiency section at measurement time.
    """

    frame: pd.DataFrame
    roles: dict[str, str]
    device: str
    device_name: str
    torch: str
    threads: int
    settings: dict[str, Any]

    @property
    def models(self) -> list[str]:
        """Measured models in config order."""
        return list(dict.fromkeys(self.frame["model"]))

    @property
    def sizes(self) -> list[int]:
        """Measured latent sizes, ascending."""
        return sorted({int(m) for m in self.frame["latent_obs_dim"]})

    def with_role(self, *roles: str) -> list[str]:
        """Measured models with one of ``roles``, in config order."""
        return [m for m in self.models if self.roles[m] in roles]

    def series(self, model: str, column: str) -> pd.Series:
        """``column`` of ``model`` indexed by latent size (ascending)."""
        rows = self.frame[self.frame["model"] == model].sort_values("latent_obs_dim")
        return pd.Series(rows[column].to_numpy(dtype=float), index=rows["latent_obs_dim"])


def read_efficiency(path: str | Path, config: dict) -> EfficiencyEvidence:
    """Read the measurements file and check it belongs to the config's efficiency section.

    Raises:
        MissingRunsError: the file is missing, or measured other models or sizes than the
            config asks for (a stale file); no report is written then.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingRunsError(f"claim-7 measurements {path} are missing: run the workflow (rule "
                               "efficiency) or workflow/scripts/efficiency.py first; no report "
                               "was written")
    try:
        data = json.loads(path.read_text())
        wanted = {k: config["efficiency"][k] for k in ("models", "latent_sizes")}
        found = {k: data["settings"][k] for k in wanted}
        fields = {k: data[k] for k in ("rows", "device", "device_name", "torch", "threads")}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise MissingRunsError(f"claim-7 measurements {path} cannot be read ({type(err).__name__}: "
                               f"{err}): measure again (workflow/scripts/efficiency.py or the "
                               "workflow's efficiency rule); no report was written") from None
    if found != wanted:
        raise MissingRunsError(f"{path} measured {found}, the config asks for {wanted}: measure "
                               "again (workflow/scripts/efficiency.py); no report was written")
    frame = pd.DataFrame(fields["rows"])
    frame["peak_memory_mib"] = frame["peak_memory_mib"].astype(float)  # None -> NaN
    roles = {m: config["models"][m]["role"] for m in wanted["models"]}
    frame.insert(1, "role", frame["model"].map(roles))
    return EfficiencyEvidence(frame=frame, roles=roles, device=fields["device"],
                              device_name=fields["device_name"], torch=fields["torch"],
                              threads=int(fields["threads"]), settings=data["settings"])


def fit_exponent(values: pd.Series) -> float:
    """Least-squares slope of log(value) on log(m): value ∝ m^slope. NaN with fewer than two
    positive, finite values."""
    keep = np.isfinite(values.to_numpy()) & (values.to_numpy() > 0)
    if keep.sum() < 2:
        return math.nan
    sizes = np.log(values.index.to_numpy(dtype=float)[keep])
    return float(np.polyfit(sizes, np.log(values.to_numpy()[keep]), 1)[0])


def cost_ratio(evidence: EfficiencyEvidence, model: str, other: str,
               column: str = COST) -> pd.Series:
    """``column`` of ``model`` divided by that of ``other``, by latent size."""
    return evidence.series(model, column) / evidence.series(other, column)


def exponents(evidence: EfficiencyEvidence) -> pd.DataFrame:
    """Per model: role and the fitted exponent of every quantity ({quantity}_exponent)."""
    return pd.DataFrame([{"model": m, "role": evidence.roles[m],
                          **{f"{q}_exponent": fit_exponent(evidence.series(m, q))
                             for q in QUANTITIES}} for m in evidence.models])


def efficiency_metrics(evidence: EfficiencyEvidence) -> dict[str, float]:
    """The exact parameter counts for metrics.json: efficiency.<model>.m<m>.n_params."""
    return {f"efficiency.{r['model']}.m{int(r['latent_obs_dim'])}.n_params": float(r["n_params"])
            for r in evidence.frame.to_dict("records")}


def efficiency_csv(evidence: EfficiencyEvidence) -> bytes:
    """Every measurement, one row per (model, latent size)."""
    columns = ["model", "role", "class", "latent_obs_dim", *QUANTITIES]
    return to_csv_bytes(evidence.frame[columns])


def _ratio_table(evidence: EfficiencyEvidence) -> str:
    """Factorized / full-covariance cost and memory by latent size ('' without both roles)."""
    fact, full = evidence.with_role("rkn"), evidence.with_role("full_covariance")
    if not fact or not full:
        return ""
    ratios = {q: cost_ratio(evidence, fact[0], full[0], q)
              for q in ("forward_ms", COST, "peak_memory_mib")}
    rows = [[m, *(fmt(ratios[q].get(m, math.nan), 3) for q in ratios)] for m in evidence.sizes]
    rows.append(["exponent", *(fmt(fit_exponent(r), 3) for r in ratios.values())])
    return (f"\n## {fact[0]} relative to {full[0]} (factorized / full covariance)\n\n"
            + markdown_table(["m", "forward", "forward + backward", "peak memory"], rows))


def efficiency_markdown(scale: str, evidence: EfficiencyEvidence) -> str:
    """efficiency.md: settings, every measurement, fitted exponents, the cost ratio."""
    s = evidence.settings
    rows = [[r["model"], r["role"], int(r["latent_obs_dim"]), f"{int(r['n_params']):,}",
             fmt(r["forward_ms"], 3), fmt(r[COST], 3), fmt(r["peak_memory_mib"], 3)]
            for r in evidence.frame.to_dict("records")]
    fits = [[r["model"], r["role"], *(fmt(r[f"{q}_exponent"], 3) for q in QUANTITIES)]
            for r in exponents(evidence).to_dict("records")]
    return (f"# Efficiency of the recurrent cores (claim 7, scale {scale})\n\n"
            f"Measured on {evidence.device} ({evidence.device_name}, torch {evidence.torch}, "
            f"{evidence.threads} thread(s)): {s['batch_size']} random sequences of "
            f"{s['seq_len']} steps per call, median of {s['repeats']} calls after "
            f"{s['warmup']} warm-up call(s), divided by the steps. Peak memory: one forward + "
            f"backward call, above what was allocated before it. Parameter counts are exact "
            f"(metrics.json); times and memory depend on the machine and are not in "
            f"metrics.json. Verdict: claims.md, claim 7.\n\n"
            + markdown_table(["model", "role", "m", "trained params", "forward ms/step",
                              "fwd+bwd ms/step", "peak MiB"], rows)
            + "\n## Fitted exponents (value ∝ m^exponent, log-log least squares over "
            f"m = {', '.join(map(str, evidence.sizes))})\n\n"
            + markdown_table(["model", "role", "params", "forward", "fwd+bwd", "peak memory"],
                             fits)
            + _ratio_table(evidence))


def efficiency_figure(evidence: EfficiencyEvidence) -> bytes:
    """Log-log panels of parameters, forward+backward time and peak memory against m; each
    model's fitted exponent in its legend label."""
    panels = ("n_params", COST, "peak_memory_mib")
    colours = palette(evidence.models)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8))
    styles = ("-", "--", "-.", ":")  # equal curves (e.g. both RKN cells' parameters) stay visible
    for ax, quantity in zip(axes, panels):
        for i, model in enumerate(evidence.models):
            values = evidence.series(model, quantity)
            ax.plot(values.index, values.to_numpy(), marker="o", ls=styles[i % len(styles)],
                    color=colours[model], label=f"{model} (∝ m^{fmt(fit_exponent(values), 3)})")
        label, unit = QUANTITIES[quantity]
        ax.set(xscale="log", yscale="log", xlabel="latent size m",
               title=label + (f" [{unit}]" if unit else ""))
        ax.set_xticks(evidence.sizes, [str(m) for m in evidence.sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    fig.suptitle(f"Recurrent cores against m on {evidence.device} (claim 7)")
    fig.tight_layout()
    return png_bytes(fig)

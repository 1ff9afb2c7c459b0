"""The report of one scale: tables, figures, flat metrics and claims.md, from finished run folders.

``build_report`` computes every output in memory (``{relative path: bytes}``) and
``write_report`` writes the report folder as a whole (built beside it, swapped in at the end), so a
failure never leaves a partial or mixed report. Same inputs give byte-identical csv/md/json
outputs: the bootstrap uses a fixed seed and floats are printed with 6 significant digits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from analysis import figures
from analysis.claims import extra_figure_names, figure_makers
from analysis.claims.base import Evidence
from analysis.claims.markdown import claims_markdown
from analysis.convergence import with_convergence
from analysis.efficiency import (efficiency_csv, efficiency_figure, efficiency_markdown,
                                 efficiency_metrics, read_efficiency)
from analysis.runs import MissingRunsError, collect_experiments
from analysis.stats import flat_metrics, paired_differences, summarize
from analysis.tables import experiment_markdown, to_csv_bytes
from harness.io import replace_folder

log = logging.getLogger(__name__)

FIGURES = ("metrics", "learning_curves", "calibration", "example")
# Claim 7's report files: machine-dependent timings, so DVC caches them and git ignores them.
EFFICIENCY_FILES = ("efficiency.csv", "efficiency.md", "efficiency.png")


def expected_outputs(config: dict) -> list[str]:
    """Every file ``build_report`` writes, relative to the report folder (for workflow rules)."""
    paths = ["metrics.json", "claims.md"]
    for experiment in config["experiments"]:
        paths += [f"tables/{experiment}{s}" for s in (".csv", ".md", "_paired.csv")]
        paths += [f"figures/{experiment}_{name}.png" for name in FIGURES]
        paths += [f"figures/{experiment}_{name}.png" for name in extra_figure_names(experiment)]
    if "efficiency" in config:
        paths += list(EFFICIENCY_FILES)
    return paths


def build_report(config: dict, run_dirs: Iterable[str | Path], reference: Mapping,
                 figures_too: bool = True,
                 efficiency: str | Path | None = None,
                 skipped: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Every report file as {relative path: bytes}.

    Args:
        config: the validated config (scale, experiments with their models and seeds, roles).
        run_dirs: the run folders of every (experiment, model, seed) of the config.
        reference: the published numbers (config/reference_numbers.yaml).
        figures_too: False skips the figures (tests of the tables).
        efficiency: the claim-7 measurements file (harness.runspec.efficiency_file); needed
            when the config has an ``efficiency`` section, ignored otherwise.
        skipped: experiments left out of ``config`` on purpose, with the reason claims.md gives
            (``analysis.runs.complete_experiments``).

    Raises:
        analysis.runs.MissingRunsError: before any work, when an expected run or the
            measurements file is missing.
    """
    outputs: dict[str, bytes] = {}
    measurements = {}
    if "efficiency" in config:
        if efficiency is None:
            raise MissingRunsError("the config has an efficiency section but no measurements file "
                                   "was given (--efficiency); no report was written")
        measurements["efficiency"] = read_efficiency(efficiency, config)
    experiments = collect_experiments(config, run_dirs)
    if "efficiency" in measurements:
        eff = measurements["efficiency"]
        outputs["efficiency.csv"] = efficiency_csv(eff)
        outputs["efficiency.md"] = efficiency_markdown(config["scale"], eff).encode()
        if figures_too:
            outputs["efficiency.png"] = efficiency_figure(eff)
    evidence: dict[str, Evidence] = {}
    for name, runs in experiments.items():
        runs = with_convergence(runs)  # flags of run folders older than the flag, from history
        summary = summarize(runs.metrics, runs.models)
        paired = paired_differences(runs.metrics, runs.models, runs.reference)
        evidence[name] = Evidence(runs=runs, summary=summary, paired=paired)
        outputs[f"tables/{name}.csv"] = to_csv_bytes(summary)
        outputs[f"tables/{name}_paired.csv"] = to_csv_bytes(paired)
        outputs[f"tables/{name}.md"] = experiment_markdown(config["scale"], runs, summary,
                                                           paired).encode()
        if figures_too:
            pngs = figures.experiment_figures(runs)
            pngs |= {fig: make(runs) for fig, make in figure_makers(name).items()}
            outputs |= {f"figures/{name}_{fig}.png": png for fig, png in pngs.items()}
    summaries = {name: ev.summary for name, ev in evidence.items()}
    flat = flat_metrics(summaries)
    if "efficiency" in measurements:  # exact parameter counts only: timings are machine-dependent
        flat |= efficiency_metrics(measurements["efficiency"])
    outputs["metrics.json"] = (json.dumps(flat, indent=2, sort_keys=True) + "\n").encode()
    outputs["claims.md"] = claims_markdown(config["scale"], evidence, reference,
                                           measurements, skipped or {}).encode()
    return outputs


def write_report(outputs: dict[str, bytes], out_dir: str | Path) -> None:
    """Write the report folder ``out_dir`` as a whole (``harness.io.replace_folder``).

    The new folder is built beside ``out_dir`` and exchanged with it in one atomic step, so a
    failure or a kill at any moment leaves either the complete previous report or the complete
    new one; files of the old folder that the report does not produce (report.html, .gitignore)
    are kept.

    Raises:
        OSError: the folder or its parent cannot be written (nothing is changed then).
    """
    replace_folder(out_dir, outputs)
    log.info("wrote %d files into %s", len(outputs), out_dir)

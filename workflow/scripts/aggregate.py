"""Aggregate every run of the config's grid into the report folder.

    python workflow/scripts/aggregate.py --config config/config.yaml --config config/smoke.yaml \
        [--out reports/smoke] [--reference config/reference_numbers.yaml] [RUN_DIR ...]

Reads the run folders (by default those the config asks for under its results_dir; the workflow
passes them explicitly) and the claim-7 measurements (--efficiency), and writes
tables/{experiment}.csv|.md|_paired.csv, figures/{experiment}_*.png, efficiency.csv|md|png,
metrics.json and claims.md. Exit status 2 when an expected run is
missing (the message lists them) or the config is invalid; nothing is written then.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a plain checkout too

from analysis.report import build_report, write_report  # noqa: E402
from analysis.runs import BadRunError, MissingRunsError, complete_experiments  # noqa: E402
from harness.config import ConfigError, load_config, read_yaml  # noqa: E402
from harness.io import os_error_message  # noqa: E402
from harness.runspec import efficiency_file, report_dir, run_dirs  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True,
                        help="config file; repeat for overlays")
    parser.add_argument("--out", help="report folder (default: reports/{scale})")
    parser.add_argument("--reference", default=str(ROOT / "config" / "reference_numbers.yaml"),
                        help="published numbers (default: config/reference_numbers.yaml)")
    parser.add_argument("--efficiency", help="the claim-7 measurements (default: the config's "
                        "efficiency file under its results_dir, when it has an efficiency section)")
    parser.add_argument("--log", help="also write the log to this file")
    parser.add_argument("--complete-only", action="store_true",
                        help="report the experiments whose every run is present and list the "
                             "others as not run / incomplete (a paper scale run piece by piece)")
    parser.add_argument("--projected-cost", help="benchmarks/paper_scale_cost.py --json output: "
                        "the projected GPU-hours printed for experiments that were not run")
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="run folders to report (default: every run of the config under its "
                             "results_dir)")
    return parser.parse_args(argv)


COST_KEYS = ("experiment", "device_hours", "gpu_hours_readme")


def read_projected_cost(cost_file: str) -> dict[str, dict]:
    """paper_scale_cost.py's --json output by experiment; ValueError naming the file and the fix
    when it is not that (checked before anything is reported)."""
    fix = "write it with benchmarks/paper_scale_cost.py --json FILE (or leave COST out)"
    try:
        rows = json.loads(Path(cost_file).read_text())["experiments"]
        table = {r["experiment"]: r for r in rows}
        for row in rows:
            for key in COST_KEYS:
                if key != "experiment":
                    float(row[key])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"projected-cost file (--projected-cost) {cost_file} cannot be read "
                         f"({type(err).__name__}: {err}); {fix}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"projected-cost file (--projected-cost) {cost_file} is not the output "
                         f"of paper_scale_cost.py: it needs 'experiments' rows with "
                         f"{', '.join(COST_KEYS)} (problem: {type(err).__name__} {err}); "
                         f"{fix}") from None
    return table


def projected_hours(rows: dict[str, dict], experiment: str) -> str:
    """'; projected N GPU-hours ...' from ``read_projected_cost``'s table, or '' when the
    experiment is not in it (or no cost file was given: an empty table)."""
    if experiment not in rows:
        return ""
    row = rows[experiment]
    walls = ", ".join(f"{row[f'wall_hours_{n}_cores']:,.0f} h on {n} cores" for n in (2, 16, 64)
                      if f"wall_hours_{n}_cores" in row)
    here = (f"{row['device_hours']:,.0f} CPU core-hours (wall {walls})" if walls
            else f"{row['device_hours']:,.1f} device-hours on the machine that measured it")
    return (f"; projected {row['gpu_hours_readme']:,.1f} GPU-hours on one H100 at the README's "
            f"eager step times and {here} (benchmarks/paper_scale_cost.py)")


def fail(message: str) -> int:
    """Log and print an error; exit status 2 (bad input, see the module docstring)."""
    logging.getLogger("aggregate").error("%s", message)
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handlers = [logging.StreamHandler()] + ([logging.FileHandler(args.log)] if args.log else [])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=handlers)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        reference = read_yaml(args.reference, "published-numbers file (--reference)")
        if not isinstance(reference, dict):
            raise ConfigError(f"published-numbers file (--reference) {args.reference} must hold "
                              "a mapping (see config/reference_numbers.yaml)")
        # Read and checked before anything is reported.
        cost = read_projected_cost(args.projected_cost) if args.projected_cost else {}
        folders = args.run_dirs or run_dirs(config)
        skipped = {}
        if args.complete_only:
            config, folders, skipped = complete_experiments(config, folders)
            skipped = {e: reason + projected_hours(cost, e)
                       for e, reason in skipped.items()}
            if not config["experiments"]:
                raise MissingRunsError("no experiment of the config has all its runs; nothing "
                                       "to report")
        outputs = build_report(config, folders, reference,
                               efficiency=args.efficiency or efficiency_file(config),
                               skipped=skipped)
    except (ConfigError, MissingRunsError, BadRunError, ValueError) as err:
        return fail(str(err))
    except OSError as err:  # an input that cannot be read (every output is still in memory)
        return fail(os_error_message(err, "an input of the report cannot be read (a run folder, "
                                          "--reference or --efficiency): check that it exists "
                                          "and is readable; no report was written"))
    try:
        write_report(outputs, args.out or report_dir(config))
    except OSError as err:  # an unwritable --out, a full disk
        return fail(os_error_message(err, "the report folder (--out) must lie in a writable "
                                          "folder; nothing was written"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

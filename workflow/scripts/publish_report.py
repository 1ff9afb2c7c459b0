"""Publish the report the workflow built (results/{scale}/report) as reports/{scale}, atomically.

    python workflow/scripts/publish_report.py --config config/config.yaml --config config/smoke.yaml

`make pipeline` runs it last, after Snakemake has built the report (rule aggregate) and
report.html (`snakemake --report results/{scale}/report/report.html`). Snakemake deletes a rule's
outputs before it reruns the rule, so the published folder is never a rule's output: it is
replaced here in one atomic step (harness.io.replace_folder), so reports/{scale} is always either
the complete previous report or the complete new one, whenever the pipeline is killed. Files of
the old folder the report does not produce (a .gitignore) are kept.

Exit status 2 when the built report is incomplete (a file of analysis.report.expected_outputs or
report.html is missing, or report.html is older than the report it shows); nothing is changed then.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a plain checkout too

from analysis.report import expected_outputs  # noqa: E402
from harness.config import ConfigError, load_config  # noqa: E402
from harness.io import os_error_message, replace_folder  # noqa: E402
from harness.runspec import report_dir, report_staging_dir  # noqa: E402

HTML = "report.html"


class IncompleteReport(RuntimeError):
    """The report the workflow built lacks a file or has a stale report.html."""


def built_files(config: dict, staging: Path) -> dict[str, Path]:
    """{relative path: file} of the report in ``staging``.

    Raises:
        IncompleteReport: a file is missing, or report.html is older than the report it shows.
    """
    files = {rel: staging / rel for rel in [*expected_outputs(config), HTML]}
    missing = [rel for rel, path in files.items() if not path.is_file()]
    if missing:
        raise IncompleteReport(f"the report in {staging} is incomplete (no {', '.join(missing[:5])}"
                          f"{', ...' if len(missing) > 5 else ''}): run the workflow first "
                          "(make pipeline); reports were left as they are")
    newest = max(path.stat().st_mtime_ns for rel, path in files.items() if rel != HTML)
    if files[HTML].stat().st_mtime_ns < newest:
        raise IncompleteReport(f"{files[HTML]} is older than the report it shows: make it again "
                          f"(snakemake --report {files[HTML]}, as make pipeline does); reports "
                          "were left as they are")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True,
                        help="config file; repeat for overlays")
    parser.add_argument("--print-staging", action="store_true",
                        help="print the folder the workflow builds the report in, publish nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out: Path | str = "the report folder"
    try:
        config = load_config(args.config)
        staging, out = report_staging_dir(config), report_dir(config)
        if args.print_staging:
            print(staging)
            return 0
        replace_folder(out, built_files(config, staging))
    except (ConfigError, IncompleteReport) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print("error: " + os_error_message(err, f"{out} must lie in a writable folder; it was "
                                                "left as it was"), file=sys.stderr)
        return 2
    logging.getLogger("publish_report").info("published %s as %s", staging, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Check a config and print the metrics.json targets of its runs (for Snakemake targets).

    python workflow/scripts/run_targets.py --config config/config.yaml --config config/quick.yaml \
        [--config overlay.yaml ...] [--experiment multiple_pendulums ...]

Prints one path per line (with --print-scale: the config's scale, which names its results and
reports folders; an overlay may set its own): results/{scale}/runs/{experiment}/{model}/seed{seed}-{hash}/metrics.json
for every run of the named experiments (default: all). `make runs` passes them to Snakemake, and
`make pipeline` calls this first so that a bad config stops with the project's message and exit
status 2 before Snakemake starts. Exit status 2 for an invalid config or an unknown experiment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a plain checkout too

from harness.config import ConfigError, load_config  # noqa: E402
from harness.runspec import run_dirs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True,
                        help="config file; repeat for overlays")
    parser.add_argument("--experiment", action="append", default=[],
                        help="only the runs of this experiment; repeat for more (default: all)")
    parser.add_argument("--print-scale", action="store_true",
                        help="print the merged config's scale (its results and reports folder "
                             "name) instead of the targets")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        unknown = [e for e in args.experiment if e not in config["experiments"]]
        if unknown:
            raise ConfigError(f"--experiment {', '.join(unknown)}: not an experiment of the "
                              f"config; valid: {sorted(config['experiments'])}")
        paths = [folder / "metrics.json" for folder in run_dirs(config, args.experiment or None)]
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(config["scale"] if args.print_scale else "\n".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

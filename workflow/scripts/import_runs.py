"""Unpack run folders trained elsewhere (benchmarks/paper_gpu.py) into the results folder.

    python workflow/scripts/import_runs.py --archive OUT/paper_runs.tar.gz \
        --config config/config.yaml --config config/paper.yaml

The archive holds {scale}/runs/{experiment}/{model}/seed{seed}-{hash}/ folders (and the claim-7
measurements {scale}/efficiency/); they are extracted under the config's results_dir with
tarfile's "data" filter (no absolute paths, no links, nothing outside). Then it says, per
experiment, how many of the config's expected runs are now present: a run folder whose hash is
not the current config's (other settings or code) is kept but not counted, and the report ignores
it. Exit status 2 on bad input (a missing or damaged archive, a member outside {scale}/).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a plain checkout too

from harness.config import ConfigError, load_config  # noqa: E402
from harness.runspec import run_dirs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", required=True)
    parser.add_argument("--config", action="append", required=True,
                        help="config file; repeat for overlays")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        results = Path(config["results_dir"])
        with tarfile.open(args.archive) as tar:
            outside = [m.name for m in tar.getmembers()
                       if Path(m.name).parts[:1] != (config["scale"],)]
            if outside:
                raise ValueError(f"{args.archive}: members outside {config['scale']}/ (e.g. "
                                 f"{outside[0]}); this is not an archive of scale "
                                 f"{config['scale']!r} from benchmarks/paper_gpu.py")
            tar.extractall(results, filter="data")
    except (ConfigError, ValueError, tarfile.TarError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for experiment in config["experiments"]:
        expected = run_dirs(config, [experiment])
        found = sum((folder / "metrics.json").is_file() for folder in expected)
        state = "complete" if found == len(expected) else "not run" if not found else "incomplete"
        print(f"{experiment:22s} {found:3d} of {len(expected):3d} runs  {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Import run folders trained elsewhere (benchmarks/paper_gpu.py) into the results folder.

    python workflow/scripts/import_runs.py --archive OUT/paper_runs.tar.gz \
        --config config/config.yaml --config config/paper.yaml [--force]

The archive holds {scale}/runs/{experiment}/{model}/seed{seed}-{hash}/ folders, the claim-7
measurements {scale}/efficiency/ and {scale}/manifest.json. It is untrusted input and imported
all or nothing (analysis.archive): every member is checked before anything is written (regular
files and folders only, names in that layout, no name twice, --max-file-mb and --max-total-gb,
the free space), the members are extracted into a staging folder inside results_dir, every run
folder is checked (all of harness.runner.RUN_FILES; config.json naming the folder's experiment,
model, seed and hash; model.pt readable as tensors and plain data), and each run folder is then
moved into place with one rename. A run folder already present with other content is refused
unless --force replaces it; one with the same content is left as it is. An efficiency or manifest
file present with other content is kept (said in the output) unless --force.

Then it says, per experiment, how many of the config's runs are present: a run folder of other
settings than the current config's (or of other code) is imported but not counted, and the report
ignores it. Exit status 2 on bad input (the message names the member, folder or file and the fix);
then nothing was imported and no staging folder is left.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a plain checkout too

from analysis.archive import (DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_TOTAL_BYTES,  # noqa: E402
                              ArchiveError, commit, plan_import, read_members, stage)
from harness.config import ConfigError, load_config  # noqa: E402
from harness.runner import RUN_FILES  # noqa: E402
from harness.runspec import run_dirs  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", required=True)
    parser.add_argument("--config", action="append", required=True,
                        help="config file; repeat for overlays")
    parser.add_argument("--force", action="store_true",
                        help="replace run folders (and efficiency files) present with other "
                             "content; the local ones are discarded")
    parser.add_argument("--max-file-mb", type=float, default=DEFAULT_MAX_FILE_BYTES / 2**20,
                        help="refuse a member larger than this (default %(default)g MB)")
    parser.add_argument("--max-total-gb", type=float, default=DEFAULT_MAX_TOTAL_BYTES / 2**30,
                        help="refuse an archive whose members hold more (default %(default)g GB)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    staging = None
    try:
        config = load_config(args.config)
        results, scale = Path(config["results_dir"]), config["scale"]
        try:
            with tarfile.open(args.archive) as tar:
                members = read_members(tar, scale, int(args.max_file_mb * 2**20),
                                       int(args.max_total_gb * 2**30))
                staging = stage(tar, members, results, scale)
            plan = plan_import(staging, results, scale, args.force)
            commit(plan)
        except ArchiveError as err:
            raise ArchiveError(f"{args.archive}: {err}; nothing was imported") from None
        except (tarfile.TarError, EOFError) as err:
            raise ArchiveError(f"{args.archive} cannot be read as a tar archive "
                               f"({' '.join(str(err).split())}); "
                               "copy it again, nothing was imported") from None
        except OSError as err:
            raise ArchiveError(f"{err.strerror}: {err.filename or args.archive}; the archive must "
                               "be readable and results_dir writable, nothing was imported"
                               ) from None
    except (ConfigError, ArchiveError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    moved = sum(target in plan.runs for _, target in plan.moves)
    print(f"imported {moved} run folders ({sum(t in plan.runs for t in plan.same)} already "
          f"present with the same content)")
    for path in plan.kept:
        print(f"kept {path}: the archive's copy differs (--force replaces it)")
    for experiment in config["experiments"]:
        expected = run_dirs(config, [experiment])
        found = sum(all((folder / name).is_file() for name in RUN_FILES) for folder in expected)
        state = "complete" if found == len(expected) else "not run" if not found else "incomplete"
        print(f"{experiment:22s} {found:3d} of {len(expected):3d} runs  {state}")
    others = len(set(plan.runs) - set(run_dirs(config)))
    if others:
        print(f"{others} imported run folders are of other settings or code than this config's; "
              "they are not counted and the report ignores them")
    return 0


if __name__ == "__main__":
    sys.exit(main())

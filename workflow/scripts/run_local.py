"""Run every (experiment, model, seed) of a config on this machine, one after another.

    python workflow/scripts/run_local.py --config config/config.yaml --config config/quick.yaml

Simulates missing datasets, skips runs whose metrics.json exists (so an interrupted call resumes),
and prints progress and the E1 metrics at the end. The Snakemake workflow is the scalable path;
this script is the dependency-free way to run a small grid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a plain checkout too

import simulate  # noqa: E402
import train  # noqa: E402

from rkn.experiments import ConfigError, dataset_dir, load_config, resolve_run, run_grid  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="config file; repeat for overlays")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = config.get("results_dir", "results")
    config_args = [a for path in args.config for a in ("--config", path)]
    for name, spec in config["datasets"].items():
        if not (dataset_dir(results, config["scale"], name) / "meta.json").exists():
            if simulate.main(config_args + ["--dataset", name]) != 0:
                return 2
    grid = run_grid(config)
    start = time.perf_counter()
    for index, (experiment, model, seed) in enumerate(grid, 1):
        run_dir = resolve_run(config, experiment, model, seed).run_dir(results)
        if (run_dir / "metrics.json").exists():
            print(f"[{index}/{len(grid)}] {experiment}/{model}/seed{seed}: done already", flush=True)
            continue
        print(f"[{index}/{len(grid)}] {experiment}/{model}/seed{seed} ({time.perf_counter() - start:.0f} s so far)",
              flush=True)
        code = train.main(config_args + ["--experiment", experiment, "--model", model, "--seed", str(seed),
                                         "--threads", str(args.threads), "--device", args.device])
        if code != 0:
            return code
    for experiment, model, seed in grid:
        run_dir = resolve_run(config, experiment, model, seed).run_dir(results)
        found = json.loads((run_dir / "metrics.json").read_text())
        print(f"{experiment:22s} {model:12s} seed{seed}  log_lik {found.get('log_lik', float('nan')):8.3f}  "
              f"rmse {found.get('rmse', float('nan')):.4f}  params {int(found['n_params'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

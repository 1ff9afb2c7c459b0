"""Simulate one dataset of the config into results/{scale}/datasets/{name}/ (train and test splits).

    python workflow/scripts/simulate.py --config config/config.yaml --dataset pendulum_filtering
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a plain checkout too

from datasets import build_dataset, default_params  # noqa: E402
from datasets.store import save_dataset  # noqa: E402
from harness.config import ConfigError, load_config  # noqa: E402
from harness.io import os_error_message  # noqa: E402
from harness.runspec import config_dataset_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="config file; repeat for overlays")
    parser.add_argument("--dataset", required=True, help="a key of the config's datasets section")
    parser.add_argument("--out", help="output folder (default: results/{scale}/datasets/{dataset}-{hash})")
    parser.add_argument("--log", help="also write the log to this file")
    args = parser.parse_args(argv)
    handlers = [logging.StreamHandler()] + ([logging.FileHandler(args.log)] if args.log else [])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers)
    log = logging.getLogger("simulate")
    try:
        config = load_config(args.config)
        if args.dataset not in config["datasets"]:
            raise ConfigError(f"unknown dataset {args.dataset!r}; valid: {sorted(config['datasets'])}")
        spec = config["datasets"][args.dataset]
        out = Path(args.out) if args.out else config_dataset_dir(config, args.dataset)
        start = time.perf_counter()
        params = {**default_params(spec["generator"]), **spec.get("params", {})}
        splits = build_dataset(spec["generator"], params)
        save_dataset(out, spec["generator"], params, splits)
        log.info("wrote %s (%s) in %.1f s", out, ", ".join(f"{s}: {len(a['images'])}" for s, a in splits.items()),
                 time.perf_counter() - start)
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. an --out folder inside a read-only folder, a full disk
        print("error: " + os_error_message(err, "the dataset folder (--out) must lie in a "
                                                "writable folder; nothing was written"),
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

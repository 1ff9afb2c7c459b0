"""Measure claim 7 (efficiency): parameters, time and memory per filter step against m.

    python workflow/scripts/efficiency.py --config config/config.yaml --config config/smoke.yaml \
        [--out results/smoke/efficiency/efficiency-HASH.json] [--threads 1] [--device auto]

Measures the models of the config's ``efficiency`` section (harness/efficiency.py) and writes one
JSON file atomically (default: the config's path, harness.runspec.efficiency_file). No training
and no data. Exit status 2 on bad input (config, a model without a measurable core).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a plain checkout too

import torch  # noqa: E402

from harness.config import ConfigError, load_config  # noqa: E402
from harness.efficiency import measure  # noqa: E402
from harness.io import atomic_write_json  # noqa: E402
from harness.runner import select_device  # noqa: E402
from harness.runspec import efficiency_file  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True,
                        help="config file; repeat for overlays")
    parser.add_argument("--out", help="output file (default: the config's efficiency file)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
        out = args.out or efficiency_file(config)
        if out is None:
            raise ConfigError("the config has no efficiency section: nothing to measure")
        torch.set_num_threads(args.threads)
        atomic_write_json(Path(out), measure(config, select_device(args.device)))
    except (ConfigError, RuntimeError, ValueError) as err:
        logging.getLogger("efficiency").error("%s", err)
        return 2
    logging.getLogger("efficiency").info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

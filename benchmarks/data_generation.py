"""Time the generation of paper-size E1 data (2000 train + 1000 test sequences x 75 frames).

Run: ``python benchmarks/data_generation.py [--num-train 2000 --num-test 1000 --seq-len 75]``.
Thread counts are pinned to 1 before numpy/torch are imported, so the figure is single-core.
The budget is 60 s (see the datasets tests/brief); the script exits 1 if it is exceeded.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import torch  # noqa: E402

from datasets import build_dataset  # noqa: E402

BUDGET_S = 60.0


def main() -> int:
    """Build pendulum_filtering once and print seconds and frames per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--num-test", type=int, default=1000)
    parser.add_argument("--seq-len", type=int, default=75)
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = {"num_train": args.num_train, "num_test": args.num_test, "seq_len": args.seq_len}
    start = time.perf_counter()
    splits = build_dataset("pendulum_filtering", params)
    seconds = time.perf_counter() - start
    frames = sum(s["images"].shape[0] * s["images"].shape[1] for s in splits.values())
    print(f"pendulum_filtering {params}: {seconds:.2f} s, {frames} frames, "
          f"{frames / seconds:.0f} frames/s (budget {BUDGET_S:.0f} s, 1 thread)")
    return 0 if seconds <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())

"""Checkpoint size and cost for an E1 and an E4 RKN run, and the overhead at a given interval.

    .venv/bin/python benchmarks/checkpoint_cost.py [--interval-minutes 10] [--repeats 5]

For each model: one real training step on a batch of the paper's shape (so Adam has its state),
then a checkpoint exactly as training writes it (model, optimizer, best-so-far model, random
states, the epoch's batch order), timed over repeats. Prints the size on disk, the median time of
one write, the median time of one training step, and the overhead in percent of training time
when a checkpoint is written every --interval-minutes.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from harness import checkpoint  # noqa: E402
from harness.config import load_config  # noqa: E402
from harness.registry import build_configured  # noqa: E402
from harness.training import LoopState, TrainConfig, _snapshot, batch_loss  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# (label, model, extra params, batch, steps, image size, training sequences of the paper scale)
CASES = [("E1 rkn (m = 15)", "rkn", {}, 50, 75, 24, 1800),
         ("E4 rkn (m = 100)", "rkn", {"latent_obs_dim": 100, "encoder": "quad_link",
                                      "encoder_hidden": 200}, 25, 150, 48, 3600)]


def measure(label: str, name: str, extra: dict, batch: int, steps: int, size: int,
            num_train: int, repeats: int, interval: float) -> str:
    torch.manual_seed(0)
    config = load_config([ROOT / "config" / "config.yaml"])
    model = build_configured(config, name, {"image_size": size, "target_dim": 8 if size == 48
                                            else 2, **extra})
    optimizer = torch.optim.Adam(model.parameters(), lr=TrainConfig().learning_rate)
    data = {"images": torch.randint(0, 256, (batch, steps, size, size, 1), dtype=torch.uint8),
            "targets": torch.rand(batch, steps, 8 if size == 48 else 2)}
    step_times = []
    for _ in range(3):
        start = time.perf_counter()
        loss = batch_loss(model, data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - start)
    order_gen = torch.Generator().manual_seed(0)
    state = LoopState(epoch=7, step=3, order=torch.randperm(num_train, generator=order_gen),
                      losses=[1.0] * 3, best_state=copy.deepcopy(model.state_dict()))
    with tempfile.TemporaryDirectory() as folder:
        saver = checkpoint.Checkpointer(Path(folder) / ".run.ckpt", {"run": label}, interval)
        save_times = []
        for _ in range(repeats):
            start = time.perf_counter()
            saver.save(_snapshot(model, optimizer, order_gen, state), "benchmark")
            save_times.append(time.perf_counter() - start)
        size_mb = saver.path.stat().st_size / 2**20
    save, step = statistics.median(save_times), statistics.median(step_times)
    overhead = 100 * save / (60 * interval)
    return (f"{label:18s} {size_mb:8.2f} MB  write {1000 * save:7.1f} ms  training step "
            f"{1000 * step:8.1f} ms  overhead every {interval:g} min: {overhead:.4f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval-minutes", type=float, default=TrainConfig().checkpoint_minutes)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, CPU; medians of {args.repeats} writes")
    for case in CASES:
        print(measure(*case, repeats=args.repeats, interval=args.interval_minutes))


if __name__ == "__main__":
    main()

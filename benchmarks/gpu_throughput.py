"""E1 training steps per second for the RKN and the LSTM, alone and with several runs at once.

    python3 benchmarks/gpu_throughput.py [--device auto] [--modes none graph] [--runs 1 2 4 8]
        [--models rkn lstm] [--steps 30] [--json OUT.json]

For every model, step mode (training.compile: none | inductor | graph) and number N of concurrent
runs, N processes each build the E1 model and a batch of the paper's shape (50 sequences x 75
frames of 24x24, m = 15, K = 15, b = 3, layer norm), warm up (graph capture or compilation
included, reported separately), then time --steps training steps (forward, backward, clipping,
Adam) between a start and an end barrier. Prints per combination the median step time of one
run, the aggregate steps per second of the N runs and the speed-up over one run, and writes them
as JSON for benchmarks/paper_scale_cost.py. On a GPU all N processes share the device (the
situation of `--resources gpu_slots=N`); on the CPU each process gets one thread and N should not
exceed the cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# E1 at paper scale (docs/experiments.md#e1-pendulum-filtering): batch, frames, image side.
BATCH, STEPS, SIZE = 50, 75, 24


def worker(model_name: str, mode: str, device_name: str, steps: int, start: mp.Barrier,
           end: mp.Barrier, results: mp.Queue) -> None:
    """One run: build, warm up, wait for the others, time ``steps`` steps, report."""
    import torch  # noqa: PLC0415 (each spawned process imports its own torch)

    from harness.step import build_step, make_optimizer  # noqa: PLC0415
    from harness.config import load_config  # noqa: PLC0415
    from harness.registry import build_configured  # noqa: PLC0415
    from harness.training import TrainConfig  # noqa: PLC0415

    torch.set_num_threads(1)
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = build_configured(load_config([ROOT / "config" / "config.yaml"]), model_name,
                             {"image_size": SIZE, "target_dim": 2}).to(device)
    config = TrainConfig(compile=mode)
    optimizer = make_optimizer(model, config, device)
    gen = torch.Generator().manual_seed(1)
    batch = {"images": torch.randint(0, 256, (BATCH, STEPS, SIZE, SIZE, 1), generator=gen,
                                     dtype=torch.uint8).to(device),
             "targets": torch.rand(BATCH, STEPS, 2, generator=gen).to(device)}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    step = build_step(model, optimizer, config, batch)
    for _ in range(3):
        step(batch)
    sync()
    warmup = time.perf_counter() - started
    times = []
    start.wait()
    for _ in range(steps):
        begin = time.perf_counter()
        step(batch)
        sync()
        times.append(time.perf_counter() - begin)
    end.wait()
    results.put({"median_s": statistics.median(times), "total_s": sum(times), "warmup_s": warmup})


def measure(model: str, mode: str, device: str, runs: int, steps: int) -> dict:
    """N concurrent runs of one model and mode: per-run median step, aggregate steps/s."""
    ctx = mp.get_context("spawn")
    start, end, results = ctx.Barrier(runs), ctx.Barrier(runs), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(model, mode, device, steps, start, end, results))
             for _ in range(runs)]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=3600) for _ in procs]
    for proc in procs:
        proc.join()
    return {"model": model, "mode": mode, "runs": runs,
            "step_ms": 1000 * statistics.median(r["median_s"] for r in out),
            "steps_per_s": sum(steps / r["total_s"] for r in out),
            "warmup_s": max(r["warmup_s"] for r in out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--modes", nargs="+", default=None,
                        help="training.compile modes (default: none graph on CUDA, none on CPU)")
    parser.add_argument("--runs", nargs="+", type=int, default=None,
                        help="concurrent runs (default: 1 2 4 8, and 16 on a GPU with 16 cores)")
    parser.add_argument("--models", nargs="+", default=["rkn", "lstm"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    import torch  # noqa: PLC0415

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available()
                                                        else "cpu")
    cores = mp.cpu_count()
    modes = args.modes or (["none", "graph"] if device == "cuda" else ["none"])
    runs = args.runs or [n for n in (1, 2, 4, 8, 16) if n <= cores or device == "cuda"
                         and n <= max(cores, 8)]
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({cores} cores)"
    print(f"{name}, torch {torch.__version__}; E1 step: batch {BATCH} x {STEPS} frames; "
          f"{args.steps} timed steps per run after warm-up")
    print(f"{'model':6s} {'mode':9s} {'runs':>4s} {'step ms':>9s} {'steps/s':>9s} "
          f"{'vs 1 run':>9s} {'warm-up s':>9s}")
    rows = []
    for model in args.models:
        for mode in modes:
            single = None
            for n in runs:
                row = measure(model, mode, device, n, args.steps)
                single = single or row["steps_per_s"]
                rows.append({**row, "device": name})
                print(f"{model:6s} {mode:9s} {n:4d} {row['step_ms']:9.1f} "
                      f"{row['steps_per_s']:9.2f} {row['steps_per_s'] / single:8.2f}x "
                      f"{row['warmup_s']:9.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

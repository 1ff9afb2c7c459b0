"""Projected device-hours of the paper scale, experiment by experiment, from measured step times.

    python3 benchmarks/paper_scale_cost.py [--device auto] [--experiments ...] [--repeats 1]
        [--throughput THROUGHPUT.json] [--json OUT.json]

For every (experiment, model) of config/config.yaml + config/paper.yaml it times training steps of
the model at the experiment's paper settings (its batch size, sequence length, image size and
model overrides) on this machine, then projects one run's cost as

    epochs x (training steps + validation)  x  step time,   validation = forward passes over the
    validation split, counted as a third of a training step per batch,

and an experiment's cost as the sum over its runs. Each step is timed in the paper config's step
mode (``training.compile``; a compiled run's first step, which compiles, is timed apart and added
to every run once) with the glibc allocator settings of training jobs
(``harness.settings.ALLOCATOR_ENV``; the script restarts itself with them). On a CPU the table
gives core-hours (one thread per run) and the wall time of the experiment's runs spread over 2,
16 and 64 cores (longest run first onto the least loaded core; a run never spans cores, so the
longest run bounds the wall time), the same on a SLURM cluster with that many cores. The projection for the GPU figures recorded in
the README (one H100: E1 steps of 145 ms for the RKN, 34 ms LSTM, 39 ms GRU, eager) scales each
measured step by the ratio of the README's E1 step to this machine's E1 step of the same family
(rkn, lstm, gru; the generative baselines take the LSTM's ratio): a rough extrapolation, stated
as such. With --throughput (benchmarks/gpu_throughput.py --json), runs are assumed to share the
device with the measured speed-up of the largest N, which divides the wall time.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.settings import ALLOCATOR_ENV  # noqa: E402

import torch  # noqa: E402

from harness.config import load_config  # noqa: E402
from harness.runner import build_run_model  # noqa: E402
from harness.runspec import resolve_run  # noqa: E402
from harness.training import train_step  # noqa: E402

# The README's GPU figures: one H100, torch 2.11, E1 at paper settings, eager, ms per step.
README_GPU = {"name": "H100 (README figures, eager)", "rkn": 145.0, "lstm": 34.0, "gru": 39.0}
VALIDATION_COST = 1 / 3  # a forward pass against a training step (forward + backward + update)
CORE_COUNTS = (2, 16, 64)


def wall_hours(run_hours: list[float], cores: int) -> float:
    """Wall time of independent one-core runs on ``cores`` cores: longest run first onto the
    least loaded core (list scheduling), the largest load."""
    loads = [0.0] * cores
    for hours in sorted(run_hours, reverse=True):
        heapq.heapreplace(loads, loads[0] + hours)
    return max(loads)


def family(model_class: str) -> str:
    """The README figure a model's GPU projection scales with."""
    return {"rkn": "rkn", "rkn_full_cov": "rkn", "gru": "gru"}.get(model_class, "lstm")


def step_seconds(config: dict, experiment: str, model: str, device: torch.device,
                 repeats: int) -> tuple[float, float]:
    """Median time of a training step of ``model`` at ``experiment``'s paper settings, and the
    extra time of the first step (compilation, in the ``inductor`` step mode; else 0)."""
    spec = resolve_run(config, experiment, model, config["experiments"][experiment]["seeds"][0])
    size = 48 if spec.generator.startswith("quad_link") else 24
    channels = 3 if spec.generator == "multiple_pendulums" else 1
    batch, steps = spec.training.batch_size, spec.dataset_params.get("seq_len", 75)
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (batch, steps, size, size, channels), generator=gen,
                           dtype=torch.uint8)
    if spec.generator.endswith("imputation"):  # image targets, half of the frames missing
        targets = images.clone()
        extra = {"obs_valid": torch.rand(batch, steps, generator=gen) < 0.5}
    else:
        dim = 8 if size == 48 else (6 if channels == 3 else 2)
        targets, extra = torch.rand(batch, steps, dim, generator=gen), {}
    data = {"images": images, "targets": targets, **extra}
    torch.manual_seed(0)
    model_obj = build_run_model(spec, {k: v[:1].numpy() for k, v in data.items()}).to(device)
    data = {k: v.to(device) for k, v in data.items()}
    optimizer = torch.optim.Adam(model_obj.parameters(), lr=spec.training.learning_rate)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if spec.training.compile == "inductor":
        model_obj.compile_steps()
    start = time.perf_counter()
    train_step(model_obj, data, optimizer, spec.training)  # warm-up (and compilation)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        train_step(model_obj, data, optimizer, spec.training)
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return median, max(first - median, 0.0) if spec.training.compile == "inductor" else 0.0


def run_steps(config: dict, experiment: str) -> float:
    """Training-step equivalents of one run: epochs x (train batches + validation share)."""
    spec = resolve_run(config, experiment, config["experiments"][experiment]["models"][0],
                       config["experiments"][experiment]["seeds"][0])
    num_train = spec.dataset_params.get("num_train", 2000)
    num_val = math.ceil(spec.training.val_fraction * num_train)
    train_batches = math.ceil((num_train - num_val) / spec.training.batch_size)
    val_batches = math.ceil(num_val / spec.training.batch_size)
    return spec.training.epochs * (train_batches + VALIDATION_COST * val_batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--experiments", nargs="+", help="default: every experiment")
    parser.add_argument("--repeats", type=int, default=1, help="timed steps per model")
    parser.add_argument("--throughput", help="gpu_throughput.py --json output (concurrency)")
    parser.add_argument("--json", help="also write the table to this JSON file")
    args = parser.parse_args()
    if any(os.environ.get(k) != v for k, v in ALLOCATOR_ENV.items()):  # glibc reads them at start
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **ALLOCATOR_ENV})
    torch.set_num_threads(1)
    device = torch.device(args.device if args.device != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    config = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml"])
    speedup, concurrent = 1.0, 1
    if args.throughput:
        rows = json.loads(Path(args.throughput).read_text())["rows"]
        best = max(rows, key=lambda r: (r["runs"], r["steps_per_s"]))
        single = next(r for r in rows if r["runs"] == 1 and r["model"] == best["model"]
                      and r["mode"] == best["mode"])
        speedup, concurrent = best["steps_per_s"] / single["steps_per_s"], best["runs"]
    here_e1 = {}
    for model, fam in (("rkn", "rkn"), ("lstm", "lstm"), ("gru", "gru")):
        here_e1[fam] = step_seconds(config, "pendulum_filtering", model, device, args.repeats)[0]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "this CPU (1 thread)"
    print(f"Paper scale projected from step times measured on {name}; GPU column: "
          f"{README_GPU['name']} scaled per model family (rough)."
          + (f" Wall time with {concurrent} runs at once: / {speedup:.2f}." if speedup > 1 else ""))
    cores_head = "".join(f" {f'wall {n} cores':>14s}" for n in CORE_COUNTS) if device.type == "cpu" else ""
    print(f"{'experiment':22s} {'runs':>5s} {'steps/run':>10s} {'hours here':>11s} "
          f"{'wall here':>10s} {'GPU hours':>10s}{cores_head}")
    table, totals, all_runs = [], [0.0, 0.0, 0.0], []
    for experiment, spec in config["experiments"].items():
        if args.experiments and experiment not in args.experiments:
            continue
        steps = run_steps(config, experiment)
        hours = gpu = 0.0
        run_hours = []
        for model in spec["models"]:
            model_class = config["models"][model]["class"]
            if model_class == "reference":
                continue
            seconds, compile_seconds = step_seconds(config, experiment, model, device,
                                                    args.repeats)
            fam = family(model_class)
            one_run = (steps * seconds + compile_seconds) / 3600
            run_hours += [one_run] * len(spec["seeds"])
            hours += len(spec["seeds"]) * one_run
            gpu += len(spec["seeds"]) * steps * seconds * README_GPU[fam] / 1000 / here_e1[fam] / 3600
        runs = len(spec["models"]) * len(spec["seeds"])
        wall = hours / speedup
        walls = {n: wall_hours(run_hours, n) for n in CORE_COUNTS}
        all_runs += run_hours
        table.append({"experiment": experiment, "runs": runs, "steps_per_run": steps,
                      "device_hours": hours, "wall_hours": wall, "gpu_hours_readme": gpu,
                      "longest_run_hours": max(run_hours, default=0.0),
                      **{f"wall_hours_{n}_cores": w for n, w in walls.items()}})
        totals = [totals[0] + hours, totals[1] + wall, totals[2] + gpu]
        cores_cells = "".join(f" {walls[n]:14.2f}" for n in CORE_COUNTS) if cores_head else ""
        print(f"{experiment:22s} {runs:5d} {steps:10.0f} {hours:11.2f} {wall:10.2f} {gpu:10.2f}"
              f"{cores_cells}", flush=True)
    cores_total = ("".join(f" {wall_hours(all_runs, n):14.2f}" for n in CORE_COUNTS)
                   if cores_head else "")
    print(f"{'total':22s} {'':5s} {'':10s} {totals[0]:11.2f} {totals[1]:10.2f} {totals[2]:10.2f}"
          f"{cores_total}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "speedup": speedup,
                                               "experiments": table}, indent=2))


if __name__ == "__main__":
    main()

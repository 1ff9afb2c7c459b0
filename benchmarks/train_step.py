"""Median time of one training step (forward, backward, clipping, Adam) at the paper's settings.

E1: batch 50 sequences of 75 frames of 24x24 images, RKN m=15, K=15, b=3 with layer norm, against
the LSTM and GRU baselines (m=50 and the parameter-matched small ones). E4: batch 25 sequences of
150 frames of 48x48 images, the quad-link encoder, RKN m=100 against the LSTM m=50. One intra-op
thread by default.

    python benchmarks/train_step.py [--settings e1 e4] [--models rkn lstm] [--threads 1]
        [--baseline GIT_REV] [--allocator] [--compile] [--rounds 5] [--steps 3] [--device cpu]

Variants are timed side by side: each runs in its own worker process and the workers take turns,
a block of ``--steps`` steps at a time for ``--rounds`` rounds, so a load change on the machine
hits every variant alike; medians and their ratios are printed. ``now`` is this working tree;
``--baseline REV`` adds the code of a git revision (extracted with ``git archive``);
``--allocator`` adds ``now`` with the glibc allocator settings the workflow gives training jobs
(``harness.settings.ALLOCATOR_ENV``); ``--compile`` adds ``now`` with those settings and the
compiled per-step functions (``training.compile: inductor``; compile time printed apart).

The RKN is also timed with layer norm off ("rkn, no LN"), the setting of the authors' PyTorch
port's own pendulum script. Their port was timed side by side with ours on this kind of machine
(one core): about 1.8 s per step with layer norm on (the E1 configuration) and about 0.8 s with it
off; its code is not part of this repository, so those two figures are constants here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The authors' port, seconds per E1 step on one core, with and without layer norm (see above).
PORT_SECONDS_PER_STEP = {"rkn": 1.8, "rkn, no LN": 0.8}
# Batch and model settings of each timed configuration: (batch, steps, image size, targets) and
# the model parameters on top of config/config.yaml's models section.
SETTINGS: dict[str, dict[str, Any]] = {
    "e1": {"batch": (50, 75, 24, 2), "extra": {}},
    "e4": {"batch": (25, 150, 48, 8),
           "extra": {"encoder": "quad_link", "encoder_hidden": 200},
           "rkn": {"latent_obs_dim": 100}},
}


# ---------------------------------------------------------------- worker (one variant's process)
def worker(root: str, threads: int, device_name: str) -> None:
    """Serve timing requests on stdin (JSON lines) with the code under ``root``."""
    sys.path.insert(0, root)
    import torch

    from harness.config import load_config
    from harness.registry import build_configured
    from harness.training import TrainConfig, batch_loss, clip_gradients

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    config = load_config([Path(root) / "config" / "config.yaml"])
    cache: dict[tuple[str, str, bool], Any] = {}

    def prepare(name: str, setting: str, compiled: bool) -> Any:
        spec = SETTINGS[setting]
        batch_size, steps, size, targets = spec["batch"]
        extra = {"input_channels": 1, "image_size": size, "target_dim": targets, **spec["extra"],
                 **spec.get(name.split(",")[0], {})}
        if name == "rkn, no LN":
            extra["layer_norm"] = False
        torch.manual_seed(0)
        model = build_configured(config, name.split(",")[0], extra).to(device)
        compile_seconds = 0.0
        gen = torch.Generator().manual_seed(0)
        batch = {"images": torch.randint(0, 256, (batch_size, steps, size, size, 1), generator=gen,
                                         dtype=torch.uint8).to(device),
                 "targets": (torch.rand(batch_size, steps, targets, generator=gen) * 2 - 1).to(device)}
        train = TrainConfig()
        optimizer = torch.optim.Adam(model.parameters(), lr=train.learning_rate, eps=train.adam_eps)
        if compiled:
            model.compile_steps()
        start = time.perf_counter()
        for _ in range(2):  # warm-up (and compilation)
            one_step(model, batch, optimizer, train)
        compile_seconds = time.perf_counter() - start
        return model, batch, optimizer, train, compile_seconds

    def one_step(model: Any, batch: Any, optimizer: Any, train: Any) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = batch_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model, train.clip_mode, train.clip_value)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for line in sys.stdin:
        request = json.loads(line)
        key = (request["model"], request["setting"], request["compile"])
        if key not in cache:
            cache[key] = prepare(*key)
        model, batch, optimizer, train, warmup = cache[key]
        times = [one_step(model, batch, optimizer, train) for _ in range(request["steps"])]
        print(json.dumps({"times": times, "warmup": warmup}), flush=True)


# ---------------------------------------------------------------- parent (interleaves variants)
class Variant:
    """One worker process: code root, environment, compiled or not."""

    def __init__(self, label: str, root: Path, env: dict[str, str], compiled: bool,
                 threads: int, device: str) -> None:
        self.label, self.compiled = label, compiled
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(root), "--threads", str(threads),
             "--device", device], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, **env, "PYTHONPATH": str(root)})

    def time(self, model: str, setting: str, steps: int) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"model": model, "setting": setting, "steps": steps,
                                          "compile": self.compiled}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.label} exited (rc {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


def extract_revision(rev: str, into: Path) -> Path:
    """The tree of git revision ``rev`` under ``into`` (git archive)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["e1", "e4"], choices=sorted(SETTINGS))
    parser.add_argument("--models", nargs="+", default=["rkn", "lstm"],
                        help="keys of config/config.yaml's models; also 'rkn, no LN'")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline", metavar="GIT_REV", help="also time this revision's code")
    parser.add_argument("--allocator", action="store_true", help="also time with ALLOCATOR_ENV")
    parser.add_argument("--compile", action="store_true",
                        help="also time compiled per-step functions (with ALLOCATOR_ENV)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per block")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.threads, args.device)
        return
    sys.path.insert(0, str(ROOT))
    from harness.settings import ALLOCATOR_ENV  # no torch: the parent only schedules

    with tempfile.TemporaryDirectory() as tmp:
        specs: list[tuple[str, Path, dict[str, str], bool]] = []
        if args.baseline:
            base = extract_revision(args.baseline, Path(tmp))
            specs.append((args.baseline[:10], base, {}, False))
        specs.append(("now", ROOT, {}, False))
        if args.allocator:
            specs.append(("now+alloc", ROOT, ALLOCATOR_ENV, False))
        if args.compile:
            specs.append(("now+alloc+compile", ROOT, ALLOCATOR_ENV, True))
        variants = [Variant(*spec, threads=args.threads, device=args.device) for spec in specs]
        try:
            report(variants, args)
        finally:
            for variant in variants:
                variant.close()


def report(variants: list[Variant], args: argparse.Namespace) -> None:
    """Interleave the variants' blocks and print medians, ratios and the port comparison."""
    print(f"threads {args.threads}, device {args.device}; {args.rounds} rounds x {args.steps} "
          f"steps per variant, interleaved; variants: {', '.join(v.label for v in variants)}")
    medians: dict[tuple[str, str, str], float] = {}
    for setting in args.settings:
        batch_size, steps, size, _ = SETTINGS[setting]["batch"]
        print(f"\n{setting}: batch {batch_size} x {steps} steps x {size}x{size}")
        for model in args.models:
            times: dict[str, list[float]] = {v.label: [] for v in variants}
            warmups: dict[str, float] = {}
            for _ in range(args.rounds):
                for variant in variants:
                    result = variant.time(model, setting, args.steps)
                    times[variant.label] += result["times"]
                    warmups[variant.label] = result["warmup"]
            first = variants[0].label
            for variant in variants:
                label = variant.label
                median = statistics.median(times[label])
                medians[(setting, model, label)] = median
                ratio = median / statistics.median(times[first])
                print(f"  {model:12s} {label:18s} median {median * 1000:8.1f} ms/step  "
                      f"ratio to {first} {ratio:5.2f}  (min {min(times[label]) * 1000:.1f}, "
                      f"max {max(times[label]) * 1000:.1f}; 2 warm-up steps "
                      f"{warmups[label]:.1f} s)", flush=True)
        for variant in variants:
            rkn, lstm = (medians.get((setting, m, variant.label)) for m in ("rkn", "lstm"))
            if rkn and lstm:
                print(f"  ratio rkn/lstm ({variant.label}): {rkn / lstm:.2f}")
    for variant in variants:
        for name, port in PORT_SECONDS_PER_STEP.items():
            median = medians.get(("e1", name, variant.label))
            if median:
                print(f"speed-up over the authors' port, {name} ({port} s/step), "
                      f"{variant.label}: {port / median:.1f}x")


if __name__ == "__main__":
    main()

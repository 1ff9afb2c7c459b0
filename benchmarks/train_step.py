"""Median time of one training step (forward, backward, clipping, Adam) at the paper's E1 settings.

Batch 50 sequences of 75 frames of 24x24 images, RKN m=15, K=15, b=3 with layer norm, against the
LSTM and GRU baselines (m=50 and the parameter-matched small ones). One intra-op thread by default.

    python benchmarks/train_step.py [--threads 1] [--repeats 15] [--device cpu|cuda]

The RKN is also timed with layer norm off ("rkn, no LN"), the setting of the authors' PyTorch
port's own pendulum script. Their port was timed side by side with ours on this kind of machine
(one core): about 1.8 s per step with layer norm on (the E1 configuration) and about 0.8 s with it
off; its code is not part of this repository, so those two figures are constants here and the
speed-ups compare like with like. Target: at most a quarter of the port's time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from harness.config import load_config  # noqa: E402
from harness.registry import build_configured  # noqa: E402
from harness.training import TrainConfig, batch_loss, clip_gradients  # noqa: E402

# The authors' port, seconds per E1 step on one core, with and without layer norm (see above).
PORT_SECONDS_PER_STEP = {"rkn": 1.8, "rkn, no LN": 0.8}


def time_steps(name: str, batch: dict, repeats: int, device: torch.device) -> list[float]:
    """Wall time of ``repeats`` training steps after two warm-up steps ("rkn, no LN": the RKN
    with layer norm off)."""
    torch.manual_seed(0)
    benchmark_config = load_config([Path(__file__).resolve().parents[1] / "config" / "config.yaml"])
    extra = {"layer_norm": False} if name == "rkn, no LN" else {}
    model = build_configured(benchmark_config, name.split(",")[0],
                             {"input_channels": 1, "image_size": 24, "target_dim": 2, **extra}
                             ).to(device)
    config = TrainConfig()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=config.adam_eps)
    times = []
    for step in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = batch_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model, config.clip_mode, config.clip_value)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=["rkn", "rkn, no LN", "lstm", "lstm_small",
                                                        "gru", "gru_small"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    batch = {
        "images": torch.randint(0, 256, (50, 75, 24, 24, 1), generator=gen, dtype=torch.uint8).to(device),
        "targets": (torch.rand(50, 75, 2, generator=gen) * 2 - 1).to(device),
    }
    name_dev = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device {name_dev}, threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"batch 50 x 75 steps x 24x24, {args.repeats} timed steps each")
    medians = {}
    for name in args.models:
        times = time_steps(name, batch, args.repeats, device)
        medians[name] = statistics.median(times)
        print(f"{name:12s} median {medians[name] * 1000:8.1f} ms/step  (min {min(times) * 1000:.1f}, "
              f"max {max(times) * 1000:.1f})", flush=True)
    if "rkn" in medians and "lstm" in medians:
        print(f"ratio rkn/lstm: {medians['rkn'] / medians['lstm']:.2f}")
    for name, port in PORT_SECONDS_PER_STEP.items():
        if name in medians:
            print(f"speed-up over the authors' port, {name} ({port} s/step): "
                  f"{port / medians[name]:.1f}x (target >= 4x)")


if __name__ == "__main__":
    main()

"""The training step's modes (training.compile): the same loss and gradients as the eager step
within a stated tolerance for every model family, and a run with them gives eager's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datasets import build_dataset
from harness.config import load_config
from harness.runner import execute_run
from harness.runspec import resolve_run
from harness.settings import TrainConfig
from harness.step import StepModeError, build_step, make_optimizer
from tests.config_models import build_named

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
# inductor fuses the filter step's kernels in another order: float32 rounding differences only.
LOSS_RTOL, GRAD_RTOL, GRAD_ATOL = 1e-5, 1e-4, 1e-6
# name, extra params, image targets (every model family: RKN (both step orders), full-covariance
# RKN, LSTM, GRU, KVAE, E2C, DKS).
FAMILIES = [("rkn", {}, False), ("rkn", {"step_order": "update_predict"}, False),
            ("rkn_full_cov", {}, False), ("lstm_small", {}, False), ("gru_small", {}, False),
            ("kvae_filter", {}, True), ("e2c", {}, True), ("dks_filter", {}, True)]


def batch(images_as_targets: bool) -> dict:
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (6, 8, 24, 24, 1), generator=gen, dtype=torch.uint8)
    if images_as_targets:
        return {"images": images, "targets": images.clone(),
                "obs_valid": torch.rand(6, 8, generator=gen) < 0.7}
    return {"images": images, "targets": torch.rand(6, 8, 2, generator=gen) * 2 - 1}


def loss_and_grads(name: str, extra: dict, image: bool, mode: str):
    """Loss and gradients of one step in ``mode`` from the same initial weights."""
    params = {**extra, **({"decoder": "bernoulli"} if image else {})}
    torch.manual_seed(0)
    model = build_named(name, params)
    config = TrainConfig(compile=mode, clip_mode="none", learning_rate=0.0)
    optimizer = make_optimizer(model, config, CPU)
    data = batch(image)
    step = build_step(model, optimizer, config, data)
    torch.manual_seed(1)  # the generative models sample
    loss = step(data)
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters()
                         if p.grad is not None}


@pytest.mark.parametrize(("name", "extra", "image"), [f for f in FAMILIES if f[0] != "rkn"])
def test_models_without_a_compiled_step_are_unchanged_by_inductor(name, extra, image) -> None:
    """Models that keep their step eager (compile_steps does nothing: full-covariance RKN, LSTM,
    GRU, the generative baselines) give identical numbers; the RKN is tested below."""
    eager = loss_and_grads(name, extra, image, "none")
    compiled = loss_and_grads(name, extra, image, "inductor")
    assert eager[0] == compiled[0]
    assert all(torch.equal(eager[1][n], compiled[1][n]) for n in eager[1])


@pytest.mark.slow
@pytest.mark.parametrize("extra", [{}, {"step_order": "update_predict"}])
def test_compiled_rkn_step_matches_eager(extra: dict) -> None:
    """The RKN with compiled per-time-step functions: loss within 1e-5 and every gradient within
    1e-4 (relative) of the eager step (about 15 s of compilation on one CPU core)."""
    loss, grads = loss_and_grads("rkn", extra, False, "none")
    loss_c, grads_c = loss_and_grads("rkn", extra, False, "inductor")
    assert loss_c == pytest.approx(loss, rel=LOSS_RTOL)
    assert grads.keys() == grads_c.keys()
    for name in grads:
        torch.testing.assert_close(grads_c[name], grads[name], rtol=GRAD_RTOL, atol=GRAD_ATOL)


@pytest.mark.slow
def test_run_with_inductor_gives_eager_metrics(tmp_path: Path) -> None:
    """A short E1 RKN run with training.compile: inductor ends with the eager run's metrics
    within 1e-3 (relative): the rounding differences grow through the optimiser's steps."""
    splits = build_dataset("pendulum_filtering", {"num_train": 12, "num_test": 4, "seq_len": 10})
    config = load_config([ROOT / "config" / name for name in ("config.yaml", "smoke.yaml")])
    metrics = {}
    for mode in ("none", "inductor"):
        config["training"] = {**config["training"], "epochs": 2, "batch_size": 5,
                              "compile": mode}
        spec = resolve_run(config, "pendulum_filtering", "rkn", 0)
        metrics[mode] = execute_run(spec, train_split=splits["train"], test_split=splits["test"],
                                    run_dir=tmp_path / mode, device=CPU)
    for key, value in metrics["none"].items():
        assert metrics["inductor"][key] == pytest.approx(value, rel=1e-3, abs=1e-6), key


def test_graph_mode_needs_cuda_and_whole_sequences() -> None:
    """training.compile: graph is refused on the CPU and with truncated BPTT, naming the fix."""
    model = build_named("lstm_small")
    data = batch(False)
    with pytest.raises(StepModeError, match="needs a CUDA device"):
        build_step(model, make_optimizer(model, TrainConfig(compile="graph"), CPU),
                   TrainConfig(compile="graph"), data)
    config = TrainConfig(compile="graph", bptt_length=4)
    with pytest.raises(StepModeError, match="cannot run truncated BPTT"):
        build_step(model, make_optimizer(model, config, CPU), config, data)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["rkn", "lstm_small"])
def test_graph_step_matches_eager_on_cuda(name: str) -> None:
    """The step captured in a CUDA graph and replayed: the eager step's losses within 1e-4 over
    three steps (fused Adam against capturable Adam, cuDNN against captured kernels)."""
    losses = {}
    for mode in ("none", "graph"):
        torch.manual_seed(0)
        model = build_named(name).cuda()
        config = TrainConfig(compile=mode)
        optimizer = make_optimizer(model, config, torch.device("cuda"))
        data = {k: v.cuda() for k, v in batch(False).items()}
        step = build_step(model, optimizer, config, data)
        losses[mode] = [float(step(data)) for _ in range(3)]
    assert losses["graph"] == pytest.approx(losses["none"], rel=1e-4)

"""Reference rows (hold_last_frame, mean_image, entropy_floor) and their untrained runs in the runner."""

from __future__ import annotations

import json

import numpy as np
import torch

from datasets import build_dataset
from tests.config_models import build_named
from harness.runner import execute_run
from harness.runspec import RunSpec
from harness.training import TrainConfig
from tests.baselines.imputation_data import IMAGE_OVERRIDES, tiny_batch


def test_hold_last_frame_matches_loop() -> None:
    """Each frame equals the last observed input frame (clipped to [1e-3, 1 - 1e-3]), by a plain loop."""
    batch = tiny_batch()
    images, valid = batch["images"].numpy(), batch["obs_valid"].numpy()
    expected = np.empty(images.shape)
    for b in range(images.shape[0]):
        last = images[b, 0]
        for t in range(images.shape[1]):
            if valid[b, t]:
                last = images[b, t]
            expected[b, t] = np.clip(last / 255.0, 1e-3, 1 - 1e-3)
    net = build_named("hold_last_frame", IMAGE_OVERRIDES)
    got = net(batch["images"], batch["obs_valid"]).probs.double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_mean_image_comes_from_training_targets() -> None:
    """mean_image predicts the clipped per-pixel mean of the training targets at every frame."""
    batch = tiny_batch()
    net = build_named("mean_image", IMAGE_OVERRIDES)
    net.fit_reference({"targets": batch["targets"].numpy()})
    expected = np.clip(batch["targets"].numpy().astype(np.float64).mean(axis=(0, 1)) / 255, 1e-3, 1 - 1e-3)
    probs = net(batch["images"][:2], batch["obs_valid"][:2]).probs
    assert probs.shape == (2, 10, 24, 24, 1)
    np.testing.assert_allclose(probs[1, 7].double().numpy(), expected, rtol=1e-6)


def spec(model: str) -> RunSpec:
    """A tiny E2 run spec."""
    return RunSpec(scale="test", experiment="pendulum_imputation", model=model, seed=0,
                   dataset="pendulum_imputation", generator="pendulum_imputation",
                   dataset_params={}, dataset_version=1, training=TrainConfig(epochs=1, batch_size=4),
                   model_class="reference", model_params={"predictor": model})


def test_runner_evaluates_references_untrained(tmp_path) -> None:
    """The runner writes reference runs without training; entropy_floor's BCE is the targets' entropy."""
    splits = build_dataset("pendulum_imputation", {"num_train": 6, "num_test": 3, "seq_len": 8})
    y = splits["test"]["targets"].astype(np.float64) / 255.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -(np.where(y > 0, y * np.log(y), 0) + np.where(y < 1, (1 - y) * np.log(1 - y), 0))
    per_frame = ent.reshape(3, 8, -1).sum(-1)
    valid = splits["test"]["obs_valid"]
    metrics = {}
    for model in ("entropy_floor", "hold_last_frame"):
        metrics[model] = execute_run(spec(model), train_split=splits["train"], test_split=splits["test"],
                                     run_dir=tmp_path / model, device=torch.device("cpu"))
        assert (tmp_path / model / "history.csv").is_file()
        run_metrics = json.loads((tmp_path / model / "metrics.json").read_text())
        assert run_metrics["n_params"] == 0
        assert run_metrics["converged"] == 1.0  # nothing was trained (harness.convergence)
    floor = metrics["entropy_floor"]
    np.testing.assert_allclose(floor["bce_all"], per_frame.mean(), rtol=1e-6)
    np.testing.assert_allclose(floor["bce_missing"], per_frame[~valid].mean(), rtol=1e-6)
    assert metrics["hold_last_frame"]["bce_observed"] > floor["bce_observed"]
    assert metrics["hold_last_frame"]["bce_missing"] > metrics["hold_last_frame"]["bce_observed"]
    with np.load(tmp_path / "hold_last_frame" / "examples.npz") as npz:  # inputs for the figure grid
        np.testing.assert_array_equal(npz["inputs"], splits["test"]["images"])

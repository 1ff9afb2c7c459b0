"""The model boundary (harness/boundary.py): every family's predictions pass the check the runner
attaches, and a prediction of the wrong type, shape or dtype, or a non-finite one, is refused
naming the model, the expected and the received shapes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.boundary import PredictionError, attach_prediction_check
from harness.config import load_config
from harness.registry import FAMILIES
from harness.runner import build_run_model
from harness.runspec import resolve_run
from harness.step import BadResultError
from harness.training import predict_split, to_tensors
from rkn.interface import BernoulliPrediction, GaussianPrediction
from tests.toy_data import moving_square

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"])
# One model of every family, with an experiment that uses it (its data decides the targets).
FAMILY_MODELS = {}
for _experiment, _spec in CONFIG["experiments"].items():
    for _model in _spec["models"]:
        FAMILY_MODELS.setdefault(CONFIG["models"][_model]["class"], (_experiment, _model))


def toy_split(images_as_targets: bool) -> dict[str, np.ndarray]:
    """3 sequences of 6 steps of 24x24 frames: (sin, cos) targets, or the frames themselves with
    every other frame missing (imputation)."""
    images, targets = moving_square(num_seq=3, steps=6)
    if images_as_targets:
        valid = np.ones((3, 6), dtype=bool)
        valid[:, 1::2] = False
        return {"images": images.numpy(), "targets": images.numpy(), "obs_valid": valid}
    return {"images": images.numpy(), "targets": targets.numpy().astype(np.float32)}


def checked_model(experiment: str, model: str):
    seed = int(CONFIG["experiments"][experiment]["seeds"][0])
    spec = resolve_run(CONFIG, experiment, model, seed)
    images_as_targets = "imputation" in CONFIG["experiments"][experiment]["dataset"]
    split = toy_split(images_as_targets)
    torch.manual_seed(0)
    built = build_run_model(spec, split)
    if not built.trainable:
        built.fit_reference(split)
    attach_prediction_check(built, f"{model} ({spec.model_class})", split["targets"])
    return built, split


def test_every_family_is_covered() -> None:
    assert set(FAMILY_MODELS) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_passes_and_a_step_short_is_refused(family: str) -> None:
    """Training loss (with autograd) and predictions (without) pass the check; the same model
    returning one step fewer is refused with the model's name and both shapes."""
    experiment, model = FAMILY_MODELS[family]
    built, split = checked_model(experiment, model)
    tensors = to_tensors(split, torch.device("cpu"))
    if built.trainable:
        built.training_loss(tensors["images"], tensors.get("obs_valid"), tensors["targets"])
    predictions = predict_split(built, tensors, batch_size=2)
    field = next(iter(predictions))
    expected = (2, 6, *split["targets"].shape[2:])
    original = built.forward

    def one_step_short(*args, **kwargs):
        prediction = original(*args, **kwargs)
        return type(prediction)(*(value[:, :-1] for value in prediction))

    built.forward = one_step_short
    received = (2, 5, *split["targets"].shape[2:])
    with pytest.raises(PredictionError, match=rf"model {model} \({family}\) returned {field} of "
                       rf"shape {re.escape(str(received))} .*expected a \w+Prediction .* of shape "
                       rf"{re.escape(str(expected))}"):
        predict_split(built, tensors, batch_size=2)


def test_plain_tuple_wrong_dim_dtype_and_nan_are_refused() -> None:
    built, split = checked_model("pendulum_filtering", "lstm_small")
    tensors = to_tensors(split, torch.device("cpu"))
    original = built.forward
    cases = {
        r"a plain tuple of 2 items; expected a GaussianPrediction with mean and var of shape "
        r"\(3, 6, 2\)": lambda p: (p.mean, p.var),
        r"mean of shape \(3, 6, 3\) float32; expected": lambda p: GaussianPrediction(
            torch.cat([p.mean, p.mean[..., :1]], -1), torch.cat([p.var, p.var[..., :1]], -1)),
        r"mean of shape \(3, 6, 2\) float64; expected float32, the targets' dtype": lambda p:
            GaussianPrediction(p.mean.double(), p.var.double()),
        r"returned BernoulliPrediction\(probs of shape \(3, 6, 2\) float32\); expected a "
        r"GaussianPrediction": lambda p: BernoulliPrediction(p.mean.sigmoid()),
    }
    for message, change in cases.items():
        built.forward = lambda *a, change=change, **k: change(original(*a, **k))
        with pytest.raises(PredictionError, match=message):
            built(tensors["images"], None)
    built.forward = lambda *a, **k: GaussianPrediction(original(*a, **k).mean * np.nan,
                                                       original(*a, **k).var)
    with torch.no_grad(), pytest.raises(BadResultError, match=r"model lstm_small \(lstm\) "
                                        r"returned non-finite predictions \(mean: 36 of 36"):
        built(tensors["images"], None)
    built(tensors["images"], None)  # with autograd (training) the loop checks the loss instead


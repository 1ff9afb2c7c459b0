"""Execute one (experiment, model, seed) run into its run folder, atomically.

Everything is written into a temporary sibling folder first and renamed into place at the end,
so an interrupted or failed run leaves no partial run folder behind.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from harness import checkpoint, training
from harness.boundary import attach_prediction_check
from harness.convergence import converged
from harness.io import (atomic_torch_save, atomic_write_json, atomic_write_npz,
                        atomic_write_text, temporary_folder)
from harness.registry import config_to_dict, make_config, model_class
from harness.runspec import RunSpec, derive_seeds
from rkn.interface import SequenceModel

log = logging.getLogger(__name__)

# How many test sequences keep their full predictions for the example-sequence figure.
EXAMPLE_SEQUENCES = 4
# Every file a run folder holds (the workflow's train rule declares exactly these).
RUN_FILES = ("config.json", "model.pt", "history.csv", "metrics.json", "calibration.csv",
             "examples.npz", "meta.json")


class RunExistsError(FileExistsError):
    """The run folder exists already and overwriting was not asked for."""


def select_device(name: str) -> torch.device:
    """auto: CUDA when available, else CPU; cpu; cuda (an error when no GPU is visible)."""
    # cuBLAS needs a fixed workspace for deterministic results (PyTorch reproducibility notes);
    # it must be set before the first CUDA call.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device; use --device auto or cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device(name)


def data_overrides(split: dict[str, np.ndarray]) -> dict:
    """Model settings that follow from the data: image size and channels, output kind and size.

    The runner sets those of them that the model's config dataclass declares (a user model
    without, e.g., ``image_size`` simply does not get it).
    """
    images, targets = split["images"], split["targets"]
    overrides = {"input_channels": int(images.shape[-1]), "image_size": int(images.shape[2])}
    if targets.ndim == 5:  # image targets: Bernoulli image decoder
        overrides["decoder"] = "bernoulli"
    else:
        overrides.update(decoder="gaussian", target_dim=int(targets.shape[-1]))
    return overrides


class ModelBuildError(ValueError):
    """A model class raised while it was built from its (valid) config."""


def build_run_model(spec: RunSpec, train_split: dict[str, np.ndarray]) -> SequenceModel:
    """The run's model: its class and params from the spec, the data's settings on top.

    Raises:
        ValueError: the class cannot be loaded or a param is invalid (``make_config``).
        ModelBuildError: the class's constructor raised (a user's model, most likely); the
            message names ``models.<name>.class`` and the exception.
    """
    cls = model_class(spec.model_class)
    declared = {f.name for f in dataclasses.fields(cls.config_class)}
    from_data = {k: v for k, v in data_overrides(train_split).items() if k in declared}
    config = make_config(cls, {**spec.model_params, **from_data},
                         where=f"model {spec.model} ({spec.model_class})")
    try:
        return cls(config)
    except Exception as err:  # noqa: BLE001 (a user's class may raise anything)
        raise ModelBuildError(
            f"models.{spec.model}.class: building {spec.model_class} from its config raised "
            f"{type(err).__name__}: {err}; fix the class's __init__ (README, 'Compare your own "
            "model')") from err


def _inputs_for(model: SequenceModel, split: dict) -> dict:
    """The split as the model sees it: oracles with ``input_is_clean`` get the clean frames."""
    if model.input_is_clean:
        return {**split, "images": split["targets"]}
    return split


def _fit_reference(model: SequenceModel, train_part: dict[str, np.ndarray], val: training.Split,
                   batch_size: int) -> training.FitResult:
    """Parameter-free reference predictors (``trainable`` False): fit statistics, no training."""
    model.fit_reference(train_part)
    val_loss = training.mean_loss(model, val, batch_size)
    return training.FitResult(history=[{"epoch": 0, "train_loss": math.nan, "val_loss": val_loss,
                                        "seconds": 0.0}], selected_epoch=0)


def git_state() -> dict[str, object]:
    """Commit and dirty flag of the code that ran (empty values outside a git checkout)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain"))}


def _history_csv(rows: list[dict[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run_checkpointer(spec: RunSpec, run_dir: str | Path, *,
                     discard_bad: bool = False) -> checkpoint.Checkpointer:
    """The checkpointer of a run: its file beside the run folder, the run's identity (the
    settings that decide its numbers) and the interval of ``training.checkpoint_minutes``;
    ``discard_bad``: an unusable checkpoint is deleted and the run restarted (logged)."""
    return checkpoint.Checkpointer(checkpoint.checkpoint_path(run_dir), spec.identity(),
                                   spec.training.checkpoint_minutes, discard_bad=discard_bad)


def _examples(extras: dict[str, np.ndarray], test_split: dict[str, np.ndarray]) -> dict:
    """What the report's figures need of the first test sequences: the predictions, the targets,
    and every per-sequence array of the test split (obs_valid, noise factors, E3's visibility),
    so the aggregator never opens a dataset. ``inputs`` are the images the model saw (imputation)."""
    examples = {k: v[:EXAMPLE_SEQUENCES] for k, v in extras.items() if not k.startswith("hist_")}
    for key, value in test_split.items():
        if key != "images":
            examples[key] = value[:EXAMPLE_SEQUENCES]
    if "obs_valid" in test_split:
        examples["inputs"] = test_split["images"][:EXAMPLE_SEQUENCES]
    return examples


def execute_run(
    spec: RunSpec,
    *,
    train_split: dict[str, np.ndarray],
    test_split: dict[str, np.ndarray],
    run_dir: str | Path,
    device: torch.device,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    checkpointer: checkpoint.Checkpointer | None = None,
) -> dict[str, float]:
    """Train, select, evaluate once on the test split, and write the run folder.

    Files (``RUN_FILES``): config.json (resolved spec + model config), model.pt (weights with
    their class and config), history.csv, metrics.json (flat, numeric), calibration.csv
    (normalised-error histogram; header only for image models), examples.npz (first test
    sequences' predictions and per-sequence data), meta.json (timings, versions, seeds).

    With a ``checkpointer`` (``run_checkpointer``) training resumes from the run's checkpoint
    (which must match the run's settings, the code and a digest of ``train_split``) and writes
    one periodically and when a stop is requested; it is removed once the run folder is in
    place. Temporary folders and checkpoint files left by an earlier, killed attempt are
    removed first.

    Returns the test metrics.

    Raises:
        RunExistsError: the run folder exists and ``force`` is False.
        harness.checkpoint.RunInterrupted: a stop was requested (the checkpoint is written).
        harness.checkpoint.CheckpointError: the checkpoint cannot be read, was changed after it
            was written, or belongs to other settings, code or training data.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not force:
        raise RunExistsError(f"run folder {run_dir} exists; delete it or pass --force to overwrite")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.parent.glob(f".{run_dir.name}.*.tmp"):  # a killed attempt's leftovers
        log.info("removing %s, left by an interrupted attempt", stale)
        shutil.rmtree(stale, ignore_errors=True)
    if checkpointer is not None:
        checkpointer.remove_stale_temporaries()
        checkpointer.bind_data(train_split)
    started = time.perf_counter()
    seeds = derive_seeds(spec.seed)
    torch.manual_seed(seeds["init"])
    model = build_run_model(spec, train_split).to(device)
    # Every prediction (training loss, validation, test) must fit the targets: type, shape, dtype.
    attach_prediction_check(model, f"{spec.model} ({spec.model_class})", train_split["targets"])
    train_part, val_part = training.split_train_val(train_split, spec.training.val_fraction)
    log.info("run %s/%s/seed%d: %d train, %d val, %d test sequences on %s", spec.experiment, spec.model,
             spec.seed, len(train_part["images"]), len(val_part["images"]), len(test_split["images"]), device)

    tmp_dir = temporary_folder(run_dir)
    try:
        saved = checkpointer.load() if checkpointer is not None and model.trainable else None
        if not model.trainable:
            fit = _fit_reference(model, train_part,
                                 training.to_tensors(_inputs_for(model, val_part), device),
                                 spec.training.eval_batch_size)
        elif saved is not None and saved["phase"] == "fitted":
            model.load_state_dict(saved["model"])
            fit = training.FitResult.from_plain(saved["result"])
        else:
            fit = training.fit(model, training.to_tensors(train_part, device),
                               training.to_tensors(val_part, device), spec.training,
                               batch_order_seed=seeds["batch_order"], progress=progress,
                               checkpointer=checkpointer, resume=saved)
        test = training.to_tensors(_inputs_for(model, test_split), device)
        test_metrics, extras = training.evaluate(model, test, spec.training.eval_batch_size)
        if checkpointer is not None and checkpointer.stop_requested and model.trainable:
            checkpointer.save({"phase": "fitted", "model": model.state_dict(),
                               "result": fit.to_plain()},
                              "training done, before the evaluation")
            raise checkpoint.RunInterrupted(f"stopped by signal {checkpointer.stop_signal} after "
                                            f"training; checkpoint {checkpointer.path}")
        test_metrics["selected_epoch"] = float(fit.selected_epoch)
        test_metrics["converged"] = float(converged(fit.history))  # harness.convergence rule
        # Epochs actually trained: the configured epochs, fewer when early stopping ended the run.
        test_metrics["epochs_trained"] = float(sum(row["epoch"] >= 1 for row in fit.history))
        test_metrics["n_params"] = float(model.num_trained_parameters())
        model_config = config_to_dict(model.config)
        atomic_write_json(tmp_dir / "config.json", {**spec.to_dict(), "model_config": model_config})
        atomic_torch_save(tmp_dir / "model.pt", {
            "model": spec.model, "class": spec.model_class, "config": model_config,
            "state_dict": model.state_dict(), "epoch": fit.selected_epoch})
        atomic_write_text(tmp_dir / "history.csv", _history_csv(fit.history))
        atomic_write_json(tmp_dir / "metrics.json", test_metrics)
        # Written for every model (header only without a Gaussian output): the rule declares it.
        rows = ""
        if "hist_density" in extras:
            edges, density = extras["hist_edges"], extras["hist_density"]
            rows = "".join(f"{lo:.4f},{hi:.4f},{d:.8g}\n"
                           for lo, hi, d in zip(edges[:-1], edges[1:], density))
        atomic_write_text(tmp_dir / "calibration.csv", "bin_left,bin_right,density\n" + rows)
        atomic_write_npz(tmp_dir / "examples.npz", _examples(extras, test_split))
        atomic_write_json(tmp_dir / "meta.json", {
            **git_state(), "torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
            "seeds": seeds, "wall_seconds": round(time.perf_counter() - started, 3),
            "stopped_epoch": fit.stopped_epoch,  # early stopping; None: ran all
        })
        if run_dir.exists():
            shutil.rmtree(run_dir)
        os.replace(tmp_dir, run_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    if checkpointer is not None:
        checkpointer.remove()
    log.info("wrote %s: %s", run_dir, ", ".join(f"{k}={v:.4g}" for k, v in sorted(test_metrics.items())))
    return test_metrics

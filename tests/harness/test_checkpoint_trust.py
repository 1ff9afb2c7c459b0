"""Checkpoints are untrusted input: plain data read with weights_only, a digest of their content
and of the training data, an opt-in discard of a bad one, and no temporary file left by a killed
write. (The refusals through train.py are cases of tests/workflow/test_untrusted_inputs.py.)"""

from __future__ import annotations

import io
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets import build_dataset
from datasets.files import _temporary_name
from harness import checkpoint
from harness.registry import load_checkpoint
from harness.runner import execute_run, run_checkpointer
from tests.harness.test_resume import StopAt, spec_for
from tests.workflow.run_archive import crafted_pickle, marker_is_live


@pytest.fixture(scope="module")
def tiny() -> tuple[dict, dict]:
    splits = build_dataset("pendulum_filtering", {"num_train": 12, "num_test": 4, "seq_len": 10})
    return splits["train"], splits["test"]


def interrupted(tmp_path: Path, tiny, stop_at: int = 2) -> tuple[object, Path]:
    """A gru_small run stopped at step ``stop_at``: its spec and run folder (checkpoint beside)."""
    train, test = tiny
    spec = spec_for("gru_small")
    run_dir = tmp_path / "run"
    with pytest.raises(checkpoint.RunInterrupted):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir,
                    device=torch.device("cpu"), checkpointer=StopAt(
                        checkpoint.checkpoint_path(run_dir), spec.identity(), 0,
                        stop_at=stop_at))
    return spec, run_dir


def test_checkpoint_holds_tensors_and_plain_data_only(tmp_path: Path, tiny) -> None:
    """The file loads with weights_only=True (no class of ours in it) and its digest matches."""
    _, run_dir = interrupted(tmp_path, tiny)
    payload = torch.load(checkpoint.checkpoint_path(run_dir), weights_only=True)
    assert payload["identity"]["format"] == checkpoint.FORMAT_VERSION
    assert isinstance(payload["state"]["loop"], dict)
    assert payload["state"]["loop"]["epoch"] == 1 and payload["state"]["loop"]["step"] == 2
    assert isinstance(payload["state"]["rng"]["numpy"]["keys"], torch.Tensor)
    assert checkpoint.content_digest({k: payload[k] for k in ("identity", "where", "state")}) \
        == payload["digest"]


def test_save_refuses_what_is_not_plain_data(tmp_path: Path) -> None:
    saver = checkpoint.Checkpointer(tmp_path / ".run.ckpt", {"run": 1}, 0)
    with pytest.raises(TypeError, match="tensors and plain data only, not PosixPath"):
        saver.save({"where": tmp_path}, "test")
    assert list(tmp_path.iterdir()) == []


def test_content_digest_sees_every_change_and_survives_a_round_trip() -> None:
    state = {"w": torch.arange(6.0).reshape(2, 3), "steps": [torch.tensor(1.5)], "best": math.inf,
             "pair": (1, 2), "none": None, "name": "x", "flag": True}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    digest = checkpoint.content_digest(state)
    assert checkpoint.content_digest(torch.load(buffer, weights_only=True)) == digest
    flipped = state["w"].clone()
    flipped.view(torch.int32)[0, 0] ^= 1  # one bit
    for changed in ({**state, "w": flipped}, {**state, "pair": [1, 2]},
                    {**state, "best": -math.inf}, {**state, "flag": 1},
                    {**state, "w": state["w"].reshape(3, 2)}, {**state, "w": state["w"].double()},
                    {**state, "steps": [torch.tensor(-1.5)]}):
        assert checkpoint.content_digest(changed) != digest
    assert checkpoint.content_digest({"z": 0.0}) != checkpoint.content_digest({"z": -0.0})


def test_data_digest_follows_every_array() -> None:
    split = {"images": np.zeros((2, 3, 4, 4, 1), np.uint8), "targets": np.ones((2, 3, 2))}
    digest = checkpoint.data_digest(split)
    assert checkpoint.data_digest({k: v.copy() for k, v in split.items()}) == digest
    other = {**split, "targets": split["targets"].copy()}
    other["targets"][1, 2, 0] = 1.0 + 1e-12
    assert checkpoint.data_digest(other) != digest
    assert checkpoint.data_digest({**split, "targets": split["targets"].astype(np.float32)}) \
        != digest


def test_load_needs_the_training_data(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="bind_data"):
        checkpoint.Checkpointer(tmp_path / ".run.ckpt", {}, 0).load()


def test_discard_bad_checkpoint_restarts_the_run_and_says_so(
        tmp_path: Path, tiny, caplog: pytest.LogCaptureFixture) -> None:
    """With discard_bad (train.py --discard-bad-checkpoint) a damaged checkpoint is deleted, the
    log says so, and the run starts from epoch 1: the metrics of an uninterrupted run."""
    train, test = tiny
    spec, run_dir = interrupted(tmp_path, tiny)
    path = checkpoint.checkpoint_path(run_dir)
    path.write_bytes(path.read_bytes()[:100])
    execute_run(spec, train_split=train, test_split=test, run_dir=tmp_path / "whole",
                device=torch.device("cpu"))
    with caplog.at_level(logging.INFO):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir,
                    device=torch.device("cpu"),
                    checkpointer=run_checkpointer(spec, run_dir, discard_bad=True))
    assert re.search(r"discarding checkpoint \(--discard-bad-checkpoint\): checkpoint .*\.run\.ckpt "
                     r"cannot be read.*; the run starts from epoch 1", caplog.text)
    assert "resuming from" not in caplog.text
    assert (run_dir / "metrics.json").read_bytes() == \
        (tmp_path / "whole" / "metrics.json").read_bytes()
    assert not path.exists()


def test_discard_bad_checkpoint_keeps_a_good_one(tmp_path: Path, tiny,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    train, test = tiny
    spec, run_dir = interrupted(tmp_path, tiny)
    with caplog.at_level(logging.INFO):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir,
                    device=torch.device("cpu"),
                    checkpointer=run_checkpointer(spec, run_dir, discard_bad=True))
    assert "resuming from" in caplog.text and "discarding" not in caplog.text


def test_temporary_file_of_a_killed_checkpoint_write_is_removed(tmp_path: Path, tiny) -> None:
    """A checkpoint write killed midway leaves atomic_write's temporary file (a name the run
    folder's clean-up pattern does not match); the next start removes it and resumes."""
    train, test = tiny
    spec, run_dir = interrupted(tmp_path, tiny)
    path = checkpoint.checkpoint_path(run_dir)
    stale = _temporary_name(path)
    stale.write_bytes(path.read_bytes()[:50])  # what a SIGKILL during the write leaves
    assert not list(run_dir.parent.glob(f".{run_dir.name}.*.tmp"))  # the folder pattern misses it
    execute_run(spec, train_split=train, test_split=test, run_dir=run_dir,
                device=torch.device("cpu"), checkpointer=run_checkpointer(spec, run_dir))
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_crafted_model_file_is_refused_without_running_it(tmp_path: Path) -> None:
    """harness.registry.load_checkpoint (a run's model.pt) reads tensors and plain data only."""
    data = crafted_pickle(tmp_path / "PWNED")
    assert marker_is_live(data, tmp_path / "PWNED")
    (tmp_path / "model.pt").write_bytes(data)
    with pytest.raises(ValueError, match=r"model file .*model.pt cannot be read safely: .*"
                                         r"Unsupported global: GLOBAL io.open.*it was not used"):
        load_checkpoint(tmp_path / "model.pt")
    assert not (tmp_path / "PWNED").exists()


class _SystemCall:
    """Unpickles to os.system(...) (never run here: the load refuses it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_refusal_never_passes_on_the_advice_to_load_unsafely(tmp_path: Path) -> None:
    """A file naming os.system is refused with a message that names the global and never repeats
    torch's suggestion to load with weights_only=False."""
    from harness.io import load_tensors

    marker = tmp_path / "ran"
    path = tmp_path / "model.pt"
    torch.save({"state": _SystemCall(marker)}, path)
    with pytest.raises(ValueError) as err:
        load_tensors(path)
    message = str(err.value)
    assert "system" in message and "refused unread" in message, message
    assert "weights_only" not in message and "False" not in message, message
    assert not marker.exists()

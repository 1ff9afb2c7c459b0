"""Runs that survive interruption: checkpoints, bit-identical resume on the CPU, signals, refusal
of a foreign checkpoint, SIGKILL at random moments."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from datasets import build_dataset
from harness import checkpoint
from harness.config import load_config
from harness.runner import execute_run, run_checkpointer
from harness.runspec import resolve_run

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "workflow" / "scripts" / "train.py"
SIMULATE = ROOT / "workflow" / "scripts" / "simulate.py"


def history_without_time(run_dir: Path) -> list[str]:
    """history.csv without its wall-time column."""
    return [",".join(line.split(",")[:-1]) for line in (run_dir / "history.csv").read_text().splitlines()]


class StopAt(checkpoint.Checkpointer):
    """A checkpointer that requests a stop at its ``stop_at``-th optimiser step (as a signal
    would), in-process and deterministic."""

    def __init__(self, *args, stop_at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.steps, self.stop_at = 0, stop_at

    def due(self) -> bool:
        self.steps += 1
        if self.steps == self.stop_at:
            self.request_stop(signal.SIGTERM)
        return super().due()


class StopAfterTraining(checkpoint.Checkpointer):
    """Requests a stop at the last optimiser step (3 epochs of 3 steps) without a checkpoint
    there, so the stop is noticed after training, during the evaluation."""

    steps = 0

    def due(self) -> bool:
        self.steps += 1
        if self.steps == 9:
            self.request_stop(signal.SIGINT)
        return False


@pytest.fixture(scope="module")
def tiny() -> tuple[dict, dict]:
    splits = build_dataset("pendulum_filtering", {"num_train": 12, "num_test": 4, "seq_len": 10})
    return splits["train"], splits["test"]


def spec_for(model: str, epochs: int = 3, **training):
    config = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"])
    config["training"] = {**config["training"], "epochs": epochs, "batch_size": 4, **training}
    return resolve_run(config, "pendulum_filtering" if model != "dks_filter" else
                       "pendulum_imputation", model, 0)


@pytest.mark.parametrize("model", ["rkn", "lstm_small"])
@pytest.mark.parametrize("stop_at", [1, 4, 6])  # mid-epoch, mid-epoch, at an epoch's end
def test_resumed_run_is_bit_identical(tmp_path: Path, tiny, model: str, stop_at: int) -> None:
    """Stopped after step ``stop_at`` (3 steps an epoch) and resumed from its checkpoint, a run
    writes the same metrics.json and history (wall time aside) as an uninterrupted run."""
    train, test = tiny
    spec = spec_for(model)
    cpu = torch.device("cpu")
    execute_run(spec, train_split=train, test_split=test, run_dir=tmp_path / "whole", device=cpu)
    run_dir = tmp_path / "resumed"
    stopper = StopAt(checkpoint.checkpoint_path(run_dir), spec.identity(), 0, stop_at=stop_at)
    with pytest.raises(checkpoint.RunInterrupted):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cpu,
                    checkpointer=stopper)
    assert stopper.path.is_file() and not run_dir.exists()
    assert list(tmp_path.glob("*.tmp")) == []
    resumed = run_checkpointer(spec, run_dir)
    resumed.bind_data(train)
    saved = resumed.load()
    assert (saved["loop"]["epoch"] - 1) * 3 + saved["loop"]["step"] == stop_at  # not epoch 1
    execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cpu,
                checkpointer=resumed)
    assert (run_dir / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    assert history_without_time(run_dir) == history_without_time(tmp_path / "whole")
    assert not resumed.path.exists()  # removed once the run is complete


@pytest.mark.parametrize("model", ["rkn", "lstm_small"])
def test_truncated_bptt_run_resumes_bit_identically(tmp_path: Path, tiny, model: str) -> None:
    """With training.bptt_length 4 (windows of 4, 4 and 2 of the 10 steps, an Adam step each) a
    run stopped mid-epoch resumes from its checkpoint, taken between batches, to the metrics.json
    and history of an uninterrupted run; those differ from whole-sequence training."""
    train, test = tiny
    spec = spec_for(model, bptt_length=4)
    cpu = torch.device("cpu")
    execute_run(spec, train_split=train, test_split=test, run_dir=tmp_path / "whole", device=cpu)
    execute_run(spec_for(model), train_split=train, test_split=test,
                run_dir=tmp_path / "untruncated", device=cpu)
    assert history_without_time(tmp_path / "whole") != history_without_time(tmp_path /
                                                                            "untruncated")
    run_dir = tmp_path / "resumed"
    stopper = StopAt(checkpoint.checkpoint_path(run_dir), spec.identity(), 0, stop_at=4)
    with pytest.raises(checkpoint.RunInterrupted):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cpu,
                    checkpointer=stopper)
    resumed = run_checkpointer(spec, run_dir)
    resumed.bind_data(train)
    saved = resumed.load()
    assert (saved["loop"]["epoch"], saved["loop"]["step"]) == (2, 1)
    assert max(int(s["step"]) for s in saved["optimizer"]["state"].values()) == 4 * 3
    execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cpu,
                checkpointer=resumed)
    assert (run_dir / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    assert history_without_time(run_dir) == history_without_time(tmp_path / "whole")


@pytest.mark.parametrize("stop_at", [4, 7])  # mid-epoch 2, first step of epoch 3 (the last)
def test_early_stopped_run_resumes_bit_identically(tmp_path: Path, tiny, stop_at: int) -> None:
    """With early stopping (patience 2; a min_delta so large that only epoch 1 counts as an
    improvement) a 10-epoch run stops after epoch 3, with or without an interruption on the way:
    same metrics.json and history, 3 epochs trained, the stop epoch in meta.json."""
    train, test = tiny
    spec = spec_for("rkn", epochs=10, early_stopping_patience=2, early_stopping_min_delta=1e6)
    cpu = torch.device("cpu")
    execute_run(spec, train_split=train, test_split=test, run_dir=tmp_path / "whole", device=cpu)
    run_dir = tmp_path / "resumed"
    stopper = StopAt(checkpoint.checkpoint_path(run_dir), spec.identity(), 0, stop_at=stop_at)
    with pytest.raises(checkpoint.RunInterrupted):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cpu,
                    checkpointer=stopper)
    execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cpu,
                checkpointer=run_checkpointer(spec, run_dir))
    assert (run_dir / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    assert history_without_time(run_dir) == history_without_time(tmp_path / "whole")
    assert len(history_without_time(run_dir)) == 1 + 3  # header and epochs 1-3
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_trained"] == 3.0
    assert json.loads((run_dir / "meta.json").read_text())["stopped_epoch"] == 3


def test_early_stopping_off_keeps_run_identity(tmp_path: Path) -> None:
    """Patience 0 (off) leaves the run's identity and folder name as before the option existed;
    a patience gives another run."""
    plain = spec_for("rkn")
    assert plain.identity()["training"].keys().isdisjoint({"early_stopping_patience",
                                                           "early_stopping_min_delta"})
    assert spec_for("rkn", early_stopping_patience=0).run_name == plain.run_name
    assert spec_for("rkn", early_stopping_patience=5).run_name != plain.run_name


def test_stop_during_evaluation_resumes_without_training(tmp_path: Path, tiny) -> None:
    """A stop that arrives after training keeps the trained model ("fitted" checkpoint)."""
    train, test = tiny
    spec = spec_for("gru_small")
    cpu = torch.device("cpu")
    execute_run(spec, train_split=train, test_split=test, run_dir=tmp_path / "whole", device=cpu)
    run_dir = tmp_path / "resumed"
    stopper = StopAfterTraining(checkpoint.checkpoint_path(run_dir), spec.identity(), 0)
    with pytest.raises(checkpoint.RunInterrupted, match="after training"):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cpu,
                    checkpointer=stopper)
    assert torch.load(stopper.path, weights_only=True)["state"]["phase"] == "fitted"
    execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cpu,
                checkpointer=run_checkpointer(spec, run_dir))
    assert (run_dir / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()


def test_foreign_checkpoint_is_refused(tmp_path: Path, tiny) -> None:
    """A checkpoint written for other settings, or by other code, is refused with a message that
    names it and says how to start afresh; it is never mixed into the run."""
    train, test = tiny
    spec = spec_for("lstm_small")
    run_dir = tmp_path / "run"
    with pytest.raises(checkpoint.RunInterrupted):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir,
                    device=torch.device("cpu"), checkpointer=StopAt(
                        checkpoint.checkpoint_path(run_dir), spec.identity(), 0, stop_at=2))
    edited = run_checkpointer(spec_for("lstm_small", epochs=4), run_dir)
    edited.bind_data(train)
    with pytest.raises(checkpoint.CheckpointError, match=r"other run settings .*differs in "
                                                         r"training.*delete it"):
        edited.load()
    payload = torch.load(checkpoint.checkpoint_path(run_dir), weights_only=True)
    payload["identity"]["code"] = "0" * 16
    torch.save(payload, checkpoint.checkpoint_path(run_dir))
    same = run_checkpointer(spec, run_dir)
    same.bind_data(train)
    with pytest.raises(checkpoint.CheckpointError, match="another code version"):
        same.load()


@pytest.mark.parametrize(("key", "value"), [("checkpoint_minutes", 0.5), ("compile", "inductor"),
                                          ("compile", "graph")])
def test_checkpoint_interval_and_step_mode_are_not_part_of_the_run(tmp_path: Path, key: str,
                                                                    value: object) -> None:
    """Changing training.checkpoint_minutes or the step mode (training.compile) keeps the run
    folder (and a checkpoint valid); a setting that changes results does not."""
    base = [ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"]
    overlay = tmp_path / "o.yaml"
    overlay.write_text(yaml.safe_dump({"training": {key: value}}))
    before = resolve_run(load_config(base), "pendulum_filtering", "rkn", 0)
    after = resolve_run(load_config([*base, overlay]), "pendulum_filtering", "rkn", 0)
    assert getattr(after.training, key) == value
    assert before.run_dir("r") == after.run_dir("r") and before.identity() == after.identity()
    overlay.write_text(yaml.safe_dump({"training": {key: value, "learning_rate": 2e-3}}))
    other = resolve_run(load_config([*base, overlay]), "pendulum_filtering", "rkn", 0)
    assert other.run_dir("r") != before.run_dir("r")


# --- the script in a subprocess: signals and SIGKILL -----------------------------------------

def script_configs(tmp_path: Path, **training) -> list[str]:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results"),
                                       "training": {"batch_size": 6, **training}}))
    args = []
    for path in (ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml", overlay):
        args += ["--config", str(path)]
    return args


def start(args: list[str], log: Path) -> subprocess.Popen:
    handle = log.open("a")
    return subprocess.Popen([sys.executable, str(TRAIN), *args], stdout=handle, stderr=handle,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


# These tests wait for events (a log line, a new checkpoint, the end of a process), never for a
# fixed time: a start takes 3 s here and minutes on a loaded machine. The bound below only stops
# a hung test, and says what it waited for.
GENEROUS_S = 3600


def wait_until(condition, what: str, proc: subprocess.Popen, log: Path) -> None:
    """Poll ``condition`` while ``proc`` runs; fail naming ``what`` if it ends first or after
    GENEROUS_S seconds."""
    deadline = time.monotonic() + GENEROUS_S
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"waited {GENEROUS_S} s for {what}"
        time.sleep(0.05)


def finished(proc: subprocess.Popen, what: str) -> int:
    """``proc``'s exit status, waiting as long as it takes (up to GENEROUS_S, naming ``what``)."""
    try:
        return proc.wait(timeout=GENEROUS_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"waited {GENEROUS_S} s for {what} to end") from None


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_writes_checkpoint_and_exits_75(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM or SIGINT: the checkpoint is written, the process exits 75 (interrupted), nothing
    is left but the checkpoint; the same command resumes and completes."""
    configs = script_configs(tmp_path, epochs=400, checkpoint_minutes=0)
    assert subprocess.run([sys.executable, str(SIMULATE), *configs, "--dataset",
                           "pendulum_filtering"], capture_output=True).returncode == 0
    run_dir = tmp_path / "run"
    args = configs + ["--experiment", "pendulum_filtering", "--model", "gru_small", "--seed", "0",
                      "--run-dir", str(run_dir)]
    log = tmp_path / "train.log"
    proc = start(args, log)
    wait_until(lambda: "epoch 2/400" in log.read_text(), "training to be under way (epoch 2)",
               proc, log)
    proc.send_signal(sig)
    assert finished(proc, "the signalled run") == 75, log.read_text()
    assert "interrupted" in log.read_text() and "wrote checkpoint" in log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".run.ckpt"]
    assert not run_dir.exists()


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path: Path) -> None:
    """A run killed with SIGKILL at random moments (5 times) and restarted each time finishes
    with the metrics.json of an uninterrupted run, byte for byte; restarts resume from their
    checkpoint instead of epoch 1. Each kill comes a random 0-0.5 s after the attempt wrote its
    first checkpoint, so the test does not depend on how long a start takes."""
    # 3 steps an epoch, 1500 steps (about 25 s of training); a checkpoint every 0.25 s.
    configs = script_configs(tmp_path, epochs=500, checkpoint_minutes=0.004)
    assert subprocess.run([sys.executable, str(SIMULATE), *configs, "--dataset",
                           "pendulum_filtering"], capture_output=True).returncode == 0
    base = configs + ["--experiment", "pendulum_filtering", "--model", "rkn", "--seed", "0"]
    whole = tmp_path / "whole"
    # The uninterrupted reference trains on the other core while this one is killed and resumed.
    reference = subprocess.Popen([sys.executable, str(TRAIN), *base, "--run-dir", str(whole)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir, log = tmp_path / "killed", tmp_path / "killed.log"
    ckpt = checkpoint.checkpoint_path(run_dir)
    draw = random.Random(20190609)
    resumed_at = []
    for attempt in range(1, 6):
        written = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        proc = start(base + ["--run-dir", str(run_dir)], log)
        wait_until(lambda: ckpt.exists() and ckpt.stat().st_mtime_ns != written,
                   f"attempt {attempt} to write a checkpoint", proc, log)
        time.sleep(draw.uniform(0.0, 0.5))  # training goes on, more checkpoints or not
        assert proc.poll() is None, "the run finished before it could be killed: lengthen it"
        proc.send_signal(signal.SIGKILL)
        finished(proc, f"attempt {attempt}, killed")
        assert not run_dir.exists()
        if ckpt.exists():
            saved = torch.load(ckpt, weights_only=True)["state"]
            resumed_at.append((saved["loop"]["epoch"], saved["loop"]["step"]))
    proc = start(base + ["--run-dir", str(run_dir)], log)
    assert finished(proc, "the resumed run") == 0, log.read_text()[-3000:]
    assert finished(reference, "the uninterrupted reference run") == 0
    assert (run_dir / "metrics.json").read_bytes() == (whole / "metrics.json").read_bytes()
    assert history_without_time(run_dir) == history_without_time(whole)
    text = log.read_text()
    # Every start after the first resumed from the checkpoint its predecessor wrote, each later
    # than the one before, never from the start (epoch 1, step 0).
    assert len(resumed_at) == 5, resumed_at
    assert text.count("resuming from") == len(resumed_at), text[-3000:]
    assert all(a < b for a, b in zip(resumed_at, resumed_at[1:])) and resumed_at[0] > (1, 0), \
        resumed_at
    assert not ckpt.exists()
    assert list(tmp_path.glob(".killed.*.tmp")) == []  # a killed attempt's folder was cleaned up
    print(f"checkpoints at (epoch, step): {resumed_at}")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resumed_run_on_cuda_agrees_within_tolerance(tmp_path: Path, tiny) -> None:
    """On a GPU the generator states (CUDA ones included) are restored too, but not every CUDA
    kernel is deterministic: a resumed run's metrics agree with an uninterrupted run's within
    1e-4 (relative), not bit for bit."""
    train, test = tiny
    spec = spec_for("rkn")
    cuda = torch.device("cuda")
    whole = execute_run(spec, train_split=train, test_split=test, run_dir=tmp_path / "whole",
                        device=cuda)
    run_dir = tmp_path / "resumed"
    stopper = StopAt(checkpoint.checkpoint_path(run_dir), spec.identity(), 0, stop_at=4)
    with pytest.raises(checkpoint.RunInterrupted):
        execute_run(spec, train_split=train, test_split=test, run_dir=run_dir, device=cuda,
                    checkpointer=stopper)
    resumed = execute_run(spec, train_split=train, test_split=test, run_dir=run_dir,
                          device=cuda, checkpointer=run_checkpointer(spec, run_dir))
    for key, value in whole.items():
        assert resumed[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_early_stopping_tolerance_alone_keeps_run_identity() -> None:
    """With early stopping off (patience 0) its tolerance changes nothing, so it leaves the run's
    identity alone; with a patience it is part of it."""
    plain = spec_for("rkn")
    assert spec_for("rkn", early_stopping_min_delta=0.5).run_name == plain.run_name
    assert (spec_for("rkn", early_stopping_patience=5, early_stopping_min_delta=0.5).run_name
            != spec_for("rkn", early_stopping_patience=5).run_name)

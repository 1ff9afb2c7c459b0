"""The E1 command line: simulate, train, evaluate; clear errors and no partial run folders."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import simulate  # noqa: E402
import train  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from datasets.store import load_split  # noqa: E402
from harness import step, training  # noqa: E402
from harness.config import load_config  # noqa: E402
from harness.runner import RUN_FILES  # noqa: E402
from harness.runspec import RunSpec, resolve_run  # noqa: E402
from harness.registry import load_checkpoint  # noqa: E402


METRIC_KEYS = {"log_lik", "rmse", "coverage_1sigma", "coverage_2sigma", "norm_err_mean", "norm_err_var",
               "n_params", "selected_epoch", "converged", "epochs_trained"}


@pytest.fixture()
def configs(tmp_path: Path) -> list[str]:
    """Config arguments for the smoke scale with results under the test's temporary folder."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results"), "training": {"epochs": 1}}))
    args = []
    for path in (ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml", overlay):
        args += ["--config", str(path)]
    return args


def run_spec(tmp_path: Path, model: str, seed: int = 0) -> RunSpec:
    """The resolved run of the test's config (smoke scale, results under tmp_path)."""
    configs = [ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml", tmp_path / "overlay.yaml"]
    return resolve_run(load_config(configs), "pendulum_filtering", model, seed)


def run_dir(tmp_path: Path, model: str, seed: int = 0) -> Path:
    """The run folder the CLI uses by default (its name ends in the config hash)."""
    return run_spec(tmp_path, model, seed).run_dir(tmp_path / "results")


def data_dir(tmp_path: Path) -> Path:
    """The dataset folder the CLI uses by default (its name ends in the settings' hash)."""
    return run_spec(tmp_path, "rkn").data_dir(tmp_path / "results")


def leftovers(tmp_path: Path) -> list[Path]:
    """Temporary files or folders that a failed run must not leave behind."""
    return [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]


def test_train_writes_complete_run_and_is_deterministic(tmp_path: Path, configs: list[str]) -> None:
    """One rkn run writes every run file with flat numeric metrics; the same seed twice is identical."""
    assert simulate.main(configs + ["--dataset", "pendulum_filtering"]) == 0
    base = configs + ["--experiment", "pendulum_filtering", "--model", "rkn", "--seed", "0", "--device", "cpu"]
    assert train.main(base) == 0
    first = run_dir(tmp_path, "rkn")
    assert {p.name for p in first.iterdir()} == set(RUN_FILES)
    metrics = json.loads((first / "metrics.json").read_text())
    assert set(metrics) == METRIC_KEYS and all(isinstance(v, float) for v in metrics.values())
    again = tmp_path / "again"
    assert train.main(base + ["--run-dir", str(again)]) == 0
    assert (again / "metrics.json").read_bytes() == (first / "metrics.json").read_bytes()
    resolved = json.loads((first / "config.json").read_text())
    assert resolved["model_config"]["latent_obs_dim"] == 15 and resolved["training"]["epochs"] == 1
    # The checkpoint alone rebuilds the model: same predictions as those saved at evaluation.
    model = load_checkpoint(first / "model.pt")
    test = load_split(data_dir(tmp_path), "test")
    with torch.no_grad():
        pred = model(torch.from_numpy(test["images"][:4]))
    saved = np.load(first / "examples.npz")
    np.testing.assert_allclose(pred.mean.double().numpy(), saved["mean"], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(saved["targets"], test["targets"][:4])
    # An existing run folder is not overwritten silently.
    assert train.main(base) == 2
    assert train.main(base + ["--force"]) == 0
    assert leftovers(tmp_path) == []


def test_missing_data_is_a_clear_error(tmp_path: Path, configs: list[str], capsys: pytest.CaptureFixture) -> None:
    """Without simulated data, train exits 2 with the command that makes the data; no run folder."""
    code = train.main(configs + ["--experiment", "pendulum_filtering", "--model", "rkn", "--seed", "0"])
    assert code == 2
    assert "simulate.py" in capsys.readouterr().err
    assert not run_dir(tmp_path, "rkn").exists()


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--model", "transformer", "not part of experiment"),
    ("--experiment", "pendulum", "valid experiments"),
])
def test_unknown_names_are_clear_errors(tmp_path: Path, configs: list[str], capsys: pytest.CaptureFixture,
                                        flag: str, value: str, message: str) -> None:
    """Unknown experiment or model names exit 2 and list the valid names."""
    args = {"--experiment": "pendulum_filtering", "--model": "rkn", "--seed": "0", flag: value}
    assert train.main(configs + [a for kv in args.items() for a in kv]) == 2
    assert message in capsys.readouterr().err


def test_interrupt_leaves_no_run_folder(tmp_path: Path, configs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during training exits 130 and leaves neither the run folder nor temporary files."""
    assert simulate.main(configs + ["--dataset", "pendulum_filtering"]) == 0

    def interrupt(model, batch):
        raise KeyboardInterrupt

    monkeypatch.setattr(step, "batch_loss", interrupt)
    assert train.main(configs + ["--experiment", "pendulum_filtering", "--model", "rkn", "--seed", "0"]) == 130
    assert not run_dir(tmp_path, "rkn").exists()
    assert leftovers(tmp_path) == []


def test_nan_loss_leaves_no_run_folder(tmp_path: Path, configs: list[str], monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    """A NaN loss exits 2 with advice, and neither the run folder nor temporary files remain."""
    assert simulate.main(configs + ["--dataset", "pendulum_filtering"]) == 0
    monkeypatch.setattr(step, "batch_loss", lambda model, batch: training.torch.tensor(float("nan")))
    code = train.main(configs + ["--experiment", "pendulum_filtering", "--model", "gru", "--seed", "0"])
    assert code == 2
    assert "learning_rate" in capsys.readouterr().err
    assert not run_dir(tmp_path, "gru").exists()
    assert leftovers(tmp_path) == []


def test_corrupt_data_is_a_clear_error(tmp_path: Path, configs: list[str], capsys: pytest.CaptureFixture) -> None:
    """A damaged dataset file is detected by its checksum before training starts."""
    assert simulate.main(configs + ["--dataset", "pendulum_filtering"]) == 0
    data = data_dir(tmp_path) / "train.npz"
    data.write_bytes(data.read_bytes()[:-100])
    assert train.main(configs + ["--experiment", "pendulum_filtering", "--model", "rkn", "--seed", "0"]) == 2
    assert "train.npz" in capsys.readouterr().err
    assert not run_dir(tmp_path, "rkn").exists()


@pytest.mark.slow
def test_e1_runs_for_every_model(tmp_path: Path, configs: list[str]) -> None:
    """E1 at smoke scale through the CLI for rkn, lstm, gru and the parameter-matched variants."""
    assert simulate.main(configs + ["--dataset", "pendulum_filtering"]) == 0
    counts = {}
    for model in ("rkn", "lstm", "lstm_small", "gru", "gru_small"):
        for seed in (0, 1):
            assert train.main(configs + ["--experiment", "pendulum_filtering", "--model", model,
                                         "--seed", str(seed)]) == 0
            metrics = json.loads((run_dir(tmp_path, model, seed) / "metrics.json").read_text())
            counts[model] = metrics["n_params"]
            assert all(v == v for v in metrics.values()), f"NaN metric for {model}"
    assert counts["lstm"] > 10 * counts["lstm_small"]


def test_run_folder_follows_the_umask(tmp_path: Path, configs: list[str]) -> None:
    """A run folder and its files get the umask's modes, so a group can read shared results
    (temporary-file defaults were 0700 folders and 0600 files)."""
    assert simulate.main(configs + ["--dataset", "pendulum_filtering"]) == 0
    old = os.umask(0o022)
    try:
        assert train.main(configs + ["--experiment", "pendulum_filtering", "--model", "gru_small",
                                     "--seed", "0"]) == 0
    finally:
        os.umask(old)
    folder = run_dir(tmp_path, "gru_small")
    assert folder.stat().st_mode & 0o777 == 0o755
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == \
        {name: 0o644 for name in RUN_FILES}

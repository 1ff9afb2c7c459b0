"""One run's resolved spec: folder names (hashes), the grid, seed derivation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import ConfigError, load_config
from harness.runspec import config_dataset_dir, derive_seeds, resolve_run, run_grid
from tests.overlay import overlay

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "config" / "config.yaml"


def test_resolve_run_names_valid_choices() -> None:
    """Unknown experiment or a model outside the experiment: ConfigError listing what exists."""
    config = load_config([BASE])
    spec = resolve_run(config, "pendulum_filtering", "rkn", 3)
    assert spec.run_dir("results") == Path(f"results/paper/runs/pendulum_filtering/rkn/seed3-{spec.config_hash}")
    assert len(spec.config_hash) == 8 and int(spec.config_hash, 16) >= 0
    assert spec.data_dir("results").parent == Path("results/paper/datasets")
    assert spec.data_dir("results").name.startswith("pendulum_filtering-")
    assert spec.training.epochs == 500
    with pytest.raises(ConfigError, match="valid experiments: \\[.*'pendulum_filtering'.*\\]"):
        resolve_run(config, "pendulum", "rkn", 0)
    with pytest.raises(ConfigError, match="its models"):
        resolve_run(config, "pendulum_filtering", "rkn_uninformed", 0)
    with pytest.raises(ConfigError, match="seed 9 is not one of"):
        resolve_run(config, "pendulum_filtering", "rkn", 9)


def test_spec_carries_the_model_class_and_merged_params(tmp_path: Path) -> None:
    """model_class and model_params come from the models section with the experiment's
    model_overrides on top."""
    config = load_config([BASE])
    spec = resolve_run(config, "quad_link", "lstm_m100", 0)
    assert spec.model_class == "lstm"
    assert spec.model_params == {"latent_obs_dim": 100, "encoder": "quad_link",
                                 "encoder_hidden": 200}


def test_run_folder_hash_changes_only_for_edited_runs(tmp_path: Path) -> None:
    """Editing one model's setting renames exactly that model's run folders; the rest keep theirs."""
    before = load_config([BASE])
    after = load_config([BASE, overlay(tmp_path, {"experiments": {"pendulum_filtering": {
        "model_overrides": {"gru": {"dec_hidden": [20]}}}}})])
    changed = {(e, m, s) for e, m, s in run_grid(before)
               if resolve_run(before, e, m, s).run_dir("r") != resolve_run(after, e, m, s).run_dir("r")}
    assert changed == {("pendulum_filtering", "gru", s) for s in before["experiments"]["pendulum_filtering"]["seeds"]}
    assert resolve_run(before, "pendulum_filtering", "rkn", 0).run_dir("r") == \
        resolve_run(load_config([BASE]), "pendulum_filtering", "rkn", 0).run_dir("r")


def test_dataset_folder_hash_follows_its_settings(tmp_path: Path) -> None:
    """Editing a dataset's params renames its folder; spelling out a default value does not."""
    base = load_config([BASE])
    folder = config_dataset_dir(base, "pendulum_filtering")
    edited = load_config([BASE, overlay(tmp_path, {"datasets": {"pendulum_filtering": {"params": {"num_test": 999}}}})])
    assert config_dataset_dir(edited, "pendulum_filtering") != folder
    explicit = {"datasets": {"pendulum_filtering": {"params": {"seq_len": 75}}}}
    assert config_dataset_dir(load_config([BASE, overlay(tmp_path, explicit)]), "pendulum_filtering") == folder
    assert resolve_run(base, "pendulum_filtering", "rkn", 0).data_dir("results") == folder


def test_derived_seeds_are_stable_and_distinct() -> None:
    """Seed streams depend only on the run seed, differ between streams and between seeds."""
    assert derive_seeds(0) == derive_seeds(0)
    assert derive_seeds(0)["init"] != derive_seeds(0)["batch_order"]
    assert derive_seeds(0) != derive_seeds(1)


def test_whole_sequence_training_keeps_the_run_folder_and_truncation_renames_it(
        tmp_path: Path) -> None:
    """training.bptt_length at its default 0 (the training every run had before the setting
    existed) is left out of a run's identity, so existing run folders keep their names; any
    L > 0 gives new run folders."""
    config = load_config([BASE])
    spec = resolve_run(config, "multiple_pendulums", "rkn", 0)
    assert spec.training.bptt_length == 0 and "bptt_length" not in spec.identity()["training"]
    assert spec.to_dict()["training"]["bptt_length"] == 0  # config.json still states it
    truncated = load_config([BASE, overlay(tmp_path, {"training": {"bptt_length": 75}})])
    other = resolve_run(truncated, "multiple_pendulums", "rkn", 0)
    assert other.identity()["training"]["bptt_length"] == 75
    assert other.run_dir("r") != spec.run_dir("r")

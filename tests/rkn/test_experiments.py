"""Config loading, strict validation, the run grid and seed derivation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.config import ConfigError, config_dataset_dir, derive_seeds, load_config, resolve_run, run_grid

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "config" / "config.yaml"


def overlay(tmp_path: Path, content: dict) -> Path:
    """Write a config overlay into the test's temporary folder."""
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.mark.parametrize("scale", ["smoke", "quick"])
def test_shipped_configs_are_valid(scale: str) -> None:
    """config.yaml alone and with each shipped overlay validates and names its scale."""
    assert load_config([BASE])["scale"] == "paper"
    assert load_config([BASE, ROOT / "config" / f"{scale}.yaml"])["scale"] == scale


def test_overlay_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    """Overlays merge key by key; lists (seeds, models) are replaced, not appended."""
    config = load_config([BASE, overlay(tmp_path, {"training": {"epochs": 3},
                                                   "experiments": {"pendulum_filtering": {"seeds": [7]}}})])
    assert config["training"]["epochs"] == 3 and config["training"]["batch_size"] == 50
    e1_runs = [run for run in run_grid(config) if run[0] == "pendulum_filtering"]
    assert e1_runs == [("pendulum_filtering", m, 7) for m in config["experiments"]["pendulum_filtering"]["models"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"trainig": {}}, r"unknown key\(s\) \['trainig'\].*valid keys"),
        ({"training": {"epoch": 3}}, r"unknown key\(s\) \['epoch'\] in training"),
        ({"training": {"clip_mode": "sometimes"}}, "clip_mode 'sometimes' is not one of"),
        ({"experiments": {"pendulum_filtering": {"models": ["rkn", "transformer"]}}}, "unknown model 'transformer'.*valid models"),
        ({"experiments": {"pendulum_filtering": {"seeds": []}}}, "seeds must be a non-empty list"),
        ({"experiments": {"pendulum_filtering": {"model_overrides": {"rkn": {"bandwith": 2}}}}}, "unknown config key 'bandwith'"),
        ({"datasets": {"pendulum_filtering": {"generator": "cartpole"}}}, "generator 'cartpole' is unknown"),
        ({"experiments": {"e9": {"dataset": "kitti", "models": ["rkn"], "seeds": [0]}}}, "dataset 'kitti' is not one of"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, content: dict, message: str) -> None:
    """Typos and unknown names fail with a message that names the problem and the valid choices."""
    with pytest.raises(ConfigError, match=message):
        load_config([BASE, overlay(tmp_path, content)])


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist is reported by name."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([tmp_path / "nope.yaml"])


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

"""Config loading and the one validation (JSON schema plus cross-field checks)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.config import ROLES, ConfigError, load_config, read_yaml
from harness.runspec import resolve_run, run_grid
from harness.training import split_train_val
from tests.overlay import overlay

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "config" / "config.yaml"


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
        ({"training": {"clip_mode": "sometimes"}}, r"training.clip_mode: 'sometimes' is not one of"),
        ({"training": {"learning_rate": "1e-3"}},
         r"training.learning_rate: '1e-3' is not of type 'number' \(YAML 1.1 reads 1e-3 as a "
         r"string: write 1.0e-3\)"),
        ({"experiments": {"pendulum_filtering": {"models": ["rkn", "transformer"]}}}, "unknown model 'transformer'.*valid models"),
        ({"experiments": {"pendulum_filtering": {"seeds": []}}}, r"experiments.pendulum_filtering.seeds: \[\] should be non-empty"),
        ({"experiments": {"pendulum_filtering": {"model_overrides": {"rkn": {"bandwith": 2}}}}}, "unknown config key 'bandwith'"),
        ({"experiments": {"pendulum_filtering": {"model_overrides": {"rkn": {"bandwidth": "3"}}}}},
         "model rkn.*bandwidth must be int, got '3'"),
        ({"models": {"rkn": {"role": "champion"}}}, r"models.rkn.role: 'champion' is not one of"),
        ({"models": {"rkn": {"class": "transformer"}}}, "unknown model class 'transformer'"),
        ({"models": {"mine": {"class": "nowhere.pkg:Model", "role": "baseline"}}},
         "cannot import module 'nowhere.pkg'"),
        ({"models": {"mine": {"class": "harness.config:ConfigError", "role": "baseline"}}},
         "is not a subclass of rkn.interface.SequenceModel"),
        ({"models": {"lstm": {"role": "rkn"}}}, r"models \['rkn', 'lstm'\] all have role 'rkn'"),
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


def test_yaml_merge_keys_load_and_repeated_keys_are_refused(tmp_path: Path) -> None:
    """`<<: *anchor` works as in any YAML (explicit keys win); a key written twice in one
    mapping, or two keys Python takes as equal (1 and true), is an error naming file and lines."""
    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &b {epochs: 1, batch_size: 4}\ntraining: {<<: *b, epochs: 2}\n")
    assert read_yaml(merged)["training"] == {"epochs": 2, "batch_size": 4}
    for text, message in [("a: 1\nb: {c: 1, c: 2}\n", r"key 'c' is repeated .*first at line 2"),
                          ("x: 1\ntrue: 2\n1: 3\n", r"key '1' \(equal to 'true'\) is repeated")]:
        path = tmp_path / "repeated.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as err:
            read_yaml(path)
        assert f'in "{path}", line' in str(err.value)
    with pytest.raises(ConfigError, match=r"does not exist \(it is a folder\)"):
        read_yaml(tmp_path)


def test_non_finite_numbers_are_refused_with_their_key(tmp_path: Path) -> None:
    path = tmp_path / "nan.yaml"
    path.write_text("experiments:\n  ablations: {seeds: [0, 1]}\ntraining: {clip_value: -.inf}\n")
    with pytest.raises(ConfigError, match=r"nan.yaml: training.clip_value is -inf; every number"):
        load_config([BASE, path])


def test_roles_match_the_schema() -> None:
    """The roles harness.config knows are exactly the schema's enum."""
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    role = schema["properties"]["models"]["additionalProperties"]["properties"]["role"]
    assert tuple(role["enum"]) == ROLES


def test_truncated_bptt_needs_models_that_train_on_windows(tmp_path: Path) -> None:
    """training.bptt_length > 0 with a model that implements no windows (a user's model) is a
    ConfigError naming the experiment, the setting and the model; a negative value is refused by
    the schema; with 0 the same model is fine."""
    pixel_gru = {"class": "tests.workflow.own_model:PixelGRU", "role": "baseline"}
    content = {"models": {"pixel_gru": pixel_gru},
               "experiments": {"pendulum_filtering": {"models": ["rkn", "lstm", "pixel_gru"],
                                                      "training": {"bptt_length": 5}}}}
    with pytest.raises(ConfigError, match=r"experiments.pendulum_filtering: training.bptt_length "
                                          r"= 5 .*model pixel_gru .*forward_window"):
        load_config([BASE, overlay(tmp_path, content)])
    content["experiments"]["pendulum_filtering"]["training"]["bptt_length"] = -1
    with pytest.raises(ConfigError, match="bptt_length: -1 is less than the minimum of 0"):
        load_config([BASE, overlay(tmp_path, content)])
    content["experiments"]["pendulum_filtering"]["training"]["bptt_length"] = 0
    load_config([BASE, overlay(tmp_path, content)])
    content["experiments"]["pendulum_filtering"]["models"] = ["rkn", "lstm"]
    content["experiments"]["pendulum_filtering"]["training"]["bptt_length"] = 5
    assert load_config([BASE, overlay(tmp_path, content)])["experiments"]["pendulum_filtering"]


@pytest.mark.parametrize("scale", ["smoke", "quick", "paper"])
def test_e3_script_overlay_gives_the_authors_run_script_settings(scale: str) -> None:
    """config/e3_script.yaml after a scale validates and resolves E3 to the icml_submission run
    script's settings (50 / 500 sequences of 150 steps, seeds 0 / 1, batch 50, 30 epochs,
    truncated BPTT over 75-step windows; 45 sequences trained on after a validation split of 5),
    under a scale name of its own; everything else stays as the scale says."""
    files = [BASE, ROOT / "config" / f"{scale}.yaml"]
    plain = load_config(files)
    config = load_config([*files, ROOT / "config" / "e3_script.yaml"])
    assert config["scale"] == "e3_script" != plain["scale"]
    for experiment, model, seed in run_grid(plain):
        before, after = resolve_run(plain, experiment, model, seed), resolve_run(config, experiment,
                                                                                 model, seed)
        assert after.model_params == before.model_params
        if experiment != "multiple_pendulums":
            assert dataclasses.replace(after, scale=before.scale) == before
            continue
        assert after.dataset_params == {"num_train": 50, "num_test": 500, "seq_len": 150,
                                        "train_seed": 0, "test_seed": 1}
        script = {"batch_size": 50, "epochs": 30, "bptt_length": 75}
        assert {key: getattr(after.training, key) for key in script} == script
        assert dataclasses.replace(after.training, **{k: getattr(before.training, k)
                                                      for k in script}) == before.training
        train, val = split_train_val({"images": np.zeros((50, 1))}, after.training.val_fraction)
        assert (len(train["images"]), len(val["images"])) == (45, 5)

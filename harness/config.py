"""The benchmark config: loading with overlays and the one validation used by workflow and scripts.

Config layout (config/config.yaml documents every key)::

    scale: quick                 # names the result folder results/{scale}/
    results_dir: results
    training: {...}              # TrainConfig defaults for every run
    resources: {train: {...}}    # scheduler requests, no effect on results
    datasets:  {name: {generator: ..., params: {...}}}
    models:    {name: {class: ..., role: ..., params: {...}}}
    experiments:
      name: {dataset: ..., models: [...], seeds: [...],
             training: {...},                     # optional TrainConfig overrides
             model_overrides: {model: {...}}}     # optional model params on top of models.<name>
    efficiency: {models: [...], latent_sizes: [...], batch_size: ..., seq_len: ...,
                 repeats: ..., warmup: ...}       # optional: claim 7 (harness/efficiency.py)

``validate_config`` applies the JSON schema ``workflow/schemas/config.schema.yaml`` through the
``jsonschema`` library, then the checks a schema cannot express: names that refer to other
sections, dataset params, model params against the model's config dataclass, training values.
Every error names the key path, the value and what is expected.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from datasets import DATASETS, default_params
from harness.registry import make_config, model_class
from harness.training import TrainConfig

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
# The roles a model can play in the claims (the schema's enum; a test keeps the two equal).
ROLES = ("rkn", "baseline", "generative", "reference_row", "full_covariance", "full_transition",
         "ablation")
# A YAML 1.1 float without a dot ("1e-3") is read as a string: the schema refuses it with this hint.
_FLOAT_WITHOUT_DOT = re.compile(r"^[+-]?\d+[eE][+-]?\d+$")


class ConfigError(ValueError):
    """The benchmark config is invalid; the message says which key and how to fix it."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key repeated in one mapping: plain YAML keeps the last
    value and silently drops the others (a second ``training:`` block, a model defined twice)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: explicit keys win
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:  # Python's equality: 1 and true would also collapse into one key
                first = seen[key]
                text = getattr(key_node, "value", key)
                first_text = getattr(first, "value", key)
                same = repr(text) if text == first_text else f"{text!r} (equal to {first_text!r})"
                raise yaml.constructor.ConstructorError(
                    f"key {same} is repeated in one mapping (first at line "
                    f"{first.start_mark.line + 1}); YAML would keep only the last value: merge "
                    "the two into one entry", None, "repeated here", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """One YAML file (``what`` names it in errors), with repeated keys refused; parse errors
    name the file and line.

    Raises:
        ConfigError: the file is missing, cannot be read or parsed, or repeats a key in one mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist" + (" (it is a folder)" if path.is_dir()
                                                             else ""))
    try:
        with path.open(encoding="utf-8") as stream:  # the stream's name goes into error marks
            return yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{what} {path} cannot be read as YAML: {err}") from None


def _non_finite(value: Any, where: str = "") -> tuple[str, float] | None:
    """(key path, value) of the first NaN or infinite number in ``value`` (YAML's .nan / .inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(top level)", value
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def deep_merge(base: dict, overlay: dict) -> dict:
    """Recursively merge ``overlay`` into a copy of ``base``; lists and scalars are replaced."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(paths: list[str | Path]) -> dict:
    """Read the config file and its overlays (later files win) and validate the result.

    Raises:
        ConfigError: a file is missing, unreadable, not a mapping, or the merged config is invalid.
    """
    if not paths:
        raise ConfigError("no config file given: pass config/config.yaml (and optional overlays)")
    config: dict = {}
    for path in paths:
        layer = read_yaml(path) or {}
        if not isinstance(layer, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        bad = _non_finite(layer)
        if bad:
            raise ConfigError(f"config file {path}: {bad[0]} is {bad[1]!r}; every number "
                              "in the config must be finite (YAML .nan / .inf are not values)")
        config = deep_merge(config, layer)
    validate_config(config)
    return config


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "the config's top level"


def _schema_message(error: jsonschema.ValidationError) -> str:
    """One readable line for a schema violation: where, what was found, what is expected."""
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return f"unknown key(s) {unknown} in {where}; valid keys: {allowed}"
    if error.validator == "required":
        return f"{where}: {error.message}; see config/config.yaml for the keys and their meaning"
    hint = ""
    value = error.instance
    message = error.message
    if isinstance(value, str) and _FLOAT_WITHOUT_DOT.match(value.strip()):
        mantissa, exponent = re.split("[eE]", value.strip())
        hint = (f" (YAML 1.1 reads {value} as a string: write {mantissa}.0e{exponent})")
    elif error.validator == "pattern" and isinstance(value, str) and value != value.strip():
        hint = " (remove the white space or newline around the name)"
    elif error.validator == "maximum" and isinstance(value, int):
        digits = str(value)
        if len(digits) > 20:  # a seed of 10^300 would fill the terminal
            message = (f"{digits[:6]}...{digits[-3:]} ({len(digits)} digits) is greater than "
                       f"the maximum of {error.validator_value}")
        if where.endswith("seed") or re.search(r"\.seeds\.\d+$", where):
            hint = (f" (seeds are at most {error.validator_value} = 2^32 - 1: numpy's RandomState "
                    "takes no larger seed and a run folder's name carries its seed; use a "
                    "smaller one)")
    return f"{where}: {message}{hint}"


def _check_keys(found: dict, allowed: list[str] | tuple[str, ...], where: str) -> None:
    unknown = sorted(set(found) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {sorted(allowed)}")


def train_config(values: dict, where: str) -> TrainConfig:
    """``TrainConfig`` from config values; ConfigError names ``where`` and the problem."""
    _check_keys(values, [f.name for f in dataclasses.fields(TrainConfig)], where)
    try:
        return TrainConfig(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def model_params(config: dict, experiment: str, model: str) -> dict[str, Any]:
    """The params of ``model`` in ``experiment``: models.<model>.params, then the experiment's
    model_overrides.<model> on top."""
    base = config["models"][model].get("params", {})
    overrides = config["experiments"][experiment].get("model_overrides", {}).get(model, {})
    return {**base, **overrides}


def _check_validation_split(config: dict, experiment: str, training: TrainConfig) -> None:
    """The validation split (the last ceil(val_fraction * num_train) training sequences) must
    leave at least one sequence to train on."""
    dataset = config["experiments"][experiment]["dataset"]
    spec = config["datasets"][dataset]
    num_train = {**default_params(spec["generator"]), **spec.get("params", {})}["num_train"]
    num_val = math.ceil(training.val_fraction * num_train)
    if num_val >= num_train:
        raise ConfigError(
            f"experiments.{experiment}: datasets.{dataset}.params.num_train = {num_train} leaves "
            f"no sequence to train on after the validation split of {num_val} "
            f"(training.val_fraction = {training.val_fraction}); raise num_train or lower "
            "val_fraction")


def validate_config(config: dict) -> None:
    """Raise ConfigError for the first problem of the merged config (see the module docstring)."""
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(config),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ConfigError(_schema_message(errors[0]))
    train_config(config["training"], "training")
    for name, spec in config["datasets"].items():
        if spec["generator"] not in DATASETS:
            raise ConfigError(f"datasets.{name}.generator {spec['generator']!r} is unknown; "
                              f"valid: {sorted(DATASETS)}")
        _check_keys(spec.get("params", {}), tuple(default_params(spec["generator"])),
                    f"datasets.{name}.params (generator {spec['generator']})")
    for name, spec in config["models"].items():
        try:
            model_class(spec["class"])
        except ValueError as err:
            raise ConfigError(f"models.{name}.class: {err}") from None
    for name, spec in config["experiments"].items():
        where = f"experiments.{name}"
        if spec["dataset"] not in config["datasets"]:
            raise ConfigError(f"{where}.dataset {spec['dataset']!r} is not one of the config's "
                              f"datasets {sorted(config['datasets'])}")
        for model in list(spec["models"]) + list(spec.get("model_overrides", {})):
            if model not in config["models"]:
                raise ConfigError(f"{where}: unknown model {model!r}; valid models (the config's "
                                  f"models section): {sorted(config['models'])}")
        rkn_models = [m for m in spec["models"] if config["models"][m]["role"] == "rkn"]
        if len(rkn_models) > 1:
            raise ConfigError(f"{where}: models {rkn_models} all have role 'rkn'; an experiment "
                              "compares every model with one RKN: give the others role 'ablation'")
        training = train_config({**config["training"], **spec.get("training", {})},
                                f"{where}.training")
        _check_validation_split(config, name, training)
        for model in spec["models"]:
            cls = model_class(config["models"][model]["class"])
            if training.bptt_length > 0 and cls.trainable and not cls.supports_windows():
                raise ConfigError(
                    f"{where}: training.bptt_length = {training.bptt_length} (truncated "
                    f"back-propagation) but model {model} ({config['models'][model]['class']}) "
                    "cannot train on windows: it implements no forward_window / "
                    "training_loss_window (rkn.interface.SequenceModel); set "
                    f"{where}.training.bptt_length: 0 or leave the model out")
            try:
                make_config(cls, model_params(config, name, model),
                            where=f"{where}: model {model} (models.{model}.params + "
                                  "model_overrides)")
            except ValueError as err:
                raise ConfigError(str(err)) from None
    for model in config.get("efficiency", {}).get("models", []):
        if model not in config["models"]:
            raise ConfigError(f"efficiency.models: unknown model {model!r}; valid models (the "
                              f"config's models section): {sorted(config['models'])}")

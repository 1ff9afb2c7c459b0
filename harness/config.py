"""The benchmark config: loading with overlays, strict validation, the run grid and one run's spec.

Config layout (config/config.yaml documents every key)::

    scale: quick                 # names the result folder results/{scale}/
    results_dir: results
    training: {...}              # TrainConfig defaults for every run
    datasets:  {name: {generator: ..., params: {...}}}
    experiments:
      name: {dataset: ..., models: [...], seeds: [...],
             training: {...},                     # optional TrainConfig overrides
             model_overrides: {model: {...}}}     # optional model config overrides

Unknown keys anywhere are errors that name the key and list the valid ones.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness.training import TrainConfig

# Bump when a code change alters results: every run folder name changes with it.
RESULTS_VERSION = 1

TOP_LEVEL_KEYS = ("scale", "expected_duration", "results_dir", "training", "datasets", "experiments", "resources")
# Scheduler requests of the Snakemake training rule (no effect on results, not in the run hash).
RESOURCE_KEYS = {"train": ("threads", "mem_mb", "runtime", "gpu")}
DATASET_KEYS = ("generator", "params")
EXPERIMENT_KEYS = ("dataset", "models", "seeds", "training", "model_overrides")


class ConfigError(ValueError):
    """The benchmark config is invalid; the message says which key and how to fix it."""


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
    """Read the config file and its overlays (later files win) and validate the result."""
    if not paths:
        raise ConfigError("no config file given: pass config/config.yaml (and optional overlays)")
    config: dict = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        with path.open() as handle:
            layer = yaml.safe_load(handle) or {}
        if not isinstance(layer, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        config = deep_merge(config, layer)
    validate_config(config)
    return config


def _check_keys(found: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(found) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {sorted(allowed)}")


def _train_config(values: dict, where: str) -> TrainConfig:
    names = tuple(f.name for f in dataclasses.fields(TrainConfig))
    _check_keys(values, names, where)
    try:
        return TrainConfig(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def validate_config(config: dict) -> None:
    """Raise ConfigError for unknown keys, unknown model/dataset names and bad training values."""
    from datasets import DATASETS  # noqa: PLC0415 (keeps `rkn` importable without the data package)
    from harness.registry import MODELS, config_from_dict  # noqa: PLC0415

    _check_keys(config, TOP_LEVEL_KEYS, "the config's top level")
    for key in ("scale", "datasets", "experiments"):
        if key not in config:
            raise ConfigError(f"the config has no '{key}' section; see config/config.yaml")
    _train_config(config.get("training", {}), "training")
    resources = config.get("resources", {})
    _check_keys(resources, tuple(RESOURCE_KEYS), "resources")
    for job, values in resources.items():
        _check_keys(values, RESOURCE_KEYS[job], f"resources.{job}")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "gpu" else 1):
                raise ConfigError(f"resources.{job}.{key} must be an integer >= {0 if key == 'gpu' else 1}, "
                                  f"got {value!r}")
    for name, spec in config["datasets"].items():
        _check_keys(spec, DATASET_KEYS, f"datasets.{name}")
        if spec.get("generator") not in DATASETS:
            raise ConfigError(
                f"datasets.{name}.generator {spec.get('generator')!r} is unknown; valid: {sorted(DATASETS)}")
    for name, spec in config["experiments"].items():
        where = f"experiments.{name}"
        _check_keys(spec, EXPERIMENT_KEYS, where)
        if spec.get("dataset") not in config["datasets"]:
            raise ConfigError(f"{where}.dataset {spec.get('dataset')!r} is not one of the config's "
                              f"datasets {sorted(config['datasets'])}")
        for model in list(spec.get("models", [])) + list(spec.get("model_overrides", {})):
            if model not in MODELS:
                raise ConfigError(f"{where}: unknown model {model!r}; valid models: {sorted(MODELS)}")
        seeds = spec.get("seeds", [])
        if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise ConfigError(f"{where}.seeds must be a non-empty list of non-negative integers")
        _train_config({**config.get("training", {}), **spec.get("training", {})}, f"{where}.training")
        for model, overrides in spec.get("model_overrides", {}).items():
            try:
                config_from_dict(model, overrides)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{where}.model_overrides.{model}: {err}") from err


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one (experiment, model, seed) run; written as its config.json."""

    scale: str
    experiment: str
    model: str
    seed: int
    dataset: str
    generator: str
    dataset_params: dict[str, Any]
    training: TrainConfig
    model_overrides: dict[str, Any]

    @property
    def config_hash(self) -> str:
        """Short hash of this resolved spec and the results version of the code.

        It is part of the run folder's name, so an edited setting (or a code change that bumps
        ``RESULTS_VERSION``) gives new folders for exactly the affected runs, also in a fresh
        clone where Snakemake's own change records are absent.
        """
        return short_hash({"spec": self.to_dict()})

    @property
    def run_name(self) -> str:
        """seed{seed}-{config_hash}: the run folder's name."""
        return f"seed{self.seed}-{self.config_hash}"

    def run_dir(self, results_dir: str | Path) -> Path:
        """results/{scale}/runs/{experiment}/{model}/seed{seed}-{config_hash} (design.md)."""
        return Path(results_dir) / self.scale / "runs" / self.experiment / self.model / self.run_name

    def data_dir(self, results_dir: str | Path) -> Path:
        """results/{scale}/datasets/{dataset}-{hash of its settings}."""
        return dataset_dir(results_dir, self.scale, self.dataset, self.generator, self.dataset_params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the training config as a plain mapping)."""
        return dataclasses.asdict(self)


def short_hash(payload: dict[str, Any]) -> str:
    """8 hex digits of sha256 over the payload (as sorted JSON) and the code's RESULTS_VERSION."""
    text = json.dumps({**payload, "results_version": RESULTS_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def dataset_dir(results_dir: str | Path, scale: str, dataset: str, generator: str, params: dict[str, Any]) -> Path:
    """Where a scale's dataset lives: results/{scale}/datasets/{dataset}-{hash}.

    The hash covers the generator and its fully resolved parameters (defaults filled in), so an
    edit of the dataset's settings gives a new folder that the workflow simulates afresh.
    """
    from datasets import default_params  # noqa: PLC0415

    resolved = {**default_params(generator), **params}
    digest = short_hash({"generator": generator, "params": resolved})
    return Path(results_dir) / scale / "datasets" / f"{dataset}-{digest}"


def config_dataset_dir(config: dict, dataset: str) -> Path:
    """dataset_dir of a dataset named in the config's datasets section."""
    spec = config["datasets"][dataset]
    return dataset_dir(config.get("results_dir", "results"), config["scale"], dataset, spec["generator"],
                       spec.get("params", {}))


def resolve_run(config: dict, experiment: str, model: str, seed: int) -> RunSpec:
    """The fully resolved spec of one run; unknown experiment or model names are ConfigErrors."""
    experiments = config["experiments"]
    if experiment not in experiments:
        raise ConfigError(f"unknown experiment {experiment!r}; valid experiments: {sorted(experiments)}")
    spec = experiments[experiment]
    if model not in spec["models"]:
        raise ConfigError(f"model {model!r} is not part of experiment {experiment!r}; "
                          f"its models: {list(spec['models'])}")
    dataset = spec["dataset"]
    return RunSpec(
        scale=config["scale"],
        experiment=experiment,
        model=model,
        seed=int(seed),
        dataset=dataset,
        generator=config["datasets"][dataset]["generator"],
        dataset_params=dict(config["datasets"][dataset].get("params", {})),
        training=_train_config({**config.get("training", {}), **spec.get("training", {})}, experiment),
        model_overrides=dict(spec.get("model_overrides", {}).get(model, {})),
    )


def run_grid(config: dict) -> list[tuple[str, str, int]]:
    """Every (experiment, model, seed) the config asks for, in config order."""
    return [(name, model, int(seed)) for name, spec in config["experiments"].items()
            for model in spec["models"] for seed in spec["seeds"]]


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent streams from the run seed: model initialisation and batch order."""
    init, order = np.random.SeedSequence(seed).spawn(2)
    return {"init": int(init.generate_state(1)[0]), "batch_order": int(order.generate_state(1)[0])}

"""One run's resolved settings, the run grid, and every result path
(docs/design.md#runs-and-their-identity, docs/design.md#results-layout).

A run is one (experiment, model, seed) of the config. ``resolve_run`` turns the config into a
frozen ``RunSpec``; its hash names the run folder, so an edited setting gives new folders for
exactly the affected runs, also in a fresh clone where Snakemake's own records are absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets import DATASETS, default_params
from harness.config import ConfigError, model_params, train_config
from harness.training import TrainConfig

# Bump when a code change alters results: every run folder name changes with it. 3: band-stored
# transition (rounding) and TF "same" padding of the encoder convolutions.
RESULTS_VERSION = 3
# Training settings that are not part of a run's identity: how often to checkpoint, and the step
# mode (harness.step: eager, compiled or a CUDA graph compute the same step within floating-point
# tolerance, like the CPU and a GPU), so runs trained on a GPU with a captured step and on CPUs
# with a compiled one are the same runs and report together.
NOT_RESULTS = ("checkpoint_minutes", "compile")
# Training settings added after runs were made, at the value that gives those runs' numbers: left
# out of a run's identity at that value, so existing run folders keep their names.
ADDED_AT_NEUTRAL = {"bptt_length": 0, "early_stopping_patience": 0,
                    "early_stopping_min_delta": 0.0}


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one (experiment, model, seed) run; written as its config.json.

    ``model_class`` and ``model_params`` are the model's entry of the config's models section
    with the experiment's model_overrides on top; fields that follow from the data (image size,
    channels, decoder, target size) are added by the runner when the data is loaded.
    """

    scale: str
    experiment: str
    model: str
    seed: int
    dataset: str
    generator: str
    dataset_params: dict[str, Any]
    dataset_version: int
    training: TrainConfig
    model_class: str
    model_params: dict[str, Any]

    @property
    def config_hash(self) -> str:
        """Short hash of this resolved spec and the results version of the code (run folder name)."""
        return short_hash({"spec": self.identity()})

    def identity(self) -> dict[str, Any]:
        """The settings that decide the run's numbers: ``to_dict`` without the training keys that
        do not (``NOT_RESULTS``) and without later settings at their neutral value
        (``ADDED_AT_NEUTRAL``); the run folder's hash and a checkpoint's check use it."""
        return results_identity(self.to_dict())

    @property
    def run_name(self) -> str:
        """seed{seed}-{config_hash}: the run folder's name."""
        return f"seed{self.seed}-{self.config_hash}"

    def run_dir(self, results_dir: str | Path) -> Path:
        """results/{scale}/runs/{experiment}/{model}/seed{seed}-{config_hash}
        (docs/design.md#runs-and-their-identity)."""
        return Path(results_dir) / self.scale / "runs" / self.experiment / self.model / self.run_name

    def data_dir(self, results_dir: str | Path) -> Path:
        """results/{scale}/datasets/{dataset}-{hash of its settings}."""
        return dataset_dir(results_dir, self.scale, self.dataset, self.generator, self.dataset_params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the training config as a plain mapping)."""
        return dataclasses.asdict(self)


def results_identity(spec: dict[str, Any]) -> dict[str, Any]:
    """``RunSpec.identity`` of a spec in its ``to_dict`` form, e.g. a run folder's config.json
    (its other entries, such as model_config, are dropped), so a folder can be checked against
    the config that should have made it."""
    fields = {f.name for f in dataclasses.fields(RunSpec)}
    identity = {k: v for k, v in spec.items() if k in fields}
    training = dict(spec.get("training", {}))
    if not training.get("early_stopping_patience"):  # off: its tolerance changes nothing
        training.pop("early_stopping_min_delta", None)
    identity["training"] = {k: v for k, v in training.items()
                            if k not in NOT_RESULTS
                            and not (k in ADDED_AT_NEUTRAL and v == ADDED_AT_NEUTRAL[k])}
    return identity


def short_hash(payload: dict[str, Any]) -> str:
    """8 hex digits of sha256 over the payload (as sorted JSON) and the code's RESULTS_VERSION."""
    text = json.dumps({**payload, "results_version": RESULTS_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def dataset_dir(results_dir: str | Path, scale: str, dataset: str, generator: str,
                params: dict[str, Any]) -> Path:
    """Where a scale's dataset lives: results/{scale}/datasets/{dataset}-{hash}.

    The hash covers the generator, its version (``datasets.DatasetSpec.version``, bumped when
    the generator's output changes) and its fully resolved parameters (defaults filled in), so an
    edit of the dataset's settings or a new generator version gives a new folder.
    """
    resolved = {**default_params(generator), **params}
    payload = {"generator": generator, "version": DATASETS[generator].version, "params": resolved}
    return Path(results_dir) / scale / "datasets" / f"{dataset}-{short_hash(payload)}"


def config_dataset_dir(config: dict, dataset: str) -> Path:
    """dataset_dir of a dataset named in the config's datasets section."""
    spec = config["datasets"][dataset]
    return dataset_dir(config["results_dir"], config["scale"], dataset, spec["generator"],
                       spec.get("params", {}))


def resolve_run(config: dict, experiment: str, model: str, seed: int) -> RunSpec:
    """The fully resolved spec of one run; unknown experiment, model or seed are ConfigErrors."""
    experiments = config["experiments"]
    if experiment not in experiments:
        raise ConfigError(f"unknown experiment {experiment!r}; valid experiments: "
                          f"{sorted(experiments)}")
    spec = experiments[experiment]
    if model not in spec["models"]:
        raise ConfigError(f"model {model!r} is not part of experiment {experiment!r}; "
                          f"its models: {list(spec['models'])}")
    if int(seed) not in spec["seeds"]:
        raise ConfigError(f"seed {seed} is not one of experiment {experiment!r}'s seeds "
                          f"{list(spec['seeds'])}")
    dataset = spec["dataset"]
    generator = config["datasets"][dataset]["generator"]
    return RunSpec(
        scale=config["scale"],
        experiment=experiment,
        model=model,
        seed=int(seed),
        dataset=dataset,
        generator=generator,
        dataset_params=dict(config["datasets"][dataset].get("params", {})),
        dataset_version=DATASETS[generator].version,
        training=train_config({**config["training"], **spec.get("training", {})}, experiment),
        model_class=config["models"][model]["class"],
        model_params=model_params(config, experiment, model),
    )


def run_dirs(config: dict, experiments: Iterable[str] | None = None) -> list[Path]:
    """The run folder of every run the config asks for (of ``experiments`` only, when given),
    in ``run_grid`` order, under the config's results_dir."""
    wanted = None if experiments is None else set(experiments)
    return [resolve_run(config, *run).run_dir(config["results_dir"]) for run in run_grid(config)
            if wanted is None or run[0] in wanted]


def efficiency_file(config: dict) -> Path | None:
    """results/{scale}/efficiency/efficiency-{hash}.json of the config's claim-7 measurements, or
    None without an ``efficiency`` section.

    The hash covers the section and the entries (class, params) of the models it names, so an
    edit of either measures anew, also in a fresh clone (as run folder names do).
    """
    section = config.get("efficiency")
    if section is None:
        return None
    models = {name: {"class": config["models"][name]["class"],
                     "params": config["models"][name].get("params", {})}
              for name in section["models"]}
    digest = short_hash({"efficiency": section, "models": models})
    folder = Path(config["results_dir"]) / config["scale"] / "efficiency"
    return folder / f"efficiency-{digest}.json"


def report_staging_dir(config: dict) -> Path:
    """results/{scale}/report: the report as the workflow builds it (the aggregate rule's
    outputs, which Snakemake deletes before it reruns the rule; ``report_dir`` is published from
    it in one atomic step)."""
    return Path(config["results_dir"]) / config["scale"] / "report"


def report_dir(config: dict) -> Path:
    """reports/{scale}: the published report (committed for smoke and quick)."""
    return Path("reports") / config["scale"]


def run_grid(config: dict) -> list[tuple[str, str, int]]:
    """Every (experiment, model, seed) the config asks for, in config order."""
    return [(name, model, int(seed)) for name, spec in config["experiments"].items()
            for model in spec["models"] for seed in spec["seeds"]]


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent streams from the run seed: model initialisation and batch order."""
    init, order = np.random.SeedSequence(seed).spawn(2)
    return {"init": int(init.generate_state(1)[0]), "batch_order": int(order.generate_state(1)[0])}

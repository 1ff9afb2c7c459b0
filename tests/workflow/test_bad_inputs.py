"""Bad input never passes silently: table-driven cases through the scripts (simulate, train,
aggregate), each asserting exit status 2, a message that names the offending key, file or value,
and that nothing was written (no run, dataset or report folder, no temporary file)."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import aggregate  # noqa: E402
import efficiency  # noqa: E402
import simulate  # noqa: E402
import train  # noqa: E402

from datasets.store import load_split, save_split  # noqa: E402
from harness.config import load_config  # noqa: E402
from harness.runspec import resolve_run, run_grid  # noqa: E402
from tests.reduced_config import reduced_smoke  # noqa: E402

E1 = ["--experiment", "pendulum_filtering", "--model", "rkn", "--seed", "0"]
# The experiments of the test's config (tests/reduced_config.py): E1 and E2, or E1 alone for the
# aggregator, which reports every experiment of the config.
BOTH = {"pendulum_filtering": None, "pendulum_imputation": None}
E1_ONLY = {"pendulum_filtering": None}


@dataclass
class Case:
    """One bad input: the script, the overlay (mapping, or raw YAML text), extra arguments, an
    optional preparation step, and a regex the error message must match."""

    script: str
    message: str
    overlay: dict | str | None = None
    args: list[str] = field(default_factory=lambda: list(E1))
    prepare: Callable[[Path, list[str]], list[str]] | None = None
    keep: dict = field(default_factory=lambda: dict(BOTH))
    # Changes the machine under the script (a full disk), after the preparation.
    patch: Callable[[pytest.MonkeyPatch], None] | None = None


def simulated(tmp_path: Path, configs: list[str], dataset: str = "pendulum_filtering") -> Path:
    """Simulate a dataset of the test's config; return its folder."""
    assert simulate.main(configs + ["--dataset", dataset]) == 0
    config = load_config([c for c in configs if c != "--config"])
    return resolve_run(config, *next(r for r in run_grid(config)
                                     if config["experiments"][r[0]]["dataset"] == dataset)
                       ).data_dir(config["results_dir"])


def nan_in(split: str, index: tuple) -> Callable[[Path, list[str]], list[str]]:
    """Preparation: simulate E1, then put one NaN target into ``split`` (checksums kept valid)."""
    def prepare(tmp_path: Path, configs: list[str]) -> list[str]:
        folder = simulated(tmp_path, configs)
        arrays = load_split(folder, split)
        arrays["targets"] = arrays["targets"].copy()
        arrays["targets"][index] = np.nan
        meta = json.loads((folder / "meta.json").read_text())
        from datasets.store import _write_npz, _sha256  # noqa: PLC0415 (bypass the write check)
        with open(folder / f"{split}.npz", "wb") as handle:
            _write_npz(handle, arrays)
        meta["splits"][split]["sha256"] = _sha256(folder / f"{split}.npz")
        (folder / "meta.json").write_text(json.dumps(meta))
        return []
    return prepare


def truncated(tmp_path: Path, configs: list[str]) -> list[str]:
    data = simulated(tmp_path, configs) / "test.npz"
    data.write_bytes(data.read_bytes()[:-100])
    return []


def unwritable(tmp_path: Path) -> Path:
    """A folder that cannot be created: its parent is a file (a read-only folder would be
    writable for root, who runs CI)."""
    (tmp_path / "locked").write_text("a file, not a folder")
    return tmp_path / "locked" / "output"


def unwritable_run_dir(tmp_path: Path, configs: list[str]) -> list[str]:
    simulated(tmp_path, configs)
    return ["--run-dir", str(unwritable(tmp_path))]


def with_data(tmp_path: Path, configs: list[str]) -> list[str]:
    simulated(tmp_path, configs)
    return []


def imputation_data(tmp_path: Path, configs: list[str]) -> list[str]:
    simulated(tmp_path, configs, "pendulum_imputation")
    return []


# The first aggregator case trains its two runs; the later ones copy them (same settings).
_TRAINED: list[Path] = []


def two_rkn_runs(tmp_path: Path, configs: list[str]) -> list[str]:
    """Two finished rkn runs of E1 (seeds 0 and 1) in tmp_path/run0, run1, and the claim-7
    measurements the report needs."""
    names = ("results", "run0", "run1")
    if _TRAINED:
        for name in names:
            shutil.copytree(_TRAINED[0] / name, tmp_path / name)
        return [str(tmp_path / "run0"), str(tmp_path / "run1")]
    simulated(tmp_path, configs)
    assert efficiency.main(configs) == 0
    folders = []
    for seed in ("0", "1"):
        folder = tmp_path / f"run{seed}"
        assert train.main(configs + ["--experiment", "pendulum_filtering", "--model", "rkn",
                                     "--seed", seed, "--run-dir", str(folder)]) == 0
        folders.append(str(folder))
    for name in names:  # an untouched copy: the cases edit their own
        shutil.copytree(tmp_path / name, tmp_path / "_pristine" / name)
    _TRAINED.append(tmp_path / "_pristine")
    return folders


def report_with(edit: Callable[[Path], None]) -> Callable[[Path, list[str]], list[str]]:
    """Preparation: two finished rkn runs, the second one's folder changed by ``edit``."""
    def prepare(tmp_path: Path, configs: list[str]) -> list[str]:
        folders = two_rkn_runs(tmp_path, configs)
        edit(Path(folders[1]))
        return ["--out", str(tmp_path / "report"), *folders]
    return prepare


def misnamed_run(tmp_path: Path, configs: list[str]) -> list[str]:
    """Preparation: seed 0's finished run in its own run folder and, copied, in seed 1's (as
    after an archive import with a folder renamed); the aggregator reads the config's folders."""
    folders = two_rkn_runs(tmp_path, configs)
    config = load_config([c for c in configs if c != "--config"])
    for seed in (0, 1):
        spec = resolve_run(config, "pendulum_filtering", "rkn", seed)
        shutil.copytree(folders[0], spec.run_dir(config["results_dir"]))
    return ["--out", str(tmp_path / "report"), "--complete-only"]


def disk_full_at(name: str) -> Callable[[pytest.MonkeyPatch], None]:
    """A disk that fills up while a file called ``name`` is written (its flush to disk fails
    with ENOSPC, as a write on a full disk does)."""
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        real = os.fsync

        def fsync(fd: int) -> None:
            if name in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(fd)
        monkeypatch.setattr(os, "fsync", fsync)
    return patch


def with_file(option: str, name: str, content: str | Callable[[Path], bytes]
              ) -> Callable[[Path, list[str]], list[str]]:
    """Preparation: two finished rkn runs, and ``option`` pointing at a file of ``content``
    (text, or bytes made from the test's folder)."""
    def prepare(tmp_path: Path, configs: list[str]) -> list[str]:
        args = report_with(lambda folder: None)(tmp_path, configs)
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content(tmp_path))
        return [option, str(path), *args]
    return prepare


def cut_efficiency_file(tmp_path: Path) -> bytes:
    return next((tmp_path / "results").rglob("efficiency-*.json")).read_bytes()[:100]


def edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        content = json.loads((folder / name).read_text())
        change(content)
        (folder / name).write_text(json.dumps(content))
    return edit


def truncate(name: str, size: int) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / name).write_bytes((folder / name).read_bytes()[:size])
    return edit


def unwritable_report(tmp_path: Path, configs: list[str]) -> list[str]:
    """Two finished rkn runs and a --out that cannot be created."""
    folders = two_rkn_runs(tmp_path, configs)
    return ["--out", str(unwritable(tmp_path)), *folders]


def e1_only(models: list[str]) -> dict:
    return {"experiments": {"pendulum_filtering": {"models": models, "seeds": [0, 1]}}}


def experiment_overlay(**values) -> dict:
    return {"experiments": {"pendulum_filtering": values}}


def overrides(**values) -> dict:
    return experiment_overlay(model_overrides={"rkn": values})


def user_model(cls: str, name: str = "mine") -> dict:
    """An overlay adding a user's model ``name`` of class ``cls`` to E1 beside the RKN."""
    return {"models": {name: {"class": cls, "role": "baseline", "params": {"hidden": 4}}},
            "experiments": {"pendulum_filtering": {"models": ["rkn", name]}}}


MINE = ["--experiment", "pendulum_filtering", "--model", "mine", "--seed", "0"]


CASES = {
    # YAML and type pitfalls that Snakemake's schema refused but the scripts let through.
    "learning rate read as a string": Case(
        "train", r"training.learning_rate: '1e-3' is not of type 'number' \(YAML 1.1 reads 1e-3 "
        r"as a string: write 1.0e-3\)", "training: {learning_rate: 1e-3}\n"),
    "fractional epochs": Case("train", r"training.epochs: 2.5 is not of type 'integer'",
                              {"training": {"epochs": 2.5}}),
    "epochs as a word": Case("train", r"training.epochs: 'ten' is not of type 'integer'",
                             {"training": {"epochs": "ten"}}),
    "zero batch size": Case("train", r"training.batch_size: 0 is less than the minimum of 1",
                            {"training": {"batch_size": 0}}),
    "validation fraction 1.5": Case("train", r"training.val_fraction: 1.5 is greater than or "
                                    r"equal to the maximum", {"training": {"val_fraction": 1.5}}),
    "negative clip value": Case("train", r"training.clip_value: -1",
                                {"training": {"clip_value": -1}}),
    "unknown clip mode": Case("train", r"training.clip_mode: 'sometimes' is not one of",
                              {"training": {"clip_mode": "sometimes"}}),
    "negative learning rate": Case("train", r"training.learning_rate: -0.1",
                                   {"training": {"learning_rate": -0.1}}),
    "no models": Case("aggregate", r"experiments.pendulum_filtering.models: \[\] should be "
                      r"non-empty", experiment_overlay(models=[]), args=[], keep=E1_ONLY),
    "duplicate models": Case("aggregate", r"experiments.pendulum_filtering.models: .*non-unique",
                             experiment_overlay(models=["rkn", "rkn"]), args=[], keep=E1_ONLY),
    "duplicate seeds": Case("train", r"experiments.pendulum_filtering.seeds: .*non-unique",
                            experiment_overlay(seeds=[0, 0])),
    "negative seed": Case("train", r"experiments.pendulum_filtering.seeds.0: -1 is less than",
                          experiment_overlay(seeds=[-1])),
    "no test sequences": Case("simulate", r"datasets.pendulum_filtering.params.num_test: 0 is "
                              r"less than the minimum of 1",
                              {"datasets": {"pendulum_filtering": {"params": {"num_test": 0}}}},
                              args=["--dataset", "pendulum_filtering"]),
    "no training sequence left": Case(
        "train", r"num_train = 2 leaves no sequence to train on",
        {"datasets": {"pendulum_filtering": {"params": {"num_train": 2}}},
         "training": {"val_fraction": 0.6}}),
    "typo in a top-level key": Case("train", r"unknown key\(s\) \['trainig'\]",
                                    {"trainig": {"epochs": 1}}),
    "typo in a training key": Case("train", r"unknown key\(s\) \['epoch'\] in training",
                                   {"training": {"epoch": 1}}),
    "unknown model in an experiment": Case("train", r"unknown model 'transformer'",
                                           experiment_overlay(models=["rkn", "transformer"])),
    "unknown role": Case("train", r"models.rkn.role: 'champion' is not one of",
                         {"models": {"rkn": {"role": "champion"}}}),
    "unknown model class": Case("train", r"models.rkn.class: unknown model class 'nope'",
                                {"models": {"rkn": {"class": "nope"}}}),
    "two models with role rkn": Case("train", r"\['rkn', 'lstm'\] all have role 'rkn'",
                                     {"models": {"lstm": {"role": "rkn"}}}),
    "override key typo": Case("train", r"unknown config key 'bandwith'", overrides(bandwith=2)),
    "override of the wrong type": Case("train", r"bandwidth must be int, got '3'",
                                       overrides(bandwidth="3")),
    "override value out of range": Case("train", r"latent_obs_dim must be >= 1",
                                        overrides(latent_obs_dim=0)),
    "bandwidth above the latent size": Case("train", r"bandwidth b = 99 exceeds latent_obs_dim "
                                            r"m = \d+", overrides(bandwidth=99)),
    "override choice unknown": Case("train", r"step_order='sideways' is not valid",
                                    overrides(step_order="sideways")),
    "unknown dataset of an experiment": Case("train", r"dataset 'kitti' is not one of",
                                             experiment_overlay(dataset="kitti")),
    "unknown generator": Case("train", r"generator 'cartpole' is unknown",
                              {"datasets": {"pendulum_filtering": {"generator": "cartpole"}}}),
    "zero threads in resources": Case("train", r"resources.train.threads: 0 is less than",
                                      {"resources": {"train": {"threads": 0}}}),
    "scale name with spaces": Case("train", r"scale: 'Smoke Test' does not match",
                                   {"scale": "Smoke Test"}),
    "YAML syntax error": Case("train", r"overlay.yaml cannot be read as YAML",
                              "training: {epochs: 1\n"),
    "a key repeated in one mapping": Case(
        "train", r"key 'training' is repeated in one mapping \(first at line 1\).*overlay.yaml\", "
        r"line 2", "training: {epochs: 1}\ntraining: {batch_size: 4}\n"),
    "a model defined twice": Case("train", r"key 'rkn' is repeated in one mapping",
                                  "models:\n  rkn: {role: rkn}\n  rkn: {params: {bandwidth: 2}}\n"),
    "NaN learning rate": Case("train", r"training.learning_rate is nan; every number in the "
                              r"config must be finite", "training: {learning_rate: .nan}\n"),
    "infinite clip value": Case("train", r"training.clip_value is inf",
                                "training: {clip_value: .inf}\n"),
    "overlay that is a list": Case("train", r"overlay.yaml must hold a mapping",
                                   "- training\n- epochs\n"),
    "a seed of 10^300": Case(
        "train", r"experiments.pendulum_filtering.seeds.0: 100000\.\.\.000 \(301 digits\) is "
        r"greater than the maximum of 4294967295 \(seeds are at most", experiment_overlay(
            seeds=[10**300])),
    "a dataset seed of 2^32": Case(
        "simulate", r"datasets.pendulum_filtering.params.seed: 4294967296 is greater than the "
        r"maximum of 4294967295", {"datasets": {"pendulum_filtering": {"params": {"seed": 2**32}}}},
        args=["--dataset", "pendulum_filtering"]),
    "a model name with a trailing newline": Case(
        "train", r"models: 'rkn_b\\n' does not match .*remove the white space or newline",
        {"models": {"rkn_b\n": {"class": "rkn", "role": "ablation"}}}),
    "an experiment's model with a trailing newline": Case(
        "train", r"experiments.pendulum_filtering.models.1: 'lstm\\n' does not match",
        experiment_overlay(models=["rkn", "lstm\n"])),
    "a scale with a trailing newline": Case("train", r"scale: 'smoke\\n' does not match",
                                            {"scale": "smoke\n"}),
    "a model class with a trailing newline": Case(
        "train", r"models.lstm.class: 'lstm\\n' does not match", {"models": {"lstm": {
            "class": "lstm\n"}}}),
    # Users' own models (tests/workflow/bad_models.py, broken_model.py).
    "a user module that raises on import": Case(
        "train", r"models.mine.class: importing module 'tests.workflow.broken_model' of model "
        r"class .* raised RuntimeError: this module needs a setting that is missing; fix the "
        r"module", user_model("tests.workflow.broken_model:Model")),
    "a user model that fails to build": Case(
        "train", r"models.mine.class: building tests.workflow.bad_models:FailsToBuild from its "
        r"config raised RuntimeError: no GPU kernels for this layer; fix the class's __init__",
        user_model("tests.workflow.bad_models:FailsToBuild"), args=MINE, prepare=with_data),
    "a user model's prediction one step short": Case(
        "train", r"model mine \(tests.workflow.bad_models:OneStepShort\) returned mean of shape "
        r"\((\d+), 19, 2\) float32; expected a GaussianPrediction with mean and var of shape "
        r"\(\1, 20, 2\)", user_model("tests.workflow.bad_models:OneStepShort"), args=MINE,
        prepare=with_data),
    "a user model returning a plain tuple": Case(
        "train", r"model mine \(tests.workflow.bad_models:PlainTuple\) returned a plain tuple of 2 "
        r"items; expected a GaussianPrediction with mean and var of shape \(\d+, 20, 2\)",
        user_model("tests.workflow.bad_models:PlainTuple"), args=MINE, prepare=with_data),
    "a user model predicting one target value of two": Case(
        "train", r"model mine \(tests.workflow.bad_models:OneValuePerStep\) returned mean of shape "
        r"\((\d+), 20, 1\) float32; expected .* of shape \(\1, 20, 2\)",
        user_model("tests.workflow.bad_models:OneValuePerStep"), args=MINE, prepare=with_data),
    # Command-line arguments.
    "unknown experiment": Case("train", r"unknown experiment 'pendulum'; valid experiments",
                               args=["--experiment", "pendulum", "--model", "rkn", "--seed", "0"]),
    "model outside the experiment": Case("train", r"'transformer' is not part of experiment",
                                         args=["--experiment", "pendulum_filtering", "--model",
                                               "transformer", "--seed", "0"]),
    "seed outside the experiment": Case("train", r"seed 7 is not one of",
                                        args=E1[:-1] + ["7"]),
    "zero threads": Case("train", r"--threads must be at least 1", args=E1 + ["--threads", "0"]),
    "run folder that cannot be created": Case("train", r"File exists: .*locked.*"
                                              r"--run-dir", prepare=unwritable_run_dir),
    # Data files.
    "data not simulated": Case("train", r"meta.json: metadata file is missing: .* does not exist, "
                               r"the dataset has not been simulated yet.*simulate.py"),
    "truncated data file": Case("train", r"test.npz: sha256", prepare=truncated),
    "NaN target in the test split": Case(
        "train", r"split 'test', array 'targets' holds 1 NaN", prepare=nan_in("test", (0, 3, 1))),
    "NaN target in the validation part": Case(
        "train", r"split 'train', array 'targets' holds 1 NaN",
        prepare=nan_in("train", (-1, 5, 0))),
    # Numbers that must not be published (issue examples: exit 0 with -inf/NaN metrics before).
    "LSTM diverges to zero variances": Case(
        "train", r"learning_rate", {"training": {"learning_rate": 1.0e+4, "clip_mode": "none"}},
        args=["--experiment", "pendulum_filtering", "--model", "lstm_small", "--seed", "0"],
        prepare=with_data),
    "DKS diverges to NaN predictions": Case(
        "train", r"learning_rate", {"training": {"learning_rate": 1.0e+4, "clip_mode": "none"}},
        args=["--experiment", "pendulum_imputation", "--model", "dks_filter", "--seed", "0"],
        prepare=imputation_data),
    # The aggregator.
    "a NaN metric in one seed": Case(
        "aggregate", r"run1/metrics.json: log_lik = nan is not a finite number", e1_only(["rkn"]),
        prepare=report_with(edit_json("metrics.json", lambda m: m.update(log_lik=math.nan))),
        args=[], keep=E1_ONLY),
    "a metric missing in one seed": Case(
        "aggregate",
        r"run1/metrics.json lacks log_lik, which .*run0 \(another seed of rkn\) reports",
        e1_only(["rkn"]), prepare=report_with(edit_json("metrics.json", lambda m: m.pop("log_lik"))),
        args=[], keep=E1_ONLY),
    "a truncated metrics.json": Case(
        "aggregate", r"run1/metrics.json cannot be read as JSON", e1_only(["rkn"]),
        prepare=report_with(truncate("metrics.json", 30)), args=[], keep=E1_ONLY),
    "a convergence flag that is not 0 or 1": Case(
        "aggregate", r"run1/metrics.json: converged = 2.0 must be 0 or 1", e1_only(["rkn"]),
        prepare=report_with(edit_json("metrics.json", lambda m: m.update(converged=2))),
        args=[], keep=E1_ONLY),
    "a history without rows": Case(
        "aggregate", r"run1/history.csv has no row", e1_only(["rkn"]),
        prepare=report_with(truncate("history.csv", len("epoch,train_loss,val_loss,seconds\n"))),
        args=[], keep=E1_ONLY),
    "a run folder of other settings": Case(
        "aggregate", r"run1 was trained with other settings than this config's run seed1-\w+: "
        r"training.epochs \(7 in the folder, \d+ in the config\)", e1_only(["rkn"]),
        prepare=report_with(edit_json("config.json", lambda c: c["training"].update(epochs=7))),
        args=[], keep=E1_ONLY),
    "a run config without its experiment": Case(
        "aggregate", r"run1/config.json: experiment = None is not of type str", e1_only(["rkn"]),
        prepare=report_with(edit_json("config.json", lambda c: c.pop("experiment"))),
        args=[], keep=E1_ONLY),
    "a history cut in its last row": Case(
        "aggregate", r"run1/history.csv: row \d+, seconds = 'nan' is not a finite number",
        e1_only(["rkn"]), prepare=report_with(lambda f: (f / "history.csv").write_text(
            (f / "history.csv").read_text().rsplit(",", 1)[0])), args=[], keep=E1_ONLY),
    "a history with an epoch missing": Case(
        "aggregate", r"run1/history.csv holds epochs 2, not 1, 2, 3, ...",
        e1_only(["rkn"]), prepare=report_with(lambda f: (f / "history.csv").write_text(
            "".join(np.delete((f / "history.csv").read_text().splitlines(True), 1)))),
        args=[], keep=E1_ONLY),
    "published numbers with a repeated key": Case(
        "aggregate", r"published-numbers file \(--reference\) .*ref.yaml cannot be read as YAML: "
        r"key 'a' is repeated", e1_only(["rkn"]), args=[], keep=E1_ONLY,
        prepare=with_file("--reference", "ref.yaml", "a: 1\na: 2\n")),
    "a projected-cost file that is not JSON": Case(
        "aggregate", r"projected-cost file \(--projected-cost\) .*cost.json cannot be read "
        r"\(JSONDecodeError.*paper_scale_cost.py --json", e1_only(["rkn"]), args=[],
        keep=E1_ONLY, prepare=with_file("--projected-cost", "cost.json", "{not json")),
    "a projected-cost file without its rows": Case(
        "aggregate", r"cost.json is not the output of paper_scale_cost.py: it needs 'experiments' "
        r"rows", e1_only(["rkn"]), args=[], keep=E1_ONLY,
        prepare=with_file("--projected-cost", "cost.json", '{"rows": []}')),
    "a cut claim-7 measurements file": Case(
        "aggregate", r"claim-7 measurements .*eff.json cannot be read \(JSONDecodeError",
        e1_only(["rkn"]), args=[], keep=E1_ONLY,
        prepare=with_file("--efficiency", "eff.json", cut_efficiency_file)),
    "a run folder missing files": Case(
        "aggregate", r"1 of 2 run folders are missing or incomplete .*run1: lacks calibration.csv, "
        r"examples.npz", e1_only(["rkn"]), args=[], keep=E1_ONLY, prepare=report_with(
            lambda f: [(f / name).unlink() for name in ("calibration.csv", "examples.npz")])),
    "a run folder holding another seed": Case(
        "aggregate", r"seed1-[0-9a-f]{8} holds another run than its name says \(seed 1 by its "
        r"name, 0 in its config.json\)", e1_only(["rkn"]), args=[], keep=E1_ONLY,
        prepare=misnamed_run),
    "a full disk while the model is saved": Case(
        "train", r"no space left on the device of .*/\.seed0-[0-9a-f]{8}\.\w+\.tmp/model\.pt "
        r"\(No space left on device\); free space there",
        prepare=with_data, patch=disk_full_at("model.pt")),
    "a full disk while the report is written": Case(
        "aggregate", r"no space left on the device of .*/\.report\.\w+\.tmp/claims.md",
        e1_only(["rkn"]), args=[], keep=E1_ONLY, prepare=report_with(lambda f: None),
        patch=disk_full_at("claims.md")),
    "report folder that cannot be created": Case(
        "aggregate", r"File exists: .*locked.*--out", e1_only(["rkn"]),
        prepare=unwritable_report, args=[], keep=E1_ONLY),
}


def written(tmp_path: Path) -> dict[str, list[Path]]:
    """What a failed call must not have left: run, dataset and report folders, temporary files."""
    results = tmp_path / "results"
    return {"runs": sorted(results.glob("*/runs/*/*/*")) if results.exists() else [],
            "datasets": sorted(results.glob("*/datasets/*")) if results.exists() else [],
            "reports": sorted(p for p in tmp_path.rglob("*") if p.is_dir() and "report" in p.name),
            "tmp": sorted(p for p in tmp_path.rglob("*") if p.name.endswith(".tmp"))}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_names_it_and_writes_nothing(name: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    overlay = tmp_path / "overlay.yaml"
    content = case.overlay if case.overlay is not None else {}
    overlay.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    base = {"results_dir": str(tmp_path / "results")}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    configs = []
    for path in (*reduced_smoke(tmp_path / "cfg", case.keep), tmp_path / "base.yaml"):
        configs += ["--config", str(path)]
    extra = case.prepare(tmp_path, configs) if case.prepare else []
    before = written(tmp_path)
    if case.patch:
        case.patch(monkeypatch)
    capsys.readouterr()
    script = {"train": train, "simulate": simulate, "aggregate": aggregate}[case.script]
    code = script.main(configs + ["--config", str(overlay)] + case.args + extra)
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(case.message, err.replace("\n", " ")), err
    assert written(tmp_path) == before
    assert "Traceback" not in err


def test_there_are_at_least_30_cases() -> None:
    assert len(CASES) >= 30

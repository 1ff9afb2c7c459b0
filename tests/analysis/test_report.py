"""Aggregation of run folders into the report: statistics, paired differences, outputs, CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.report import build_report, expected_outputs, write_report
from analysis.runs import BadRunError, MissingRunsError, collect_experiments
from analysis.stats import bootstrap_ci, flat_metrics, paired_differences, summarize
import harness.io
from harness.config import load_config
from harness.runspec import resolve_run, run_grid

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["rkn", "lstm_small", "gru"]
SHIFT = {"rkn": 1.0, "lstm_small": 0.0, "gru": -0.5}  # log_lik offsets per model


def write_config(tmp_path: Path, seeds=(0, 1, 2)) -> list[Path]:
    """config.yaml reduced to E1 (without the claim-7 measurements: tests/analysis/
    test_efficiency_report.py), plus an overlay with three models, the given seeds and results
    under tmp_path."""
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    del base["efficiency"]
    base["datasets"] = {"pendulum_filtering": base["datasets"]["pendulum_filtering"]}
    base["experiments"] = {"pendulum_filtering": base["experiments"]["pendulum_filtering"]}
    base_path = tmp_path / "config.yaml"
    base_path.write_text(yaml.safe_dump(base))
    overlay = {"scale": "test", "results_dir": str(tmp_path / "results"),
               "experiments": {"pendulum_filtering": {"models": MODELS, "seeds": list(seeds)}}}
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return [base_path, path]


def fake_run(config: dict, key: tuple[str, str, int]) -> Path:
    """A finished run folder with deterministic metrics (log_lik = 2 + shift + 0.1 * seed)."""
    spec = resolve_run(config, *key)
    run_dir, model, seed = spec.run_dir(config["results_dir"]), key[1], key[2]
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({**spec.to_dict(), "model_config": {}}))
    metrics = {"log_lik": 2.0 + SHIFT[model] + 0.1 * seed, "rmse": 0.2 + 0.01 * seed,
               "coverage_1sigma": 0.68, "coverage_2sigma": 0.95, "n_params": 1000.0}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    epochs = np.arange(1, 4)
    pd.DataFrame({"epoch": epochs, "train_loss": 3.0 / epochs, "val_loss": 3.2 / epochs + seed,
                  "seconds": 1.0}).to_csv(run_dir / "history.csv", index=False)
    edges = np.linspace(-4, 4, 101)
    density = np.exp(-((edges[:-1] + edges[1:]) / 2) ** 2 / 2) / np.sqrt(2 * np.pi)
    pd.DataFrame({"bin_left": edges[:-1], "bin_right": edges[1:], "density": density}).to_csv(
        run_dir / "calibration.csv", index=False)
    t = np.linspace(0, 3, 10)
    targets = np.stack([np.sin(t), np.cos(t)], -1)[None].repeat(4, 0)
    np.savez(run_dir / "examples.npz", mean=targets + 0.1, var=np.full_like(targets, 0.01),
             targets=targets)
    return run_dir


def make_runs(tmp_path: Path, seeds=(0, 1, 2), skip=()) -> tuple[dict, list[Path]]:
    """The reduced config and the run folders of its grid (without those in ``skip``)."""
    config = load_config(write_config(tmp_path, seeds))
    return config, [fake_run(config, key) for key in run_grid(config) if key not in skip]


def e1_metrics(config: dict, run_dirs: list[Path]) -> pd.DataFrame:
    return collect_experiments(config, run_dirs)["pendulum_filtering"].metrics


REFERENCE = yaml.safe_load((ROOT / "config" / "reference_numbers.yaml").read_text())


def test_summary_known_mean_std_n_and_ci_brackets_mean(tmp_path):
    """Per-model mean, std (ddof 1) and n match the synthetic values; the CI brackets the mean."""
    config, dirs = make_runs(tmp_path)
    table = summarize(e1_metrics(config, dirs), MODELS)
    assert list(table["model"]) == MODELS and list(table["n_seeds"]) == [3, 3, 3]
    row = table.iloc[0]
    assert row["log_lik_mean"] == pytest.approx(3.1)
    assert row["log_lik_std"] == pytest.approx(0.1)
    assert row["log_lik_ci_lo"] <= row["log_lik_mean"] <= row["log_lik_ci_hi"]
    assert row["log_lik_ci_lo"] >= 3.0 - 1e-12 and row["log_lik_ci_hi"] <= 3.2 + 1e-12


def test_bootstrap_ci_deterministic_and_degenerate():
    """The bootstrap interval is identical across calls; one value gives no interval."""
    values = np.random.default_rng(1).normal(size=7)
    assert bootstrap_ci(values) == bootstrap_ci(values)
    assert all(math.isnan(v) for v in bootstrap_ci([1.0]))


def test_single_seed_std_blank(tmp_path):
    """With one seed the std and CI cells are blank in the csv and absent from metrics.json."""
    config, dirs = make_runs(tmp_path, seeds=(0,))
    out = build_report(config, dirs, REFERENCE, figures_too=False)
    header, first = out["tables/pendulum_filtering.csv"].decode().splitlines()[:2]
    cells = dict(zip(header.split(","), first.split(",")))
    assert cells["log_lik_std"] == "" and cells["log_lik_ci_lo"] == "" and cells["n_seeds"] == "1"
    assert "pendulum_filtering.rkn.log_lik_std" not in json.loads(out["metrics.json"])


def test_missing_run_raises_lists_it_writes_nothing(tmp_path):
    """A run of the grid without a folder raises MissingRunsError naming it, before anything is
    written; so does an incomplete folder (naming the folder) and a run given twice."""
    config, dirs = make_runs(tmp_path, skip={("pendulum_filtering", "gru", 1)})
    with pytest.raises(MissingRunsError, match="pendulum_filtering/gru/seed1"):
        write_report(build_report(config, dirs, REFERENCE), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (dirs[0] / "history.csv").unlink()
    with pytest.raises(MissingRunsError, match=str(dirs[0])):
        build_report(config, dirs, REFERENCE)
    with pytest.raises(MissingRunsError, match="two run folders"):
        build_report(config, [dirs[1], dirs[1]], REFERENCE)


def test_paired_differences_known_shift(tmp_path):
    """rkn − baseline log-likelihood equals the synthetic shift; the CI is that point."""
    config, dirs = make_runs(tmp_path)
    paired = paired_differences(e1_metrics(config, dirs), MODELS, "rkn")
    ll = paired[paired["metric"] == "log_lik"].set_index("baseline")
    assert list(ll.index) == ["lstm_small", "gru"]
    assert ll.loc["gru", "mean_diff"] == pytest.approx(1.5)
    assert ll.loc["gru", ["ci_lo", "ci_hi"]].tolist() == pytest.approx([1.5, 1.5])
    assert (ll["n_pairs"] == 3).all()
    rmse = paired[paired["metric"] == "rmse"]
    assert np.allclose(rmse["mean_diff"], 0.0)


def test_paired_uses_only_shared_seeds():
    """Pairs are formed only on seeds both models have."""
    runs = pd.DataFrame({"experiment": "e", "model": ["rkn", "rkn", "rkn", "gru", "gru"],
                         "seed": [0, 1, 2, 1, 2], "log_lik": [5.0, 6.0, 7.0, 1.0, 2.0]})
    row = paired_differences(runs, ["rkn", "gru"], "rkn").iloc[0]
    assert row["n_pairs"] == 2 and row["mean_diff"] == pytest.approx(5.0)


def test_metrics_json_flat_numeric_sorted(tmp_path):
    """metrics.json is flat {experiment.model.metric[_std]: number}, sorted, 6 significant."""
    config, dirs = make_runs(tmp_path)
    out = build_report(config, dirs, REFERENCE, figures_too=False)
    flat = json.loads(out["metrics.json"])
    assert list(flat) == sorted(flat)
    assert all(isinstance(v, (int, float)) and len(k.split(".")) == 3 for k, v in flat.items())
    assert flat["pendulum_filtering.rkn.log_lik"] == pytest.approx(3.1)
    assert flat["pendulum_filtering.rkn.log_lik_std"] == pytest.approx(0.1)
    one = pd.DataFrame([{"model": "m", "x_mean": 1 / 3}])
    assert flat_metrics({"e": one}) == {"e.m.x": 0.333333}


def test_outputs_deterministic_and_complete(tmp_path):
    """Two builds give byte-identical csv/md/json, and the output set matches expected_outputs."""
    config, dirs = make_runs(tmp_path)
    first = build_report(config, dirs, REFERENCE, figures_too=False)
    second = build_report(config, dirs, REFERENCE, figures_too=False)
    assert first == second
    expected = {p for p in expected_outputs(config) if not p.endswith(".png")}
    assert set(first) == expected
    assert "± 0.1 [" in first["tables/pendulum_filtering.md"].decode()


def test_figures_written(tmp_path):
    """The four figures of a tiny fake experiment are written as non-empty PNG files."""
    config, dirs = make_runs(tmp_path, seeds=(0, 1))
    write_report(build_report(config, dirs, REFERENCE), tmp_path / "out")
    for rel in expected_outputs(config):
        path = tmp_path / "out" / rel
        assert path.is_file() and path.stat().st_size > 0, rel
        if rel.endswith(".png"):
            assert path.read_bytes()[:4] == b"\x89PNG"


def test_cli_missing_run_nonzero_with_message(tmp_path):
    """The CLI exits 2 with a message naming the missing run folder and writes no report."""
    config, _ = make_runs(tmp_path, skip={("pendulum_filtering", "rkn", 2)})
    missing = resolve_run(config, "pendulum_filtering", "rkn", 2).run_dir(config["results_dir"])
    args = [a for p in write_config(tmp_path) for a in ("--config", str(p))]
    proc = subprocess.run([sys.executable, str(ROOT / "workflow/scripts/aggregate.py"), *args,
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "missing" in proc.stderr and str(missing) in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_nan_seed_stops_the_aggregation_naming_folder_and_key(tmp_path):
    """A NaN metric in one of the seeds is an error naming its run folder and key (the table
    would otherwise say 3 seeds while mean and paired comparison use 2)."""
    config, dirs = make_runs(tmp_path)
    metrics = json.loads((dirs[1] / "metrics.json").read_text())
    metrics["rmse"] = math.nan
    (dirs[1] / "metrics.json").write_text(json.dumps(metrics))  # writes NaN as JSON allows
    with pytest.raises(BadRunError, match=f"{dirs[1]}/metrics.json: rmse = nan"):
        build_report(config, dirs, REFERENCE, figures_too=False)


def test_report_is_swapped_in_whole_and_keeps_foreign_files(tmp_path, monkeypatch):
    """A failure while the report is written leaves the previous one intact; a successful
    write replaces it at once and keeps files it does not produce (report.html)."""
    config, dirs = make_runs(tmp_path)
    out = tmp_path / "report"
    write_report(build_report(config, dirs, REFERENCE, figures_too=False), out)
    (out / "report.html").write_text("snakemake report")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    new = {rel: b"new " + data for rel, data in
           build_report(config, dirs, REFERENCE, figures_too=False).items()}
    calls = []
    real = harness.io._write_file

    def fail_on_third(path, content):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        return real(path, content)

    monkeypatch.setattr(harness.io, "_write_file", fail_on_third)
    with pytest.raises(OSError, match="No space"):
        write_report(new, out)
    monkeypatch.undo()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    write_report(new, out)
    assert (out / "claims.md").read_bytes().startswith(b"new ")
    assert (out / "report.html").read_text() == "snakemake report"


def test_report_follows_the_umask(tmp_path):
    """Report files and folders get the umask's modes (not the 0600/0700 of temporary files)."""
    config, dirs = make_runs(tmp_path)
    old = os.umask(0o022)
    try:
        write_report(build_report(config, dirs, REFERENCE, figures_too=False), tmp_path / "r")
    finally:
        os.umask(old)
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "r" / "tables").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "r" / "claims.md").stat().st_mode & 0o777 == 0o644

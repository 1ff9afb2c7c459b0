"""The paper scale piece by piece: benchmarks/paper_gpu.py trains an experiment's grid without
Snakemake and packs it; import_runs.py and aggregate.py --complete-only turn the archive into a
report of the complete experiments, the others listed as not run with their projected cost.
Run on the CPU with a tiny overlay (the GPU is an option of the same script)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAPER = [ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml"]
TINY = {"datasets": {"pendulum_filtering": {"params": {"num_train": 20, "num_test": 6,
                                                        "seq_len": 12}}},
        "experiments": {"pendulum_filtering": {"models": ["rkn", "lstm_small"],
                                               "seeds": [0, 1, 2],
                                               "training": {"epochs": 1, "batch_size": 8}}},
        "efficiency": {"latent_sizes": [15, 30], "batch_size": 4, "seq_len": 5, "repeats": 2}}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=3600)  # a bound for a hung test, not a speed requirement


@pytest.mark.slow
def test_archive_of_one_experiment_becomes_a_partial_paper_report(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "gpu_out"
    made = run("benchmarks/paper_gpu.py", "--out", str(out), "--device", "cpu", "--compile",
               "none", "--concurrency", "2", "--extra-config", str(tiny))
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert "[6/6] pendulum_filtering/lstm_small/2: ok" in made.stdout
    archive = out / "paper_runs.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert all(n.startswith("paper/") for n in names)
    assert sum(n.endswith("/metrics.json") for n in names) == 6
    assert not any(n.endswith(".ckpt") for n in names)

    # Here: unpack into other results and report what is complete.
    here = tmp_path / "here.yaml"
    here.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results")}))
    configs = [a for c in [*PAPER, tiny, here] for a in ("--config", str(c))]
    imported = run("workflow/scripts/import_runs.py", "--archive", str(archive), *configs)
    assert imported.returncode == 0, imported.stderr
    assert "pendulum_filtering       6 of   6 runs  complete" in imported.stdout
    assert "quad_link                0 of  25 runs  not run" in imported.stdout
    cost = tmp_path / "cost.json"
    cost.write_text(json.dumps({"experiments": [
        {"experiment": "quad_link", "gpu_hours_readme": 12.5, "device_hours": 400.0}]}))
    report = tmp_path / "report"
    made = run("workflow/scripts/aggregate.py", *configs, "--complete-only",
               "--projected-cost", str(cost), "--out", str(report))
    assert made.returncode == 0, made.stderr[-3000:]
    assert {p.name for p in (report / "tables").iterdir()} == {
        "pendulum_filtering.csv", "pendulum_filtering.md", "pendulum_filtering_paired.csv"}
    claims = (report / "claims.md").read_text()
    claim1 = claims[claims.index("## Claim 1"):claims.index("## Claim 2")]
    assert "**Verdict: not run**" not in claim1 and "Experiment `pendulum_filtering`" in claim1
    claim5 = claims[claims.index("## Claim 5"):claims.index("## Claim 6")]
    assert "experiment `quad_link`: not run at this scale; projected 12.5 GPU-hours" in claim5
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics and all(k.startswith(("pendulum_filtering.", "efficiency.")) for k in metrics)

    # One run missing: the experiment is incomplete and never reported in part.
    shutil.rmtree(next((tmp_path / "results" / "paper" / "runs" / "pendulum_filtering" /
                        "rkn").iterdir()))
    partial = run("workflow/scripts/aggregate.py", *configs, "--complete-only",
                  "--out", str(tmp_path / "report2"))
    assert partial.returncode == 2
    assert "no experiment of the config has all its runs" in partial.stderr
    assert not (tmp_path / "report2").exists()

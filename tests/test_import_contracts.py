"""The import rules between the packages (pyproject.toml [tool.importlinter]) hold, and break
when a package imports what it must not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import datasets

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("rkn", "baselines", "datasets", "harness", "analysis")


def lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts, on the packages below ``root``."""
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=900,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_datasets_is_our_package() -> None:
    """`datasets` is this repository's package, not Hugging Face's (docs/design.md#layout)."""
    assert Path(datasets.__file__).resolve().is_relative_to(ROOT)


def test_contracts_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("rkn/kalman.py", "import harness.io", "rkn is the RKN"),
    ("datasets/noise.py", "from rkn import kalman", "datasets imports nothing of ours"),
    ("baselines/lstm.py", "import analysis.stats", "baselines use rkn's building blocks only"),
    ("harness/io.py", "import analysis.tables", "never imports the reporting"),
    ("analysis/stats.py", "import analysis.report", "no import cycles"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module: str, line: str,
                                              contract: str) -> None:
    """One added import in a copy of the packages makes lint-imports fail naming the contract."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and contract in result.stdout.replace("\n", " ")

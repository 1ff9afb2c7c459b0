"""import_runs.py with good archives: run folders land whole, a second import of the same archive
changes nothing, --force replaces a different local run folder, a killed import's staging folder
is cleaned up, and a run of other settings is imported but not counted. (Bad archives are cases of
test_untrusted_inputs.py; the whole path from paper_gpu.py is test_paper_gpu.py.)"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import import_runs  # noqa: E402

from harness.runspec import resolve_run  # noqa: E402
from tests.workflow.run_archive import (config_args, config_of, members_of,  # noqa: E402
                                        run_folder, symlink_chain, write_archive)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[list[str], dict, dict[str, bytes], Path]:
    configs = config_args(tmp_path)
    config = config_of(configs)
    files = {**run_folder(config, 0), **run_folder(config, 1)}
    archive = write_archive(tmp_path / "runs.tar.gz",
                            members_of(run_folder(config, 0), run_folder(config, 1)))
    return configs, config, files, archive


def test_archive_is_imported_whole(setup, tmp_path: Path, capsys) -> None:
    configs, config, files, archive = setup
    assert import_runs.main(configs + ["--archive", str(archive)]) == 0
    out = capsys.readouterr().out
    results = tmp_path / "results"
    imported = tree(results)
    assert {k: v for k, v in imported.items() if "/runs/" in k} == files
    assert {"smoke/manifest.json", "smoke/efficiency/efficiency-0123abcd.json"} <= set(imported)
    assert "imported 2 run folders (0 already present with the same content)" in out
    total = len(config["experiments"]["pendulum_filtering"]["models"]) * 2
    assert f"pendulum_filtering       2 of {total:3d} runs  incomplete" in out
    assert not [p for p in results.rglob("*") if p.name.endswith(".tmp")]

    # The same archive again: nothing changes, nothing is refused.
    stamps = {p: p.stat().st_mtime_ns for p in results.rglob("*")}
    assert import_runs.main(configs + ["--archive", str(archive)]) == 0
    assert "imported 0 run folders (2 already present with the same content)" in \
        capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in results.rglob("*")} == stamps


def test_force_replaces_a_different_local_run_folder(setup, tmp_path: Path, capsys) -> None:
    """Without --force the local folder stays (test_untrusted_inputs.py); with it, the archive's
    folder replaces it whole (a local extra file goes too) and no temporary folder remains."""
    configs, config, files, archive = setup
    local = tmp_path / "results" / next(iter(files)).rsplit("/", 1)[0]
    local.mkdir(parents=True)
    (local / "metrics.json").write_text('{"rmse": 9}')
    (local / "notes.txt").write_text("mine")
    efficiency = tmp_path / "results" / "smoke" / "efficiency" / "efficiency-0123abcd.json"
    efficiency.parent.mkdir(parents=True)
    efficiency.write_text('{"measured": "here"}')
    assert import_runs.main(configs + ["--archive", str(archive)]) == 2
    assert (local / "notes.txt").exists() and efficiency.read_text() == '{"measured": "here"}'
    assert import_runs.main(configs + ["--archive", str(archive), "--force"]) == 0
    assert tree(local) == {name.rsplit("/", 1)[1]: data for name, data in files.items()
                           if f"/{local.name}/" in name}
    assert efficiency.read_text() == '{"rows": []}'
    assert not [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]


def test_a_different_efficiency_file_is_kept_and_said(setup, tmp_path: Path, capsys) -> None:
    """A second GPU archive measures claim 7 again: the runs import, the local measurement
    stays (said in the output) unless --force."""
    configs, config, files, archive = setup
    efficiency = tmp_path / "results" / "smoke" / "efficiency" / "efficiency-0123abcd.json"
    efficiency.parent.mkdir(parents=True)
    efficiency.write_text('{"measured": "here"}')
    assert import_runs.main(configs + ["--archive", str(archive)]) == 0
    assert f"kept {efficiency}: the archive's copy differs (--force replaces it)" in \
        capsys.readouterr().out
    assert efficiency.read_text() == '{"measured": "here"}'


def test_a_killed_import_leaves_nothing_the_next_one_keeps(setup, tmp_path: Path) -> None:
    configs, config, files, archive = setup
    stale = tmp_path / "results" / ".import-smoke.0badf00d.tmp" / "smoke" / "runs"
    stale.mkdir(parents=True)
    (stale / "half.pt").write_bytes(b"x")
    assert import_runs.main(configs + ["--archive", str(archive)]) == 0
    assert not stale.parents[1].exists()


def test_a_run_of_other_settings_is_imported_but_not_counted(tmp_path: Path, capsys) -> None:
    configs = config_args(tmp_path)
    config = config_of(configs)
    other = {**config, "training": {**config["training"], "epochs": 3}}
    assert resolve_run(other, "pendulum_filtering", "rkn", 0).run_name != \
        resolve_run(config, "pendulum_filtering", "rkn", 0).run_name
    archive = write_archive(tmp_path / "runs.tar.gz",
                            members_of(run_folder(other, 0), run_folder(config, 1)))
    assert import_runs.main(configs + ["--archive", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "imported 2 run folders" in out
    assert "pendulum_filtering       1 of" in out
    assert "1 imported run folders are of other settings or code than this config's" in out


def test_symlink_chain_escapes_tarfiles_data_filter_alone(tmp_path: Path) -> None:
    """Why the import checks every member itself: on a Python without the fix for
    CVE-2025-4517, extracting the chain of test_untrusted_inputs.py with tarfile's "data" filter
    writes outside the extraction folder. Skipped where tarfile refuses it."""
    archive = write_archive(tmp_path / "chain.tar.gz", symlink_chain("outside"))
    (tmp_path / "outside").mkdir()
    (tmp_path / "results").mkdir()
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp_path / "results", filter="data")
    except tarfile.TarError as err:
        pytest.skip(f"this Python's tarfile refuses the chain itself ({type(err).__name__})")
    if not (tmp_path / "outside" / "written-outside").exists():
        pytest.skip("this Python's tarfile keeps the chain inside")
    assert (tmp_path / "outside" / "written-outside").read_bytes() == b"pwned"


"""Tests of the checksummed dataset files (datasets.store)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from datasets.store import DatasetError, load_dataset, load_split, save_dataset, save_split

PARAMS = {"num_train": 2, "seq_len": 3, "seed": 7}


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A small split with the dtypes the builders produce."""
    rng = np.random.RandomState(seed)
    return {
        "images": rng.randint(0, 256, (2, 3, 4, 4, 1)).astype(np.uint8),
        "targets": rng.randn(2, 3, 2).astype(np.float32),
        "obs_valid": rng.rand(2, 3) < 0.5,
    }


def _save(directory: Path, split: str = "train") -> dict[str, np.ndarray]:
    """Save one split with the test params and return its arrays."""
    arrays = _arrays()
    save_split(directory, split, arrays, PARAMS, 7, generator="toy")
    return arrays


def _set_meta_sha(directory: Path, split: str) -> None:
    """Make meta.json agree with the current (damaged) file, to reach the archive checks."""
    meta_path = directory / "meta.json"
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256((directory / f"{split}.npz").read_bytes()).hexdigest()
    meta["splits"][split]["sha256"] = digest
    meta_path.write_text(json.dumps(meta))


def test_round_trip_and_meta(tmp_path: Path) -> None:
    """Saved arrays load back identical; meta.json records generator, params, seed, shapes."""
    arrays = _save(tmp_path)
    loaded = load_split(tmp_path, "train")
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["generator"] == "toy" and meta["params"] == PARAMS and meta["seed"] == 7
    entry = meta["splits"]["train"]
    assert entry["arrays"]["images"] == {"shape": [2, 3, 4, 4, 1], "dtype": "|u1"}
    assert entry["sha256"] == hashlib.sha256((tmp_path / "train.npz").read_bytes()).hexdigest()


def test_identical_arrays_give_identical_bytes(tmp_path: Path) -> None:
    """Archives are deterministic: saving the same arrays twice gives the same sha256."""
    _save(tmp_path / "a")
    _save(tmp_path / "b")
    first, second = tmp_path / "a" / "train.npz", tmp_path / "b" / "train.npz"
    assert first.read_bytes() == second.read_bytes()


def test_dataset_wrappers_and_no_temp_files(tmp_path: Path) -> None:
    """save_dataset/load_dataset round-trip all splits and leave only npz files and meta.json."""
    splits = {"train": _arrays(0), "test": _arrays(1)}
    save_dataset(tmp_path, "toy", PARAMS, splits)
    save_dataset(tmp_path, "toy", PARAMS, splits)  # overwrite in place
    loaded = load_dataset(tmp_path)
    assert sorted(loaded) == ["test", "train"]
    np.testing.assert_array_equal(loaded["test"]["images"], splits["test"]["images"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "test.npz", "train.npz"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """A write that fails (object array) leaves no temp file, npz or meta entry behind."""
    with pytest.raises(ValueError):
        save_split(tmp_path, "train", {"bad": np.array([{}], dtype=object)}, PARAMS, 7)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_changed_file_fails_checksum(tmp_path: Path, damage: str) -> None:
    """A file whose bytes changed raises DatasetError naming the file, the problem and the fix."""
    _save(tmp_path)
    path = tmp_path / "train.npz"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256") as info:
        load_split(tmp_path, "train")
    message = str(info.value)
    assert "train.npz" in message and "delete the folder" in message and "'toy'" in message


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_archive_is_dataset_error(tmp_path: Path, damage: str) -> None:
    """A corrupt npz with a matching checksum still gives DatasetError, not a zipfile error."""
    _save(tmp_path)
    path = tmp_path / "train.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40] if damage == "truncate" else b"not a zip" * 10)
    _set_meta_sha(tmp_path, "train")
    with pytest.raises(DatasetError, match="cannot read archive"):
        load_split(tmp_path, "train")


def test_wrong_checksum_in_meta(tmp_path: Path) -> None:
    """A meta.json checksum that does not match the file raises DatasetError."""
    _save(tmp_path)
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["splits"]["train"]["sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="does not match meta.json"):
        load_split(tmp_path, "train")


def test_shape_mismatch_with_meta(tmp_path: Path) -> None:
    """Arrays whose shape differs from meta.json raise DatasetError naming the array."""
    _save(tmp_path)
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["splits"]["train"]["arrays"]["targets"]["shape"] = [2, 3, 3]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="'targets'"):
        load_split(tmp_path, "train")


def test_missing_files(tmp_path: Path) -> None:
    """Missing npz, missing meta.json and an unlisted split all raise DatasetError."""
    _save(tmp_path)
    with pytest.raises(DatasetError, match="not listed"):
        load_split(tmp_path, "test")
    (tmp_path / "train.npz").unlink()
    with pytest.raises(DatasetError, match="file is missing"):
        load_split(tmp_path, "train")
    with pytest.raises(DatasetError, match="metadata file is missing"):
        load_split(tmp_path / "nowhere", "train")
    (tmp_path / "meta.json").write_text("{broken")
    with pytest.raises(DatasetError, match="unreadable metadata"):
        load_split(tmp_path, "train")


def test_new_params_drop_stale_split_entries(tmp_path: Path) -> None:
    """Saving with different params forgets other splits, so stale files cannot be loaded."""
    _save(tmp_path, "train")
    _save(tmp_path, "test")
    save_split(tmp_path, "train", _arrays(), {**PARAMS, "seed": 8}, 8, generator="toy")
    load_split(tmp_path, "train")
    with pytest.raises(DatasetError, match="not listed"):
        load_split(tmp_path, "test")


def test_non_finite_arrays_are_refused_when_written_and_loaded(tmp_path) -> None:
    """A NaN or inf in a float array is an error naming the split and array, when the split is
    written (nothing is written) and when a file holding one is loaded."""
    arrays = {"images": np.zeros((2, 3, 4, 4, 1), np.uint8), "targets": np.zeros((2, 3, 2), np.float32)}
    arrays["targets"][1, 2, 0] = np.inf
    with pytest.raises(DatasetError, match="split 'test', array 'targets' holds 1 NaN or infinite"):
        save_split(tmp_path / "d", "test", arrays, {}, 0)
    assert not (tmp_path / "d").exists()
    arrays["targets"][1, 2, 0] = 0.0
    save_split(tmp_path / "d", "test", arrays, {}, 0)
    assert load_split(tmp_path / "d", "test")["targets"].shape == (2, 3, 2)


def test_dataset_files_follow_the_umask(tmp_path) -> None:
    """Dataset files get the umask's mode (0644 under umask 022), not a temporary file's 0600."""
    old = os.umask(0o022)
    try:
        save_split(tmp_path / "d", "train", {"x": np.zeros(3, np.float32)}, {}, 0)
    finally:
        os.umask(old)
    assert (tmp_path / "d" / "train.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d" / "meta.json").stat().st_mode & 0o777 == 0o644

"""Dataset files with checksums: ``{directory}/{split}.npz`` plus ``{directory}/meta.json``.

``meta.json`` layout::

    {"format": 1, "generator": "pendulum_filtering", "params": {...}, "seed": 42,
     "splits": {"train": {"file": "train.npz", "sha256": "...",
                          "arrays": {"images": {"shape": [N, T, 24, 24, 1], "dtype": "|u1"},
                                     ...}}}}     # dtype as numpy's dtype.str

Files are written atomically (temporary file in the same folder, then ``os.replace``). The npz
archives are uncompressed and carry a fixed zip timestamp, so identical arrays give identical bytes
and therefore an identical sha256. :func:`load_split` verifies existence, checksum, archive
integrity, array names, shapes and dtypes and that no float array holds NaN or infinite values
(checked when a split is written, too), and raises :class:`DatasetError` (a ``ValueError``) with
the file, the problem and the fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from datasets.files import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["DatasetError", "load_dataset", "load_split", "save_dataset", "save_split"]

META_FILE = "meta.json"
FORMAT_VERSION = 1
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamp -> byte-identical archives


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or does not match its ``meta.json``."""


def _fix_hint(directory: Path, meta: Mapping[str, Any] | None = None) -> str:
    """The remedy appended to every DatasetError message."""
    how = "datasets.build_dataset(name, params) + datasets.store.save_dataset(...)"
    if meta and meta.get("generator"):
        how = (f"datasets.build_dataset({meta['generator']!r}, {meta.get('params')}) + "
               "datasets.store.save_dataset(...) or the workflow's data rule")
    return f"Fix: delete the folder {directory} and regenerate it with {how}."


def _write_npz(handle: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    """Write an uncompressed, deterministic npz archive (readable by ``np.load``)."""
    with zipfile.ZipFile(handle, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with archive.open(info, mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)


def _sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_meta(directory: Path) -> dict[str, Any]:
    """Read and minimally validate ``meta.json``; raise DatasetError if missing or unreadable."""
    path = directory / META_FILE
    if not directory.exists():  # nothing to delete: the data was never made
        raise DatasetError(f"{path}: metadata file is missing: {directory} does not exist, the "
                           "dataset has not been simulated yet. Fix: simulate it first.")
    if not path.is_file():
        raise DatasetError(f"{path}: metadata file is missing. {_fix_hint(directory)}")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path}: unreadable metadata ({err}). {_fix_hint(directory)}") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("splits"), dict):
        raise DatasetError(f"{path}: metadata has no 'splits' table. {_fix_hint(directory)}")
    return meta


def _check_finite(path: Path, split: str, arrays: Mapping[str, np.ndarray], hint: str) -> None:
    """DatasetError naming the split and array when a float array holds NaN or infinite values."""
    for key, value in sorted(arrays.items()):
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            count = int((~np.isfinite(value)).sum())
            raise DatasetError(f"{path}: split {split!r}, array {key!r} holds {count} NaN or "
                               f"infinite values of {value.size}. {hint}")


def save_split(
    directory: str | os.PathLike[str],
    split: str,
    arrays: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    seed: int | None,
    *,
    generator: str = "",
) -> None:
    """Write ``{directory}/{split}.npz`` and add/replace its entry in ``{directory}/meta.json``.

    If ``meta.json`` already describes a different generator, params or seed, its other split
    entries are dropped (with a warning), so stale files from an older generation fail to load.

    Args:
        directory: Target folder (created if needed).
        split: Split name, e.g. ``"train"``; must be a plain file-name stem.
        arrays: Name -> array; no object arrays.
        params: JSON-serialisable generator params recorded in meta.json.
        seed: Seed recorded in meta.json (may be None when seeds live in ``params``).
        generator: Dataset/generator name recorded in meta.json.

    Raises:
        DatasetError: a float array holds NaN or infinite values (nothing is written).
    """
    directory = Path(directory)
    if not split or split != Path(split).name or split.startswith("."):
        raise ValueError(f"split must be a plain name, got {split!r}")
    npz_path = directory / f"{split}.npz"
    _check_finite(npz_path, split, arrays, "The generator produced them: nothing was written.")
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(npz_path, lambda handle: _write_npz(handle, arrays))
    entry = {
        "file": npz_path.name,
        "sha256": _sha256(npz_path),
        "arrays": {
            key: {"shape": list(np.shape(value)), "dtype": np.asarray(value).dtype.str}
            for key, value in sorted(arrays.items())
        },
    }
    header = {"format": FORMAT_VERSION, "generator": generator,
              "params": json.loads(json.dumps(dict(params))), "seed": seed}
    meta: dict[str, Any] = {**header, "splits": {}}
    if (directory / META_FILE).is_file():
        try:
            old = _read_meta(directory)
        except DatasetError:
            old = {}
        if old and all(old.get(k) == v for k, v in header.items()):
            meta["splits"] = dict(old["splits"])
        elif old:
            logger.warning("%s: generator/params/seed changed; dropping entries of other splits",
                           directory / META_FILE)
    meta["splits"][split] = entry
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    atomic_write(directory / META_FILE, lambda handle: handle.write(text.encode()))
    logger.info("wrote %s (%s)", npz_path, entry["sha256"][:12])


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], expected: Mapping[str, Any],
                  hint: str) -> None:
    """Compare array names, shapes and dtypes against the meta.json entry."""
    if set(arrays) != set(expected):
        raise DatasetError(f"{path}: arrays {sorted(arrays)} do not match meta.json "
                           f"{sorted(expected)}. {hint}")
    for key, spec in expected.items():
        shape, dtype = list(arrays[key].shape), arrays[key].dtype.str
        if shape != list(spec["shape"]) or dtype != spec["dtype"]:
            raise DatasetError(f"{path}: array {key!r} is {dtype}{shape}, meta.json says "
                               f"{spec['dtype']}{list(spec['shape'])}. {hint}")


def load_split(directory: str | os.PathLike[str], split: str) -> dict[str, np.ndarray]:
    """Load and verify ``{directory}/{split}.npz`` against ``meta.json``.

    Returns:
        Name -> array, fully read into memory.

    Raises:
        DatasetError: Missing meta or file, split not in meta, checksum mismatch, corrupt archive,
            array names/shapes/dtypes that differ from meta.json, or NaN/infinite values.
    """
    directory = Path(directory)
    meta = _read_meta(directory)
    hint = _fix_hint(directory, meta)
    entry = meta["splits"].get(split)
    path = directory / f"{split}.npz"
    if not isinstance(entry, dict):
        raise DatasetError(f"{path}: split {split!r} is not listed in {directory / META_FILE} "
                           f"(listed: {sorted(meta['splits'])}). {hint}")
    if not path.is_file():
        raise DatasetError(f"{path}: file is missing. {hint}")
    actual = _sha256(path)
    if actual != entry.get("sha256"):
        raise DatasetError(f"{path}: sha256 {actual} does not match meta.json "
                           f"{entry.get('sha256')} (file changed or corrupt). {hint}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        raise DatasetError(f"{path}: cannot read archive ({type(err).__name__}: {err}). "
                           f"{hint}") from err
    _check_arrays(path, arrays, entry.get("arrays", {}), hint)
    _check_finite(path, split, arrays, hint)
    return arrays


def save_dataset(
    directory: str | os.PathLike[str],
    name: str,
    params: Mapping[str, Any],
    splits: Mapping[str, Mapping[str, np.ndarray]],
) -> None:
    """Write every split of a built dataset (see :func:`datasets.build_dataset`) into ``directory``.

    ``seed`` in meta.json is ``params["seed"]`` if present, else None (per-split seeds stay in
    ``params``).
    """
    for split, arrays in splits.items():
        save_split(directory, split, arrays, params, params.get("seed"), generator=name)


def load_dataset(directory: str | os.PathLike[str]) -> dict[str, dict[str, np.ndarray]]:
    """Load and verify every split listed in ``{directory}/meta.json``."""
    meta = _read_meta(Path(directory))
    return {split: load_split(directory, split) for split in sorted(meta["splits"])}

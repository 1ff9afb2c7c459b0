"""Tests of the pendulum simulator, renderer and dataset builders (docs/data.md#single-pendulum,
docs/data.md#dataset-sizes-and-seeds, docs/baselines.md#sanity-anchors).

The golden file ``tests/data/pendulum_golden.npz`` pins the generator byte for byte. Recreate it
ONLY after an intended change of the data definition, and say so in the commit message:

    python tests/datasets/test_pendulum.py --refresh-golden
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":  # allow `python tests/datasets/test_pendulum.py --refresh-golden`
    sys.path.insert(0, str(REPO_ROOT))

import datasets  # noqa: E402
from datasets import build_dataset  # noqa: E402
from datasets.noise import imputation_mask  # noqa: E402
from datasets.pendulum import PendulumParams, PendulumSimulator, render_angles  # noqa: E402

GOLDEN_PATH = REPO_ROOT / "tests" / "data" / "pendulum_golden.npz"
FILTERING_GOLDEN = {"num_train": 2, "num_test": 1, "seq_len": 8, "seed": 42}
IMPUTATION_GOLDEN = {"num_train": 2, "num_test": 2, "seq_len": 8}
ANCHOR_TOL = 0.01  # docs/baselines.md#sanity-anchors


def make_golden_arrays() -> dict[str, np.ndarray]:
    """Arrays stored in the golden file: tiny E1/E2 sets plus raw float64 simulator states."""
    arrays: dict[str, np.ndarray] = {}
    for name, params in (("pendulum_filtering", FILTERING_GOLDEN),
                         ("pendulum_imputation", IMPUTATION_GOLDEN)):
        for split, split_arrays in build_dataset(name, params).items():
            for key, value in split_arrays.items():
                arrays[f"{name}/{split}/{key}"] = value
    sample = PendulumSimulator().sample_data_set(2, 6, seed=42)
    arrays["simulator/states"] = sample.states
    arrays["simulator/images"] = sample.images
    return arrays


def refresh_golden() -> None:
    """Overwrite the golden file with the current generator's output (on purpose only)."""
    GOLDEN_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GOLDEN_PATH, **make_golden_arrays())


def _bce(y: np.ndarray, p: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Per-image BCE (docs/metrics.md#imputation-bce), float64, summed over the last axis (pixels)."""
    return -(y * np.log(p + eps) + (1.0 - y) * np.log(1.0 - p + eps)).sum(-1)


def test_datasets_package_is_this_repo() -> None:
    """`import datasets` resolves to this repository, not the Hugging Face package."""
    assert Path(datasets.__file__).resolve() == REPO_ROOT / "datasets" / "__init__.py"


def test_golden_file_reproduced_byte_for_byte() -> None:
    """The generator reproduces the committed golden arrays exactly (names, dtypes, bytes)."""
    current = make_golden_arrays()
    with np.load(GOLDEN_PATH, allow_pickle=False) as golden:
        assert sorted(golden.files) == sorted(current)
        for key in golden.files:
            assert golden[key].dtype == current[key].dtype, key
            assert golden[key].shape == current[key].shape, key
            assert golden[key].tobytes() == current[key].tobytes(), key


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_same_seed_identical_different_seed_differs(name: str) -> None:
    """Same params give byte-identical arrays; changing every seed changes images and targets."""
    params = {"num_train": 3, "num_test": 2, "seq_len": 10}
    first, second = build_dataset(name, params), build_dataset(name, params)
    other_seeds = {k: v + 1 for k, v in datasets.default_params(name).items() if "seed" in k}
    third = build_dataset(name, {**params, **other_seeds})
    for split in ("train", "test"):
        for key in first[split]:
            assert first[split][key].tobytes() == second[split][key].tobytes()
        for key in ("images", "targets"):
            assert not np.array_equal(first[split][key], third[split][key])


def test_filtering_shapes_dtypes_ranges() -> None:
    """E1 splits: uint8 (N,T,24,24,1) images, float32 unit-circle targets, factors in [0, 1]."""
    splits = build_dataset("pendulum_filtering", {"num_train": 4, "num_test": 3, "seq_len": 12})
    for split, num in (("train", 4), ("test", 3)):
        arrays = splits[split]
        assert set(arrays) == {"images", "targets", "noise_factors"}
        assert arrays["images"].shape == (num, 12, 24, 24, 1)
        assert arrays["images"].dtype == np.uint8
        assert arrays["targets"].shape == (num, 12, 2) and arrays["targets"].dtype == np.float32
        np.testing.assert_allclose((arrays["targets"] ** 2).sum(-1), 1.0, atol=1e-6)
        factors = arrays["noise_factors"]
        assert factors.shape == (num, 12) and factors.dtype == np.float32
        assert factors.min() >= 0.0 and factors.max() <= 1.0
        assert np.all(factors[:, :5] == 1.0)


def test_filtering_follows_single_stream() -> None:
    """E1 = one RandomState(seed): train sim, train noise, test sim, test noise (PT stream)."""
    from datasets.noise import add_image_noise

    splits = build_dataset("pendulum_filtering", {"num_train": 2, "num_test": 3, "seq_len": 7,
                                                  "seed": 5})
    random_state = np.random.RandomState(5)
    simulator = PendulumSimulator(PendulumParams(), random_state)
    for split, num in (("train", 2), ("test", 3)):
        sample = simulator.sample_data_set(num, 7)
        noisy, factors = add_image_noise(sample.images, random_state)
        np.testing.assert_array_equal(splits[split]["images"][..., 0], noisy)
        np.testing.assert_array_equal(splits[split]["targets"], sample.targets.astype(np.float32))


def test_imputation_splits_and_mask() -> None:
    """E2: inputs are the clean frames blacked out where invalid; test split ignores num_train."""
    params = {"num_train": 3, "num_test": 2, "seq_len": 9}
    splits = build_dataset("pendulum_imputation", params)
    for split in ("train", "test"):
        arrays = splits[split]
        assert set(arrays) == {"images", "targets", "obs_valid"}
        valid, images, targets = arrays["obs_valid"], arrays["images"], arrays["targets"]
        assert valid.dtype == np.bool_ and valid.shape == images.shape[:2]
        assert images.dtype == targets.dtype == np.uint8 and images.shape[-3:] == (24, 24, 1)
        assert np.all(valid[:, :5])
        np.testing.assert_array_equal(images[valid], targets[valid])
        assert np.all(images[~valid] == 0)
    bigger = build_dataset("pendulum_imputation", {**params, "num_train": 5})
    np.testing.assert_array_equal(bigger["test"]["images"], splits["test"]["images"])
    clean = PendulumSimulator().sample_data_set(2, 9, seed=23541).images
    np.testing.assert_array_equal(splits["test"]["targets"][..., 0], clean)


def test_theta_zero_is_hanging_down() -> None:
    """theta=0 renders the rod below the pivot, and a strongly damped pendulum settles at 0."""
    down, right = render_angles(np.array([0.0, np.pi / 2])).astype(np.float64)
    # pivot at pixel 12 of 24: the rod of theta=0 lies below it, in the central columns 11-12
    assert down[12:, 11:13].sum() > 0.9 * down.sum() > 0
    assert right[11:13, 12:].sum() > 0.9 * right.sum() > 0  # positive angles swing to +x
    params = PendulumParams(friction=5.0, transition_noise_std=0.0)
    states = PendulumSimulator(params, np.random.RandomState(1)).simulate_states(8, 150)
    np.testing.assert_allclose(states[:, -1, 0], 0.0, atol=1e-3)
    assert np.all((states[..., 0] >= -np.pi) & (states[..., 0] < np.pi))


def test_energy_conserved_without_friction_and_noise() -> None:
    """Frictionless noise-free run keeps 0.5 v^2 - c cos(theta) within 1e-3 relative drift."""
    params = PendulumParams(friction=0.0, transition_noise_std=0.0)
    states = PendulumSimulator(params, np.random.RandomState(3)).simulate_states(6, 75)
    c = params.gravity * params.length * params.mass / params.inertia
    energy = 0.5 * states[..., 1] ** 2 - c * np.cos(states[..., 0])
    drift = np.abs(energy - energy[:, :1]).max()
    assert drift < 1e-3 * c


def test_sample_is_not_prefix_of_larger_sample() -> None:
    """Draws are vectorised over sequences, so N sequences are not the prefix of N+1."""
    small = PendulumSimulator().sample_data_set(2, 5, seed=7).states
    large = PendulumSimulator().sample_data_set(3, 5, seed=7).states
    np.testing.assert_array_equal(small[:, 0], large[:2, 0])  # theta_0 is drawn first
    assert not np.array_equal(small[:, 1:], large[:2, 1:])


def test_imputation_sanity_anchors_100_sequences() -> None:
    """E2 test generator (seed 23541, 100 seq) reproduces the sanity anchors to 0.01."""
    num, seq_len = 100, 75
    images = PendulumSimulator().sample_data_set(num, seq_len, seed=23541).images
    y = images.reshape(num, seq_len, -1).astype(np.float64) / 255.0
    valid = imputation_mask(num, seq_len, 23541)
    assert valid.mean() == pytest.approx(0.5475, abs=1e-4)
    assert _bce(y, y).mean() == pytest.approx(11.965, abs=ANCHOR_TOL)
    mean_image = np.broadcast_to(y.mean(axis=(0, 1)), y.shape)
    assert _bce(y, mean_image).mean() == pytest.approx(54.357, abs=ANCHOR_TOL)
    assert _bce(y, np.full_like(y, 1e-3)).mean() == pytest.approx(109.408, abs=ANCHOR_TOL)
    # hold the last observed frame (frame t itself when observed); frame 0 is always valid
    last_valid = np.maximum.accumulate(np.where(valid, np.arange(seq_len), 0), axis=1)
    hold = np.clip(np.take_along_axis(y, last_valid[..., None], axis=1), 1e-3, 1 - 1e-3)
    hold_bce = _bce(y, hold)
    assert hold_bce.mean() == pytest.approx(44.889, abs=ANCHOR_TOL)
    assert hold_bce[~valid].mean() == pytest.approx(84.079, abs=ANCHOR_TOL)
    assert hold_bce[valid].mean() == pytest.approx(12.495, abs=ANCHOR_TOL)
    assert _bce(y[:, 1:], y[:, :-1], eps=1e-8).mean() == pytest.approx(131.431, abs=ANCHOR_TOL)


if __name__ == "__main__":
    if sys.argv[1:] != ["--refresh-golden"]:
        sys.exit(f"usage: python {sys.argv[0]} --refresh-golden  (rewrites {GOLDEN_PATH})")
    refresh_golden()
    print(f"wrote {GOLDEN_PATH}")

"""Tests of the time-correlated image noise and the imputation mask
(docs/data.md#time-correlated-image-noise, docs/data.md#imputation-masks)."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.noise import NoiseParams, add_image_noise, imputation_mask, noise_factors

FIRST_CLEAN = 5


def _reference_zero_one_fractions(num_seqs: int, seq_len: int) -> tuple[float, float]:
    """Fractions of factors exactly 0 / 1 after the clean frames, by independent simulation.

    Written from the equations of docs/data.md#time-correlated-image-noise with numpy's Generator (not RandomState), sharing no code with
    datasets.noise: random walk f clipped to [0, 1], t1 ~ U(0, .25), t2 ~ U(.75, 1).
    """
    rng = np.random.default_rng(12345)
    walk = np.cumsum(rng.uniform(-0.2, 0.2, (num_seqs, seq_len)), axis=1)
    f = np.empty((num_seqs, seq_len))
    f[:, 0] = rng.uniform(0.0, 1.0, num_seqs)
    steps = np.diff(walk, axis=1)
    for t in range(1, seq_len):
        f[:, t] = np.minimum(np.maximum(f[:, t - 1] + steps[:, t - 1], 0.0), 1.0)
    low = rng.uniform(0.0, 0.25, (num_seqs, 1))
    high = rng.uniform(0.75, 1.0, (num_seqs, 1))
    tail = f[:, FIRST_CLEAN:]
    return float((tail <= low).mean()), float((tail >= high).mean())


def test_factor_statistics_match_independent_simulation() -> None:
    """Fractions of pure-noise (f=0) and clean (f=1) frames match the specified process (+-0.025)."""
    images = np.zeros((2000, 75, 1, 1, 1), dtype=np.uint8)
    _, factors = add_image_noise(images, np.random.RandomState(0))
    tail = factors[:, FIRST_CLEAN:]
    zero_ref, one_ref = _reference_zero_one_fractions(20000, 75)
    # about 0.165 each; the method defaults (0.1, 0.4, 0.6, 0.9) would give about 0.275
    assert (tail == 0.0).mean() == pytest.approx(zero_ref, abs=0.025)
    assert (tail == 1.0).mean() == pytest.approx(one_ref, abs=0.025)
    assert 0.1 < zero_ref < 0.23 and 0.1 < one_ref < 0.23


def test_factors_range_and_clean_prefix() -> None:
    """Factors lie in [0, 1], the first 5 frames are exactly 1, and intermediate values occur."""
    factors = noise_factors(300, 30, np.random.RandomState(1), NoiseParams())
    assert factors.shape == (300, 30) and factors.dtype == np.float64
    assert factors.min() >= 0.0 and factors.max() <= 1.0
    assert np.all(factors[:, :FIRST_CLEAN] == 1.0)
    assert np.any((factors > 0.0) & (factors < 1.0))


def test_blend_is_truncated_mix_of_image_and_noise() -> None:
    """Clean frames are untouched; f=0 frames are pure noise; all values stay uint8."""
    images = np.full((50, 20, 4, 4), 200, dtype=np.uint8)
    noisy, factors = add_image_noise(images, np.random.RandomState(2))
    assert noisy.dtype == np.uint8 and noisy.shape == images.shape
    np.testing.assert_array_equal(noisy[:, :FIRST_CLEAN], images[:, :FIRST_CLEAN])
    pure_noise = noisy[factors == 0.0]
    assert pure_noise.size > 0 and pure_noise.std() > 50  # U(0, 255) has std ~74


def test_noise_continues_the_given_stream() -> None:
    """Noise draws come from the caller's RandomState: same state -> same output and end state."""
    images = np.random.RandomState(9).randint(0, 256, (3, 8, 5, 5, 1)).astype(np.uint8)
    first_state, second_state = np.random.RandomState(4), np.random.RandomState(4)
    first = add_image_noise(images, first_state)
    second = add_image_noise(images, second_state)
    np.testing.assert_array_equal(first[0], second[0])
    assert first_state.rand() == second_state.rand()


def test_rejects_non_uint8_images() -> None:
    """Float images are refused (the float path of the original code is not used)."""
    with pytest.raises(ValueError, match="uint8"):
        add_image_noise(np.zeros((1, 6, 2, 2)), np.random.RandomState(0))


def test_imputation_mask_first_frames_and_fraction() -> None:
    """Mask: first 5 frames valid, fresh RandomState(seed), valid fraction about 0.533."""
    mask = imputation_mask(1000, 75, seed=42)
    assert mask.dtype == np.bool_ and mask.shape == (1000, 75)
    assert np.all(mask[:, :5])
    assert mask.mean() == pytest.approx(0.5 + 0.5 * 5 / 75, abs=0.005)
    expected = np.random.RandomState(42).rand(1000, 75, 1)[..., 0] < 0.5
    np.testing.assert_array_equal(mask[:, 5:], expected[:, 5:])
    assert not np.array_equal(mask, imputation_mask(1000, 75, seed=43))

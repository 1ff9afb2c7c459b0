"""E3 multiple-pendulum data: draw order, rendering, overwrite order, quadrant noise, visibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datasets import build_dataset
from datasets.multiple_pendulums import (
    add_quadrant_noise,
    detect_pendulums,
    overwrite_channels,
    render_float,
    sample_multiple_pendulums,
    visibility_factors,
)
from datasets.noise import NoiseParams
from datasets.pendulum import PendulumParams, render_angles

SMALL = {"num_train": 4, "num_test": 3, "seq_len": 8, "train_seed": 0, "test_seed": 1}


@pytest.fixture(scope="module")
def small() -> dict:
    return build_dataset("multiple_pendulums", SMALL)


def test_shapes_dtypes_and_determinism(small: dict) -> None:
    """Arrays, shapes and dtypes of both splits; the same params give identical arrays."""
    train = small["train"]
    assert train["images"].shape == (4, 8, 24, 24, 3) and train["images"].dtype == np.uint8
    assert train["targets"].shape == (4, 8, 6) and train["targets"].dtype == np.float32
    assert train["noise_factors"].shape == (4, 8, 4) and train["visibility"].shape == (4, 8, 3)
    assert small["test"]["images"].shape[0] == 3
    again = build_dataset("multiple_pendulums", SMALL)
    for split in ("train", "test"):
        for key, value in small[split].items():
            np.testing.assert_array_equal(again[split][key], value)


def test_initial_angles_follow_the_draw_order(small: dict) -> None:
    """Targets at t = 0 are (sin, cos)(theta_0 - pi), theta_0 drawn for pendulum 1, 2, 3 in turn."""
    for split, seed in (("train", 0), ("test", 1)):
        n = SMALL[f"num_{split}"]
        rs = np.random.RandomState(seed)
        theta0 = np.hstack([rs.uniform(0, 2 * np.pi, size=(n, 1)) for _ in range(3)]) - np.pi
        want = np.stack([np.sin(theta0), np.cos(theta0)], -1).reshape(n, 6)
        np.testing.assert_allclose(small[split]["targets"][:, 0], want, atol=1e-6)


def test_first_five_frames_are_clean(small: dict) -> None:
    """Factors are 1 on frames 0-4, so those frames equal the clean rendering exactly."""
    clean = sample_multiple_pendulums(4, 8, np.random.RandomState(0)).images
    np.testing.assert_array_equal(small["train"]["images"][:, :5], clean[:, :5])
    assert (small["train"]["noise_factors"][:, :5] == 1).all()
    assert not np.array_equal(small["train"]["images"][:, 5:], clean[:, 5:])


def test_each_channel_renders_like_the_single_pendulum() -> None:
    """Clip, x255 and truncation of the float rendering equal the tested single-pendulum renderer."""
    angles = np.array([0.0, 1.0, -2.5, 3.0])
    params = PendulumParams()
    quantised = (np.float32(255) * np.clip(render_float(angles, params), 0, 1)).astype(np.uint8)
    np.testing.assert_array_equal(quantised, render_angles(angles, params))


def test_overwrite_order() -> None:
    """R = 0 where G > 0.1 or B > 0.1; G = 0 where B > 0.1; B is drawn on top; then uint8."""
    channels = np.zeros((1, 4, 3), dtype=np.float32)
    channels[0, :, 0] = 0.5                  # red everywhere
    channels[0, 1, 1] = 0.2                  # green at pixel 1
    channels[0, 2, 2] = 0.2                  # blue at pixel 2
    channels[0, 3, 1:] = [0.2, 0.05]         # green, and blue below the threshold at pixel 3
    out = overwrite_channels(channels)
    want = np.array([[127, 0, 0], [0, 51, 0], [0, 0, 51], [0, 51, 12]], dtype=np.uint8)
    np.testing.assert_array_equal(out[0], want)


def test_quadrant_noise_equals_the_specified_draws() -> None:
    """add_quadrant_noise against the draws and blend of docs/data.md#multiple-pendulums, written out
    here."""
    n, t, seed = 2, 9, 7
    images = np.random.RandomState(99).randint(0, 256, size=(n, t, 24, 24, 3)).astype(np.uint8)
    noisy, factors = add_quadrant_noise(images, np.random.RandomState(seed))
    p, rs = NoiseParams(), np.random.RandomState(seed)
    f = np.zeros((n, t, 4))
    f[:, 0] = rs.uniform(0, 1, (n, 4))
    for step in range(t - 1):
        f[:, step + 1] = np.clip(f[:, step] + rs.uniform(-p.r, p.r, (n, 4)), 0, 1)
    t1, t2 = rs.uniform(p.t_ll, p.t_lu, (n, 1, 4)), rs.uniform(p.t_ul, p.t_uu, (n, 1, 4))
    f = np.clip((f - t1) / (t2 - t1), 0, 1)
    f[:, :5] = 1
    np.testing.assert_array_equal(factors, f)
    corners = [(0, 0), (0, 12), (12, 0), (12, 12)]
    for seq in range(n):
        noise = rs.uniform(0, 255, (4, t, 12, 12, 3)).astype(np.uint8)
        for k, (r0, c0) in enumerate(corners):
            fk = f[seq, :, k][:, None, None, None]
            block = images[seq, :, r0:r0 + 12, c0:c0 + 12]
            want = (fk * block + (1 - fk) * noise[k]).astype(np.uint8)
            np.testing.assert_array_equal(noisy[seq, :, r0:r0 + 12, c0:c0 + 12], want)


def test_detection_and_visibility() -> None:
    """Detected: its quadrant's factor; straddling: pixel-weighted factor; no pixels: 0."""
    image = np.zeros((1, 1, 24, 24, 3), dtype=np.uint8)
    image[0, 0, 2:5, 14:19, 0] = 200     # red: 15 pixels in quadrant 1 (top right)
    image[0, 0, 5:11, 11, 1] = 200       # green: 6 pixels in quadrant 0 ...
    image[0, 0, 12:18, 11, 1] = 200      # ... and 6 in quadrant 2: fewer than 10 in each
    factors = np.array([[[0.1, 0.4, 0.7, 0.9]]])
    np.testing.assert_array_equal(detect_pendulums(image)[0, 0], [1, -1, -1])
    np.testing.assert_allclose(visibility_factors(image, factors)[0, 0], [0.4, (0.1 + 0.7) / 2, 0.0])


AUTHORS_E3 = Path(__file__).resolve().parents[1] / "data" / "multiple_pendulums_authors_5x20.npz"


def test_reproduces_the_authors_generator() -> None:
    """build_dataset("multiple_pendulums", 5 x 20, seeds 0 / 1) equals the authors' E3 output.

    Fixture ``tests/data/multiple_pendulums_authors_5x20.npz`` (copy of the shared fixture; the
    authors' TF-icml generator, each split re-seeding one RandomState, docs/data.md#multiple-pendulums): images with
    the quadrant noise byte-identical, targets to float32 rounding (ours are float32).
    """
    with np.load(AUTHORS_E3) as archive:
        fixture = {key: archive[key] for key in archive.files}
    ours = build_dataset("multiple_pendulums", {"num_train": 5, "num_test": 5, "seq_len": 20,
                                                "train_seed": 0, "test_seed": 1})
    for split in ("train", "test"):
        images, expected = ours[split]["images"], fixture[f"{split}_images"]
        assert images.shape == expected.shape == (5, 20, 24, 24, 3)
        assert images.dtype == expected.dtype == np.uint8
        differing = int((images != expected).sum())
        assert differing == 0, f"{split}: {differing} pixel values differ from the authors' images"
        np.testing.assert_allclose(ours[split]["targets"], fixture[f"{split}_targets"],
                                   rtol=0, atol=2.0**-24)

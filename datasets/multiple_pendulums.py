"""Three independent pendulums in the colour channels of one image, quadrant noise
(docs/data.md#multiple-pendulums).

Each pendulum has the single-pendulum dynamics of :mod:`datasets.pendulum` (friction 0.1,
transition noise 0.1, observation noise 1e-5) and its own pivot-centred line rendering; pendulums
1, 2, 3 go to the channels R, G, B of a 24x24x3 image. Overwrite order, on the unclipped resized
values: where G > 0.1 or B > 0.1 set R = 0; where B > 0.1 set G = 0 (so blue is drawn on top,
then green, then red). Then clip to [0, 1], times 255, truncating cast to uint8.

Quadrant noise: the time-correlated noise (docs/data.md#time-correlated-image-noise) with four
independent factor processes per
sequence, one per 12x12 quadrant (0 = top left, 1 = top right, 2 = bottom left, 3 = bottom right),
so a pendulum can be hidden by noise while the others stay visible.

Random draws, all from ONE ``RandomState`` in this order per split (the order is part of the data
definition): re-seed with the split's seed; initial angles of pendulum 1, 2, 3, each
``uniform(0, 2pi, (N, 1))``; for every frame transition noise of pendulum 1, 2, 3, each
``normal(0, 0.1, N)``; observation noise ``normal(0, 1e-5, (N, T, 6))`` in the state layout
(theta_1, v_1, theta_2, v_2, theta_3, v_3); then the quadrant noise (:func:`add_quadrant_noise`).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from datasets.noise import NoiseParams
from datasets.pendulum import PendulumParams, PendulumSimulator, sin_cos_targets

logger = logging.getLogger(__name__)

__all__ = ["NUM_PENDULUMS", "MultiPendulumSample", "add_quadrant_noise", "detect_pendulums",
           "overwrite_channels", "quadrant_pixel_counts", "render_float",
           "sample_multiple_pendulums", "visibility_factors"]

NUM_PENDULUMS = 3
NUM_QUADRANTS = 4
# A channel value above this (unclipped, 0..1 scale) hides the channels beneath it
# (docs/data.md#multiple-pendulums).
OVERWRITE_THRESHOLD = 0.1
# detect_pendulums: a pixel belongs to a pendulum above this uint8 value; fewer than
# MIN_PIXELS such pixels in every quadrant means the pendulum is not detected (hidden).
DETECT_PIXEL_VALUE = 5
DETECT_MIN_PIXELS = 10


class MultiPendulumSample(NamedTuple):
    """Clean output of :func:`sample_multiple_pendulums`.

    Attributes:
        images: uint8 ``(N, T, 24, 24, 3)``, channel k = pendulum k + 1.
        states: float64 ``(N, T, 3, 2)`` clean (theta, v) per pendulum, theta 0 = hanging.
    """

    images: np.ndarray
    states: np.ndarray

    @property
    def targets(self) -> np.ndarray:
        """float64 ``(N, T, 6)``: (sin theta_1, cos theta_1, ..., sin theta_3, cos theta_3)."""
        pairs = sin_cos_targets(self.states)  # (N, T, 3, 2)
        return pairs.reshape(*pairs.shape[:2], 2 * NUM_PENDULUMS)


def render_float(angles: np.ndarray, params: PendulumParams) -> np.ndarray:
    """Resized float32 line images of pendulum angles, NOT clipped (the overwrite needs raw values).

    Same drawing as :func:`datasets.pendulum.render_angles` (float canvas, line from the centre to
    centre + L (sin theta, cos theta), LANCZOS resize) without the clip and the uint8 cast.

    Args:
        angles: float array of any shape ``S``.

    Returns:
        float32 ``S + (img_size, img_size)``.
    """
    flat = np.asarray(angles, dtype=np.float64).reshape(-1)
    centre = params.canvas_size / 2
    x_end = (centre + params.line_length * np.sin(flat)).tolist()
    y_end = (centre + params.line_length * np.cos(flat)).tolist()
    out_shape = (params.img_size, params.img_size)
    images = np.empty((flat.size,) + out_shape, dtype=np.float32)
    for i, (x1, y1) in enumerate(zip(x_end, y_end)):
        canvas = Image.new("F", (params.canvas_size, params.canvas_size), 0.0)
        ImageDraw.Draw(canvas).line([(centre, centre), (x1, y1)], fill=1.0, width=params.line_width)
        images[i] = np.asarray(canvas.resize(out_shape, resample=Image.LANCZOS))
    return images.reshape(np.shape(angles) + out_shape)


def overwrite_channels(channels: np.ndarray) -> np.ndarray:
    """Apply the overwrite order and quantise: float ``(..., 3)`` (unclipped) -> uint8 ``(..., 3)``.

    R = 0 where G > 0.1 or B > 0.1; G = 0 where B > 0.1 (tested on the values before any change);
    then clip to [0, 1], times 255 (float32) and truncate.
    """
    red, green, blue = (channels[..., k] for k in range(NUM_PENDULUMS))
    out = channels.astype(np.float32, copy=True)
    out[..., 0] = np.where((green > OVERWRITE_THRESHOLD) | (blue > OVERWRITE_THRESHOLD), 0.0, red)
    out[..., 1] = np.where(blue > OVERWRITE_THRESHOLD, 0.0, green)
    return (np.float32(255.0) * np.clip(out, 0.0, 1.0)).astype(np.uint8)


def sample_multiple_pendulums(num_seqs: int, seq_len: int, random_state: np.random.RandomState,
                              params: PendulumParams | None = None) -> MultiPendulumSample:
    """Simulate and render three independent pendulums (draw order in the module docstring).

    The caller re-seeds ``random_state`` (per split); the stream is then continued by the noise.
    """
    params = params or PendulumParams()
    simulator = PendulumSimulator(params, random_state)  # shares the stream; used for its dynamics
    theta = np.stack([random_state.uniform(0.0, 2 * np.pi, size=(num_seqs, 1))[:, 0]
                      for _ in range(NUM_PENDULUMS)], axis=1)  # (N, 3)
    velocity = np.zeros_like(theta)
    states = np.zeros((num_seqs, seq_len, NUM_PENDULUMS, 2))
    states[:, 0, :, 0] = theta
    for t in range(1, seq_len):
        theta, velocity = simulator._transition(theta, velocity)  # element-wise, so (N, 3) works
        for k in range(NUM_PENDULUMS):
            velocity[:, k] += random_state.normal(0.0, params.transition_noise_std, size=num_seqs)
        theta = theta % (2 * np.pi)
        states[:, t, :, 0], states[:, t, :, 1] = theta, velocity
    states[..., 0] -= np.pi
    obs_noise = random_state.normal(0.0, params.observation_noise_std,
                                    size=(num_seqs, seq_len, 2 * NUM_PENDULUMS))
    noisy_angles = states[..., 0] + obs_noise[..., 0::2]  # (N, T, 3): theta columns of the layout
    channels = np.moveaxis(render_float(noisy_angles, params), 2, -1)  # (N, T, H, W, 3)
    logger.debug("simulated %d x %d multiple-pendulum frames", num_seqs, seq_len)
    return MultiPendulumSample(images=overwrite_channels(channels), states=states)


def quadrant_slices(img_size: int) -> list[tuple[slice, slice]]:
    """(rows, cols) of quadrants 0..3: top left, top right, bottom left, bottom right."""
    half = img_size // 2
    top, bottom = slice(0, half), slice(half, img_size)
    left, right = slice(0, half), slice(half, img_size)
    return [(top, left), (top, right), (bottom, left), (bottom, right)]


def add_quadrant_noise(images: np.ndarray, random_state: np.random.RandomState,
                       params: NoiseParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Quadrant-wise time-correlated noise (docs/data.md#multiple-pendulums: the four-factor form of
    docs/data.md#time-correlated-image-noise).

    Draws: f_0 ``uniform(0, 1, (N, 4))``; per step ``uniform(-r, r, (N, 4))``; t1
    ``uniform(t_ll, t_lu, (N, 1, 4))``; t2 ``uniform(t_ul, t_uu, (N, 1, 4))``; then per sequence
    ``uniform(0, 255, (4, T, h, w, C))`` cast to uint8 BEFORE blending. Quadrant k of frame t:
    ``uint8(f[t, k] * image + (1 - f[t, k]) * noise[k, t])``.

    Args:
        images: uint8 ``(N, T, H, W, C)`` with even H = W.

    Returns:
        (noisy uint8 images of the input shape, float64 factors ``(N, T, 4)``).
    """
    if images.dtype != np.uint8 or images.ndim != 5:
        raise ValueError(f"images must be uint8 (N, T, H, W, C), got {images.dtype} {images.shape}")
    params = params or NoiseParams()
    num_seqs, seq_len, size = images.shape[0], images.shape[1], images.shape[2]
    factors = np.zeros((num_seqs, seq_len, NUM_QUADRANTS))
    factors[:, 0] = random_state.uniform(0.0, 1.0, size=(num_seqs, NUM_QUADRANTS))
    for t in range(seq_len - 1):
        step = random_state.uniform(-params.r, params.r, size=(num_seqs, NUM_QUADRANTS))
        factors[:, t + 1] = np.clip(factors[:, t] + step, 0.0, 1.0)
    t1 = random_state.uniform(params.t_ll, params.t_lu, size=(num_seqs, 1, NUM_QUADRANTS))
    t2 = random_state.uniform(params.t_ul, params.t_uu, size=(num_seqs, 1, NUM_QUADRANTS))
    factors = np.clip((factors - t1) / (t2 - t1), 0.0, 1.0)
    factors[:, : params.first_n_clean] = 1.0
    half = size // 2
    noisy = np.empty_like(images)
    for n in range(num_seqs):
        noise = random_state.uniform(0.0, 255, size=(NUM_QUADRANTS, seq_len, half, half,
                                                     images.shape[-1])).astype(np.uint8)
        for k, (rows, cols) in enumerate(quadrant_slices(size)):
            f = factors[n, :, k].reshape(seq_len, 1, 1, 1)
            blend = f * images[n, :, rows, cols] + (1 - f) * noise[k]
            noisy[n, :, rows, cols] = blend.astype(np.uint8)
    return noisy, factors


def detect_pendulums(images: np.ndarray) -> np.ndarray:
    """Quadrant of each pendulum in clean frames (no random draws): -1 where not detected.

    Pendulum k is in the quadrant with the most pixels > 5 in channel k; fewer than 10 such
    pixels in every quadrant (e.g. drawn over by another pendulum) means not detected.

    Args:
        images: clean uint8 ``(N, T, H, W, 3)``.

    Returns:
        int64 ``(N, T, 3)`` quadrant index 0..3 or -1.
    """
    counts = quadrant_pixel_counts(images)  # (N, T, 3, 4)
    quadrant = counts.argmax(axis=-1)
    return np.where(counts.max(axis=-1) >= DETECT_MIN_PIXELS, quadrant, -1)


def quadrant_pixel_counts(images: np.ndarray) -> np.ndarray:
    """Pixels > 5 per channel and quadrant: clean uint8 ``(N, T, H, W, 3)`` -> ``(N, T, 3, 4)``."""
    bright = images > DETECT_PIXEL_VALUE
    return np.stack([bright[:, :, rows, cols].sum(axis=(2, 3))
                     for rows, cols in quadrant_slices(images.shape[2])], axis=-1)


def visibility_factors(images: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Per-pendulum visibility (1 clean, 0 pure noise or hidden) for plots.

    A pendulum found by :func:`detect_pendulums` gets the noise factor of its quadrant (the
    authors' plotting rule). One that is not detected (a rod straddling two quadrants, or mostly
    drawn over by another pendulum; the authors' rule gives it no factor) gets the mean factor of
    the quadrants weighted by its pixel counts there, and 0 when none of its pixels is left.

    Args:
        images: clean uint8 ``(N, T, H, W, 3)``.
        factors: ``(N, T, 4)`` quadrant noise factors.

    Returns:
        float64 ``(N, T, 3)``.
    """
    quadrants = detect_pendulums(images)
    counts = quadrant_pixel_counts(images).astype(np.float64)  # (N, T, 3, 4)
    picked = np.take_along_axis(factors, np.clip(quadrants, 0, None), axis=-1)
    total = counts.sum(axis=-1)
    weighted = (counts * factors[:, :, None, :]).sum(axis=-1) / np.maximum(total, 1.0)
    return np.where(quadrants >= 0, picked, np.where(total > 0, weighted, 0.0))

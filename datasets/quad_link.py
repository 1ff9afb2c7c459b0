"""Quad-link pendulum: equations of motion, explicit-Euler simulator, 48x48 renderer
(docs/data.md#quad-link-pendulum).

Physics (derived here from the Lagrangian; the authors' simulator was not used). A planar chain of
``n`` rigid uniform links hangs from a fixed pivot; link i has mass m, length l, centre of mass at
l/2 and inertia ``I`` about its centre of mass (I = m l^2 / 3 = 1/3, used as the inertia about the
centre of mass as in the authors' model).

Angle convention. The state holds the STORED relative joint angles ``phi`` and their velocities:
phi_i (i >= 2) is the angle of link i against link i-1, and phi_1 is the angle of link 1 against
the UPWARD vertical by default (``first_angle_from="up"``, the authors' convention: their C model
adds pi to the first angle on the way in and subtracts it on the way out; fixture README), so
stored phi = 0 is the upright, unstable chain and phi = (pi, 0, ..., 0) the hanging one. With
``first_angle_from="down"`` phi_1 is measured from the downward vertical (phi = 0 hangs). Let
``phi_0`` = pi ("up") or 0 ("down"). The PHYSICAL absolute link angles, measured from the downward
vertical, are

    theta = L phi + phi_0 1,   i.e.   theta_i = phi_0 + sum_{j<=i} phi_j

(the physical first angle is phi_1 + phi_0) with L the lower-triangular matrix of ones;
theta_dot = L phi_dot (phi_0 is a constant). With x to the side and y downwards, the centre of
mass of link i is
``p_i = sum_{j<i} l (sin theta_j, cos theta_j) + (l/2)(sin theta_i, cos theta_i)``, so

    T = 1/2 theta_dot^T M(theta) theta_dot,   M_jk = a_jk cos(theta_j - theta_k) + I delta_jk
    V = -g sum_j b_j cos theta_j
    a_jk = m sum_i c_ij c_ik,   b_j = m sum_i c_ij,   c_ij = l (j < i), l/2 (j = i), 0 (j > i)

and Lagrange's equations in theta read
``M theta_ddot = -(a_jk sin(theta_j - theta_k)) theta_dot^2 - g b sin(theta) + Q_theta``. Viscous
joint friction acts on the relative velocities: ``Q_phi = -friction * phi_dot`` and
``Q_phi = L^T Q_theta``. Substituting theta = L phi + phi_0 1 gives the system solved at every
sub-step for the stored angles:

    (L^T M L) phi_ddot = L^T (-(a sin(theta_j - theta_k)) theta_dot^2 - g b sin theta)
                         - friction phi_dot

Only the gravity term sees phi_0: with phi_0 = pi, sin theta_j = -sin(sum_{k<=j} phi_k), so gravity
pulls the stored phi_1 away from 0 (for one link: (I + m l^2/4) phi_ddot = +m g (l/2) sin phi_1
- friction phi_dot_1). Numerically theta is formed as the authors' model does, by adding phi_0 to
the first angle before the cumulative sum.

Integration: explicit Euler with 500 sub-steps of 1e-4 s per frame of 0.05 s; both the angle
update (old velocities) and the velocity update (accelerations of the old state) use the state
at the start of the sub-step. No transition noise; angles are not wrapped.

Rendering (authors' convention, default): the STORED angles are drawn, link 1 as
``pivot + s (sin phi_1, cos phi_1)`` on a canvas with y downwards, so with the default convention
the image shows link 1 point-reflected through the pivot (the hanging chain's first link is drawn
above the pivot); links 2..n are drawn with their relative angle (see :class:`QuadLinkParams`). This
reproduces the authors' images byte for byte (``tests/data/quad_link_authors_5x20.npz``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

from datasets.pendulum import sub_steps_per_frame

__all__ = [
    "QuadLinkParams",
    "chain_coefficients",
    "joint_accelerations",
    "physical_angles",
    "render_links",
    "simulate",
    "total_energy",
]


@dataclasses.dataclass(frozen=True)
class QuadLinkParams:
    """Physical, integration and rendering parameters of the n-link pendulum
    (docs/data.md#quad-link-pendulum).

    Attributes:
        num_links: n (4).
        mass, length: of every link (1, 1); the centre of mass is at length / 2.
        inertia: inertia of a link about its centre of mass (m l^2 / 3 = 1/3, the authors' value).
        gravity: g (9.81).
        friction: viscous friction on every relative joint velocity (0.1; 0 conserves energy).
        dt: time between frames (0.05 s); sim_dt: explicit-Euler sub-step (1e-4 s, 500 per frame).
        img_size: output image side (48); canvas_size: drawing canvas side (128).
        line_width: drawn link width on the canvas (6); the drawn link length is
            canvas_size / (2 n) = 16 px.
        first_angle_from: reference of the stored first angle phi_1: "up" (default, the
            authors' convention: phi_1 = 0 is link 1 pointing upwards, the physical first angle
            from the downward vertical is phi_1 + pi) or "down" (phi_1 = 0 hangs). See the module
            docstring; the drawing with ``accumulated_angles=False`` does not depend on it.
        accumulated_angles: False (default): the authors' drawing of the STORED angles: link 1 is
            ``pivot + s (sin phi_1, cos phi_1)``, links 2..n are drawn with their RELATIVE angle,
            ``end_i = end_{i-1} - s (sin phi_i, cos phi_i)`` (s = drawn link length, y downwards).
            True: the physical picture, ``end_i = end_{i-1} + s (sin theta_i, cos theta_i)`` with
            the physical absolute angles theta = L phi + phi_0 (module docstring), so a hanging
            chain is drawn hanging in either convention.
    """

    num_links: int = 4
    mass: float = 1.0
    length: float = 1.0
    inertia: float = 1.0 / 3.0
    gravity: float = 9.81
    friction: float = 0.1
    dt: float = 0.05
    sim_dt: float = 1e-4
    img_size: int = 48
    canvas_size: int = 128
    line_width: int = 6
    first_angle_from: str = "up"
    accumulated_angles: bool = False

    def __post_init__(self) -> None:
        if self.first_angle_from not in ("up", "down"):
            raise ValueError(
                f"first_angle_from must be 'up' or 'down', got {self.first_angle_from!r}")

    @property
    def first_angle_offset(self) -> float:
        """phi_0: pi when phi_1 is measured from the upward vertical, 0 from the downward one."""
        return np.pi if self.first_angle_from == "up" else 0.0

    @property
    def num_sub_steps(self) -> int:
        """Explicit-Euler sub-steps per frame (dt / sim_dt, 500)."""
        return sub_steps_per_frame(dt=self.dt, sim_dt=self.sim_dt)


def chain_coefficients(*, params: QuadLinkParams) -> tuple[np.ndarray, np.ndarray]:
    """Constant coefficients (a, b) of the chain's kinetic and potential energy.

    ``c_ij = l if j < i, l/2 if j = i, 0 if j > i`` (lever of joint j on the centre of mass of
    link i); ``a_jk = m sum_i c_ij c_ik`` (n, n) and ``b_j = m sum_i c_ij`` (n,).
    """
    n, l = params.num_links, params.length
    lever = np.tril(np.full((n, n), l), k=-1) + np.eye(n) * (l / 2)  # lever[i, j] = c_ij
    return params.mass * lever.T @ lever, params.mass * lever.sum(axis=0)


def physical_angles(angles: np.ndarray, params: QuadLinkParams) -> np.ndarray:
    """Physical absolute link angles from the downward vertical, theta = L phi + phi_0 (..., n).

    phi_0 (``params.first_angle_offset``) is added to the first stored angle before the cumulative
    sum, as the authors' model does on the way in.
    """
    shifted = np.array(angles, dtype=np.float64)
    shifted[..., 0] += params.first_angle_offset
    return np.cumsum(shifted, axis=-1)


def joint_accelerations(
    *, angles: np.ndarray, velocities: np.ndarray, params: QuadLinkParams
) -> np.ndarray:
    """Relative joint accelerations phi_ddot (module docstring equation).

    ``(L^T M(theta) L) phi_ddot = L^T (-(a sin(theta_j - theta_k)) theta_dot^2 - g b sin theta)
    - friction phi_dot`` with theta = L phi + phi_0 (physical angles, :func:`physical_angles`),
    M_jk = a_jk cos(theta_j - theta_k) + I delta_jk.

    Args:
        angles, velocities: (N, n) float stored relative angles phi (phi_1 from the vertical set
            by ``params.first_angle_from``) and velocities phi_dot.

    Returns:
        (N, n) float64 phi_ddot.
    """
    a, b = chain_coefficients(params=params)
    theta = physical_angles(angles, params)                 # (N, n)
    theta_dot = np.cumsum(velocities, axis=-1)              # (N, n)
    diff = theta[:, :, None] - theta[:, None, :]            # (N, n, n) theta_j - theta_k
    mass_theta = a * np.cos(diff) + params.inertia * np.eye(params.num_links)
    force_theta = (-np.einsum("njk,nk->nj", a * np.sin(diff), theta_dot**2)
                   - params.gravity * b * np.sin(theta))    # (N, n)
    # L^T x: reverse cumulative sum; L^T M L: the same on both axes.
    mass_phi = np.flip(np.cumsum(np.flip(mass_theta, (1, 2)), 1).cumsum(2), (1, 2))
    force_phi = np.flip(np.cumsum(np.flip(force_theta, 1), 1), 1) - params.friction * velocities
    return np.linalg.solve(mass_phi, force_phi[..., None])[..., 0]


def total_energy(*, angles: np.ndarray, velocities: np.ndarray,
                 params: QuadLinkParams) -> np.ndarray:
    """T + V = 1/2 theta_dot^T M theta_dot - g b . cos theta (module docstring), shape (N,).

    ``angles``, ``velocities``: (N, n) stored phi, phi_dot; theta = L phi + phi_0 (physical).
    V is measured from the pivot height, so the hanging chain has the lowest energy in either
    convention.
    """
    a, b = chain_coefficients(params=params)
    theta = physical_angles(angles, params)
    theta_dot = np.cumsum(velocities, axis=-1)
    mass = (a * np.cos(theta[:, :, None] - theta[:, None, :])
            + params.inertia * np.eye(params.num_links))
    kinetic = 0.5 * np.einsum("nj,njk,nk->n", theta_dot, mass, theta_dot)
    return kinetic - params.gravity * (np.cos(theta) @ b)


def simulate(*, initial_angles: np.ndarray, seq_len: int, params: QuadLinkParams) -> np.ndarray:
    """Integrate from rest at ``initial_angles`` and record one state per frame.

    Args:
        initial_angles: (N, n) stored relative angles phi at frame 0 (phi_1 from the vertical set
            by ``params.first_angle_from``; velocities start at 0).
        seq_len: T frames; frame 0 is the initial state.

    Returns:
        float64 (N, T, 2n) stored states ordered (phi_1, phi_dot_1, ..., phi_n, phi_dot_n), the
        layout of the authors' stored states (``tests/data/quad_link_authors_5x20.npz``).
    """
    angles = np.array(initial_angles, dtype=np.float64)
    velocities = np.zeros_like(angles)
    num, n = angles.shape
    states = np.empty((num, seq_len, 2 * n))
    states[:, 0, 0::2], states[:, 0, 1::2] = angles, velocities
    h = params.sim_dt
    for t in range(1, seq_len):
        for _ in range(params.num_sub_steps):
            acc = joint_accelerations(angles=angles, velocities=velocities, params=params)
            angles = angles + h * velocities
            velocities = velocities + h * acc
        states[:, t, 0::2], states[:, t, 1::2] = angles, velocities
    return states


def link_end_points(angles: np.ndarray, params: QuadLinkParams) -> np.ndarray:
    """Canvas (x, y down) of the pivot and every link end, (..., n + 1, 2) float64.

    ``angles``: (..., n) stored phi. See ``QuadLinkParams.accumulated_angles``.
    """
    n = params.num_links
    seg = params.canvas_size / (2 * n)
    if params.accumulated_angles:
        shown, sign = physical_angles(angles, params), np.ones(n)
    else:
        shown, sign = angles, np.r_[1.0, -np.ones(n - 1)]
    steps = sign[:, None] * seg * np.stack([np.sin(shown), np.cos(shown)], axis=-1)  # (..., n, 2)
    pivot = np.full(angles.shape[:-1] + (1, 2), params.canvas_size / 2)
    return np.concatenate([pivot, pivot + np.cumsum(steps, axis=-2)], axis=-2)


def render_links(angles: np.ndarray, params: QuadLinkParams) -> np.ndarray:
    """Draw chains of stored relative angles (..., n) as uint8 images (..., img_size, img_size).

    Each frame: float ('F') canvas of zeros; one line of value 1.0 and ``line_width`` per link
    between consecutive points of ``link_end_points``; LANCZOS resize; clip to [0, 1]; times 255
    in float32; truncating cast to uint8 (as the pendulum renderer, docs/data.md#conventions).
    """
    points = link_end_points(np.asarray(angles, dtype=np.float64), params)
    flat = points.reshape(-1, params.num_links + 1, 2).tolist()
    canvas_shape = (params.canvas_size, params.canvas_size)
    out_shape = (params.img_size, params.img_size)
    images = np.empty((len(flat),) + out_shape, dtype=np.uint8)
    scale = np.float32(255.0)
    for i, chain in enumerate(flat):
        canvas = Image.new("F", canvas_shape, 0.0)
        draw = ImageDraw.Draw(canvas)
        for start, end in zip(chain[:-1], chain[1:]):
            draw.line([tuple(start), tuple(end)], fill=1.0, width=params.line_width)
        small = np.asarray(canvas.resize(out_shape, resample=Image.LANCZOS))
        images[i] = scale * np.clip(small, 0.0, 1.0)
    return images.reshape(np.shape(angles)[:-1] + out_shape)


def sample_initial_angles(random_state: np.random.RandomState, num_seqs: int,
                          params: QuadLinkParams) -> np.ndarray:
    """Initial stored angles ~ U(-pi, pi), drawn link by link as ``(N, 1)`` each: (N, n)
    (docs/data.md#quad-link-pendulum).

    The same numbers mean different physical chains for ``first_angle_from`` "up" and "down".
    """
    return np.concatenate([random_state.uniform(-np.pi, np.pi, size=(num_seqs, 1))
                           for _ in range(params.num_links)], axis=1)


def sin_cos_targets(states: np.ndarray) -> np.ndarray:
    """(sin phi_i, cos phi_i) of the stored relative angles, interleaved per link: (..., 2n)."""
    angles = states[..., 0::2]
    return np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(angles.shape[:-1] + (-1,))


def simulate_splits(sizes: dict[str, int], seq_len: int, random_state: np.random.RandomState,
                    params: QuadLinkParams, noisy: bool,
                    return_states: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Train and test splits from ONE stream (TF-master; docs/data.md#dataset-sizes-and-seeds).

    Draw order: train initial angles, test initial angles, then per split (train, test) its
    rendering and, if ``noisy``, its time-correlated image noise (same parameters as E1,
    docs/data.md#time-correlated-image-noise).

    With the default params this reproduces the authors' generator (fixture README,
    ``quad_link_authors_5x20.npz``): images byte for byte, targets to float32 rounding.

    Returns:
        {split: {"images" uint8 (N, T, 48, 48, 1), "targets" float32 (N, T, 2n),
        "noise_factors" float32 (N, T) when noisy}}; with ``return_states`` also "states" float64
        (N, T, 2n) from :func:`simulate`.
    """
    from datasets.noise import NoiseParams, add_image_noise  # noqa: PLC0415 (no import cycle)

    starts = {split: sample_initial_angles(random_state, num, params)
              for split, num in sizes.items()}
    splits = {}
    for split, initial in starts.items():
        states = simulate(initial_angles=initial, seq_len=seq_len, params=params)
        images = render_links(states[..., 0::2], params)
        entry = {"targets": sin_cos_targets(states).astype(np.float32)}
        if return_states:
            entry["states"] = states
        if noisy:
            images, factors = add_image_noise(images, random_state, NoiseParams())
            entry["noise_factors"] = factors.astype(np.float32)
        splits[split] = {"images": images[..., None], **entry}
    return splits

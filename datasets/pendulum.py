"""Single pendulum simulator and 24x24 line renderer (docs/data.md#single-pendulum).

Dynamics (angle ``theta`` measured from the upright position while simulating, velocity ``v``)::

    c = g * l * m / I,   I = m * l**2 / 3
    v     <- v + dt_s * (c * sin(theta) + u / I - friction * v)   # semi-implicit Euler sub-step
    theta <- theta + dt_s * v                                     # uses the new velocity

500 sub-steps of ``dt_s = 1e-4`` make one frame of ``dt = 0.05``. After each frame the velocity gets
transition noise ``N(0, 0.1**2)`` and the angle is wrapped into ``[0, 2*pi)``. After the whole
sequence ``pi`` is subtracted from the angle, so ``theta = 0`` is the stable hanging position (the
rod points straight down in the image). Observation noise ``N(0, (1e-5)**2)`` is added to the
whole state before rendering: images show the noisy angle, targets ``(sin theta, cos theta)`` the
clean one.

All random numbers come from ONE ``numpy.random.RandomState`` in the order documented in
:meth:`PendulumSimulator.sample_data_set`; that order is part of the data definition and must not be
changed (the test-set anchors of docs/baselines.md#sanity-anchors depend on it).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

__all__ = [
    "PendulumParams",
    "PendulumSample",
    "PendulumSimulator",
    "render_angles",
    "sin_cos_targets",
]


def sub_steps_per_frame(*, dt: float, sim_dt: float) -> int:
    """Integration sub-steps per frame, ``dt / sim_dt``; ValueError unless it is an integer."""
    steps = dt / sim_dt
    if abs(steps - round(steps)) > 1e-9:
        raise ValueError(f"dt={dt} is not an integer multiple of sim_dt={sim_dt}")
    return int(round(steps))


@dataclasses.dataclass(frozen=True)
class PendulumParams:
    """Physical, noise and rendering parameters of the single pendulum
    (docs/data.md#single-pendulum).

    Attributes:
        mass: Pendulum mass m.
        length: Rod length l.
        gravity: Gravitational acceleration g.
        friction: Viscous friction coefficient on the velocity (experiments use 0.1).
        dt: Time between two frames in seconds.
        sim_dt: Integration sub-step; ``dt / sim_dt`` must be an integer (500 by default).
        transition_noise_std: Std of the Gaussian noise added to ``v`` after every frame.
        observation_noise_std: Std of the Gaussian noise added to the state before rendering.
        img_size: Side of the square output image in pixels.
        canvas_size: Side of the internal canvas the line is drawn on before resizing.
        line_length: Length of the drawn rod on the canvas in pixels.
        line_width: Width of the drawn rod on the canvas in pixels.
    """

    mass: float = 1.0
    length: float = 1.0
    gravity: float = 9.81
    friction: float = 0.1
    dt: float = 0.05
    sim_dt: float = 1e-4
    transition_noise_std: float = 0.1
    observation_noise_std: float = 1e-5
    img_size: int = 24
    canvas_size: int = 128
    line_length: float = 55.0
    line_width: int = 8

    @property
    def inertia(self) -> float:
        """Moment of inertia of a rod about its end, ``I = m l^2 / 3``."""
        return self.mass * self.length**2 / 3.0

    @property
    def num_sub_steps(self) -> int:
        """Number of integration sub-steps per frame (``dt / sim_dt``)."""
        return sub_steps_per_frame(dt=self.dt, sim_dt=self.sim_dt)


class PendulumSample(NamedTuple):
    """Output of :meth:`PendulumSimulator.sample_data_set`.

    Attributes:
        images: uint8 ``(N, T, img_size, img_size)`` renderings of the noisy angle.
        states: float64 ``(N, T, 2)`` clean ``(theta, v)``, ``theta`` in ``[-pi, pi)``, 0 = hanging.
    """

    images: np.ndarray
    states: np.ndarray

    @property
    def targets(self) -> np.ndarray:
        """float64 ``(N, T, 2)`` targets ``(sin theta, cos theta)`` of the clean angle."""
        return sin_cos_targets(self.states)


def sin_cos_targets(states: np.ndarray) -> np.ndarray:
    """Map states ``(..., 2)`` (angle first) to float64 targets ``(..., 2) = (sin, cos)``."""
    theta = states[..., 0]
    return np.stack([np.sin(theta), np.cos(theta)], axis=-1)


def render_angles(angles: np.ndarray, params: PendulumParams | None = None) -> np.ndarray:
    """Render pendulum angles as grey-scale line images.

    Each frame: a float ('F') canvas filled with 0; a line of value 1.0 from the pivot (c, c),
    c = canvas_size / 2, to ``(c + L sin theta, c + L cos theta)`` in PIL (x, y) coordinates, so
    ``theta = 0`` points down; LANCZOS resize to ``img_size``; clip to [0, 1]; times 255 in float32;
    truncating cast to uint8.

    Args:
        angles: float array of any shape ``S`` (the angle convention of :class:`PendulumSample`).
        params: Rendering parameters (defaults of :class:`PendulumParams` if None).

    Returns:
        uint8 array of shape ``S + (img_size, img_size)``.
    """
    params = params or PendulumParams()
    angles = np.asarray(angles, dtype=np.float64)
    flat = angles.reshape(-1)
    centre = params.canvas_size / 2
    # End points computed vectorised once; PIL draws with Python floats.
    x_end = (centre + params.line_length * np.sin(flat)).tolist()
    y_end = (centre + params.line_length * np.cos(flat)).tolist()
    canvas_shape = (params.canvas_size, params.canvas_size)
    out_shape = (params.img_size, params.img_size)
    images = np.empty((flat.size,) + out_shape, dtype=np.uint8)
    scale = np.float32(255.0)
    for i, (x1, y1) in enumerate(zip(x_end, y_end)):
        canvas = Image.new("F", canvas_shape, 0.0)
        ImageDraw.Draw(canvas).line(
            [(centre, centre), (x1, y1)], fill=1.0, width=params.line_width
        )
        small = np.asarray(canvas.resize(out_shape, resample=Image.LANCZOS))
        # float32 product then truncation, as in the authors' generator (never rounding)
        images[i] = scale * np.clip(small, 0.0, 1.0)
    return images.reshape(angles.shape + out_shape)


class PendulumSimulator:
    """Vectorised single-pendulum simulator with a line renderer.

    Args:
        params: Physical/noise/rendering parameters.
        random_state: The ``RandomState`` all draws come from; it is re-seeded by
            :meth:`sample_data_set` when a seed is passed and otherwise continues its stream.
    """

    def __init__(
        self,
        params: PendulumParams | None = None,
        random_state: np.random.RandomState | None = None,
    ) -> None:
        self.params = params or PendulumParams()
        self.random = random_state if random_state is not None else np.random.RandomState(0)
        self._num_sub_steps = self.params.num_sub_steps  # validates dt / sim_dt

    def _transition(self, theta: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integrate one frame (no actions) for all sequences. Shapes: ``(N,)`` each."""
        p = self.params
        c = p.gravity * p.length * p.mass / p.inertia  # 29.43 for the defaults
        sim_dt, friction = p.sim_dt, p.friction
        for _ in range(self._num_sub_steps):
            # semi-implicit Euler: velocity first, then angle with the new velocity (u = 0)
            v = v + sim_dt * (c * np.sin(theta) - friction * v)
            theta = theta + sim_dt * v
        return theta, v

    def simulate_states(self, num_seqs: int, seq_len: int) -> np.ndarray:
        """Simulate clean states, drawing steps (1) and (2) of :meth:`sample_data_set`.

        Returns:
            float64 ``(N, T, 2)`` states ``(theta, v)`` after subtracting pi from ``theta``.
        """
        p = self.params
        states = np.zeros((num_seqs, seq_len, 2), dtype=np.float64)
        theta = self.random.uniform(0.0, 2 * np.pi, size=(num_seqs, 1))[:, 0]
        v = np.zeros(num_seqs, dtype=np.float64)
        states[:, 0, 0] = theta
        for t in range(1, seq_len):
            theta, v = self._transition(theta, v)
            v = v + self.random.normal(0.0, p.transition_noise_std, size=num_seqs)
            theta = theta % (2 * np.pi)
            states[:, t, 0], states[:, t, 1] = theta, v
        states[..., 0] -= np.pi  # theta = 0 is now the hanging position
        return states

    def sample_data_set(
        self, num_seqs: int, seq_len: int, seed: int | None = None
    ) -> PendulumSample:
        """Simulate and render ``num_seqs`` sequences of ``seq_len`` frames.

        Draw order (docs/data.md#single-pendulum): (0) if ``seed`` is given, re-seed the
        RandomState; (1) initial angles ``uniform(0, 2pi, (N, 1))``; (2) for t = 1..T-1
        ``normal(0, 0.1, N)``; (3) observation noise ``normal(0, 1e-5, (N, T, 2))``. Because
        draws are vectorised over sequences, a set of N sequences is not a prefix of a larger
        set.

        Args:
            num_seqs: Number of sequences N.
            seq_len: Frames per sequence T.
            seed: Optional seed to re-seed the generator's RandomState with first.

        Returns:
            :class:`PendulumSample` with uint8 images ``(N, T, 24, 24)`` and float64 clean states
            ``(N, T, 2)``; ``.targets`` gives ``(sin theta, cos theta)``.
        """
        if num_seqs < 0 or seq_len < 1:
            raise ValueError(f"need num_seqs >= 0 and seq_len >= 1, got {num_seqs}, {seq_len}")
        if seed is not None:
            self.random.seed(seed)
        states = self.simulate_states(num_seqs, seq_len)
        obs_noise = self.random.normal(
            0.0, self.params.observation_noise_std, size=(num_seqs, seq_len, 2)
        )
        noisy_states = states + obs_noise
        images = render_angles(noisy_states[..., 0], self.params)
        logger.debug("simulated %d x %d pendulum frames", num_seqs, seq_len)
        return PendulumSample(images=images, states=states)

"""Time-correlated image noise (docs/data.md#time-correlated-image-noise) and imputation masks
(docs/data.md#imputation-masks).

Noise factor process per sequence (f = 1: clean image, f = 0: pure noise)::

    f_0 ~ U(0, 1),   f_{t+1} = clip(f_t + U(-r, r), 0, 1)
    t1 ~ U(t_ll, t_lu),   t2 ~ U(t_ul, t_uu)
    f = clip((f - t1) / (t2 - t1), 0, 1);   f[:first_n_clean] = 1
    noisy = uint8(f * image + (1 - f) * U(0, 255))        # truncation, per pixel noise

The draws continue the caller's ``RandomState`` stream in exactly this order (all f_0, then the
increments step by step, t1, t2, then the pixel noise sequence by sequence).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["NoiseParams", "add_image_noise", "imputation_mask", "noise_factors"]


@dataclasses.dataclass(frozen=True)
class NoiseParams:
    """Parameters of the time-correlated noise; defaults are what every experiment uses
    (docs/data.md#time-correlated-image-noise).

    Attributes:
        r: Half-width of the uniform random-walk increment of the factor.
        t_ll, t_lu: Range of the lower threshold t1 (factors below t1 become 0).
        t_ul, t_uu: Range of the upper threshold t2 (factors above t2 become 1).
        first_n_clean: Number of leading frames that are always clean (factor 1).
    """

    r: float = 0.2
    t_ll: float = 0.0
    t_lu: float = 0.25
    t_ul: float = 0.75
    t_uu: float = 1.0
    first_n_clean: int = 5


def noise_factors(
    num_seqs: int, seq_len: int, random_state: np.random.RandomState, params: NoiseParams
) -> np.ndarray:
    """Draw the factor process (steps 1-4 of docs/data.md#time-correlated-image-noise) from
    ``random_state``.

    Returns:
        float64 ``(N, T)`` factors in [0, 1]; the first ``first_n_clean`` frames are exactly 1.
    """
    factors = np.zeros((num_seqs, seq_len), dtype=np.float64)
    factors[:, 0] = random_state.uniform(0.0, 1.0, size=num_seqs)
    for t in range(seq_len - 1):
        step = random_state.uniform(-params.r, params.r, size=num_seqs)
        factors[:, t + 1] = np.clip(factors[:, t] + step, 0.0, 1.0)
    t1 = random_state.uniform(params.t_ll, params.t_lu, size=(num_seqs, 1))
    t2 = random_state.uniform(params.t_ul, params.t_uu, size=(num_seqs, 1))
    factors = np.clip((factors - t1) / (t2 - t1), 0.0, 1.0)
    factors[:, : params.first_n_clean] = 1.0
    return factors


def add_image_noise(
    images: np.ndarray,
    random_state: np.random.RandomState,
    params: NoiseParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend uint8 image sequences with uniform pixel noise, time-correlated per sequence.

    Args:
        images: uint8 ``(N, T, H, W)`` or ``(N, T, H, W, C)``.
        random_state: RandomState whose stream is continued (the simulator's,
            docs/data.md#dataset-sizes-and-seeds).
        params: Noise parameters (defaults of :class:`NoiseParams` if None).

    Returns:
        ``(noisy, factors)``: uint8 array of the input shape and float64 ``(N, T)`` factors.
    """
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim not in (4, 5):
        raise ValueError(f"images must be (N, T, H, W[, C]), got shape {images.shape}")
    params = params or NoiseParams()
    num_seqs, seq_len = images.shape[:2]
    factors = noise_factors(num_seqs, seq_len, random_state, params)
    noisy = np.empty_like(images)
    bcast = (seq_len,) + (1,) * (images.ndim - 2)
    for n in range(num_seqs):
        # noise is drawn for every frame, the clean ones included (keeps the stream aligned)
        noise = random_state.uniform(0.0, 255, size=images.shape[1:])
        f = factors[n].reshape(bcast)
        noisy[n] = (f * images[n] + (1 - f) * noise).astype(np.uint8)
    logger.debug("added time-correlated noise to %d sequences", num_seqs)
    return noisy, factors


def imputation_mask(
    num_seqs: int, seq_len: int, seed: int, first_n_valid: int = 5
) -> np.ndarray:
    """Observation mask (docs/data.md#imputation-masks): ``RandomState(seed).rand(N, T, 1) < 0.5``,
    first frames valid.

    A fresh RandomState is used (independent of the simulator stream, same seed as the data).

    Returns:
        bool ``(N, T)``; True = observed. Expected valid fraction 0.5 + 0.5 * first_n_valid / T.
    """
    valid = np.random.RandomState(seed).rand(num_seqs, seq_len, 1) < 0.5
    valid[:, :first_n_valid] = True
    return valid[..., 0]

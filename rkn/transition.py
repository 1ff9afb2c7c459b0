"""Locally linear transition model of the RKN (docs/model.md#locally-linear-transition).

A_t = sum_k alpha_t^(k) A^(k) with alpha_t = softmax(coef_net(mu^+_{t-1})) and K learned basis
matrices A^(k) = [[B11, B12], [B21, B22]] whose m x m blocks are band matrices of bandwidth b
(entries with |i - j| > b are zero). Only the bands are stored, as the authors' PyTorch port
does: ``basis`` is (K, 2, 2, m, 2b + 1), entry [k, r, c, i, d] = B_rc^(k)[i, i + d - b], and the
filter applies A_t in that form (``rkn.kalman.predict_band``), so no 2m x 2m matrix is formed and
time and memory grow linearly in m. The few stored entries whose column i + d - b falls outside
the block (the band's corners) are fixed at zero by a mask and never trained. TF-master stores the
full 2m x 2m bases and masks them; both parameterise the same function class from the same
initial point, and a state dict with full bases (run folders and checkpoints written before band
storage) is converted on load. The transition noise is a learned, state-independent diagonal
(upper and lower m-vectors).

Initialisation (TF-master, kept as the authors have it): every basis matrix starts at the same
[[I, 0.2 I], [-0.2 I, I]], so A_t does not depend on alpha at first and the exact gradient of the
coefficient net is zero until the bases differ; the bases move apart after the first optimiser
step (their gradients are weighted by different alpha_k), after which the coefficient net trains.
``tests/rkn/test_model.py`` checks that the coefficient net receives a non-zero gradient within
two steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rkn.nets import ACTIVATIONS, check_choice, mlp, var_activation

# Initial blocks of every basis matrix (TF-master; docs/model.md#identical-initial-bases):
# B11 = B22 = I, B12 = 0.2 I, B21 = -0.2 I.
INIT_OFF_DIAGONAL = 0.2


def effective_bandwidth(latent_obs_dim: int, bandwidth: int) -> int:
    """The bandwidth stored: b, or m - 1 when b is wider than a block (then the blocks are full)."""
    return min(bandwidth, latent_obs_dim - 1)


def band_mask(latent_obs_dim: int, bandwidth: int) -> Tensor:
    """(m, m) float mask, 1 where |i - j| <= bandwidth (bandwidth >= m - 1: all ones)."""
    idx = torch.arange(latent_obs_dim)
    return ((idx[:, None] - idx[None, :]).abs() <= bandwidth).to(torch.get_default_dtype())


def _band_index(latent_obs_dim: int, half: int) -> tuple[Tensor, Tensor, Tensor]:
    """Row i, column i + d - half and whether that column lies in the block, each (m, 2 half + 1):
    where band entry [i, d] sits in its m x m block."""
    rows = torch.arange(latent_obs_dim)[:, None].expand(latent_obs_dim, 2 * half + 1)
    cols = rows + torch.arange(2 * half + 1)[None, :] - half
    return rows, cols, (cols >= 0) & (cols < latent_obs_dim)


def band_layout_mask(latent_obs_dim: int, bandwidth: int) -> Tensor:
    """(m, 2b' + 1) float mask of the band layout (b' = ``effective_bandwidth``): 1 where the
    entry [i, d] is a real entry of the block (column i + d - b' inside 0..m-1), 0 at corners."""
    _, _, inside = _band_index(latent_obs_dim, effective_bandwidth(latent_obs_dim, bandwidth))
    return inside.to(torch.get_default_dtype())


def dense_to_band(dense: Tensor, bandwidth: int) -> Tensor:
    """(..., 2m, 2m) matrices -> their band blocks (..., 2, 2, m, 2b' + 1); entries outside the
    band are dropped, corners are zero."""
    m = dense.shape[-1] // 2
    rows, cols, inside = _band_index(m, effective_bandwidth(m, bandwidth))
    blocks = dense.unflatten(-1, (2, m)).unflatten(-3, (2, m)).transpose(-3, -2)  # (..., 2, 2, m, m)
    band = blocks[..., rows, cols.clamp(0, m - 1)]
    return band * inside.to(band.dtype)


def band_to_dense(band: Tensor) -> Tensor:
    """(..., 2, 2, m, 2b + 1) band blocks -> the (..., 2m, 2m) matrices (zeros off the band)."""
    m, width = band.shape[-2:]
    rows, cols, inside = _band_index(m, width // 2)
    blocks = band.new_zeros(*band.shape[:-1], m)
    blocks[..., rows[inside], cols[inside]] = band[..., inside]
    return blocks.transpose(-3, -2).flatten(-4, -3).flatten(-2)


def initial_transition_matrix(latent_obs_dim: int) -> Tensor:
    """The documented init of each basis matrix, [[I, 0.2 I], [-0.2 I, I]], shape (2m, 2m)."""
    eye = torch.eye(latent_obs_dim)
    top = torch.cat([eye, INIT_OFF_DIAGONAL * eye], 1)
    bottom = torch.cat([-INIT_OFF_DIAGONAL * eye, eye], 1)
    return torch.cat([top, bottom], 0)


class LocallyLinearTransition(nn.Module):
    """K band-matrix bases mixed by a softmax coefficient net, plus learned transition noise.

    Args:
        latent_obs_dim: m (state size 2m).
        num_basis: K.
        bandwidth: b; b >= m - 1 gives full blocks.
        coef_hidden: hidden widths of the coefficient net (TF: none).
        coef_act: activation of those hidden layers ("relu" TF, "tanh" PT).
        noise_init: initial transition-noise variance (0.1 TF-master).
        var_act: "elup1" (TF) or "softplus" (PT) map from raw parameter to noise variance.

    Raises:
        ValueError: num_basis < 1 or bandwidth < 0.
    """

    def __init__(
        self,
        *,
        latent_obs_dim: int,
        num_basis: int = 15,
        bandwidth: int = 3,
        coef_hidden: Sequence[int] = (),
        coef_act: str = "relu",
        noise_init: float = 0.1,
        var_act: str = "elup1",
    ) -> None:
        super().__init__()
        check_choice("coef_act", coef_act, ACTIVATIONS)
        if num_basis < 1 or bandwidth < 0:
            raise ValueError(f"need num_basis >= 1, bandwidth >= 0; got {num_basis}, {bandwidth}")
        self.latent_obs_dim = latent_obs_dim
        self.num_basis = num_basis
        self.bandwidth = effective_bandwidth(latent_obs_dim, bandwidth)
        state_dim = 2 * latent_obs_dim
        initial = dense_to_band(initial_transition_matrix(latent_obs_dim), self.bandwidth)
        self.basis = nn.Parameter(initial.expand(num_basis, *initial.shape).clone())
        # Real entries of the band layout (corners 0), broadcast over (K, 2, 2, m, 2b + 1).
        self.register_buffer("mask", band_layout_mask(latent_obs_dim, self.bandwidth))
        self.coef_net = mlp(state_dim, coef_hidden, num_basis, coef_act)
        self._var_act, inverse = var_activation(var_act)
        self.raw_noise = nn.Parameter(torch.full((state_dim,), inverse(noise_init)))

    def masked_basis(self) -> Tensor:
        """Band bases with the corners zeroed, flattened to (K, 4 m (2b + 1)). Compute once per
        sequence and pass to ``band`` / ``matrix``."""
        return (self.basis * self.mask).reshape(self.num_basis, -1)

    def dense_basis(self) -> Tensor:
        """The K basis matrices as (K, 2m, 2m) (zeros off the band), for tests and inspection."""
        return band_to_dense(self.basis * self.mask)

    @torch.no_grad()
    def copy_dense_basis_(self, dense: Tensor) -> None:
        """Set the bases from (K, 2m, 2m) matrices; their entries off the band are dropped."""
        self.basis.copy_(dense_to_band(dense.to(self.basis.dtype), self.bandwidth))

    def noise(self) -> Tensor:
        """Transition-noise variances, (1, 2m): upper m entries, then lower m."""
        return self._var_act(self.raw_noise).unsqueeze(0)

    def num_masked(self) -> int:
        """Stored basis entries fixed at zero (the band's corners), never trained."""
        return int(self.num_basis * 4 * (self.mask.numel() - self.mask.sum().item()))

    def band(self, post_mean: Tensor, flat_basis: Tensor | None = None) -> Tensor:
        """Bands of A_t = sum_k alpha_k(mu^+_{t-1}) A^(k) for a batch of previous posterior means.

        Args:
            post_mean: mu^+_{t-1}, (B, 2m).
            flat_basis: ``masked_basis()`` if already computed for this sequence.

        Returns:
            (B, 2, 2, m, 2b + 1): the band of each block (``rkn.kalman.predict_band``).
        """
        if flat_basis is None:
            flat_basis = self.masked_basis()
        coef = torch.softmax(self.coef_net(post_mean), dim=-1)  # (B, K)
        return (coef @ flat_basis).view(-1, *self.basis.shape[1:])  # one matmul for the batch

    def matrix(self, post_mean: Tensor, flat_basis: Tensor | None = None) -> Tensor:
        """The whole transition matrix A_t, (B, 2m, 2m): for the full-covariance filter and
        the dense oracles of the tests; the factorized filter uses ``band``."""
        return band_to_dense(self.band(post_mean, flat_basis))

    def forward(
        self, post_mean: Tensor, flat_basis: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Blocks (A11, A12, A21, A22) of ``matrix(post_mean)``, each (B, m, m)."""
        a = self.matrix(post_mean, flat_basis)
        m = self.latent_obs_dim
        return a[:, :m, :m], a[:, :m, m:], a[:, m:, :m], a[:, m:, m:]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str,
                              *args: Any, **kwargs: Any) -> None:
        """Accept full (K, 2m, 2m) bases (TF layout; models saved before band storage) by
        keeping their band."""
        key = prefix + "basis"
        stored = state_dict.get(key)
        if stored is not None and stored.shape == (self.num_basis, 2 * self.latent_obs_dim,
                                                   2 * self.latent_obs_dim):
            state_dict[key] = dense_to_band(stored, self.bandwidth)
        key = prefix + "mask"
        if key in state_dict and state_dict[key].shape != self.mask.shape:
            state_dict[key] = self.mask.clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

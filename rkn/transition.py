"""Locally linear transition model of the RKN (paper.md §1.3).

A_t = sum_k alpha_t^(k) A^(k) with alpha_t = softmax(coef_net(mu^+_{t-1})) and K learned basis
matrices A^(k) = [[B11, B12], [B21, B22]] whose m x m blocks are band matrices of bandwidth b
(entries with |i - j| > b are zero). As in TF-master the full 2m x 2m basis is stored and the
band is enforced by a fixed mask; masked entries get zero gradient and never change.
The transition noise is a learned, state-independent diagonal (upper and lower m-vectors).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rkn.nets import ACTIVATIONS, check_choice, mlp, var_activation

# Initial blocks of every basis matrix (TF-master, §1.3): B11 = B22 = I, B12 = 0.2 I, B21 = -0.2 I.
INIT_OFF_DIAGONAL = 0.2


def band_mask(latent_obs_dim: int, bandwidth: int) -> Tensor:
    """(m, m) float mask, 1 where |i - j| <= bandwidth (bandwidth >= m - 1: all ones)."""
    idx = torch.arange(latent_obs_dim)
    return ((idx[:, None] - idx[None, :]).abs() <= bandwidth).to(torch.get_default_dtype())


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
        state_dim = 2 * latent_obs_dim
        self.basis = nn.Parameter(
            initial_transition_matrix(latent_obs_dim).expand(num_basis, -1, -1).clone()
        )
        # One band mask per block, tiled to the 2m x 2m layout of the basis.
        self.register_buffer("mask", band_mask(latent_obs_dim, bandwidth).repeat(2, 2))
        self.coef_net = mlp(state_dim, coef_hidden, num_basis, coef_act)
        self._var_act, inverse = var_activation(var_act)
        self.raw_noise = nn.Parameter(torch.full((state_dim,), inverse(noise_init)))

    def masked_basis(self) -> Tensor:
        """Basis with the band enforced, flattened to (K, 4m^2). Compute once per sequence."""
        return (self.basis * self.mask).reshape(self.num_basis, -1)

    def noise(self) -> Tensor:
        """Transition-noise variances, (1, 2m): upper m entries, then lower m."""
        return self._var_act(self.raw_noise).unsqueeze(0)

    def num_masked(self) -> int:
        """Number of basis entries fixed at zero by the band mask (stored but never trained)."""
        return int(self.num_basis * (self.mask.numel() - self.mask.sum().item()))

    def matrix(self, post_mean: Tensor, flat_basis: Tensor | None = None) -> Tensor:
        """A_t = sum_k alpha_k(mu^+_{t-1}) A^(k) for a batch of previous posterior means.

        Args:
            post_mean: mu^+_{t-1}, (B, 2m).
            flat_basis: ``masked_basis()`` if already computed for this sequence.

        Returns:
            The whole transition matrix, (B, 2m, 2m).
        """
        if flat_basis is None:
            flat_basis = self.masked_basis()
        m = self.latent_obs_dim
        coef = torch.softmax(self.coef_net(post_mean), dim=-1)  # (B, K)
        return (coef @ flat_basis).view(-1, 2 * m, 2 * m)  # one matmul for the whole batch

    def forward(
        self, post_mean: Tensor, flat_basis: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Blocks (A11, A12, A21, A22) of ``matrix(post_mean)``, each (B, m, m)."""
        a = self.matrix(post_mean, flat_basis)
        m = self.latent_obs_dim
        return a[:, :m, :m], a[:, :m, m:], a[:, m:, :m], a[:, m:, m:]

"""RKN with a full 2m x 2m belief covariance and the exact Kalman update (ablation E8, "fc").

The factorized RKN (``rkn.model.RKN``) keeps only the diagonals of the four covariance blocks.
This model keeps the whole covariance (``rkn.kalman_full``) and is otherwise the same network:
the same ``RKNConfig`` fields, encoder, locally linear transition, initial belief, step order,
masked update and decoders, built from the same random stream (so a seed gives the same initial
weights as ``rkn``). The variance decoder receives the diagonals of the upper, lower and
off-diagonal blocks [upper, lower, side] (the authors' full-covariance cell is lost; what its
decoder received is unknown, docs/model.md#full-covariance-variant). Cost per step: O(m^3)
(matrix products and a Cholesky factorisation of the m x m innovation covariance) against
O(K m b) for the factorized filter on the transition's bands.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rkn.cell import RKNCell
from rkn.interface import FilterFailure
from rkn.kalman import FactorizedCov
from rkn.kalman_full import (FullBelief, block_diagonals, masked_update_full, predict_full,
                             update_full)
from rkn.model import RKN, RKNConfig


class FullCovCell(RKNCell):
    """Kalman filter with a full belief covariance over the RKN's locally linear transition.

    Same constructor and options as ``RKNCell``; the initial belief is its factorized initial
    belief written as a full matrix (diagonal, side 0).
    """

    def filter_full(self, obs_mean: Tensor, obs_var: Tensor,
                    obs_valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Filter a batch of latent observation sequences keeping full covariances.

        Args:
            obs_mean: w_t, (B, T, m). obs_var: (B, T, m), positive.
            obs_valid: (B, T) bool or None (None: every step is updated).

        Returns:
            Posterior means (B, T, 2m) and covariances (B, T, 2m, 2m) of every step.

        Raises:
            rkn.interface.FilterFailure: the innovation covariance is not positive definite.
        """
        means, covs, _ = self.filter_full_window(obs_mean, obs_var, obs_valid, carry=False)
        return means, covs

    def filter_full_window(self, obs_mean: Tensor, obs_var: Tensor,
                           obs_valid: Tensor | None = None, belief: FullBelief | None = None, *,
                           carry: bool = True) -> tuple[Tensor, Tensor, FullBelief | None]:
        """``filter_full`` over one window, continuing from ``belief`` (truncated BPTT).

        The carried belief means what ``RKNCell.filter_window`` says (posterior of the last step
        for "predict_update", prior of the next step for "update_predict"), with its full
        covariance (B, 2m, 2m).

        Returns:
            Posterior means (B, L, 2m), covariances (B, L, 2m, 2m), and the belief to continue
            from (None when ``carry`` is False).
        """
        batch, steps, m = obs_mean.shape
        if m != self.latent_obs_dim or obs_var.shape != obs_mean.shape:
            raise ValueError(f"expected (B, T, {self.latent_obs_dim}) inputs, got "
                             f"{tuple(obs_mean.shape)} and {tuple(obs_var.shape)}")
        if obs_valid is not None and obs_valid.shape != (batch, steps):
            raise ValueError(f"obs_valid must be (B, T) = {(batch, steps)}, "
                             f"got {tuple(obs_valid.shape)}")
        flat_basis = self.transition.masked_basis()
        noise = self.transition.noise()
        if belief is None:
            init = self.initial_belief(batch, obs_mean)
            init_cov = torch.diag_embed(torch.cat([init.cov.upper, init.cov.lower], -1))
            belief = FullBelief(init.mean, init_cov)  # (B, 2m), (B, 2m, 2m)
        means, covs = [], []
        for t in range(steps):
            if self.step_order == "predict_update":
                belief = self._predict(belief, flat_basis, noise)
            try:
                if obs_valid is None:
                    belief = update_full(prior=belief, obs_mean=obs_mean[:, t],
                                         obs_var=obs_var[:, t])
                else:
                    belief = masked_update_full(prior=belief, obs_mean=obs_mean[:, t],
                                                obs_var=obs_var[:, t], obs_valid=obs_valid[:, t])
            except torch.linalg.LinAlgError as err:
                raise FilterFailure(
                    f"full-covariance RKN: the innovation covariance at step {t + 1} is not "
                    "positive definite (its Cholesky factorisation failed), so the belief "
                    "covariance has lost definiteness; lower training.learning_rate or clip "
                    "harder (training.clip_mode / clip_value), or raise the model's "
                    "trans_noise_init") from err
            means.append(belief.mean)
            covs.append(belief.cov)
            if self.step_order == "update_predict" and (t + 1 < steps or carry):
                belief = self._predict(belief, flat_basis, noise)
        return torch.stack(means, 1), torch.stack(covs, 1), belief if carry else None

    def compile_steps(self) -> None:
        """Nothing: the full-covariance filter stays eager (its Cholesky failures must surface
        as ``FilterFailure`` with the step; it is an ablation, not a paper-scale cost)."""

    def _predict(self, belief: FullBelief, flat_basis: Tensor, noise: Tensor) -> FullBelief:
        """Prediction with A_t from the previous posterior mean (the RKN's transition)."""
        transition = self.transition.matrix(belief.mean, flat_basis)  # (B, 2m, 2m)
        return predict_full(posterior=belief, transition=transition, transition_noise=noise)

    def filter_window(  # type: ignore[override]  # carries a FullBelief, not a Belief
            self, obs_mean: Tensor, obs_var: Tensor, obs_valid: Tensor | None = None,
            belief: FullBelief | None = None, *,
            carry: bool = True) -> tuple[Tensor, FactorizedCov, FullBelief | None]:
        """``filter_full_window`` with the covariances reduced to their block diagonals (upper,
        lower, side), each (B, L, m), as the decoder reads them; ``forward`` (``RKNCell``) calls
        it with ``carry`` False."""
        means, covs, belief = self.filter_full_window(obs_mean, obs_var, obs_valid, belief,
                                                      carry=carry)
        return means, block_diagonals(covs), belief


class FullCovRKN(RKN):
    """The RKN of ``rkn.model`` with its factorized cell replaced by ``FullCovCell``."""

    def __init__(self, config: RKNConfig) -> None:
        super().__init__(config)
        factorized = self.cell
        self.cell = FullCovCell(
            transition=factorized.transition,
            init_cov=config.init_cov,
            learn_init_cov=config.learn_init_cov,
            step_order=config.step_order,
            var_act=config.var_act,
        )

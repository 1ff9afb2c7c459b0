"""RKN cell: runs the factorized Kalman filter over a sequence (docs/model.md#prediction-step,
docs/model.md#update-step, docs/model.md#initial-state-and-step-order).

The cell owns the learnable parts (transition, optional initial covariance) and calls the pure
functions of ``rkn.kalman`` once per time step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rkn import kalman
from rkn.kalman import Belief, FactorizedCov
from rkn.nets import check_choice, var_activation
from rkn.transition import LocallyLinearTransition

STEP_ORDERS = ("predict_update", "update_predict")


class RKNCell(nn.Module):
    """Factorized Kalman filter with a locally linear transition.

    Step order "predict_update" (TF, paper): the initial belief (mean 0, upper = lower = init_cov,
    side 0) is the posterior of step 0, and every step t = 1..T runs predict, then update.
    "update_predict" (PT): the initial belief is the prior of step 1; every step runs update,
    then predict. Both output the posterior of every step.

    Args:
        transition: the locally linear transition model (fixes m).
        init_cov: initial upper/lower variance (10 TF; 1.0 TF-icml quad-link).
        learn_init_cov: learn per-unit initial upper/lower variances (PT), initialised at
            ``init_cov`` through ``var_act``.
        step_order: "predict_update" | "update_predict".
        var_act: activation of the learned initial covariance ("elup1" | "softplus").
    """

    def __init__(
        self,
        *,
        transition: LocallyLinearTransition,
        init_cov: float = 10.0,
        learn_init_cov: bool = False,
        step_order: str = "predict_update",
        var_act: str = "elup1",
    ) -> None:
        super().__init__()
        check_choice("step_order", step_order, STEP_ORDERS)
        if init_cov <= 0:
            raise ValueError(f"init_cov must be > 0, got {init_cov}")
        self.transition = transition
        self.latent_obs_dim = transition.latent_obs_dim
        self.step_order = step_order
        self.init_cov = float(init_cov)
        self._var_act, inverse = var_activation(var_act)
        # The per-time-step functions the filter loop calls; compile_steps swaps in compiled ones.
        self._predict_fn = self.predict_step
        self._update_fn = self._update
        if learn_init_cov:
            raw = torch.full((2, self.latent_obs_dim), inverse(self.init_cov))
            self.raw_init_cov: nn.Parameter | None = nn.Parameter(raw)  # rows: upper, lower
        else:
            self.raw_init_cov = None

    def initial_belief(self, batch_size: int, like: Tensor) -> Belief:
        """Initial belief: mean 0 (B, 2m); upper = lower = init_cov, side = 0 (B, m each)."""
        m = self.latent_obs_dim
        mean = like.new_zeros(batch_size, 2 * m)
        if self.raw_init_cov is None:
            upper = lower = like.new_full((batch_size, m), self.init_cov)
        else:
            cov = self._var_act(self.raw_init_cov)
            upper, lower = cov[0].expand(batch_size, m), cov[1].expand(batch_size, m)
        return Belief(mean, FactorizedCov(upper, lower, like.new_zeros(batch_size, m)))

    def forward(
        self, obs_mean: Tensor, obs_var: Tensor, obs_valid: Tensor | None = None
    ) -> tuple[Tensor, FactorizedCov]:
        """Filter a batch of latent observation sequences from the initial belief.

        Args:
            obs_mean: w_t, (B, T, m).
            obs_var: sigma^obs_t, (B, T, m), positive.
            obs_valid: (B, T) bool or None (None: every step is updated). Where False the
                posterior equals the prior (docs/model.md#masked-update).

        Returns:
            post_mean (B, T, 2m) and FactorizedCov(upper, lower, side), each (B, T, m).
        """
        post_mean, cov, _ = self.filter_window(obs_mean, obs_var, obs_valid, carry=False)
        return post_mean, cov

    def filter_window(
        self,
        obs_mean: Tensor,
        obs_var: Tensor,
        obs_valid: Tensor | None = None,
        belief: Belief | None = None,
        *,
        carry: bool = True,
    ) -> tuple[Tensor, FactorizedCov, Belief | None]:
        """Filter a window of latent observations, continuing from ``belief`` (truncated BPTT).

        The belief passed between windows has the meaning of the initial belief of the step
        order: "predict_update" carries the posterior of the window's last step; "update_predict"
        carries the prior of the next step, i.e. the window's last posterior pushed through one
        more prediction (which ``forward`` never computes: it has no next step).

        Args:
            obs_mean, obs_var, obs_valid: as for ``forward``, (B, L, m) and (B, L).
            belief: where to start; None: the initial belief (the start of a sequence).
            carry: compute the belief to continue from (False: return None for it).

        Returns:
            post_mean (B, L, 2m), FactorizedCov(upper, lower, side) each (B, L, m), and the
            belief to start the next window from (mean (B, 2m), factors (B, m)) or None.
        """
        batch, steps, m = obs_mean.shape
        if m != self.latent_obs_dim or obs_var.shape != obs_mean.shape:
            raise ValueError(
                f"expected (B, T, {self.latent_obs_dim}) inputs, got "
                f"{tuple(obs_mean.shape)} and {tuple(obs_var.shape)}"
            )
        if obs_valid is not None and obs_valid.shape != (batch, steps):
            raise ValueError(
                f"obs_valid must be (B, T) = {(batch, steps)}, got {tuple(obs_valid.shape)}"
            )
        flat_basis = self.transition.masked_basis()  # band corners masked once per sequence
        noise = self.transition.noise()
        if belief is None:
            belief = self.initial_belief(batch, obs_mean)
        means, uppers, lowers, sides = [], [], [], []
        for t in range(steps):
            if self.step_order == "predict_update":
                belief = self._predict_fn(belief, flat_basis, noise)
            valid_t = None if obs_valid is None else obs_valid[:, t]
            belief = self._update_fn(belief, obs_mean[:, t], obs_var[:, t], valid_t)
            means.append(belief.mean)
            uppers.append(belief.cov.upper)
            lowers.append(belief.cov.lower)
            sides.append(belief.cov.side)
            if self.step_order == "update_predict" and (t + 1 < steps or carry):
                belief = self._predict_fn(belief, flat_basis, noise)
        cov = FactorizedCov(torch.stack(uppers, 1), torch.stack(lowers, 1), torch.stack(sides, 1))
        return torch.stack(means, 1), cov, belief if carry else None

    def predict_step(self, belief: Belief, flat_basis: Tensor, noise: Tensor) -> Belief:
        """One prediction through the locally linear transition A_t(mu^+_{t-1}), applied on its
        bands (``kalman.predict_band``, docs/model.md#band-storage): O(B m b) per step, no
        2m x 2m matrix."""
        return kalman.predict_band(belief, self.transition.band(belief.mean, flat_basis), noise)

    @staticmethod
    def _update(prior: Belief, w: Tensor, var: Tensor, valid: Tensor | None) -> Belief:
        """Plain update, or masked update when valid flags (B,) are given."""
        if valid is None:
            return kalman.update(prior, w, var)
        return kalman.masked_update(prior, w, var, valid)

    def compile_steps(self) -> None:
        """Compile the per-time-step functions (prediction, update) with ``torch.compile``.

        Each is a handful of small kernels that inductor fuses; the time loop around them stays
        in Python (compiling the unrolled loop of 75 steps took minutes and ran no faster).
        Shapes are static per batch size, so a ragged last batch compiles once more.
        """
        self._predict_fn = torch.compile(self.predict_step, dynamic=False)
        self._update_fn = torch.compile(self._update, dynamic=False)

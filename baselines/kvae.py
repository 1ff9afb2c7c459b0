"""Kalman Variational Auto-Encoder (Fraccaro et al., NeurIPS 2017; docs/baselines.md#kvae), written
fresh.

Per-frame VAE q(a_t | x_t) (the RKN's conv encoder) with the RKN's Bernoulli image decoder
p(x_t | a_t), and a linear-Gaussian state-space model on the pseudo-observations a_t:

    z_t = A_t z_{t-1} + eps, eps ~ N(0, Q);  a_t = C_t z_t + delta, delta ~ N(0, R);
    (A_t, C_t) = sum_k alpha_t^(k) (A_k, C_k),  alpha_t = softmax(Dense(LSTM(a_{t-1}))).

No actions (B u_t = 0). Q, R and the initial belief N(0, init_cov I) are fixed; A_k (init I) and
C_k (init N(0, 0.05^2)) are learned. The filter runs in float64 (``baselines.lgssm``).

Training (information set A, docs/baselines.md#evaluation-contract-for-imputation-models:
full, unmasked training sequences, i.e. the clean target frames): minus the per-frame ELBO with
one sample a ~ q(a | x),
    recon_weight * log p(x | a) - log q(a | x) + log p(a),
where log p(a) is the exact Kalman-filter innovation log-likelihood.
Imputation (test): missing frames get Kalman gain zero and the alpha-LSTM is fed the model's own
prediction C_t mu_{t|t-1}, never the black frame; frames are decoded from C_t mu_{t|t}
(``imputation="filter"``, the RKN's information set) or C_t mu_{t|T} ("smooth").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from baselines.lgssm import Gaussian, predict, rts_smooth, update
from rkn.interface import BernoulliPrediction, FilterFailure, SequenceModel, WindowState
from rkn.losses import bernoulli_nll
from rkn.decoders import build_decoder
from rkn.nets import EncoderDecoderConfig, apply_init, build_encoder, check_choice, images_to_batch

IMPUTATIONS = ("filter", "smooth")
# Floor of the encoder variance (a float32 elup1 can underflow to 0 for very negative inputs).
VAR_FLOOR = 1e-6


@dataclass(frozen=True)
class KVAEConfig(EncoderDecoderConfig):
    """KVAE settings (docs/baselines.md#kvae). Shared encoder/decoder fields as the RKN's.

    Attributes:
        latent_obs_dim: dim_a, size of the pseudo-observation a_t (2).
        state_dim: dim_z (4).
        num_basis: K mixed (A_k, C_k) pairs (3).
        alpha_units: units of the alpha-LSTM (50).
        obs_noise: R = obs_noise * I (0.03).
        trans_noise: Q = trans_noise * I (0.08).
        init_cov: initial belief covariance init_cov * I (20).
        recon_weight: weight of log p(x | a) in the training ELBO (0.3; the test metric is plain BCE).
        alpha_warmup_steps: optimiser steps during which the alpha network gets no gradient
            (the reference code's ``kf_update_steps``, counted in steps here; 0 = off).
        imputation: "filter" (decode C_t mu_{t|t}) or "smooth" (C_t mu_{t|T}).
    """

    latent_obs_dim: int = 2
    decoder: str = "bernoulli"
    state_dim: int = 4
    num_basis: int = 3
    alpha_units: int = 50
    obs_noise: float = 0.03
    trans_noise: float = 0.08
    init_cov: float = 20.0
    recon_weight: float = 0.3
    alpha_warmup_steps: int = 0
    imputation: str = "filter"

    def __post_init__(self) -> None:
        """Validate option values (ValueError names the valid values)."""
        super().__post_init__()
        check_choice("decoder", self.decoder, ("bernoulli",))
        check_choice("imputation", self.imputation, IMPUTATIONS)
        if min(self.obs_noise, self.trans_noise, self.init_cov, self.recon_weight) <= 0:
            raise ValueError("obs_noise, trans_noise, init_cov and recon_weight must be > 0")
        if self.state_dim < 1 or self.num_basis < 1 or self.alpha_units < 1 or self.alpha_warmup_steps < 0:
            raise ValueError("state_dim, num_basis, alpha_units must be >= 1, alpha_warmup_steps >= 0")


class KVAEState(NamedTuple):
    """What the filter carries from one window to the next (truncated BPTT).

    belief: the Kalman posterior of the last step, mean (B, n) and cov (B, n, n), float64;
    lstm: the alpha-LSTM's (h, c), each (B, alpha_units); last_input: what the alpha-LSTM reads
    at the next step, a_t or, where a_t was missing, its prediction C_t mu_{t|t-1}, (B, d).
    """

    belief: Gaussian
    lstm: tuple[Tensor, Tensor]
    last_input: Tensor


class KVAE(SequenceModel):
    """KVAE with the RKN encoder/decoder: images (B, T, H, W, C) -> BernoulliPrediction."""

    config_class = KVAEConfig
    config: KVAEConfig

    def __init__(self, config: KVAEConfig) -> None:
        super().__init__(config)
        obs_dim, state_dim, k = config.latent_obs_dim, config.state_dim, config.num_basis
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config, mean_in=obs_dim, var_in=0)
        apply_init(self, self.encoder, config.init)
        self.alpha_lstm = nn.LSTMCell(obs_dim, config.alpha_units)
        self.alpha_head = nn.Linear(config.alpha_units, k)
        self.transitions = nn.Parameter(torch.eye(state_dim).repeat(k, 1, 1))        # A_k: (K, n, n)
        self.emissions = nn.Parameter(0.05 * torch.randn(k, obs_dim, state_dim))   # C_k: (K, d, n)
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long), persistent=False)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """q(a | x): mean and variance, each (B, T, d)."""
        batch, steps = images.shape[:2]
        dtype = self.encoder.mean_head.weight.dtype
        mean, var = self.encoder(images_to_batch(images, self.config.input_scale, dtype))
        return mean.view(batch, steps, -1), var.view(batch, steps, -1) + VAR_FLOOR

    def run_filter(self, obs: Tensor, valid: Tensor) -> tuple[Gaussian, Gaussian, Tensor, Tensor, Tensor]:
        """Filter the pseudo-observations with alpha from the LSTM (fed a_{t-1} or its prediction).

        Args:
            obs: a, (B, T, d) float.
            valid: (B, T) bool.

        Returns:
            (priors, posteriors) with mean (B, T, n) and cov (B, T, n, n) in float64,
            transitions A_t (B, T, n, n), emissions C_t (B, T, d, n), log p(a_t | a_<t) (B, T).
        """
        return self.run_filter_window(obs, valid, None)[:5]

    def run_filter_window(self, obs: Tensor, valid: Tensor, state: KVAEState | None
                          ) -> tuple[Gaussian, Gaussian, Tensor, Tensor, Tensor, KVAEState]:
        """``run_filter`` over one window, continuing from ``state`` (None: the initial belief
        N(0, init_cov I), a zero alpha-LSTM state and a_0 = 0).

        Returns:
            ``run_filter``'s five results for the window's L steps and the ``KVAEState`` after
            its last step.
        """
        cfg = self.config
        batch, steps, obs_dim = obs.shape
        f64 = dict(dtype=torch.float64, device=obs.device)
        q_cov = cfg.trans_noise * torch.eye(cfg.state_dim, **f64)
        r_cov = cfg.obs_noise * torch.eye(obs_dim, **f64)
        if state is None:
            hidden = obs.new_zeros(batch, cfg.alpha_units)
            init_cov = cfg.init_cov * torch.eye(cfg.state_dim, **f64).expand(batch, -1, -1)
            state = KVAEState(belief=Gaussian(torch.zeros(batch, cfg.state_dim, **f64), init_cov),
                              lstm=(hidden, hidden),
                              last_input=obs.new_zeros(batch, obs_dim))  # a_0 = 0
        belief, lstm_state, lstm_in = state
        frozen = self.training and int(self.train_steps) < cfg.alpha_warmup_steps
        out: dict[str, list[Tensor]] = {k: [] for k in ("pm", "pc", "fm", "fc", "a", "c", "ll")}
        for t in range(steps):
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                lstm_state = self.alpha_lstm(lstm_in, lstm_state)
                alpha = torch.softmax(self.alpha_head(lstm_state[0]), -1).double()   # (B, K)
            if frozen:
                lstm_state = (lstm_state[0].detach(), lstm_state[1].detach())
            trans = torch.einsum("bk,kij->bij", alpha, self.transitions.double())
            emis = torch.einsum("bk,kij->bij", alpha, self.emissions.double())
            prior = predict(belief=belief, transition=trans, noise_cov=q_cov)
            try:
                belief, log_lik = update(prior=prior, obs=obs[:, t].double(), obs_matrix=emis,
                                         noise_cov=r_cov, valid=valid[:, t])
            except torch.linalg.LinAlgError as err:
                raise FilterFailure(
                    f"KVAE: the innovation covariance at step {t + 1} is not positive definite "
                    "(its Cholesky factorisation failed); lower training.learning_rate or clip "
                    "harder (training.clip_mode / clip_value), or raise the model's obs_noise "
                    "(R)") from err
            predicted = (emis @ prior.mean.unsqueeze(-1)).squeeze(-1).to(obs.dtype)
            lstm_in = torch.where(valid[:, t, None], obs[:, t], predicted)
            for key, value in zip(out, (prior.mean, prior.cov, belief.mean, belief.cov, trans, emis, log_lik)):
                out[key].append(value)
        s = {k: torch.stack(v, 1) for k, v in out.items()}
        return (Gaussian(s["pm"], s["pc"]), Gaussian(s["fm"], s["fc"]), s["a"], s["c"], s["ll"],
                KVAEState(belief, (lstm_state[0], lstm_state[1]), lstm_in))

    def forward(self, images: Tensor, obs_valid: Tensor | None = None) -> BernoulliPrediction:
        """Impute every frame from the encoder means of the observed frames.

        Args:
            images: (B, T, H, W, C) raw pixels; missing frames' pixels are never used.
            obs_valid: (B, T) bool or None (all observed).

        Returns:
            BernoulliPrediction (B, T, H, W, C), decoded from C_t mu_{t|t} or C_t mu_{t|T}.
        """
        return self.forward_window(images, obs_valid, None)[0]

    def forward_window(self, images: Tensor, obs_valid: Tensor | None,
                       state: WindowState) -> tuple[BernoulliPrediction, WindowState]:
        """``forward`` over one window, continuing from the filter's ``KVAEState``.

        With ``imputation="filter"`` the windows of a sequence give ``forward``'s predictions of
        the whole sequence. With "smooth" the RTS pass runs backwards over the window only: a
        window's frames are smoothed with the observations up to the window's end, not the
        sequence's (the filter state still carries over).
        """
        batch, steps = images.shape[:2]
        valid = (torch.ones(batch, steps, dtype=torch.bool, device=images.device) if obs_valid is None
                 else obs_valid.to(torch.bool))
        mean, _ = self.encode(images)
        priors, posteriors, trans, emis, _, state = self.run_filter_window(mean, valid, state)
        if self.config.imputation == "smooth":
            posteriors = rts_smooth(filtered=posteriors, priors=priors, transitions=trans)
        obs_mean = (emis @ posteriors.mean.unsqueeze(-1)).squeeze(-1).to(mean.dtype)   # (B, T, d)
        probs = self.decoder(obs_mean.reshape(batch * steps, -1))
        return BernoulliPrediction(probs=probs.reshape(batch, steps, *probs.shape[1:])), state

    def training_loss(self, images: Tensor, obs_valid: Tensor | None, targets: Tensor) -> Tensor:
        """Minus the ELBO per frame on the clean target frames (information set A,
        docs/baselines.md#evaluation-contract-for-imputation-models)."""
        return self.training_loss_window(images, obs_valid, targets, None)[0]

    def training_loss_window(self, images: Tensor, obs_valid: Tensor | None, targets: Tensor,
                             state: WindowState) -> tuple[Tensor, WindowState]:
        """``training_loss`` of one window, continuing from the ``KVAEState`` that the filter of
        the sampled pseudo-observations reached at the end of the previous window (its Kalman
        belief, the alpha-LSTM state and the a_t it reads next), so log p(a) of the window is
        conditioned on the earlier windows' samples. One optimiser step per call: the warm-up
        counter counts windows."""
        del images, obs_valid  # trained on the full clean sequences
        if self.training:
            self.train_steps += 1
        batch, steps = targets.shape[:2]
        mean, var = self.encode(targets)
        sample = mean + var.sqrt() * torch.randn_like(mean)                       # (B, T, d)
        log_q = torch.distributions.Normal(mean, var.sqrt()).log_prob(sample).sum(-1)
        valid = torch.ones(batch, steps, dtype=torch.bool, device=targets.device)
        *_, log_lik, state = self.run_filter_window(sample, valid, state)
        log_p_a = log_lik.to(mean.dtype)
        probs = self.decoder(sample.reshape(batch * steps, -1))
        recon = -bernoulli_nll(BernoulliPrediction(probs.reshape(targets.shape)), targets)
        elbo = self.config.recon_weight * recon - log_q + log_p_a
        return -elbo.mean(), state

"""Recurrent Kalman Network = conv encoder + factorized Kalman cell + decoder (docs/model.md).

Defaults follow TF-master (the authors' code that reproduces the ICML results); every known
difference between the paper text, TF-icml, TF-master and the PyTorch port (PT) that concerns the
model is an option of ``RKNConfig`` (docs/model.md#where-the-sources-differ).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rkn.cell import STEP_ORDERS, RKNCell
from rkn.decoders import build_decoder
from rkn.interface import BernoulliPrediction, GaussianPrediction, SequenceModel, WindowState
from rkn.kalman import FactorizedCov
from rkn.nets import (
    ACTIVATIONS,
    VAR_ACTS,
    EncoderDecoderConfig,
    apply_init,
    build_encoder,
    check_choice,
    images_to_batch,
)
from rkn.transition import LocallyLinearTransition


@dataclass(frozen=True)
class RKNConfig(EncoderDecoderConfig):
    """Configuration of the RKN (E1 defaults: m = 15, K = 15, b = 3).

    Inherits the encoder/decoder fields of ``rkn.nets.EncoderDecoderConfig``: latent_obs_dim (m,
    default 15), input_scale (1.0 = raw 0..255 as TF; PT 1/255), layer_norm (True; PT pendulum
    off), encoder ("pendulum" | "quad_link"), encoder_hidden (30), input_channels (1),
    image_size (24), enc_norm ("post" TF | "pre" PT), decoder ("gaussian" | "bernoulli"),
    target_dim (2), dec_hidden ((10,) TF; PT (30,)), dec_act ("relu" TF | "tanh" PT), init
    ("keras" TF | "torch" PT), use_obs_valid (True; False = "uninformed", TF never_invalid).

    Attributes:
        num_basis: K, number of basis transition matrices (15).
        bandwidth: b, band width of every m x m transition block (3); b >= m - 1 is a full
            matrix. Only the band is stored, as PT does (TF stores full blocks and masks them;
            the function class and initial point are the same; docs/model.md#band-storage).
        coef_hidden: hidden widths of the coefficient net alpha = softmax(net(mu^+)). TF: ()
            (default); PT default (64, 64), quad-link (128, 128).
        coef_act: activation of those hidden layers, "relu" (TF) or "tanh" (PT).
        trans_noise_init: initial transition-noise variance (0.1 TF-master; TF-icml quad-link
            1e-3).
        var_act: map from raw parameter to variance for the transition noise and the learned
            initial covariance: "elup1" (TF, default) or "softplus" (PT). Encoder and decoder
            variances use elup1 in all sources.
        init_cov: initial upper/lower belief variance (10 TF; TF-icml quad-link 1.0).
        learn_init_cov: learn per-unit initial upper/lower variances (PT), starting at
            ``init_cov``; TF keeps them fixed (default False).
        step_order: "predict_update" (TF/paper: initial belief is the posterior of step 0, each
            step predicts then updates) or "update_predict" (PT: initial belief is the prior of
            step 1, each step updates then predicts).

    Not model options: the image likelihood (bce vs the ICLR Gaussian with one scalar variance)
    and the NLL epsilon belong to the training loss; the decoder always returns Bernoulli means.
    """

    num_basis: int = 15
    bandwidth: int = 3
    coef_hidden: tuple[int, ...] = ()
    coef_act: str = "relu"
    trans_noise_init: float = 0.1
    var_act: str = "elup1"
    init_cov: float = 10.0
    learn_init_cov: bool = False
    step_order: str = "predict_update"

    def __post_init__(self) -> None:
        """Validate option values (ValueError names the valid values)."""
        super().__post_init__()
        check_choice("coef_act", self.coef_act, ACTIVATIONS)
        check_choice("var_act", self.var_act, VAR_ACTS)
        check_choice("step_order", self.step_order, STEP_ORDERS)
        if self.num_basis < 1 or self.bandwidth < 0:
            raise ValueError("num_basis must be >= 1 and bandwidth >= 0")
        if self.bandwidth > self.latent_obs_dim:  # a different run id for the same model
            raise ValueError(f"bandwidth b = {self.bandwidth} exceeds latent_obs_dim m = "
                             f"{self.latent_obs_dim}; b >= m - 1 already gives full transition "
                             "blocks: use b = m")
        if self.trans_noise_init <= 0 or self.init_cov <= 0:
            raise ValueError("trans_noise_init and init_cov must be > 0")


class RKN(SequenceModel):
    """Recurrent Kalman Network: images (B, T, H, W, C) -> Gaussian or Bernoulli prediction.

    The encoder runs on all B*T frames at once; the cell filters in latent space; the decoder
    reads the posterior mean (and, for the Gaussian decoder, the covariance vector
    [upper, lower, side]) of every step.
    """

    config_class = RKNConfig
    config: RKNConfig

    def __init__(self, config: RKNConfig) -> None:
        super().__init__(config)
        m = config.latent_obs_dim
        self.encoder = build_encoder(config)
        transition = LocallyLinearTransition(
            latent_obs_dim=m,
            num_basis=config.num_basis,
            bandwidth=config.bandwidth,
            coef_hidden=config.coef_hidden,
            coef_act=config.coef_act,
            noise_init=config.trans_noise_init,
            var_act=config.var_act,
        )
        self.cell = RKNCell(
            transition=transition,
            init_cov=config.init_cov,
            learn_init_cov=config.learn_init_cov,
            step_order=config.step_order,
            var_act=config.var_act,
        )
        self.decoder = build_decoder(config, mean_in=2 * m, var_in=3 * m)
        apply_init(self, self.encoder, config.init)

    def recurrent_core(self) -> nn.Module:
        """The filter cell (``rkn.cell.RKNCell``; the full-covariance cell for its variant)."""
        return self.cell

    def compile_steps(self) -> None:
        """Compile the filter's per-time-step functions (``training.compile: inductor``)."""
        self.cell.compile_steps()

    def num_trained_parameters(self) -> int:
        """Trained parameters: transition-basis entries outside the band are stored (as in TF) but
        fixed at zero by the mask and never trained, so they are not counted (Keras'
        ``count_params`` would count them). With K = 1 basis matrix the coefficient net's softmax
        over one entry is constant 1, so its parameters never get a gradient and are not counted
        either (they are still built, so every K draws the same random stream)."""
        transition = self.cell.transition
        unused = (sum(p.numel() for p in transition.coef_net.parameters())
                  if transition.num_basis == 1 else 0)
        return super().num_trained_parameters() - transition.num_masked() - unused

    def filter(
        self, images: Tensor, obs_valid: Tensor | None = None
    ) -> tuple[Tensor, FactorizedCov]:
        """Encode and filter.

        Args:
            images: (B, T, H, W, C) raw pixels (uint8 or float, 0..255).
            obs_valid: (B, T) bool or None; ignored when ``config.use_obs_valid`` is False.

        Returns:
            Posterior means (B, T, 2m) and FactorizedCov(upper, lower, side), each (B, T, m).
        """
        w, var, valid = self._encode(images, obs_valid)
        return self.cell(w, var, valid)

    def _encode(self, images: Tensor,
                obs_valid: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Latent observations w (B, T, m), their variances (B, T, m) and the valid flags the
        cell uses ((B, T) bool, or None when every step is updated)."""
        batch, steps = images.shape[:2]
        dtype = self.encoder.mean_head.weight.dtype
        w, var = self.encoder(images_to_batch(images, self.config.input_scale, dtype))
        w = w.view(batch, steps, -1)
        var = var.view(batch, steps, -1)
        valid = None
        if self.config.use_obs_valid and obs_valid is not None:
            valid = obs_valid.to(torch.bool)
        return w, var, valid

    def forward(
        self, images: Tensor, obs_valid: Tensor | None = None
    ) -> GaussianPrediction | BernoulliPrediction:
        """Predict targets of every step.

        Args:
            images: (B, T, H, W, C) raw pixels.
            obs_valid: (B, T) bool or None (None: all frames observed).

        Returns:
            GaussianPrediction(mean, var) with (B, T, target_dim) each, or
            BernoulliPrediction(probs) with (B, T, H, W, C).
        """
        post_mean, cov = self.filter(images, obs_valid)
        return self._decode(post_mean, cov)

    def forward_window(
        self, images: Tensor, obs_valid: Tensor | None, state: WindowState
    ) -> tuple[GaussianPrediction | BernoulliPrediction, WindowState]:
        """``forward`` over one window of L steps, continuing from the filter belief ``state``.

        The state is the belief the cell would start the next step from
        (``RKNCell.filter_window``): for "predict_update" the posterior of the window's last
        step, for "update_predict" the prior of the next step; the full-covariance RKN carries
        its full covariance. Filtering the windows one after the other gives ``forward``'s
        predictions of the whole sequence. Shapes: images (B, L, H, W, C), obs_valid (B, L);
        the state is a ``Belief`` (mean (B, 2m), factors (B, m)) or a ``FullBelief``.
        """
        w, var, valid = self._encode(images, obs_valid)
        post_mean, cov, belief = self.cell.filter_window(w, var, valid, state)
        return self._decode(post_mean, cov), belief

    def _decode(self, post_mean: Tensor,
                cov: FactorizedCov) -> GaussianPrediction | BernoulliPrediction:
        """Decode posterior means (B, T, 2m) and covariance factors (each (B, T, m))."""
        if self.config.decoder == "gaussian":
            mean, var = self.decoder(post_mean, torch.cat([cov.upper, cov.lower, cov.side], -1))
            return GaussianPrediction(mean=mean, var=var)
        batch, steps = post_mean.shape[:2]
        probs = self.decoder(post_mean.reshape(batch * steps, -1))
        return BernoulliPrediction(probs=probs.reshape(batch, steps, *probs.shape[1:]))

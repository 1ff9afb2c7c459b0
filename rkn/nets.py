"""Encoder and building blocks shared by the RKN and the baselines (docs/model.md,
docs/architectures.md); the decoders are in ``rkn.decoders``.

All networks work on flat batches: the models fold (B, T) into one batch axis so the convolutional
encoder runs on every frame at once. Images are channels-first inside this module, (N, C, H, W).

``EncoderDecoderConfig`` holds the encoder/decoder fields that ``RKNConfig`` and the baseline
configs share; each model config subclasses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENCODERS = ("pendulum", "quad_link")
DECODERS = ("gaussian", "bernoulli")
ENC_NORMS = ("post", "pre")
INITS = ("keras", "torch")
ACTIVATIONS = ("relu", "tanh")
CONV_PADDINGS = ("same", "symmetric")
VAR_ACTS = ("elup1", "softplus")

# Smallest variance the variance maps return. Both elu(x) + 1 and softplus(x) reach exactly 0 in
# float32 for very negative x, which makes a log-likelihood infinite and a Kalman gain 0/0; 1e-12
# lies far below the 1e-8 the likelihood adds (rkn.losses.VARIANCE_EPS), so it changes no result
# that was finite before.
VAR_FLOOR = 1e-12
# Layer-norm epsilon of TF-master's LayerNormalization (docs/model.md#layer-normalisation).
LAYER_NORM_EPS = 1e-12
# Std of the encoder mean-head bias init, so an all-black frame does not map to w = 0
# (docs/model.md#encoder-heads).
MEAN_HEAD_BIAS_STD = 0.05
# Frames per conv call. Every frame is independent, so chunking does not change any per-frame
# result; it keeps the large (N, 12, 24, 24) intermediates small enough for the allocator to reuse
# memory instead of faulting in fresh pages on every call (about 2x faster on CPU for B*T = 3750).
CHUNK_FRAMES = 256


def chunked(fn: Callable[[Tensor], Any], x: Tensor) -> Any:
    """Apply ``fn`` to chunks of ``x`` along dim 0 and concatenate each output (tensor or tuple)."""
    if x.shape[0] <= CHUNK_FRAMES:
        return fn(x)
    outs = [fn(c) for c in x.split(CHUNK_FRAMES)]
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


def check_choice(name: str, value: object, valid: Sequence[object]) -> None:
    """Raise ValueError naming the valid values when ``value`` is not one of them."""
    if value not in valid:
        choices = ", ".join(map(repr, valid))
        raise ValueError(f"{name}={value!r} is not valid; valid values: {choices}")


@dataclass(frozen=True)
class EncoderDecoderConfig:
    """Encoder/decoder settings shared by every model (RKN, LSTM, GRU).

    Attributes:
        latent_obs_dim: m, size of the latent observation w_t (and of sigma^obs_t).
        input_scale: factor applied to the raw 0..255 pixels. TF (icml and master) feed raw
            0..255 values (1.0, default); PT divides by 255 (use 1/255).
        layer_norm: layer norm (GroupNorm(1, C), eps 1e-12) after every hidden convolution of the
            encoder and image decoder. TF: on (default); PT pendulum script: off.
        encoder: conv stack, "pendulum" (24x24 input) or "quad_link" (48x48 input)
            (docs/architectures.md#pendulum-encoder, docs/architectures.md#quad-link-encoder).
            It also picks the image decoder layout (E2 resp. E5).
        encoder_hidden: width of the encoder's dense layer (30 pendulum, 200 quad-link; TF-icml
            E3 used 2m).
        input_channels: C of the input images (1; 3 for multiple pendulums).
        image_size: H = W of the input images; must fit ``encoder``.
        enc_norm: "post" (TF: w = a / ||a||, default) or "pre" (PT: L2-normalise the last hidden
            layer, no normalisation of w).
        decoder: "gaussian" (low-dimensional targets with variances) or "bernoulli" (images).
        target_dim: D of the Gaussian targets (2 for sin/cos of the pendulum angle).
        dec_hidden: hidden widths of the Gaussian decoder's mean and variance MLPs (TF (10,);
            PT (30,)).
        dec_act: activation of those hidden layers, "relu" (TF) or "tanh" (PT).
        init: "keras" (Glorot-uniform kernels, zero biases, mean-head bias ~ N(0, 0.05^2); TF,
            default) or "torch" (PyTorch default init everywhere; PT).
        use_obs_valid: use the per-frame valid flags. False gives the "uninformed" variant that
            treats every frame as observed (TF ``never_invalid=True``).
        conv_padding: padding of the encoder convolutions. "same" (TF, default): TF's "same"
            padding, which puts the odd pixel of an odd total padding after the image (a 3x3
            stride-2 convolution of a 12x12 map pads 0 before and 1 after); "symmetric" (PT):
            k // 2 on every side. Both give the same output sizes; the sampling grids of the
            strided convolutions differ by one pixel.
    """

    latent_obs_dim: int = 15
    input_scale: float = 1.0
    layer_norm: bool = True
    encoder: str = "pendulum"
    encoder_hidden: int = 30
    input_channels: int = 1
    image_size: int = 24
    enc_norm: str = "post"
    decoder: str = "gaussian"
    target_dim: int = 2
    dec_hidden: tuple[int, ...] = (10,)
    dec_act: str = "relu"
    init: str = "keras"
    use_obs_valid: bool = True
    conv_padding: str = "same"

    def __post_init__(self) -> None:
        """Coerce list fields to tuples (JSON round trip) and validate option values."""
        for name in ("dec_hidden", "coef_hidden"):
            if isinstance(getattr(self, name, None), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        check_choice("encoder", self.encoder, ENCODERS)
        check_choice("decoder", self.decoder, DECODERS)
        check_choice("enc_norm", self.enc_norm, ENC_NORMS)
        check_choice("dec_act", self.dec_act, ACTIVATIONS)
        check_choice("init", self.init, INITS)
        check_choice("conv_padding", self.conv_padding, CONV_PADDINGS)
        if self.latent_obs_dim < 1:
            raise ValueError(f"latent_obs_dim must be >= 1, got {self.latent_obs_dim}")


def elup1(x: Tensor) -> Tensor:
    """elu(x) + 1: exp(x) for x <= 0, x + 1 otherwise; a smooth variance map
    (docs/model.md#variance-activations).

    Computed in the stable form (``elu(x) + 1`` cancels to exactly 0 in float32 below about -17)
    and floored at ``VAR_FLOOR``, so it is strictly positive over the whole float32 range; shape
    and dtype of ``x``. The exponential only sees x <= 0, so no inf reaches the gradient.
    """
    return torch.where(x > 0, x + 1.0, torch.exp(x.clamp(max=0.0))).clamp_min(VAR_FLOOR)


def softplus_floored(x: Tensor) -> Tensor:
    """softplus(x) = log(1 + exp(x)) floored at ``VAR_FLOOR`` (it underflows to 0 in float32
    below about -104); strictly positive, shape and dtype of ``x``."""
    return F.softplus(x).clamp_min(VAR_FLOOR)


def elup1_inv(y: float) -> float:
    """Inverse of ``elup1`` for y > 0 (used to initialise raw variance parameters)."""
    return math.log(y) if y < 1.0 else y - 1.0


def softplus_inv(y: float) -> float:
    """Inverse of softplus for y > 0."""
    return y + math.log(-math.expm1(-y))


def var_activation(name: str) -> tuple[Callable[[Tensor], Tensor], Callable[[float], float]]:
    """Return (activation, inverse) for a variance activation name ("elup1" | "softplus")."""
    check_choice("var_act", name, VAR_ACTS)
    if name == "elup1":
        return elup1, elup1_inv
    return softplus_floored, softplus_inv


def _activation(name: str) -> nn.Module:
    """Hidden-layer activation module by name."""
    check_choice("activation", name, ACTIVATIONS)
    return nn.ReLU() if name == "relu" else nn.Tanh()


def keras_init_(module: nn.Module) -> None:
    """Keras defaults on every Linear / Conv / ConvTranspose: Glorot-uniform kernels, zero biases.

    Glorot's fan_in + fan_out is symmetric, so the transposed-conv weight layout does not matter.
    """
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, act: str) -> nn.Sequential:
    """Dense layers ``in_dim -> hidden... -> out_dim`` with ``act`` after each hidden layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), _activation(act)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def norm_layer(channels: int, layer_norm: bool) -> nn.Module:
    """Layer norm over (C, H, W) with per-channel affine (docs/model.md#layer-normalisation), or
    identity when off."""
    return nn.GroupNorm(1, channels, eps=LAYER_NORM_EPS) if layer_norm else nn.Identity()


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "same" padding (docs/architectures.md#encoder-padding).

    Per spatial dimension of size n, kernel k and stride s the output has ceil(n / s) entries and
    the total padding max((ceil(n / s) - 1) s + k - n, 0) is split as floor(total / 2) before the
    image and the rest after it, as TF does. Parameters are those of ``nn.Conv2d`` (weight
    (C_out, C_in, k, k), bias (C_out,)); input (N, C_in, H, W), output (N, C_out, ceil(H / s),
    ceil(W / s)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        before_after = []
        for size, kernel, stride in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            before_after.append((total // 2, total - total // 2))
        if all(before == after for before, after in before_after):  # no copy: conv pads itself
            return F.conv2d(x, self.weight, self.bias, self.stride,
                            tuple(before for before, _ in before_after))
        (top, bottom), (left, right) = before_after
        return super().forward(F.pad(x, (left, right, top, bottom)))


def conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int,
           padding: str) -> nn.Conv2d:
    """A convolution with TF "same" padding or PyTorch's symmetric k // 2 (``conv_padding``)."""
    check_choice("conv_padding", padding, CONV_PADDINGS)
    if padding == "same":
        return SameConv2d(in_channels, out_channels, kernel_size, stride)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


class ConvEncoder(nn.Module):
    """Image -> (w_t, sigma^obs_t) (docs/model.md#encoder-heads,
    docs/architectures.md#pendulum-encoder).

    Pendulum: Conv(12, 5x5, s1) -> LN -> ReLU -> MaxPool2 -> Conv(12, 3x3, s2) -> LN -> ReLU ->
    MaxPool2 -> Flatten -> Dense(hidden, ReLU). Quad-link: same with stride 2 in the first conv
    (48x48 input). Heads: a = W_w h + b_w, w = a / ||a|| ("post"); sigma^obs = elup1(W_s h + b_s).
    """

    def __init__(
        self,
        *,
        latent_obs_dim: int,
        arch: str = "pendulum",
        input_channels: int = 1,
        image_size: int = 24,
        hidden: int = 30,
        layer_norm: bool = True,
        enc_norm: str = "post",
        conv_padding: str = "same",
    ) -> None:
        super().__init__()
        check_choice("encoder", arch, ENCODERS)
        check_choice("enc_norm", enc_norm, ENC_NORMS)
        self.enc_norm = enc_norm
        stride1 = 1 if arch == "pendulum" else 2
        # Both paddings give TF's "same" output sizes; "same" also its pixel alignment
        # (docs/architectures.md#encoder-padding).
        self.conv = nn.Sequential(
            conv2d(input_channels, 12, 5, stride1, conv_padding),
            norm_layer(12, layer_norm),
            nn.MaxPool2d(2, 2),
            nn.ReLU(),  # relu(maxpool(x)) == maxpool(relu(x)); on 4x fewer elements
            conv2d(12, 12, 3, 2, conv_padding),
            norm_layer(12, layer_norm),
            nn.MaxPool2d(2, 2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():  # flattened size for this image size (108 for both paper layouts)
            flat = self.conv(torch.zeros(1, input_channels, image_size, image_size)).shape[1]
        self.dense = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU())
        self.mean_head = nn.Linear(hidden, latent_obs_dim)
        self.var_head = nn.Linear(hidden, latent_obs_dim)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Encode a flat batch of images.

        Args:
            images: (N, C, H, W) float, already scaled.

        Returns:
            w: (N, m) latent observations; var: (N, m) observation variances (> 0).
        """
        return chunked(self._encode, images)  # type: ignore[no-any-return]

    def _encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``forward`` on one chunk of frames."""
        h = self.dense(self.conv(images))
        if self.enc_norm == "pre":  # PT: normalise the last hidden layer instead of w
            h = F.normalize(h, p=2.0, dim=-1, eps=1e-12)
        w = self.mean_head(h)
        if self.enc_norm == "post":
            w = F.normalize(w, p=2.0, dim=-1, eps=1e-12)
        return w, elup1(self.var_head(h))


def images_to_batch(images: Tensor, scale: float, dtype: torch.dtype) -> Tensor:
    """(B, T, H, W, C) raw pixels -> (B*T, C, H, W) float of ``dtype`` times ``scale``."""
    b, t, h, w, c = images.shape
    x = images.reshape(b * t, h, w, c).permute(0, 3, 1, 2).to(dtype)
    return x * scale if scale != 1.0 else x


def build_encoder(config: EncoderDecoderConfig) -> ConvEncoder:
    """Encoder from the shared config fields."""
    return ConvEncoder(
        latent_obs_dim=config.latent_obs_dim,
        arch=config.encoder,
        input_channels=config.input_channels,
        image_size=config.image_size,
        hidden=config.encoder_hidden,
        layer_norm=config.layer_norm,
        enc_norm=config.enc_norm,
        conv_padding=config.conv_padding,
    )


def apply_init(model: nn.Module, encoder: ConvEncoder, init: str) -> None:
    """Apply the ``init`` scheme to ``model`` (call once, after all submodules exist).

    "keras": Glorot-uniform / zeros everywhere, then the encoder mean-head bias ~ N(0, 0.05^2).
    "torch": leave PyTorch defaults untouched.
    """
    check_choice("init", init, INITS)
    if init == "keras":
        keras_init_(model)
        nn.init.normal_(encoder.mean_head.bias, 0.0, MEAN_HEAD_BIAS_STD)

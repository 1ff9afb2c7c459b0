"""Decoders shared by the RKN and the baselines: Gaussian (E1, E3, E4) and per-pixel Bernoulli
images (E2, E5) (docs/model.md#decoders, docs/architectures.md#image-decoder). Images are
channels-last outside, channels-first inside.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rkn.nets import ENCODERS, EncoderDecoderConfig, check_choice, chunked, elup1, mlp, norm_layer


class GaussianDecoder(nn.Module):
    """Mean MLP on the state mean; variance MLP (elup1 output) on the covariance vector
    (docs/architectures.md#gaussian-decoder)."""

    def __init__(
        self, *, mean_in: int, var_in: int, out_dim: int, hidden: Sequence[int], act: str
    ) -> None:
        super().__init__()
        self.mean_net = mlp(mean_in, hidden, out_dim, act)
        self.var_net = mlp(var_in, hidden, out_dim, act)

    def forward(self, mean_in: Tensor, var_in: Tensor) -> tuple[Tensor, Tensor]:
        """Decode.

        Args:
            mean_in: (..., mean_in), e.g. the posterior mean (B, T, 2m).
            var_in: (..., var_in), e.g. [upper, lower, side] (B, T, 3m).

        Returns:
            mean (..., D) and variance (..., D), variance > 0.
        """
        return self.mean_net(mean_in), elup1(self.var_net(var_in))


class ImageDecoder(nn.Module):
    """Latent -> per-pixel Bernoulli means (E2 layout, docs/architectures.md#image-decoder;
    ``arch="quad_link"`` gives E5).

    Dense(144, ReLU) -> 3x3x16 -> ConvT(16, 5x5, s4) -> LN -> ReLU -> ConvT(12, 3x3, s2 | s4) ->
    LN -> ReLU -> ConvT(C, 3x3, s1) -> sigmoid. Output 24x24 (pendulum) or 48x48 (quad-link).
    """

    def __init__(
        self,
        *,
        in_dim: int,
        arch: str = "pendulum",
        out_channels: int = 1,
        image_size: int = 24,
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        check_choice("encoder", arch, ENCODERS)
        stride2 = 2 if arch == "pendulum" else 4
        self.dense = nn.Sequential(nn.Linear(in_dim, 144), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(16, 16, 5, stride=4, padding=2, output_padding=3),  # 3 -> 12
            norm_layer(16, layer_norm),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 12, 3, stride=stride2, padding=1, output_padding=stride2 - 1),
            norm_layer(12, layer_norm),
            nn.ReLU(),
            nn.ConvTranspose2d(12, out_channels, 3, stride=1, padding=1),
        )
        out_size = 12 * stride2
        if out_size != image_size:
            raise ValueError(
                f"image decoder for encoder={arch!r} outputs {out_size}x{out_size}, "
                f"but image_size={image_size}"
            )

    def forward(self, z: Tensor) -> Tensor:
        """Decode a flat batch.

        Args:
            z: (N, in_dim).

        Returns:
            probs: (N, H, W, C) in (0, 1), channels-last like the input images.
        """
        return chunked(self._decode, z)  # type: ignore[no-any-return]

    def _decode(self, z: Tensor) -> Tensor:
        """``forward`` on one chunk."""
        x = self.dense(z).view(-1, 16, 3, 3)
        return torch.sigmoid(self.deconv(x)).permute(0, 2, 3, 1)



def build_decoder(config: EncoderDecoderConfig, *, mean_in: int, var_in: int) -> nn.Module:
    """Gaussian or Bernoulli decoder from the shared config fields.

    Args:
        config: shared fields.
        mean_in: size of the input of the mean (and image) decoder.
        var_in: size of the input of the variance decoder (unused for "bernoulli").
    """
    if config.decoder == "gaussian":
        return GaussianDecoder(
            mean_in=mean_in,
            var_in=var_in,
            out_dim=config.target_dim,
            hidden=config.dec_hidden,
            act=config.dec_act,
        )
    return ImageDecoder(
        in_dim=mean_in,
        arch=config.encoder,
        out_channels=config.input_channels,
        image_size=config.image_size,
        layer_norm=config.layer_norm,
    )

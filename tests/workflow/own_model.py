"""A user's own model, defined outside the project's packages (README, "Compare your own model").

A GRU over per-frame pixel statistics with a Gaussian head: small and fast, just enough to show
that a model the project has never heard of trains, is evaluated and is reported like ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rkn.interface import GaussianPrediction, SequenceModel


@dataclass(frozen=True)
class PixelGRUConfig:
    """Settings of the toy model.

    Attributes:
        hidden: GRU units.
        image_size, input_channels, target_dim: filled in from the data by the runner.
    """

    hidden: int = 8
    image_size: int = 24
    input_channels: int = 1
    target_dim: int = 2

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden}")


class PixelGRU(SequenceModel):
    """images (B, T, H, W, C) -> mean pixel of each 4x4 block -> GRU -> (mean, var) per step."""

    config_class = PixelGRUConfig
    config: PixelGRUConfig

    def __init__(self, config: PixelGRUConfig) -> None:
        super().__init__(config)
        features = config.input_channels * (config.image_size // 4) ** 2
        self.rnn = nn.GRU(features, config.hidden, batch_first=True)
        self.head = nn.Linear(config.hidden, 2 * config.target_dim)

    def forward(self, images: Tensor, obs_valid: Tensor | None = None) -> GaussianPrediction:
        batch, steps = images.shape[:2]
        x = images.float().flatten(0, 1).permute(0, 3, 1, 2) / 255.0  # (B*T, C, H, W)
        x = F.avg_pool2d(x, 4).flatten(1).view(batch, steps, -1)
        out, _ = self.rnn(x)
        mean, raw_var = self.head(out).chunk(2, dim=-1)
        return GaussianPrediction(mean=mean, var=F.softplus(raw_var) + 1e-4)

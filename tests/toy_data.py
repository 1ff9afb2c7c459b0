"""Tiny synthetic sequence data shared by the model tests."""

from __future__ import annotations

import math

import torch

from rkn.interface import GaussianPrediction
from rkn.losses import gaussian_nll


def moving_square(num_seq: int = 8, steps: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Tiny pendulum stand-in: a bright 4x4 square on a circle; targets (sin, cos) of its angle.

    Returns images (N, T, 24, 24, 1) uint8 and targets (N, T, 2).
    """
    gen = torch.Generator().manual_seed(1)
    start = torch.rand(num_seq, 1, generator=gen) * 2 * math.pi
    angle = start + 0.3 * torch.arange(steps)  # (N, T)
    images = torch.zeros(num_seq, steps, 24, 24, 1, dtype=torch.uint8)
    rows = (11 + 8 * torch.cos(angle)).round().long()
    cols = (11 + 8 * torch.sin(angle)).round().long()
    for n in range(num_seq):
        for t in range(steps):
            r, c = rows[n, t].item(), cols[n, t].item()
            images[n, t, r - 2 : r + 2, c - 2 : c + 2] = 255
    return images, torch.stack([torch.sin(angle), torch.cos(angle)], -1)


def mean_nll(pred: GaussianPrediction, target: torch.Tensor) -> torch.Tensor:
    """The harness's Gaussian NLL averaged over sequences and steps (a scalar to train on)."""
    return gaussian_nll(pred, target).mean()

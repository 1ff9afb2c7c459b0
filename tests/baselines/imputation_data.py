"""Tiny pendulum-imputation batches shared by the E2 model tests."""

from __future__ import annotations

import functools

import torch

from datasets import build_dataset

IMAGE_OVERRIDES = {"decoder": "bernoulli", "input_channels": 1, "image_size": 24}


@functools.lru_cache(maxsize=1)
def _splits():
    return build_dataset("pendulum_imputation", {"num_train": 6, "num_test": 2, "seq_len": 10})


def tiny_batch() -> dict[str, torch.Tensor]:
    """6 sequences of 10 frames: masked images, clean targets (uint8) and obs_valid (B, T)."""
    train = _splits()["train"]
    return {k: torch.from_numpy(train[k].copy()) for k in ("images", "targets", "obs_valid")}

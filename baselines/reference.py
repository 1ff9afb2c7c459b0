"""Parameter-free reference predictors for image imputation, evaluated untrained
(docs/baselines.md#reference-predictors).

They show where "learned nothing" and "perfect" lie on the same data and metric code as the
trained models: the runner evaluates them without training (``trainable`` is False), after
``fit_reference`` on the training split, through the usual predict -> BernoulliPrediction ->
bce_metrics path.

- ``hold_last_frame``: each frame predicted by the last observed input frame, p clipped to
  [1e-3, 1 - 1e-3] (docs/baselines.md#sanity-anchors); a fusion-free baseline that uses the mask.
- ``mean_image``: the per-pixel mean of the TRAINING targets (never the test set), clipped the
  same way, for every frame.
- ``entropy_floor``: the clean target frames themselves (``input_is_clean``: the runner feeds
  the clean frames as input). Its BCE is the targets' entropy, the lowest any model can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rkn.interface import BernoulliPrediction, SequenceModel
from rkn.nets import check_choice

PREDICTORS = ("hold_last_frame", "mean_image", "entropy_floor")
# Clip of hold-last-frame and mean-image probabilities (docs/baselines.md#sanity-anchors), so
# unseen pixels cost finite BCE.
PROB_CLIP = 1e-3


@dataclass(frozen=True)
class ReferenceConfig:
    """Reference predictor settings; image fields are filled in from the data by the runner.

    Attributes:
        predictor: "hold_last_frame" | "mean_image" | "entropy_floor".
        input_channels, image_size: image shape (C, H = W).
        decoder: must be "bernoulli" (the predictors are for image targets; the runner sets it
            from the data, so a Gaussian experiment is refused).
    """

    predictor: str = "hold_last_frame"
    input_channels: int = 1
    image_size: int = 24
    decoder: str = "bernoulli"

    def __post_init__(self) -> None:
        """Validate option values."""
        check_choice("predictor", self.predictor, PREDICTORS)
        if self.decoder != "bernoulli":
            raise ValueError("reference predictors need image targets (decoder='bernoulli'); "
                             "use them only in image-imputation experiments")


class ReferencePredictor(SequenceModel):
    """A parameter-free predictor: images (B, T, H, W, C) -> BernoulliPrediction."""

    trainable = False
    config_class = ReferenceConfig
    config: ReferenceConfig

    def __init__(self, config: ReferenceConfig) -> None:
        super().__init__(config)
        self.input_is_clean = config.predictor == "entropy_floor"
        shape = (config.image_size, config.image_size, config.input_channels)
        self.register_buffer("mean_image", torch.full(shape, 0.5))

    def fit_reference(self, train: dict[str, np.ndarray]) -> None:
        """Set the mean image from the training split's targets (uint8 (N, T, H, W, C))."""
        mean = train["targets"].astype(np.float64).mean(axis=(0, 1)) / 255.0
        self.mean_image.copy_(torch.from_numpy(np.clip(mean, PROB_CLIP, 1 - PROB_CLIP)))

    def forward(self, images: Tensor, obs_valid: Tensor | None = None) -> BernoulliPrediction:
        """Predict every frame (see the module docstring); obs_valid (B, T) bool or None."""
        frames = images.to(self.mean_image.dtype) / 255.0
        name = self.config.predictor
        if name == "entropy_floor":
            return BernoulliPrediction(probs=frames)
        if name == "mean_image":
            return BernoulliPrediction(probs=self.mean_image.expand_as(frames).clone())
        batch, steps = images.shape[:2]
        if obs_valid is not None:  # index of the last observed frame up to t (frame 0 if none yet)
            index = torch.arange(steps, device=images.device).expand(batch, steps)
            index = torch.where(obs_valid.to(torch.bool), index, torch.zeros_like(index)).cummax(1).values
            frames = frames[torch.arange(batch, device=images.device)[:, None], index]
        return BernoulliPrediction(probs=frames.clamp(PROB_CLIP, 1 - PROB_CLIP))

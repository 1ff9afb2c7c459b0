"""DKS: analytic KL against torch.distributions; KL annealing; direction of the inference RNN."""

from __future__ import annotations

import torch

from baselines.dks import gaussian_kl
from tests.config_models import build_named
from tests.baselines.imputation_data import IMAGE_OVERRIDES, tiny_batch


def test_gaussian_kl_matches_torch_distributions() -> None:
    """The closed-form diagonal KL equals torch.distributions' kl_divergence summed over dims."""
    gen = torch.Generator().manual_seed(0)
    loc_q, loc_p = torch.randn(5, 4, generator=gen, dtype=torch.float64), torch.randn(5, 4, generator=gen, dtype=torch.float64)
    scale_q = torch.rand(5, 4, generator=gen, dtype=torch.float64) + 0.1
    scale_p = torch.rand(5, 4, generator=gen, dtype=torch.float64) + 0.1
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(loc_q, scale_q),
                                                 torch.distributions.Normal(loc_p, scale_p)).sum(-1)
    torch.testing.assert_close(gaussian_kl(loc_q=loc_q, scale_q=scale_q, loc_p=loc_p, scale_p=scale_p),
                               expected, rtol=1e-12, atol=1e-12)


def test_kl_weight_anneals_linearly_to_one() -> None:
    """beta = kl_start at step 0, halfway at half the anneal steps, 1 afterwards."""
    net = build_named("dks", {**IMAGE_OVERRIDES, "kl_start": 0.2, "kl_anneal_steps": 10})
    assert net.kl_weight() == 0.2
    net.train_steps.fill_(5)
    assert abs(net.kl_weight() - 0.6) < 1e-12
    net.train_steps.fill_(50)
    assert net.kl_weight() == 1.0


def test_backward_inference_uses_future_frames() -> None:
    """Control: the ST-R (smoother) imputation of early frames depends on later frames."""
    batch = tiny_batch()
    torch.manual_seed(0)
    net = build_named("dks", IMAGE_OVERRIDES).eval()
    images, valid = batch["images"][:2], batch["obs_valid"][:2]
    altered = images.clone()
    altered[:, 6:] = 255 - altered[:, 6:]
    with torch.no_grad():
        assert not torch.equal(net(images, valid).probs[:, :6], net(altered, valid).probs[:, :6])

"""Every variance a model outputs is strictly positive and finite in float32, at any
pre-activation (elu(x) + 1 and softplus(x) used to underflow to exactly 0)."""

from __future__ import annotations

import pytest
import torch

from rkn.nets import VAR_FLOOR, elup1, softplus_floored
from tests.config_models import build_named

EXTREMES = torch.tensor([-1e30, -1e4, -200.0, -104.0, -88.0, -30.0, -17.5, -1.0, 0.0, 1.0, 1e4,
                         1e30])


@pytest.mark.parametrize("activation", [elup1, softplus_floored])
def test_variance_maps_strictly_positive_in_float32(activation) -> None:
    values = activation(EXTREMES)
    assert values.dtype == torch.float32
    assert torch.isfinite(values[:-1]).all() and (values > 0).all()
    assert values.min() >= VAR_FLOOR
    # The stable form keeps its precision where elu(x) + 1 cancels to 0 (x = -17.5).
    torch.testing.assert_close(elup1(torch.tensor([-17.5, -30.0])),
                               torch.exp(torch.tensor([-17.5, -30.0])))


def test_elup1_gradient_is_finite_at_extremes() -> None:
    x = EXTREMES[1:-1].clone().requires_grad_(True)
    elup1(x).sum().backward()
    assert torch.isfinite(x.grad).all()


# Every model family with a Gaussian output, and the LSTM's three variance layouts.
GAUSSIAN = [("rkn", {}), ("rkn_full_cov", {}), ("rkn", {"var_act": "softplus"}),
            ("lstm", {}), ("lstm", {"rnn_variant": "tf_master"}), ("lstm", {"rnn_variant": "pt"}),
            ("gru", {})]


@pytest.mark.parametrize(("name", "extra"), GAUSSIAN)
@pytest.mark.parametrize("bias", [-1e4, 1e4])
def test_models_output_positive_variances_at_extreme_preactivations(name, extra, bias) -> None:
    """Variance heads of the encoder and decoder pushed to +-1e4: every variance is > 0 and
    finite, the means are finite."""
    torch.manual_seed(0)
    model = build_named(name, {"latent_obs_dim": 6, **extra})
    with torch.no_grad():
        model.encoder.var_head.bias.fill_(bias)
        model.decoder.var_net[-1].bias.fill_(bias)
        if hasattr(model, "cell"):  # the RKN's transition noise through its variance map
            model.cell.transition.raw_noise.fill_(bias)
    images = torch.randint(0, 256, (2, 5, 24, 24, 1), dtype=torch.uint8)
    pred = model(images)
    assert torch.isfinite(pred.mean).all()
    assert torch.isfinite(pred.var).all() and (pred.var > 0).all()

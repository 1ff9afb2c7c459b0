"""Band storage of the RKN transition: the band prediction is the dense prediction, in float64.

``rkn.kalman.predict_band`` applies A_t on its bands only; these tests hold it to the dense
``rkn.kalman.predict`` (itself held to a textbook Kalman filter in ``test_kalman.py``) for values
and gradients, check the layout conversions, and that models saved with full (K, 2m, 2m) bases
(before band storage) load to the same function.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch

from rkn.kalman import Belief, FactorizedCov, predict, predict_band
from rkn.transition import (
    LocallyLinearTransition,
    band_layout_mask,
    band_to_dense,
    dense_to_band,
    effective_bandwidth,
)
from tests.config_models import build_named

assert_exact = partial(torch.testing.assert_close, atol=1e-10, rtol=0.0)


def random_belief(batch: int, m: int, gen: torch.Generator) -> Belief:
    """A valid factorized belief in float64 (positive variances, |side| < sqrt(upper lower))."""
    upper = torch.rand(batch, m, generator=gen, dtype=torch.float64) * 3 + 0.1
    lower = torch.rand(batch, m, generator=gen, dtype=torch.float64) * 3 + 0.1
    side = (torch.rand(batch, m, generator=gen, dtype=torch.float64) * 1.8 - 0.9) * (upper * lower).sqrt()
    return Belief(torch.randn(batch, 2 * m, generator=gen, dtype=torch.float64),
                  FactorizedCov(upper, lower, side))


def random_band(batch: int, m: int, bandwidth: int, gen: torch.Generator) -> torch.Tensor:
    """Random band blocks (B, 2, 2, m, 2b' + 1) with the corners zero."""
    half = effective_bandwidth(m, bandwidth)
    band = torch.randn(batch, 2, 2, m, 2 * half + 1, generator=gen, dtype=torch.float64) * 0.5
    return band * band_layout_mask(m, bandwidth).double()


@pytest.mark.parametrize(("m", "bandwidth"), [(1, 0), (3, 0), (3, 1), (8, 3), (8, 7), (15, 3),
                                              (15, 15)])
@pytest.mark.parametrize("batch", [1, 4])
def test_band_prediction_equals_dense_values_and_gradients(m: int, bandwidth: int,
                                                           batch: int) -> None:
    """predict_band(band) == predict(band_to_dense(band)) to 1e-10, values and gradients."""
    gen = torch.Generator().manual_seed(100 * m + 10 * bandwidth + batch)
    belief = random_belief(batch, m, gen)
    noise = torch.rand(1, 2 * m, generator=gen, dtype=torch.float64) + 0.01
    results = []
    for band_form in (True, False):
        band = random_band(batch, m, bandwidth, torch.Generator().manual_seed(7)).requires_grad_()
        leaves = [band, belief.mean.clone().requires_grad_(),
                  *(f.clone().requires_grad_() for f in belief.cov)]
        start = Belief(leaves[1], FactorizedCov(*leaves[2:]))
        out = (predict_band(start, band, noise) if band_form
               else predict(start, band_to_dense(band), noise))
        weights = torch.randn(4, batch, 2 * m, generator=torch.Generator().manual_seed(3),
                              dtype=torch.float64)
        loss = ((out.mean * weights[0]).sum() + (out.cov.upper * weights[1, :, :m]).sum()
                + (out.cov.lower * weights[2, :, :m]).sum() + (out.cov.side * weights[3, :, :m]).sum())
        grads = torch.autograd.grad(loss, leaves)
        results.append((out, grads))
    (band_out, band_grads), (dense_out, dense_grads) = results
    assert_exact(band_out.mean, dense_out.mean)
    for got, want in zip(band_out.cov, dense_out.cov):
        assert_exact(got, want)
    for got, want in zip(band_grads, dense_grads):
        assert_exact(got, want)


def test_band_prediction_rejects_a_band_of_another_size() -> None:
    gen = torch.Generator().manual_seed(0)
    belief = random_belief(2, 4, gen)
    with pytest.raises(ValueError, match=r"band must be \(B, 2, 2, 4, 2b \+ 1\)"):
        predict_band(belief, torch.zeros(2, 2, 2, 5, 3, dtype=torch.float64), torch.ones(1, 8))
    with pytest.raises(ValueError, match="2b"):
        predict_band(belief, torch.zeros(2, 2, 2, 4, 4, dtype=torch.float64), torch.ones(1, 8))


@pytest.mark.parametrize(("m", "bandwidth"), [(1, 0), (5, 0), (5, 2), (6, 5), (6, 9)])
def test_layout_round_trip(m: int, bandwidth: int) -> None:
    """dense -> band keeps exactly the |i - j| <= b entries of each block; band -> dense inverts."""
    dense = torch.randn(3, 2 * m, 2 * m, dtype=torch.float64)
    band = dense_to_band(dense, bandwidth)
    assert band.shape == (3, 2, 2, m, 2 * effective_bandwidth(m, bandwidth) + 1)
    idx = torch.arange(m)
    in_band = ((idx[:, None] - idx[None, :]).abs() <= bandwidth).repeat(2, 2)
    torch.testing.assert_close(band_to_dense(band), dense * in_band, atol=0, rtol=0)
    torch.testing.assert_close(dense_to_band(band_to_dense(band), bandwidth), band, atol=0, rtol=0)


def test_dense_and_band_transition_agree() -> None:
    """transition.matrix (dense) is band_to_dense of transition.band for trained-looking bases."""
    torch.manual_seed(0)
    transition = LocallyLinearTransition(latent_obs_dim=6, num_basis=4, bandwidth=2).double()
    with torch.no_grad():
        transition.basis.normal_()
    mean = torch.randn(3, 12, dtype=torch.float64)
    band = transition.band(mean)
    assert band.shape == (3, 2, 2, 6, 5)
    assert (band[..., transition.mask == 0] == 0).all()  # corners stay zero
    torch.testing.assert_close(transition.matrix(mean), band_to_dense(band), atol=0, rtol=0)


def test_model_saved_with_full_bases_loads_to_the_same_function() -> None:
    """A state dict in the old layout (bases (K, 2m, 2m), mask (2m, 2m)) loads and predicts the
    same as the model it came from."""
    torch.manual_seed(0)
    model = build_named("rkn").double()
    with torch.no_grad():
        model.cell.transition.basis.add_(0.05 * torch.randn_like(model.cell.transition.basis))
    old_layout = dict(model.state_dict())
    m = model.config.latent_obs_dim
    old_layout["cell.transition.basis"] = model.cell.transition.dense_basis().detach().clone()
    old_layout["cell.transition.mask"] = torch.ones(2 * m, 2 * m, dtype=torch.float64)
    loaded = build_named("rkn").double()  # initial bases: the load must replace them
    loaded.load_state_dict(old_layout)
    images = torch.randint(0, 256, (2, 5, 24, 24, 1), dtype=torch.uint8)
    with torch.no_grad():
        want, got = model(images), loaded(images)
    assert_exact(got.mean, want.mean)
    assert_exact(got.var, want.var)

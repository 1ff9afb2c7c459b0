"""LSTM and GRU baselines: output split, valid flag, gate-bias init, training and determinism."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from baselines.gru import GRUBaseline, GRUConfig
from baselines.lstm import LSTMBaseline, LSTMConfig
from baselines.recurrent import split_sizes
from tests.config_models import build_named
from tests.toy_data import mean_nll, moving_square

assert_same = partial(torch.testing.assert_close, atol=0.0, rtol=0.0)


def random_images(batch: int, steps: int, seed: int = 0) -> torch.Tensor:
    """Random uint8 image sequences (B, T, 24, 24, 1)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, steps, 24, 24, 1), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("name", ["lstm", "gru", "lstm_small", "gru_small"])
def test_training_reduces_loss(name: str) -> None:
    """About 20 full-batch Adam steps on a tiny moving-square task lower the NLL; nothing is NaN."""
    torch.manual_seed(0)
    model = build_named(name)
    images, targets = moving_square()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        loss = mean_nll(model(images), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


@pytest.mark.parametrize("name", ["lstm_small", "gru_small"])
def test_same_seed_same_outputs_and_gradients(name: str) -> None:
    """Same torch seed: bit-identical predictions and gradients."""
    images, targets = moving_square(3, 5)
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_named(name)
        pred = model(images)
        mean_nll(pred, targets).backward()
        runs.append((pred.var.detach(), [p.grad.clone() for p in model.parameters()]))
    assert_same(runs[0][0], runs[1][0])
    for g0, g1 in zip(runs[0][1], runs[1][1]):
        assert_same(g0, g1)


@pytest.mark.parametrize("variant,expected", [
    ("paper", (13, 24, 12, 12)),  # 4m units, halves
    ("tf_master", (13, 24, 8, 16)),  # m' = floor(24 / 5) = 4: 2m' = 8 to the mean decoder
    ("pt", (12, 30, 12, 18)),  # 5m units, no valid flag, 2m / 3m
])
def test_variant_sizes(variant: str, expected: tuple[int, int, int, int]) -> None:
    """(input, units, mean input, variance input) of each rnn_variant for m = 6."""
    assert split_sizes(6, variant) == expected
    torch.manual_seed(0)
    model = LSTMBaseline(LSTMConfig(latent_obs_dim=6, rnn_variant=variant))
    assert model.rnn.input_size == expected[0] and model.rnn.hidden_size == expected[1]
    assert model(random_images(2, 3)).var.shape == (2, 3, 2)


def test_paper_variant_feeds_exp_of_second_half_to_variance_decoder() -> None:
    """paper variant: mean decoder sees units [0, 2m), variance decoder exp(units [2m, 4m))."""
    torch.manual_seed(0)
    model = build_named("lstm_small")
    images = random_images(2, 3)
    captured = {}
    model.rnn.register_forward_hook(lambda mod, inp, out: captured.update(out=out[0]))
    pred = model(images)
    out = captured["out"]
    mean, var = model.decoder(out[..., :12], torch.exp(out[..., 12:]))
    assert_same(pred.mean, mean)
    assert_same(pred.var, var)


def test_valid_flag_is_an_input() -> None:
    """The valid flag changes LSTM/GRU outputs; use_obs_valid=False makes them ignore it."""
    images = random_images(2, 4)
    valid = torch.ones(2, 4, dtype=torch.bool)
    valid[:, 1] = False
    for cls, cfg in ((LSTMBaseline, LSTMConfig), (GRUBaseline, GRUConfig)):
        torch.manual_seed(0)
        model = cls(cfg(latent_obs_dim=4))
        assert not torch.equal(model(images, valid).mean, model(images).mean)
        torch.manual_seed(0)
        blind = cls(cfg(latent_obs_dim=4, use_obs_valid=False))
        assert_same(blind(images, valid).mean, blind(images).mean)


def test_gate_bias_init() -> None:
    """Keras init: LSTM forget-gate bias 1, other gate biases 0; GRU gate biases 0 by default."""
    torch.manual_seed(0)
    lstm = build_named("lstm_small").rnn
    units = lstm.hidden_size
    bias = lstm.bias_ih_l0 + lstm.bias_hh_l0
    assert (bias[units : 2 * units] == 1).all()
    assert (bias[:units] == 0).all() and (bias[2 * units :] == 0).all()
    gru = build_named("gru_small", {"gate_bias": 1.0}).rnn
    gbias = gru.bias_ih_l0 + gru.bias_hh_l0
    assert (gbias[: 2 * gru.hidden_size] == 1).all() and (gbias[2 * gru.hidden_size :] == 0).all()
    assert (build_named("gru_small").rnn.bias_ih_l0 == 0).all()


def test_keras_recurrent_kernel_is_orthogonal() -> None:
    """Keras init gives an orthogonal recurrent kernel (orthonormal columns of weight_hh)."""
    torch.manual_seed(0)
    w = build_named("gru_small").rnn.weight_hh_l0.detach()
    torch.testing.assert_close(w.T @ w, torch.eye(w.shape[1]), atol=1e-5, rtol=0)

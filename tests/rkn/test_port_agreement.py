"""Guard: our RKN, set to the options of the authors' PyTorch port, computes the port's function.

Fixture ``tests/data/rkn_share_port_golden.npz`` (see ``tests/data/README.md``): numbers computed
by the authors' PyTorch port (ALRhub/rkn_share, commit 7cb29e1, MIT licence, Copyright 2021
Philipp Becker) in float64 for one input batch; numbers only, no code of the port. Arrays (from the
fixture's README):

- ``images`` uint8 (4, 30, 24, 24, 1), ``targets`` float64 (4, 30, 2): the input batch.
- ``latent_obs``, ``latent_obs_var`` (4, 30, 15): encoder outputs w_t and sigma^obs_t.
- ``post_mean`` (4, 30, 30); ``post_cov_upper``, ``post_cov_lower``, ``post_cov_side``
  (4, 30, 15): the posterior after each step's update.
- ``pred_mean``, ``pred_var`` (4, 30, 2): decoder outputs; the port's loss adds 1e-12 to
  ``pred_var`` in place before it is stored, so we compare with our variance + 1e-12.
- ``loss`` (): Gaussian NLL, mean over batch and time of the per-step sum over the 2 targets, with
  variance + 1e-12.
- ``param/<name>``, ``grad/<name>``: every port parameter and its gradient of ``loss``.
- ``band_row_index``, ``band_col_index`` (93,): (row, column) of each stored band entry.

The port's parameterisation (fixture README) and how it maps onto ``rkn.model.RKN``:

- Encoder ``enc._module._hidden_layers.{0,3,7}`` (conv 5x5, conv 3x3 stride 2, dense 108 -> 30)
  and the heads ``_mean_layer``, ``_log_var_layer`` -> ``encoder.conv.{0,4}``, ``encoder.dense.0``,
  ``encoder.mean_head``, ``encoder.var_head`` (same PyTorch layouts).
- Transition ``rkn_layer._cell._tm_{11,12,21,22}_basis`` (K, 93): band entries of each block's
  B^(k), with A11 = I + sum_k alpha_k B11^(k), A12 = sum_k alpha_k B12^(k) (likewise A21, A22).
  Since the softmax weights sum to one, our full (K, 2m, 2m) basis with blocks
  [[I + B11, B12], [B21, I + B22]] at the band positions (zero elsewhere, masked anyway) gives the
  same transition, and the gradient of our basis at those positions is the port's basis gradient.
- Coefficient net ``_coefficient_net.0`` -> ``cell.transition.coef_net.0``.
- Transition noise softplus(``_log_transition_noise``) (1, 2m) -> ``cell.transition.raw_noise``
  (2m,), through the same softplus (``var_act``).
- Initial covariance softplus(``log_icu``), softplus(``log_icl``) (1, m) -> rows upper, lower of
  ``cell.raw_init_cov`` (2, m).
- Decoder ``_hidden_layers_mean.0`` / ``_out_layer_mean`` (on the 2m posterior mean) and
  ``_hidden_layers_var.0`` / ``_out_layer_var`` (on [upper, lower, side]) ->
  ``decoder.mean_net.{0,2}`` and ``decoder.var_net.{0,2}``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rkn.interface import GaussianPrediction
from rkn.losses import gaussian_nll
from rkn.model import RKN, RKNConfig
from rkn.nets import images_to_batch

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "rkn_share_port_golden.npz"

# The port's options (fixture README): pendulum state-estimation model, m = K = 15, b = 3.
PORT_CONFIG = RKNConfig(
    latent_obs_dim=15,
    num_basis=15,
    bandwidth=3,
    target_dim=2,
    image_size=24,
    input_channels=1,
    step_order="update_predict",
    learn_init_cov=True,
    init_cov=10.0,
    var_act="softplus",
    trans_noise_init=0.1,
    coef_hidden=(),
    enc_norm="pre",
    input_scale=1.0 / 255.0,
    layer_norm=False,
    dec_hidden=(30,),
    dec_act="tanh",
    init="torch",
    conv_padding="symmetric",
)
# The port's loss adds 1e-12 to the predicted variance (ours defaults to 1e-8).
PORT_VAR_EPS = 1e-12

# Tolerances, float64. Values (encoder outputs, posterior, predictions, loss): max absolute error;
# the fixture README reports about 1e-14, observed here at most 1.1e-14 (post_cov_lower).
# Gradients: max absolute error of a parameter's gradient divided by the largest |port gradient|
# of that parameter; the README reports about 6e-9, observed here at most 3.1e-14 (log_icu). The
# margins leave room for other BLAS builds; a 1e-6 change of one basis or initial-covariance entry
# already gives value errors >= 3e-7 and gradient errors >= 3e-8 (test_check_detects_a_difference).
VALUE_ATOL = 1e-12
GRAD_RTOL = 1e-8

# Port Linear/Conv layer -> our layer of the same PyTorch weight layout (weight and bias).
LAYER_SOURCES = {
    "enc._module._hidden_layers.0": "encoder.conv.0",
    "enc._module._hidden_layers.3": "encoder.conv.4",
    "enc._module._hidden_layers.7": "encoder.dense.0",
    "enc._module._mean_layer": "encoder.mean_head",
    "enc._module._log_var_layer": "encoder.var_head",
    "rkn_layer._cell._coefficient_net.0": "cell.transition.coef_net.0",
    "dec._module._hidden_layers_mean.0": "decoder.mean_net.0",
    "dec._module._out_layer_mean": "decoder.mean_net.2",
    "dec._module._hidden_layers_var.0": "decoder.var_net.0",
    "dec._module._out_layer_var": "decoder.var_net.2",
}
# Block (row, column) of each port basis in our band-stored basis (K, 2, 2, m, 2b + 1), and
# whether the port adds the identity to that block.
BASIS_BLOCKS = {"11": (0, 0, True), "12": (0, 1, False), "21": (1, 0, False), "22": (1, 1, True)}


@dataclass(frozen=True)
class Slot:
    """Where one port parameter lives in our model.

    Attributes:
        port: port parameter name (without the ``param/`` prefix).
        ours: our parameter name (``model.named_parameters()``).
        index: index into our parameter selecting the port parameter's entries; ``...`` for all.
        shift: value our entries carry on top of the port's (the identity of the diagonal
            basis blocks), same shape as the port parameter; None for none.
    """

    port: str
    ours: str
    index: Any = ...
    shift: np.ndarray | None = None


def load_fixture() -> dict[str, np.ndarray]:
    """All arrays of the fixture, by key."""
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


def port_slots(fixture: dict[str, np.ndarray], m: int) -> list[Slot]:
    """The mapping of every port parameter onto our parameters (module docstring)."""
    slots = []
    for src, dst in LAYER_SOURCES.items():
        slots += [Slot(f"{src}.weight", f"{dst}.weight"), Slot(f"{src}.bias", f"{dst}.bias")]
    rows, cols = fixture["band_row_index"], fixture["band_col_index"]
    on_diagonal = (rows == cols).astype(np.float64)  # identity at the band's diagonal entries
    for block, (r, c, add_identity) in BASIS_BLOCKS.items():
        index = (slice(None), r, c, torch.as_tensor(rows),
                 torch.as_tensor(cols - rows + PORT_CONFIG.bandwidth))
        shift = np.broadcast_to(on_diagonal, (PORT_CONFIG.num_basis, rows.size))
        name = f"rkn_layer._cell._tm_{block}_basis"
        slots.append(Slot(name, "cell.transition.basis", index, shift if add_identity else None))
    slots.append(Slot("rkn_layer._cell._log_transition_noise", "cell.transition.raw_noise"))
    slots += [Slot("log_icu", "cell.raw_init_cov", 0), Slot("log_icl", "cell.raw_init_cov", 1)]
    return slots


def build_port_model(fixture: dict[str, np.ndarray]) -> tuple[RKN, list[Slot]]:
    """Our RKN in float64 with the port's options and every port parameter copied in.

    Our entries that no port parameter maps to are zeroed first: only the basis has such entries
    (outside the band, where the mask removes them). Asserts that every port parameter was used
    and that every entry of ours was written, except the basis outside the band.
    """
    torch.manual_seed(0)
    model = RKN(PORT_CONFIG).to(torch.float64)
    params = dict(model.named_parameters())
    written = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in params.items()}
    slots = port_slots(fixture, PORT_CONFIG.latent_obs_dim)
    with torch.no_grad():
        params["cell.transition.basis"].zero_()
        for slot in slots:
            value = fixture[f"param/{slot.port}"]
            if slot.shift is not None:
                value = value + slot.shift
            target = params[slot.ours]
            shape = target[slot.index].shape
            assert not written[slot.ours][slot.index].any(), f"{slot.port}: entries written twice"
            target[slot.index] = torch.from_numpy(value).reshape(shape)
            written[slot.ours][slot.index] = True
    consumed = {slot.port for slot in slots}
    in_fixture = {key.removeprefix("param/") for key in fixture if key.startswith("param/")}
    assert consumed == in_fixture, (consumed ^ in_fixture)
    band = model.cell.transition.mask.to(torch.bool).expand_as(params["cell.transition.basis"])
    assert int(band.sum()) == PORT_CONFIG.num_basis * 4 * fixture["band_row_index"].size
    for name, mask in written.items():
        expected = band if name == "cell.transition.basis" else torch.ones_like(mask)
        assert torch.equal(mask, expected), f"{name}: not every entry set from the port"
    return model, slots


def port_loss(pred: GaussianPrediction, targets: torch.Tensor) -> torch.Tensor:
    """The port's loss: per-step NLL summed over targets (var + 1e-12), mean over B and T."""
    return gaussian_nll(pred, targets, var_eps=PORT_VAR_EPS).mean()


def agreement_errors(
    model: RKN, slots: list[Slot], fixture: dict[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, float]]:
    """Compare ``model`` with the port on the fixture.

    Returns:
        (value errors, gradient errors): max absolute error per value key (``latent_obs``,
        ``post_mean``, ..., ``loss``); per port parameter, max absolute gradient error divided by
        the largest |port gradient| of that parameter. The key ``basis_off_band`` holds the largest
        |gradient| of our basis outside the band, which must be 0.
    """
    images = torch.from_numpy(fixture["images"])
    targets = torch.from_numpy(fixture["targets"])
    batch, steps = images.shape[:2]
    got: dict[str, torch.Tensor] = {}
    model.zero_grad()
    with torch.no_grad():
        flat = images_to_batch(images, model.config.input_scale, torch.float64)
        w, var = model.encoder(flat)
        got["latent_obs"] = w.view(batch, steps, -1)
        got["latent_obs_var"] = var.view(batch, steps, -1)
        post_mean, cov = model.filter(images)
        got["post_mean"] = post_mean
        got["post_cov_upper"], got["post_cov_lower"], got["post_cov_side"] = cov
    pred = model(images)
    assert isinstance(pred, GaussianPrediction)
    loss = port_loss(pred, targets)
    loss.backward()
    # The port's loss adds its epsilon to the predicted variance in place, so its stored
    # ``pred_var`` is the decoder variance + 1e-12: a 1e-12 offset, as large as VALUE_ATOL.
    got["pred_mean"], got["pred_var"], got["loss"] = pred.mean, pred.var + PORT_VAR_EPS, loss
    value_errors = {
        key: (value.detach() - torch.from_numpy(np.asarray(fixture[key]))).abs().max().item()
        for key, value in got.items()
    }
    params = dict(model.named_parameters())
    grad_errors = {}
    for slot in slots:
        ours = params[slot.ours].grad[slot.index].numpy()
        port = fixture[f"grad/{slot.port}"]
        grad_errors[slot.port] = float(
            np.abs(ours.reshape(port.shape) - port).max() / np.abs(port).max()
        )
    basis = model.cell.transition
    off_band = basis.basis.grad * (1.0 - basis.mask)
    grad_errors["basis_off_band"] = off_band.abs().max().item()
    return value_errors, grad_errors


def within_tolerance(value_errors: dict[str, float], grad_errors: dict[str, float]) -> bool:
    """True when every value error is <= VALUE_ATOL and every gradient error <= GRAD_RTOL."""
    return max(value_errors.values()) <= VALUE_ATOL and max(grad_errors.values()) <= GRAD_RTOL


@pytest.fixture(scope="module")
def fixture() -> dict[str, np.ndarray]:
    """The port golden arrays."""
    return load_fixture()


def test_fixture_layout(fixture: dict[str, np.ndarray]) -> None:
    """The band index lists the |i - j| <= 3 entries of a 15 x 15 block; shapes as documented."""
    m, b = PORT_CONFIG.latent_obs_dim, PORT_CONFIG.bandwidth
    rows, cols = np.nonzero(np.abs(np.subtract.outer(np.arange(m), np.arange(m))) <= b)
    np.testing.assert_array_equal(fixture["band_row_index"], rows)
    np.testing.assert_array_equal(fixture["band_col_index"], cols)
    assert fixture["images"].shape == (4, 30, 24, 24, 1)
    assert fixture["post_mean"].shape == (4, 30, 2 * m)
    for key in fixture:
        if key.startswith("param/"):
            assert fixture["grad/" + key.removeprefix("param/")].shape == fixture[key].shape


def test_matches_port_values_and_gradients(fixture: dict[str, np.ndarray]) -> None:
    """Encoder outputs, posterior, predictions, loss to VALUE_ATOL; all gradients to GRAD_RTOL."""
    model, slots = build_port_model(fixture)
    value_errors, grad_errors = agreement_errors(model, slots, fixture)
    bad_values = {k: v for k, v in value_errors.items() if v > VALUE_ATOL}
    bad_grads = {k: v for k, v in grad_errors.items() if v > GRAD_RTOL}
    assert not bad_values, f"values differ from the port beyond {VALUE_ATOL}: {bad_values}"
    assert not bad_grads, f"gradients differ from the port beyond {GRAD_RTOL}: {bad_grads}"
    assert grad_errors["basis_off_band"] == 0.0
    assert within_tolerance(value_errors, grad_errors)


def test_default_eps_loss_differs_by_order_1e8(fixture: dict[str, np.ndarray]) -> None:
    """Our default NLL epsilon (1e-8) moves the loss by about 1e-8 from the port's (1e-12)."""
    model, _ = build_port_model(fixture)
    with torch.no_grad():
        pred = model(torch.from_numpy(fixture["images"]))
        ours = gaussian_nll(pred, torch.from_numpy(fixture["targets"])).mean().item()
    assert 1e-10 < abs(ours - float(fixture["loss"])) < 1e-7


def _perturb_basis(model: RKN) -> RKN:
    """Move one band entry of the B12 block of basis 3 by 1e-6."""
    with torch.no_grad():
        model.cell.transition.basis[3, 0, 1, 2, 4 - 2 + PORT_CONFIG.bandwidth] += 1e-6  # B12[2, 4]
    return model


def _perturb_init_cov(model: RKN) -> RKN:
    """Move one raw initial lower variance by 1e-6."""
    with torch.no_grad():
        model.cell.raw_init_cov[1, 7] += 1e-6
    return model


def _predict_first(model: RKN) -> RKN:
    """Same weights, TF/paper step order (predict, then update)."""
    other = RKN(replace(PORT_CONFIG, step_order="predict_update")).to(torch.float64)
    other.load_state_dict(model.state_dict())
    return other


@pytest.mark.parametrize("change", [_perturb_basis, _perturb_init_cov, _predict_first])
def test_check_detects_a_difference(fixture: dict[str, np.ndarray], change: Any) -> None:
    """The agreement check fails for a perturbed weight or the other step order."""
    model, slots = build_port_model(fixture)
    value_errors, grad_errors = agreement_errors(change(model), slots, fixture)
    assert not within_tolerance(value_errors, grad_errors)
    assert value_errors["post_mean"] > VALUE_ATOL

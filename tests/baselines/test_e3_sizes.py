"""E3 (multiple pendulums) model sizes, built from the overrides in config/config.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.config_models import build_named

CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


def e3_counts() -> dict[str, int]:
    """Trainable parameters of every E3 model with the experiment's model_overrides."""
    experiment = yaml.safe_load(CONFIG.read_text())["experiments"]["multiple_pendulums"]
    overrides = experiment["model_overrides"]
    return {name: build_named(name, overrides[name]).num_trained_parameters() for name in experiment["models"]}


def test_e3_parameter_counts() -> None:
    """Exact counts; the small LSTM/GRU (the paper's m = 12) are smaller than the RKN, as in E1.

    Encoder trunk (3 channels, dense 90): conv1 3*12*25+12 = 912, LN 24, conv2 1308, LN 24,
    dense 108*90+90 = 9810 -> 12078; heads 2*(90m + m) = 182m. Decoders (hidden 10, 6 outputs):
    (in*10+10) + (10*6+6) each.
    RKN m=45: 12078 + 8190; band entries per block 45 + 2*(44+43+42) = 303, basis 15*4*303 =
    18180; coefficient net 90*15+15 = 1365; noise 90; decoders on 90 and 135: 976 + 1426 -> 42305.
    LSTM m: 4u(2m+1) + 4u^2 + 8u with u = 4m; GRU m: 3u(2m+1) + 3u^2 + 6u; decoders on 2m each.
    lstm_small m=12: 12078+2184 + 14400 + 2*316 = 29294; gru_small m=12: 12078+2184 + 10800 + 632
    = 25694; lstm m=50: 12078+9100 + 242400 + 2*1076 = 265730; gru m=50: 21178 + 181800 + 2152
    = 205130.
    """
    counts = e3_counts()
    assert counts == {"rkn": 42305, "lstm": 265730, "lstm_small": 29294, "gru": 205130,
                      "gru_small": 25694}
    # "Roughly the same amount of parameters" (ICLR) under this counting: LSTM m=12 is 31 % and
    # GRU m=12 39 % below the RKN (E1: LSTM m=6 27 %, GRU m=8 16 % below). The paper's sizes are
    # kept so the rows match the published ones; by this count LSTM m=16 (41,126) and GRU m=19
    # (43,104) would match within 3 %.
    for small in ("lstm_small", "gru_small"):
        assert -0.40 <= counts[small] / counts["rkn"] - 1 < 0
    # The large baselines are 5-6x the RKN: the point of the "large vs matched" comparison.
    assert counts["lstm"] > 5 * counts["rkn"] and counts["gru"] > 4 * counts["rkn"]


def test_matched_alternatives_quoted_above() -> None:
    """The sizes quoted as closer matches really are within 3 % of the RKN."""
    base = {"encoder_hidden": 90, "input_channels": 3, "target_dim": 6}
    rkn = e3_counts()["rkn"]
    lstm16 = build_named("lstm", {**base, "latent_obs_dim": 16}).num_trained_parameters()
    gru19 = build_named("gru", {**base, "latent_obs_dim": 19}).num_trained_parameters()
    assert (lstm16, gru19) == (41126, 43124)
    assert abs(lstm16 / rkn - 1) < 0.03 and abs(gru19 / rkn - 1) < 0.03

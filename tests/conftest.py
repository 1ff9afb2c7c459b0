"""Shared pytest set-up: deterministic torch on CPU for every test."""

import torch

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

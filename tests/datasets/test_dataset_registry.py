"""Tests of the dataset registry's parameter validation (datasets.build_dataset)."""

from __future__ import annotations

import pytest

from datasets import DATASETS, build_dataset, default_params


def test_registry_lists_both_pendulum_datasets() -> None:
    """The registry holds E1 and E2 with the paper-size defaults (docs/data.md#dataset-sizes-and-seeds)."""
    assert {"pendulum_filtering", "pendulum_imputation"} <= set(DATASETS)
    assert default_params("pendulum_filtering") == {
        "num_train": 2000, "num_test": 1000, "seq_len": 75, "seed": 42}
    assert default_params("pendulum_imputation") == {
        "num_train": 2000, "num_test": 1000, "seq_len": 75, "train_seed": 42, "test_seed": 23541}


def test_unknown_dataset_names_the_valid_ones() -> None:
    """An unknown dataset name raises ValueError listing the registered names."""
    with pytest.raises(ValueError, match="pendulum_filtering") as info:
        build_dataset("pendulum_filter", {})
    assert "pendulum_filter'" in str(info.value)


def test_unknown_param_names_key_and_valid_keys() -> None:
    """An unknown param raises ValueError naming it and the valid params."""
    with pytest.raises(ValueError, match="'seed'") as info:
        build_dataset("pendulum_imputation", {"seed": 1})
    assert "test_seed" in str(info.value)


@pytest.mark.parametrize("bad", [{"num_train": 2.5}, {"seq_len": 0}, {"seed": -1},
                                 {"num_test": True}, {"seed": 2**32}])
def test_bad_param_values_raise(bad: dict) -> None:
    """Non-integer, non-positive or out-of-range values raise ValueError naming the key."""
    with pytest.raises(ValueError, match=repr(next(iter(bad)))):
        build_dataset("pendulum_filtering", bad)

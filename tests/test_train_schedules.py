"""Training schedules, snapshot selection and replicate exclusion against closed forms."""

import jax.numpy as jnp
import numpy as np
import pytest
from robustreach.config import ConfigError, TrainConfig, load_hyperparameters
from robustreach.train.conditions import check_compatible, group_conditions
from robustreach.train.history import best_batches, excluded_replicates
from robustreach.train.schedules import learning_rate_schedule, perturbation_scale_schedule, snapshot_batches


def test_learning_rate_constant_then_cosine_to_alpha():
    config = TrainConfig(n_batches=100, learning_rate=0.01, constant_lr_batches=40, cosine_alpha=0.1)
    schedule = learning_rate_schedule(config)
    for batch in (0, 20, 39):
        np.testing.assert_allclose(schedule(jnp.int32(batch)), 0.01)
    for batch in (40, 55, 70, 99):
        progress = (batch - 40) / 60
        expected = 0.01 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))
        np.testing.assert_allclose(schedule(jnp.int32(batch)), expected, rtol=1e-5)


@pytest.mark.parametrize("shape", ["linear", "cosine"])
def test_perturbation_ramp_after_pretraining(shape):
    config = TrainConfig(n_batches=100, pretrain_batches=10, ramp_batches=20, ramp_shape=shape)
    scale = perturbation_scale_schedule(config)
    for batch in range(0, 60, 3):
        progress = min(max(batch - 10, 0) / 20, 1.0)
        expected = progress if shape == "linear" else 0.5 * (1 - np.cos(np.pi * progress))
        np.testing.assert_allclose(scale(jnp.int32(batch)), expected, atol=1e-6)


def test_no_ramp_switches_on_after_pretraining():
    scale = perturbation_scale_schedule(TrainConfig(n_batches=50, pretrain_batches=5))
    assert [float(scale(jnp.int32(b))) for b in (0, 4, 5, 49)] == [0.0, 0.0, 1.0, 1.0]


def test_reset_beyond_the_end_is_rejected():
    with pytest.raises(ConfigError, match="opt_reset_batches"):
        load_hyperparameters({"train": {"n_batches": 500, "opt_reset_batches": [100, 500]}})


def test_snapshots_are_dense_early_and_include_the_last_batch():
    snapshots = snapshot_batches(TrainConfig(n_batches=10000, n_snapshots=20))
    assert snapshots[0] == 0 and snapshots[-1] == 9999
    gaps = np.diff(snapshots)
    assert np.all(np.diff(gaps) >= -1)  # spacing grows (up to rounding)
    assert gaps[0] < 5 and gaps[-1] > 1000


def test_best_batch_ignores_missing_validation():
    validation = np.full((6, 1, 2), np.nan)
    validation[[0, 2, 5], 0, 0] = [3.0, 1.0, 2.0]
    validation[[0, 2, 5], 0, 1] = [3.0, 4.0, 0.5]
    np.testing.assert_array_equal(best_batches(validation, np.array([0, 2, 5])), [[2, 5]])


def test_exclusion_uses_best_plus_k_std():
    measure = np.array([[1.0, 1.2, 5.0, 1.1]])
    threshold = 1.0 + 1.0 * np.std(measure)  # k = 1 by hand: std = 1.7044..., threshold 2.70
    np.testing.assert_array_equal(excluded_replicates(measure, 1.0), measure > threshold)
    np.testing.assert_array_equal(excluded_replicates(measure, 1.0), [[False, False, True, False]])


def test_grouping_and_compatibility():
    a = load_hyperparameters({"perturbation": {"type": "curl", "std": 0.0}})
    b = load_hyperparameters({"perturbation": {"type": "curl", "std": 1.0}})
    c = load_hyperparameters({"perturbation": {"type": "curl", "std": 1.0}, "controller": {"hidden_size": 10}})
    assert group_conditions([a, b, c]) == [[0, 1], [2]]
    with pytest.raises(ValueError, match="controller.hidden_size"):
        check_compatible([a, c])

"""Trial generation: workspace, evaluation sets, perturbation draws, context variants, impulses."""

import jax
import numpy as np
import pytest
from conftest import small_hyperparameters
from robustreach.tasks import (
    TrialSpec,
    centre_out_trials,
    grid_centres,
    hold_trials,
    training_trials,
    with_context,
    with_feedback_impulse,
    with_perturbation,
)

KEY = jax.random.PRNGKey(3)


def draw(n=4000, **sections):
    return training_trials(TrialSpec.from_hyperparameters(small_hyperparameters(**sections)), KEY, n)


def test_training_reaches_lie_in_the_workspace():
    trials = draw(task={"n_steps": 20, "workspace": [[-0.5, 0.0], [1.0, 2.0]]})
    for points in (trials.init_pos, trials.target_pos):
        assert np.all(points >= np.array([-0.5, 0.0])) and np.all(points <= np.array([1.0, 2.0]))
        assert np.ptp(points[:, 0]) > 1.4 and np.ptp(points[:, 1]) > 1.9  # the whole box is used
    np.testing.assert_array_equal(trials.init_vel, 0.0)


def test_identical_keys_identical_trials():
    spec = TrialSpec.from_hyperparameters(small_hyperparameters(perturbation={"type": "constant", "std": 1.0}))
    a, b = training_trials(spec, KEY, 16), training_trials(spec, KEY, 16)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_curl_amplitude_std_and_fraction_perturbed():
    trials = draw(perturbation={"type": "curl", "std": 1.5, "p_perturbed": 0.25})
    perturbed = np.asarray(trials.perturbed)
    assert abs(perturbed.mean() - 0.25) < 0.03
    np.testing.assert_array_equal(np.asarray(trials.perturbations[0].amplitude)[~perturbed], 0.0)
    assert abs(np.asarray(trials.perturbations[0].amplitude)[perturbed].std() - 1.5) < 0.1


def test_constant_field_amplitude_and_angle_are_independent():
    trials = draw(n=8000, perturbation={"type": "constant", "std": 1.0})
    force = np.asarray(trials.perturbations[0].vector)
    magnitude, angle = np.linalg.norm(force, axis=1), np.arctan2(force[:, 1], force[:, 0])
    assert abs(np.corrcoef(magnitude, np.cos(angle))[0, 1]) < 0.05
    assert abs(np.corrcoef(magnitude, np.sin(angle))[0, 1]) < 0.05
    assert abs(np.sqrt(np.mean(magnitude**2)) - 1.0) < 0.05  # |a| with a ~ N(0, 1)


def test_ramp_scale_multiplies_amplitudes():
    spec = TrialSpec.from_hyperparameters(small_hyperparameters(perturbation={"type": "curl", "std": 1.0}))
    full, half = training_trials(spec, KEY, 32), training_trials(spec, KEY, 32, scale=0.5)
    np.testing.assert_allclose(half.perturbations[0].amplitude, 0.5 * full.perturbations[0].amplitude)


@pytest.mark.parametrize("on_off", [(1.0, 0.0), (1.0, -1.0)])
def test_binary_context_values(on_off):
    trials = draw(perturbation={"type": "curl", "std": 1.0, "p_perturbed": 0.5}, context={"variant": "binary", "on_value": on_off[0], "off_value": on_off[1]})
    expected = np.where(np.asarray(trials.perturbed), *on_off)
    np.testing.assert_array_equal(trials.context[:, 0], expected)


def test_amplitude_and_std_scaled_context():
    amplitude = draw(perturbation={"type": "curl", "std": 2.0}, context={"variant": "amplitude"})
    np.testing.assert_allclose(amplitude.perturbations[0].amplitude, 2.0 * amplitude.context[:, 0], rtol=1e-6)
    scaled = draw(perturbation={"type": "curl", "std": 2.0}, context={"variant": "std_scaled"})
    u = np.asarray(scaled.context[:, 0])
    assert u.min() >= 0 and u.max() <= 1
    # field = std * U * N: dividing by std * U leaves a standard normal
    assert abs(np.std(np.asarray(scaled.perturbations[0].amplitude) / (2.0 * u)) - 1.0) < 0.05


def test_grid_centres_and_centre_out_set():
    np.testing.assert_allclose(grid_centres([[-1, -1], [1, 1]], 1), [[0.0, 0.0]])
    centres = grid_centres([[-1, -1], [1, 1]], 2)
    np.testing.assert_allclose(sorted(map(tuple, centres)), [(-1 / 3, -1 / 3), (-1 / 3, 1 / 3), (1 / 3, -1 / 3), (1 / 3, 1 / 3)])
    trials = centre_out_trials(10, [[-1, -1], [1, 1]], n_grid=2, n_directions=24, reach_length=0.5)
    assert trials.n_trials == 96
    np.testing.assert_allclose(np.linalg.norm(trials.target_pos - trials.init_pos, axis=1), 0.5, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(trials.reach_angle[:3]), 2 * np.pi * np.arange(3) / 24, atol=1e-6)


def test_hold_set_has_start_equal_target_and_includes_origin():
    trials = hold_trials(10, [[-1, -1], [1, 1]], n_grid=5)
    np.testing.assert_array_equal(trials.init_pos, trials.target_pos)
    assert trials.n_trials == 25 and np.any(np.all(np.asarray(trials.init_pos) == 0.0, axis=1))


def test_constant_test_field_is_orthogonal_to_the_reach():
    trials = with_perturbation(centre_out_trials(10, [[-1, -1], [1, 1]], n_directions=8), "constant", 0.2)
    reach = np.asarray(trials.target_pos - trials.init_pos)
    force = np.asarray(trials.perturbations[0].vector)
    np.testing.assert_allclose(np.sum(reach * force, axis=1), 0.0, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(force, axis=1), 0.2, rtol=1e-6)
    cross = reach[:, 0] * force[:, 1] - reach[:, 1] * force[:, 0]
    assert np.all(np.asarray(cross) > 0)


def test_feedback_impulse_window_and_direction():
    trials = centre_out_trials(40, [[-1, -1], [1, 1]], n_directions=2)
    pulsed = with_feedback_impulse(trials, variable="vel", onset=30, duration=5, amplitude=1.2, angle=np.pi / 2)
    offset = np.asarray(pulsed.feedback_offset)
    active = np.zeros(40, bool)
    active[30:35] = True
    np.testing.assert_allclose(offset[:, active, 3], 1.2, rtol=1e-6)
    np.testing.assert_allclose(offset[:, active, 2], 0.0, atol=1e-6)
    np.testing.assert_array_equal(offset[:, ~active], 0.0)
    np.testing.assert_array_equal(offset[..., :2], 0.0)
    with pytest.raises(ValueError, match="onset"):
        with_feedback_impulse(trials, variable="pos", onset=38, duration=5, amplitude=1.0)


def test_with_context_checks_size():
    trials = centre_out_trials(10, [[-1, -1], [1, 1]], n_directions=2, n_context=1)
    np.testing.assert_array_equal(with_context(trials, -2.0).context, -2.0)
    with pytest.raises(ValueError, match="context"):
        with_context(trials, [1.0, 2.0])

"""Closed-loop rollout: timing conventions, perturbations and determinism."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import silent_controller, small_hyperparameters
from robustreach.controller import Controller, LeakyTanhCell
from robustreach.model import build_ensemble, build_model, simulate, simulate_replicates, steady_state_input
from robustreach.tasks import centre_out_trials, with_perturbation
from robustreach.trials import unperturbed_trials

KEY = jax.random.PRNGKey(0)


def quiet(**sections):
    sections.setdefault("feedback", {})
    sections["feedback"] = {"noise_std": 0.0, **sections["feedback"]}
    sections.setdefault("motor", {"noise_std": 0.0})
    return small_hyperparameters(**sections)


def test_silent_controller_leaves_a_resting_mass_at_rest():
    hp = quiet()
    model = silent_controller(build_model(hp, KEY))
    trials = unperturbed_trials(jnp.array([[0.3, -0.2]]), jnp.array([[0.5, 0.5]]), hp.task.n_steps)
    trajectory = simulate(model, trials, KEY)
    np.testing.assert_array_equal(trajectory.pos, np.broadcast_to(np.float32([0.3, -0.2]), trajectory.pos.shape))
    np.testing.assert_array_equal(trajectory.vel, 0.0)


def test_constant_readout_force_matches_hand_computed_euler():
    hp = quiet(plant={"mass": 2.0, "dt": 0.1})
    force = np.array([0.4, -1.0])
    model = silent_controller(build_model(hp, KEY), bias=force)
    trials = unperturbed_trials(jnp.zeros((1, 2)), jnp.ones((1, 2)), hp.task.n_steps)
    trajectory = simulate(model, trials, KEY)
    n = np.arange(hp.task.n_steps)[:, None]
    a, dt = force / 2.0, 0.1
    np.testing.assert_allclose(trajectory.pos[0], dt**2 * a * n * (n - 1) / 2, atol=1e-5)
    np.testing.assert_allclose(trajectory.force[0, 1:], np.broadcast_to(force, (hp.task.n_steps - 1, 2)), atol=1e-7)
    np.testing.assert_array_equal(trajectory.force[0, 0], 0.0)  # index 0: initial state, no update yet


@pytest.mark.parametrize("delay", [0, 2, 5])
def test_fed_back_position_is_the_delayed_plant_position(delay):
    hp = quiet(feedback={"delay": delay})
    model = build_model(hp, KEY)
    trials = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=3)
    trajectory = simulate(model, trials, KEY)
    for t in range(1, hp.task.n_steps):
        source = max(t - 1 - delay, 0)  # update t reads the state after update t-1, delayed
        np.testing.assert_allclose(trajectory.feedback[:, t, :2], trajectory.pos[:, source], atol=1e-7)
        np.testing.assert_allclose(trajectory.feedback[:, t, 2:], trajectory.vel[:, source], atol=1e-7)


def test_network_input_order_is_context_target_feedback():
    hp = quiet(context={"variant": "binary"}, feedback={"variables": ["vel", "pos"]})
    model = build_model(hp, KEY)
    trials = unperturbed_trials(jnp.array([[0.1, 0.2]]), jnp.array([[0.7, -0.3]]), hp.task.n_steps, n_context=1)
    trials = eqx.tree_at(lambda t: t.context, trials, jnp.array([[0.25]]))
    trajectory = simulate(model, trials, KEY)
    x = trajectory.network_input[0, 1]
    np.testing.assert_allclose(x, [0.25, 0.7, -0.3, 0.0, 0.0, 0.1, 0.2, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(
        steady_state_input(model, jnp.array([0.5, 0.5]), jnp.array([2.0])), [2.0, 0.5, 0.5, 0, 0, 0.5, 0.5, 0, 0]
    )


def test_positive_curl_pushes_counter_clockwise_perpendicular_to_velocity():
    hp = quiet()
    model = build_model(hp, KEY)
    trials = with_perturbation(centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=4), "curl", 2.0)
    trajectory = simulate(model, trials, KEY)
    vel_before = trajectory.vel[:, :-1]  # the field of update t uses the velocity before it
    field = trajectory.external_force[:, 1:]
    np.testing.assert_allclose(jnp.sum(field * vel_before, axis=-1), 0.0, atol=1e-6)
    cross = vel_before[..., 0] * field[..., 1] - vel_before[..., 1] * field[..., 0]
    speed_sq = jnp.sum(vel_before**2, axis=-1)
    np.testing.assert_allclose(cross, 2.0 * speed_sq, rtol=1e-5, atol=1e-9)  # CCW: z-component > 0
    assert float(jnp.max(speed_sq)) > 1e-4


def test_identical_keys_give_identical_trials_and_different_keys_differ():
    hp = small_hyperparameters(perturbation={"type": "curl", "std": 1.0})
    model = build_model(hp, KEY)
    trials = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=5)
    a = simulate(model, trials, jax.random.PRNGKey(7))
    b = simulate(model, trials, jax.random.PRNGKey(7))
    c = simulate(model, trials, jax.random.PRNGKey(8))
    for leaf_a, leaf_b in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    assert not np.allclose(a.pos, c.pos)


def test_ensemble_replicates_differ_and_match_single_models():
    hp = quiet()
    ensemble = build_ensemble(hp, KEY, n_replicates=3)
    trials = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=2)
    batched = simulate_replicates(ensemble, trials, KEY)
    assert batched.pos.shape == (3, 2, hp.task.n_steps, 2)
    single = build_model(hp, jax.random.split(KEY, 3)[1])
    np.testing.assert_allclose(batched.pos[1], simulate(single, trials, KEY).pos, atol=1e-6)  # no noise: keys irrelevant
    assert not np.allclose(batched.pos[0], batched.pos[1])


def test_hidden_noise_is_carried_to_the_next_step():
    hp = quiet(controller={"hidden_size": 8, "hidden_noise_std": 0.5})
    model = build_model(hp, KEY)
    trials = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=2)
    noisy = simulate(model, trials, jax.random.PRNGKey(1))
    clean = simulate(build_model(quiet(), KEY), trials, jax.random.PRNGKey(1))
    assert not np.allclose(noisy.hidden, clean.hidden)


def test_controller_initialisation():
    controller = Controller(5, 6, orthogonal_recurrent_init=True, key=KEY)
    np.testing.assert_array_equal(controller.readout.bias, 0.0)
    for block in jnp.split(controller.cell.weight_hh, 3):
        np.testing.assert_allclose(block @ block.T, np.eye(6), atol=1e-5)


def test_leaky_tanh_cell_equation():
    cell = LeakyTanhCell(3, 4, leak=0.2, key=KEY)
    x, h = jnp.array([0.1, -0.2, 0.3]), jnp.array([0.5, -0.5, 0.25, 0.0])
    w_ih, w_hh = np.asarray(cell.weight_ih), np.asarray(cell.weight_hh)
    expected = 0.8 * np.asarray(h) + 0.2 * np.tanh(w_ih @ np.asarray(x) + w_hh @ np.asarray(h))
    np.testing.assert_allclose(cell(x, h), expected, rtol=1e-5)

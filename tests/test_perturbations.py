"""Perturbation kinds: registry, training draws, evaluation values and force laws, checked
against the model's existing curl and constant fields, closed forms and a simulated channel."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustreach import tasks
from robustreach.model import build_model, simulate
from robustreach.perturbations import (
    REGISTRY,
    AbstractPerturbation,
    Channel,
    Constant,
    Curl,
    Viscous,
    channel_normal,
    lateral_component,
    perturbation_kind,
    register,
    total_force,
    training_amplitude,
)
from robustreach.perturbations.channel import euler_stable
from robustreach.plants import PointMass, TwoLinkArm
from conftest import small_hyperparameters

ROTATION = np.array([[0.0, -1.0], [1.0, 0.0]])
forces = jax.vmap(lambda p, pos, vel, start, target: p.force(pos, vel, start, target))


def random_hands(n=16, seed=0):
    pos, vel, start, target = np.random.default_rng(seed).normal(size=(4, n, 2))
    return jnp.asarray(pos), jnp.asarray(vel), jnp.asarray(start), jnp.asarray(target)


def test_registry_finds_each_kind_by_name_and_rejects_unknown_or_duplicate_names():
    assert {"curl", "constant", "viscous", "channel"} <= set(REGISTRY)
    assert perturbation_kind("viscous") is Viscous
    with pytest.raises(ValueError, match="unknown perturbation 'spring'.*channel, constant, curl"):
        perturbation_kind("spring")

    class Impostor(Curl):
        name = "curl"

    with pytest.raises(ValueError, match="'curl' is already registered"):
        register(Impostor)


@pytest.mark.parametrize("amplitude", [-1.5, 0.0, 0.8, 4.0])
def test_viscous_rotation_matrix_equals_curl_field(amplitude):
    pos, vel, start, target = random_hands()
    viscous = Viscous.fixed(amplitude, start, target, matrix=ROTATION)
    curl = Curl.fixed(amplitude, start, target)
    hands = (pos, vel, start, target)
    np.testing.assert_allclose(forces(viscous, *hands), forces(curl, *hands), atol=1e-6)
    expected = amplitude * np.stack([-vel[:, 1], vel[:, 0]], axis=-1)  # the model's law: curl * (-v_y, v_x)
    np.testing.assert_allclose(forces(viscous, pos, vel, start, target), expected, atol=1e-6)


def test_viscous_rotation_field_and_curl_field_give_the_same_rollout():
    hp = small_hyperparameters()
    model = build_model(hp, jax.random.key(0))
    base = tasks.centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=4)
    run = eqx.filter_jit(simulate)
    curl = run(model, tasks.with_perturbation(base, "curl", 1.7), jax.random.key(1))
    viscous = run(model, tasks.with_perturbation(base, "viscous", 1.7, matrix=ROTATION), jax.random.key(1))
    assert np.abs(curl.external_force[:, 1:]).max() > 0.01
    np.testing.assert_allclose(viscous.pos, curl.pos, rtol=1e-6, atol=1e-7)
    # the external force of update t is the field at the velocity after update t - 1
    expected = 1.7 * np.stack([-curl.vel[:, :-1, 1], curl.vel[:, :-1, 0]], axis=-1)
    np.testing.assert_allclose(viscous.external_force[:, 1:], expected, rtol=1e-6, atol=1e-7)


def test_viscous_field_scales_any_matrix_and_rejects_wrong_shapes():
    pos, vel, start, target = random_hands()
    matrix = np.array([[0.3, -2.0], [1.1, 0.4]])
    drawn = Viscous.draw(jax.random.key(0), jnp.full(16, 2.0), start, target, matrix=matrix)
    np.testing.assert_allclose(forces(drawn, pos, vel, start, target), 2.0 * vel @ matrix.T, rtol=1e-6)
    with pytest.raises(ValueError, match="matrix must be 2x2"):
        Viscous.fixed(1.0, start, target, matrix=np.eye(3))


def test_constant_field_at_evaluation_is_orthogonal_to_the_reach():
    trials = tasks.centre_out_trials(10, [[-1, -1], [1, 1]], n_grid=2, n_directions=6)
    angle = np.asarray(trials.reach_angle) + np.pi / 2  # counter-clockwise of the reach
    constant = Constant.fixed(0.3, trials.init_pos, trials.target_pos)
    np.testing.assert_allclose(constant.vector, 0.3 * np.stack([np.cos(angle), np.sin(angle)], axis=-1), atol=1e-7)


def test_constant_field_draws_have_the_amplitude_and_a_direction_independent_of_it():
    n = 4000
    amplitude = jnp.linspace(0.5, 2.0, n)
    drawn = Constant.draw(jax.random.key(3), amplitude, jnp.zeros((n, 2)), jnp.ones((n, 2)))
    np.testing.assert_allclose(np.linalg.norm(drawn.vector, axis=-1), amplitude, rtol=1e-5)
    directions = drawn.vector / amplitude[:, None]
    assert np.abs(directions.mean(axis=0)).max() < 0.05  # uniform angle: mean direction ~ 0
    assert abs(np.corrcoef(amplitude, np.arctan2(directions[:, 1], directions[:, 0]))[0, 1]) < 0.05


def test_training_amplitude_perturbs_a_fraction_with_the_given_std():
    amplitude, perturbed = training_amplitude(jax.random.key(0), 20000, 1.5, 0.3)
    assert abs(float(perturbed.mean()) - 0.3) < 0.015
    assert np.all(amplitude[~perturbed] == 0)
    assert abs(float(amplitude[perturbed].std()) - 1.5) < 0.05
    channel = Channel.draw(jax.random.key(1), amplitude, jnp.zeros((20000, 2)), jnp.ones((20000, 2)))
    np.testing.assert_array_equal(channel.gain, perturbed.astype(float))  # on exactly on perturbed trials


def test_every_kind_takes_fixed_values_and_zero_amplitude_means_no_force():
    pos, vel, start, target = random_hands()
    for kind in REGISTRY.values():
        assert issubclass(kind, AbstractPerturbation)
        off = kind.fixed(0.0, start, target)
        np.testing.assert_array_equal(forces(off, pos, vel, start, target), 0.0)
        on = kind.fixed(1.0, start, target)
        assert np.abs(forces(on, pos, vel, start, target)).max() > 0


def test_total_force_sums_the_kinds_acting_together():
    pos, vel, start, target = random_hands(n=1)
    curl, constant = Curl.fixed(0.7, start, target), Constant.fixed(0.2, start, target)
    one = lambda p: jax.tree.map(lambda x: x[0], p)  # noqa: E731
    args = (pos[0], vel[0], start[0], target[0])
    expected = one(curl).force(*args) + one(constant).force(*args)
    np.testing.assert_allclose(total_force((one(curl), one(constant)), *args), expected)
    np.testing.assert_array_equal(total_force((), *args), 0.0)


def push_into_channel(channel, start, target, push, n_steps=100, plant=PointMass()):
    """A point mass driven by a fixed force, held by the channel; returns positions and channel forces."""

    def update(state, _):
        hand_force = channel.force(state.pos, state.vel, start, target)
        return plant.step(state, push, hand_force), (state.pos, hand_force)

    return jax.lax.scan(update, plant.initial_state(start, jnp.zeros(2)), None, length=n_steps)[1]


def test_channel_holds_the_hand_on_the_line_and_records_minus_the_lateral_push():
    start, target = jnp.array([0.1, -0.2]), jnp.array([0.1, -0.2]) + 0.5 * jnp.array([np.cos(0.5), np.sin(0.5)])
    along, across = np.array([np.cos(0.5), np.sin(0.5)]), np.array([-np.sin(0.5), np.cos(0.5)])
    push = jnp.asarray(0.3 * along + 1.0 * across)  # lateral push of 1.0, counter-clockwise
    channel = jax.tree.map(lambda x: x[0], Channel.fixed(1.0, start[None], target[None]))
    positions, channel_force = push_into_channel(channel, start, target, push)

    deviation = lateral_component(positions - start, start, target)
    assert np.abs(deviation).max() < 2 * 1.0 / 200.0  # within twice the static deflection push / stiffness
    recorded = lateral_component(channel_force, start, target)
    np.testing.assert_allclose(recorded[-20:], -1.0, rtol=1e-4)
    np.testing.assert_allclose(channel_force @ along, 0.0, atol=1e-6)  # no force along the line
    n = np.arange(100)  # along the line the mass moves freely: Euler positions dt^2 a n (n - 1) / 2
    np.testing.assert_allclose((positions - start) @ along, 0.05**2 * 0.3 * n * (n - 1) / 2, rtol=1e-4, atol=1e-6)


def test_channel_exerts_no_force_on_hold_trials():
    goal = jnp.array([[0.2, 0.3]])
    channel = Channel.fixed(1.0, goal, goal)
    np.testing.assert_array_equal(forces(channel, goal + 0.1, jnp.ones((1, 2)), goal, goal), 0.0)


@pytest.mark.parametrize(
    "stiffness, damping", [(200.0, 20.0), (400.0, 30.0), (200.0, 5.0), (200.0, 60.0), (800.0, 50.0)]
)
def test_euler_stability_condition_matches_simulation(stiffness, damping):
    start, target = jnp.zeros(2), jnp.array([1.0, 0.0])
    channel = Channel(jnp.array(1.0), jnp.array(stiffness), jnp.array(damping))
    plant = PointMass()
    state = plant.initial_state(jnp.array([0.0, 0.1]), jnp.zeros(2))  # 0.1 off the line, no push

    def update(state, _):
        return plant.step(state, jnp.zeros(2), channel.force(state.pos, state.vel, start, target)), None

    final = jax.lax.scan(update, state, None, length=200)[0]
    assert bool(euler_stable(stiffness, damping, 1.0, 0.05)) == (abs(float(final.pos[1])) < 1e-3)


def test_channel_holds_the_arms_hand_through_the_jacobian_transpose():
    """The arm's hand, pushed across the line by a hand force, is held like the point mass."""
    arm = TwoLinkArm()
    start, target = jnp.array([0.0, 0.4]), jnp.array([0.1, 0.5])
    push = 2.0 * channel_normal(start, target)  # 2 N across the line
    channel = jax.tree.map(lambda x: x[0], Channel.fixed(1.0, start[None], target[None]))

    def update(state, _):
        pos, vel = arm.effector(state)
        hand_force = channel.force(pos, vel, start, target)
        return arm.step(state, jnp.zeros(2), hand_force + push), (pos, vel, hand_force)

    initial = arm.initial_state(start, jnp.zeros(2))
    positions, velocities, channel_force = jax.lax.scan(update, initial, None, length=150)[1]
    deviation = lateral_component(positions - start, start, target)
    assert np.abs(deviation).max() < 2 * 2.0 / 200.0
    # settled across the line (along it, only joint viscosity slows the drift the push starts)
    assert abs(float(lateral_component(velocities, start, target)[-1])) < 1e-4
    np.testing.assert_allclose(lateral_component(channel_force, start, target)[-1], -2.0, rtol=1e-3)

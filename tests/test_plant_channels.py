"""Plant and channel equations against hand-computed closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robustreach.channels import FeedbackChannel, MotorChannel
from robustreach.plants import PointMass


def run_plant(plant, pos, vel, force, n):
    positions, velocities = [pos], [vel]
    for _ in range(n):
        state = plant.step(plant.initial_state(pos, vel), force, jnp.zeros(2))
        pos, vel = plant.effector(state)
        positions.append(pos)
        velocities.append(vel)
    return np.array(positions), np.array(velocities)


def test_resting_mass_stays_at_rest():
    plant = PointMass(mass=1.0, damping=0.3, dt=0.05)
    pos, vel = run_plant(plant, jnp.array([0.2, -0.4]), jnp.zeros(2), jnp.zeros(2), 50)
    np.testing.assert_array_equal(pos, np.broadcast_to(np.float32([0.2, -0.4]), pos.shape))
    np.testing.assert_array_equal(vel, 0.0)


def test_constant_force_gives_discrete_euler_positions():
    mass, dt, force = 2.0, 0.1, np.array([1.0, -0.5])
    plant = PointMass(mass=mass, damping=0.0, dt=dt)
    pos, vel = run_plant(plant, jnp.zeros(2), jnp.zeros(2), jnp.asarray(force), 10)
    n = np.arange(11)[:, None]
    acceleration = force / mass
    # explicit Euler: v_n = n dt a, x_n = dt * sum_{k<n} v_k = dt^2 a n (n - 1) / 2
    np.testing.assert_allclose(vel, n * dt * acceleration, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(pos, dt**2 * acceleration * n * (n - 1) / 2, rtol=1e-6, atol=1e-7)


def test_damping_decays_velocity_geometrically():
    mass, damping, dt = 1.5, 2.0, 0.05
    plant = PointMass(mass=mass, damping=damping, dt=dt)
    _, vel = run_plant(plant, jnp.zeros(2), jnp.array([1.0, -2.0]), jnp.zeros(2), 30)
    ratio = 1 - dt * damping / mass
    expected = np.array([1.0, -2.0]) * ratio ** np.arange(31)[:, None]
    np.testing.assert_allclose(vel, expected, rtol=1e-5)


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_delay_line_outputs_oldest_entry(delay):
    channel = FeedbackChannel(delay=delay, noise_std=0.0)
    queue = channel.init_queue(jnp.array([-1.0]))
    outputs = []
    for value in range(1, 8):
        queue, out = channel(queue, jnp.array([float(value)]), jnp.zeros(1))
        outputs.append(float(out[0]))
    expected = [(v - delay) if v - delay >= 1 else -1.0 for v in range(1, 8)]
    assert outputs == expected


def test_feedback_noise_has_configured_mean_and_std():
    channel = FeedbackChannel(delay=0, noise_std=0.3)
    keys = jax.random.split(jax.random.PRNGKey(1), 20000)
    signal = jnp.array([0.5, -1.0, 2.0, 0.0])
    _, out = jax.vmap(lambda k: channel(channel.init_queue(signal), signal, jax.random.normal(k, (4,))))(keys)
    noise = np.asarray(out - signal)
    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=0.01)  # 4 sigma of the mean ~ 0.0085
    np.testing.assert_allclose(noise.std(axis=0), 0.3, rtol=0.03)


def test_motor_noise_has_reference_mean_and_std():
    sigma, command = 0.1, jnp.array([2.0, -0.5])
    channel = MotorChannel(noise_std=sigma)
    keys = jax.random.split(jax.random.PRNGKey(2), 40000)
    out = np.asarray(jax.vmap(lambda k: channel(command, *jax.random.normal(k, (2, 2))))(keys))
    # u + sigma u e1 + 1.8 sigma e2  ->  mean u, std sigma * sqrt(u^2 + 1.8^2)
    expected_std = sigma * np.sqrt(np.asarray(command) ** 2 + 1.8**2)
    assert np.all(np.abs(out.mean(axis=0) - np.asarray(command)) < 4 * expected_std / np.sqrt(40000))
    np.testing.assert_allclose(out.std(axis=0), expected_std, rtol=0.03)

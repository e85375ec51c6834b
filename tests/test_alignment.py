"""Aligned trajectories: the reach frame (forward, CCW-positive lateral) and the impulse frame."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from robustreach.alignment import align, align_evaluation, project
from robustreach.model import Trajectory
from synthetic_evaluations import bump_height, synthetic_evaluation

ANGLES_DEG = [0.0, 30.0, 90.0, 135.0, 200.0, 271.0, 330.0]


def straight_trajectory(start, angle, n_steps=15):
    """A reach along `angle` with a non-uniform speed profile; forces also along the reach."""
    t = np.linspace(0.0, 1.0, n_steps)
    s = 0.5 * (3 * t**2 - 2 * t**3)  # minimum-jerk-like
    d = np.array([np.cos(angle), np.sin(angle)])
    pos = np.asarray(start) + s[:, None] * d
    vel = np.gradient(s, t)[:, None] * d
    force = np.sin(np.pi * t)[:, None] * d
    zeros = np.zeros((n_steps, 2))
    traj = Trajectory(
        pos=jnp.asarray(pos), vel=jnp.asarray(vel), command=jnp.asarray(force), force=jnp.asarray(force),
        external_force=jnp.asarray(zeros), feedback=jnp.zeros((n_steps, 4)), network_input=jnp.zeros((n_steps, 8)),
        hidden=jnp.zeros((n_steps, 2)),
    )
    return traj, s, np.gradient(s, t), np.sin(np.pi * t)


@pytest.mark.parametrize("angle_deg", ANGLES_DEG)
def test_straight_reach_has_no_lateral_component(angle_deg):
    angle = np.radians(angle_deg)
    start = np.array([0.3, -0.2])
    traj, s, speed, force = straight_trajectory(start, angle)
    aligned = align(traj, jnp.asarray(start), jnp.asarray(angle))
    for name in ("pos", "vel", "force"):
        np.testing.assert_allclose(getattr(aligned, name)[:, 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(aligned.pos[:, 0], s, atol=1e-6)  # distance travelled from the start
    np.testing.assert_allclose(aligned.vel[:, 0], speed, atol=1e-5)
    np.testing.assert_allclose(aligned.force[:, 0], force, atol=1e-6)


@pytest.mark.parametrize("angle_deg", ANGLES_DEG)
def test_projection_matches_dot_and_cross_products(angle_deg):
    """Forward = d . v and lateral = d x v (z of the 2D cross product): CCW-positive."""
    angle = np.radians(angle_deg)
    rng = np.random.default_rng(int(angle_deg))
    vectors = rng.normal(size=(6, 2))
    d = np.array([np.cos(angle), np.sin(angle)])
    expected = np.stack([vectors @ d, d[0] * vectors[:, 1] - d[1] * vectors[:, 0]], -1)
    np.testing.assert_allclose(project(jnp.asarray(vectors), jnp.asarray(angle)), expected, atol=1e-6)


def test_left_of_the_reach_is_positive():
    # A reach upwards (90 deg): a point at -x is on its left, so lateral = +1.
    np.testing.assert_allclose(project(jnp.array([[-1.0, 0.0]]), jnp.asarray(np.pi / 2)), [[0.0, 1.0]], atol=1e-6)
    # A reach to the right (0 deg): +y is on its left.
    np.testing.assert_allclose(project(jnp.array([[0.0, 2.0]]), jnp.asarray(0.0)), [[0.0, 2.0]], atol=1e-6)


def test_align_evaluation_recovers_each_trials_known_lateral_bump():
    evaluation = synthetic_evaluation()
    aligned = np.asarray(align_evaluation(evaluation).pos)  # (cond, rep, real, trial, time, 2)
    n_steps = evaluation.n_steps
    t = np.arange(n_steps)
    for c, amplitude in enumerate([0.0, 1.0, 2.0]):
        for r in range(3):
            for k in range(2):
                expected_lateral = bump_height(amplitude, r, k) * np.sin(np.pi * t / (n_steps - 1))
                np.testing.assert_allclose(aligned[c, r, k, :, :, 1], np.broadcast_to(expected_lateral, (4, n_steps)), atol=1e-6)
                np.testing.assert_allclose(aligned[c, r, k, :, :, 0], np.broadcast_to(0.5 * t / (n_steps - 1), (4, n_steps)), atol=1e-6)


def test_impulse_frame_uses_each_trials_impulse_direction():
    evaluation = synthetic_evaluation(amplitudes=(1.0,), n_replicates=1, n_realisations=1)
    # Impulse directions turned 90 degrees CCW from each reach: the bump becomes the forward part.
    impulse_angle = evaluation.trials.reach_angle[0] + np.pi / 2
    with_impulse = dataclasses.replace(evaluation, impulse_angle=impulse_angle)
    in_reach = np.asarray(align_evaluation(with_impulse).pos)
    in_impulse = np.asarray(align_evaluation(with_impulse, "impulse").pos)
    np.testing.assert_allclose(in_impulse[..., 0], in_reach[..., 1], atol=1e-6)
    np.testing.assert_allclose(in_impulse[..., 1], -in_reach[..., 0], atol=1e-6)
    with pytest.raises(ValueError, match="impulse"):
        align_evaluation(evaluation, "impulse")

"""The two-link arm against independent expectations: a hand-derived mass matrix, Lagrange's
equations integrated by SciPy, energy conservation at Euler's order, finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from robustreach.plants import TwoLinkArm, TwoLinkArmState

# Li & Todorov (2004): lengths, masses, inertias about the proximal joint, centres of mass.
L1, L2, M1, M2, I1, I2, S1, S2 = 0.30, 0.33, 1.4, 1.0, 0.025, 0.045, 0.11, 0.16
VISCOSITY = np.array([[0.05, 0.025], [0.025, 0.05]])


def hand_mass_matrix(elbow):
    """From the kinetic energy of the two segments, each a mass at its centre plus a rotation:
    T = 1/2 (m1 s1^2 + Ic1) w1^2 + 1/2 m2 |v_c2|^2 + 1/2 Ic2 (w1 + w2)^2, Ic = I - m s^2, with
    |v_c2|^2 = l1^2 w1^2 + s2^2 (w1 + w2)^2 + 2 l1 s2 cos(elbow) w1 (w1 + w2)."""
    ic1, ic2 = I1 - M1 * S1**2, I2 - M2 * S2**2
    c = np.cos(elbow)
    m11 = M1 * S1**2 + ic1 + M2 * (L1**2 + S2**2 + 2 * L1 * S2 * c) + ic2
    m12 = M2 * (S2**2 + L1 * S2 * c) + ic2
    m22 = M2 * S2**2 + ic2
    return np.array([[m11, m12], [m12, m22]])


def hand_position(angle):
    return np.array([
        L1 * np.cos(angle[0]) + L2 * np.cos(angle[0] + angle[1]),
        L1 * np.sin(angle[0]) + L2 * np.sin(angle[0] + angle[1]),
    ])


def lagrange_rhs(torque, hand_force=np.zeros(2), viscosity=VISCOSITY):
    """d/dt (angle, d_angle) from Lagrange's equations with the mass matrix above:
    M q'' + dM/dt q' - 1/2 d(q'^T M q')/dq + B q' = tau + J^T f. M depends on the elbow only, with
    dM/d elbow = -m2 l1 s2 sin(elbow) [[2, 1], [1, 0]]; J by central differences of the hand position."""

    def rhs(_, y):
        angle, d_angle = y[:2], y[2:]
        mass = hand_mass_matrix(angle[1])
        d_mass = -M2 * L1 * S2 * np.sin(angle[1]) * np.array([[2.0, 1.0], [1.0, 0.0]])
        velocity_terms = d_mass @ d_angle * d_angle[1] - 0.5 * np.array([0.0, d_angle @ d_mass @ d_angle])
        h = 1e-6
        jac = np.stack(
            [(hand_position(angle + h * e) - hand_position(angle - h * e)) / (2 * h) for e in np.eye(2)], axis=1
        )
        generalised = torque + jac.T @ hand_force - velocity_terms - viscosity @ d_angle
        return np.concatenate([d_angle, np.linalg.solve(mass, generalised)])

    return rhs


@pytest.mark.parametrize("angle", [(0.0, 0.0), (0.3, np.pi / 2), (-1.0, 2.0), (2.5, np.pi - 0.1)])
def test_mass_matrix_matches_hand_derivation(angle):
    arm = TwoLinkArm()
    np.testing.assert_allclose(arm.mass_matrix(jnp.array(angle)), hand_mass_matrix(angle[1]), rtol=1e-6)


def test_forward_kinematics_and_jacobian_against_geometry_and_finite_differences():
    with jax.enable_x64(True):
        arm = TwoLinkArm()
        np.testing.assert_allclose(arm.hand_position(jnp.zeros(2)), [L1 + L2, 0.0], atol=1e-12)
        np.testing.assert_allclose(arm.hand_position(jnp.array([np.pi / 2, np.pi / 2])), [-L2, L1], atol=1e-12)
        h = 1e-6
        for angle in np.random.default_rng(0).uniform(-np.pi, np.pi, (5, 2)):
            np.testing.assert_allclose(arm.hand_position(jnp.asarray(angle)), hand_position(angle), atol=1e-12)
            position = lambda a: np.asarray(arm.hand_position(jnp.asarray(a)))  # noqa: E731
            columns = [(position(angle + h * e) - position(angle - h * e)) / (2 * h) for e in np.eye(2)]
            np.testing.assert_allclose(arm.jacobian(jnp.asarray(angle)), np.stack(columns, axis=1), atol=1e-8)


def test_initial_state_inverts_the_kinematics_with_the_elbow_flexed():
    arm = TwoLinkArm()
    for pos, vel in [((0.0, 0.4), (0.3, -0.2)), ((-0.2, 0.3), (0.0, 0.0)), ((0.45, 0.1), (-0.1, 0.5))]:
        state = arm.initial_state(jnp.array(pos), jnp.array(vel))
        assert 0 < state.angle[1] < np.pi
        hand_pos, hand_vel = arm.effector(state)
        np.testing.assert_allclose(hand_pos, pos, atol=1e-6)
        np.testing.assert_allclose(hand_vel, vel, atol=1e-5)
    assert np.array_equal(arm.reachable(jnp.array([[0.0, 0.4], [0.0, 0.7], [0.01, 0.0]])), [True, False, False])


def test_hand_force_does_the_same_work_as_its_joint_torques():
    """A force at the hand enters as J^T f: its power f . v_hand equals tau . q' (virtual work)."""
    arm = TwoLinkArm(viscosity=np.zeros((2, 2)))
    state = TwoLinkArmState(jnp.array([0.4, 1.3]), jnp.array([0.7, -1.1]))
    force = jnp.array([2.0, -3.0])
    at_rest = TwoLinkArmState(state.angle, jnp.zeros(2))  # no velocity terms: acceleration = M^-1 J^T f
    acceleration = arm.vector_field(at_rest, jnp.zeros(2), force).d_angle
    torque = arm.mass_matrix(state.angle) @ acceleration
    _, hand_vel = arm.effector(state)
    np.testing.assert_allclose(torque @ state.d_angle, force @ hand_vel, rtol=1e-5)


def test_vector_field_matches_lagrange_equations_at_random_states():
    arm = TwoLinkArm()
    rng = np.random.default_rng(1)
    for _ in range(5):
        angle, d_angle, torque, force = rng.uniform(-2, 2, (4, 2))
        state = TwoLinkArmState(jnp.asarray(angle), jnp.asarray(d_angle))
        derivative = arm.vector_field(state, jnp.asarray(torque), jnp.asarray(force))
        expected = lagrange_rhs(torque, force)(0.0, np.concatenate([angle, d_angle]))
        actual = np.concatenate([derivative.angle, derivative.d_angle])
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def rollout(arm, state, torque, n_steps):
    def update(state, _):
        state = arm.step(state, torque, jnp.zeros(2))
        return state, state

    return jax.lax.scan(update, state, None, length=n_steps)[1]


def test_constant_torque_from_rest_follows_scipy_integration():
    duration, dt = 0.4, 1e-3
    torque = np.array([0.5, -0.3])
    errors = []
    with jax.enable_x64(True):
        start = TwoLinkArmState(jnp.array([0.3, 1.5]), jnp.zeros(2))
        for step in (dt, dt / 2):
            n = round(duration / step)
            states = rollout(TwoLinkArm(dt=step), start, jnp.asarray(torque), n)
            times = step * np.arange(1, n + 1)
            initial = np.r_[0.3, 1.5, 0.0, 0.0]
            exact = solve_ivp(lagrange_rhs(torque), (0, duration), initial, t_eval=times, rtol=1e-11, atol=1e-12).y.T
            errors.append(np.max(np.abs(np.asarray(states.angle) - exact[:, :2])))
    motion = np.ptp(exact[:, :2], axis=0)
    assert np.all(np.degrees(motion) > 30)  # both joints really move (0.65 and 1.36 rad)
    assert errors[0] < 0.02 * motion.min()  # 0.0068 rad at dt = 1 ms
    assert 1.8 < errors[0] / errors[1] < 2.2  # first-order convergence to the SciPy solution


def test_kinetic_energy_is_conserved_to_euler_order_without_torque_or_viscosity():
    drifts = []
    with jax.enable_x64(True):
        start = TwoLinkArmState(jnp.array([0.5, 1.2]), jnp.array([1.5, -2.0]))
        for dt in (0.004, 0.002, 0.001):
            arm = TwoLinkArm(viscosity=np.zeros((2, 2)), dt=dt)
            final = jax.tree.map(lambda x: x[-1], rollout(arm, start, jnp.zeros(2), round(0.5 / dt)))
            drifts.append(abs(float(arm.kinetic_energy(final) - arm.kinetic_energy(start))))
        energy = float(arm.kinetic_energy(start))
    assert drifts[0] < 0.05 * energy
    np.testing.assert_allclose([drifts[0] / drifts[1], drifts[1] / drifts[2]], 2.0, rtol=0.1)  # drift ~ dt

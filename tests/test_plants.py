"""The plant interface and the point mass expressed in it, against the model spec's update."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robustreach.plants import AbstractPlant, PointMass, PointMassState, TwoLinkArm, euler_step


def reference_step(pos, vel, force, mass, damping, dt):
    """The model spec's point-mass update, written out in NumPy float64."""
    acceleration = force / mass - (damping / mass) * vel
    return pos + dt * vel, vel + dt * acceleration


@pytest.mark.parametrize("mass, damping, dt", [(1.0, 0.0, 0.05), (2.0, 0.5, 0.1), (0.5, 0.25, 0.02), (1.3, 0.1, 0.05)])
def test_point_mass_steps_equal_the_reference(mass, damping, dt):
    plant = PointMass(mass=mass, damping=damping, dt=dt)
    forces = np.asarray(jax.random.normal(jax.random.key(0), (60, 2, 2)))  # controller and external force per step
    pos, vel = np.array([0.3, -0.2]), np.array([0.1, 0.4])
    state = plant.initial_state(jnp.asarray(pos), jnp.asarray(vel))
    step = eqx.filter_jit(plant.step)
    for control, external in forces:
        pos, vel = reference_step(pos, vel, control + external, mass, damping, dt)
        state = step(state, jnp.asarray(control), jnp.asarray(external))
        np.testing.assert_allclose(state.pos, pos, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(state.vel, vel, rtol=2e-5, atol=1e-6)


def test_euler_step_moves_position_with_the_old_velocity():
    plant = PointMass(mass=2.0, damping=0.0, dt=0.1)
    state = PointMassState(jnp.zeros(2), jnp.array([1.0, 0.0]))
    new = plant.step(state, jnp.array([0.0, 4.0]), jnp.zeros(2))
    np.testing.assert_allclose(new.pos, [0.1, 0.0])  # dt * old velocity; the force has not acted yet
    np.testing.assert_allclose(new.vel, [1.0, 0.2])  # + dt * F / m


def test_euler_step_is_the_generic_integrator_of_any_pytree():
    state = {"a": jnp.array(1.0), "b": (jnp.array([2.0, 3.0]),)}
    new = euler_step(lambda y: jax.tree.map(lambda x: -x, y), state, jnp.array(0.5))
    np.testing.assert_allclose(new["a"], 0.5)
    np.testing.assert_allclose(new["b"][0], [1.0, 1.5])


def test_parameters_are_array_leaves_that_vmap_over_mass():
    masses = jnp.array([0.5, 1.0, 4.0])
    state = PointMass().initial_state(jnp.zeros(2), jnp.zeros(2))
    force = jnp.array([1.0, -2.0])
    batched = jax.vmap(lambda m: PointMass(mass=m).step(state, force, jnp.zeros(2)).vel)(masses)
    expected = np.stack([0.05 * np.asarray(force) / m for m in [0.5, 1.0, 4.0]])
    np.testing.assert_allclose(batched, expected, rtol=1e-6)
    plant = PointMass()
    assert all(eqx.is_array(leaf) for leaf in jax.tree.leaves(plant))
    assert {"mass", "damping", "dt"} <= {field for field in plant.__dataclass_fields__}


def test_changing_a_parameter_value_does_not_retrace_a_compiled_step():
    traces = []

    @eqx.filter_jit
    def step(plant, state):
        traces.append(None)  # runs only while tracing
        return plant.step(state, jnp.ones(2), jnp.zeros(2))

    for plant in (TwoLinkArm(), TwoLinkArm(mass=(2.0, 1.5), viscosity=np.zeros((2, 2)), dt=0.005)):
        state = plant.initial_state(jnp.array([0.0, 0.4]), jnp.zeros(2))
        step(plant, state)
    assert len(traces) == 1


@pytest.mark.parametrize(
    "plant", [PointMass(), TwoLinkArm(), TwoLinkArm(observe_joints=True)], ids=["mass", "arm", "arm+joints"]
)
def test_observation_size_and_effector_agree_with_the_labels(plant):
    hand_pos, hand_vel = jnp.array([0.05, 0.4]), jnp.array([0.2, -0.1])
    state = plant.initial_state(hand_pos, hand_vel)
    observation = plant.observation(state)
    assert observation.shape == (plant.n_observed,) == (len(plant.observation_labels),)
    assert plant.observation_labels[:4] == ("pos_x", "pos_y", "vel_x", "vel_y")
    np.testing.assert_allclose(observation[:4], np.concatenate([hand_pos, hand_vel]), atol=1e-6)
    np.testing.assert_allclose(np.concatenate(plant.effector(state)), observation[:4])
    assert plant.n_controls == 2


def test_incomplete_plant_cannot_be_instantiated():
    class NoPhysics(AbstractPlant):
        dt: float = 0.1

    with pytest.raises(TypeError, match="abstract"):
        NoPhysics()


def test_plants_are_found_by_name_and_a_taken_name_is_refused():
    from robustreach.plants import PLANTS, register_plant

    assert PLANTS["point_mass"] is PointMass and PLANTS["two_link_arm"] is TwoLinkArm
    assert register_plant(PointMass) is PointMass  # the same class again (a module reload) is fine

    class Impostor(PointMass):
        name = "point_mass"

    with pytest.raises(ValueError, match="plant name 'point_mass' is already registered by PointMass"):
        register_plant(Impostor)
    assert PLANTS["point_mass"] is PointMass

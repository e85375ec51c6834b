"""The closed loop written against the plant and perturbation interfaces: the arm in the loop,
force-channel trials, plant and noise numbers as array leaves, settings from hyperparameters."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import silent_controller, small_hyperparameters
from robustreach.config import ConfigError
from robustreach.evaluate import load_spec
from robustreach.model import build_ensemble, build_model, network_input_size, simulate, steady_state_input
from robustreach.perturbations import lateral_component
from robustreach.plants import TwoLinkArm
from robustreach.tasks import TrialSpec, centre_out_trials, training_trials, with_perturbation

KEY = jax.random.PRNGKey(0)
ARM = {"plant": {"type": "two_link_arm", "dt": 0.01}, "task": {"n_steps": 20, "workspace": [[-0.15, 0.25], [0.15, 0.55]]}}


def arm_hyperparameters(**sections):
    return small_hyperparameters(**{**ARM, **sections})


def test_arm_in_the_loop_takes_torques_and_feeds_back_the_hand():
    hp = arm_hyperparameters()
    model = build_model(hp, KEY)
    assert model.controller.readout.weight.shape == (2, 8)  # two joint torques
    assert network_input_size(hp) == 8 and model.controller.cell.weight_ih.shape[-1] == 8
    torque = jnp.array([0.3, -0.2])
    trials = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=3)
    trajectory = simulate(silent_controller(model, bias=torque), trials, KEY)
    # the same constant torque (plus the model's motor noise, zero here) applied to the arm by hand
    arm = TwoLinkArm(dt=0.01)
    state = arm.initial_state(trials.init_pos[0], jnp.zeros(2))
    for t in range(1, hp.task.n_steps):
        state = arm.step(state, trajectory.force[0, t], jnp.zeros(2))
        hand_pos, hand_vel = arm.effector(state)
        np.testing.assert_allclose(trajectory.pos[0, t], hand_pos, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(trajectory.vel[0, t], hand_vel, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(trajectory.pos[0, -1] - trials.init_pos[0])).max() > 1e-3  # it moved


def test_resting_arm_at_its_goal_feeds_back_the_goal():
    hp = arm_hyperparameters(feedback={"noise_std": 0.0}, motor={"noise_std": 0.0})
    model = silent_controller(build_model(hp, KEY))
    goal = jnp.array([0.05, 0.4])
    np.testing.assert_allclose(steady_state_input(model, goal, jnp.zeros(0)), [0.05, 0.4, 0, 0, 0.05, 0.4, 0, 0], atol=1e-6)
    trials = centre_out_trials(hp.task.n_steps, [[0.0, 0.35], [0.1, 0.45]], n_directions=1, reach_length=0.01)
    trajectory = simulate(model, trials, KEY)
    np.testing.assert_allclose(trajectory.pos, np.broadcast_to(trials.init_pos[:, None], trajectory.pos.shape), atol=1e-6)


def test_arm_hyperparameters_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="does not suit plant 'two_link_arm'"):
        small_hyperparameters(plant={"type": "two_link_arm"})  # the reference workspace is out of reach
    with pytest.raises(ConfigError, match="plant.mass only describe the point mass"):
        arm_hyperparameters(plant={"type": "two_link_arm", "mass": 2.0})
    with pytest.raises(ConfigError, match="plant.type.*unknown plant 'arm'; known: point_mass, two_link_arm"):
        small_hyperparameters(plant={"type": "arm"})


def test_channel_trial_holds_the_hand_on_the_line_and_records_the_networks_lateral_push():
    hp = small_hyperparameters(task={"n_steps": 40})
    model = build_model(hp, KEY)
    # a readout ten times its initial size, so that the untrained network pushes sideways
    model = eqx.tree_at(lambda m: m.controller.readout.weight, model, 10 * model.controller.readout.weight)
    base = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=8)
    free = simulate(model, base, KEY)
    channel = simulate(model, with_perturbation(base, "channel", 1.0), KEY)
    lateral = lambda v: np.asarray(lateral_component(v, base.init_pos, base.target_pos))
    free_deviation = np.abs(lateral(free.pos - base.init_pos[:, None])).max()
    channel_deviation = np.abs(lateral(channel.pos - base.init_pos[:, None])).max()
    assert free_deviation > 0.05 and channel_deviation < 0.02 * free_deviation
    # The channel answers the push one step later (it acts on the state before each step) and
    # filtered by its spring and damper; the hand's lateral momentum stays near zero, so over
    # the trial the channel's impulse balances the network's, and the profiles agree in shape.
    pushed, recorded = lateral(channel.force), lateral(channel.external_force)
    assert np.abs(pushed).max() > 0.1
    net = np.abs((pushed + recorded).sum(axis=1))
    assert np.all(net < 0.05 * np.abs(pushed).sum(axis=1))
    assert np.corrcoef(recorded[:, 2:].ravel(), -pushed[:, 1:-1].ravel())[0, 1] > 0.95


def test_perturbation_settings_reach_the_training_trials():
    matrix = [[0.0, -2.0], [2.0, 0.0]]
    hp = small_hyperparameters(perturbation={"type": "viscous", "std": 1.0, "settings": {"matrix": matrix}})
    trials = training_trials(TrialSpec.from_hyperparameters(hp), KEY, 64)
    (viscous,) = trials.perturbations
    amplitude = viscous.matrix[:, 1, 0] / 2.0
    np.testing.assert_allclose(viscous.matrix, amplitude[:, None, None] * np.asarray(matrix), rtol=1e-6)
    assert 0.6 < float(jnp.std(amplitude)) < 1.4  # std * N(0, 1)
    with pytest.raises(ConfigError, match="has no setting"):
        small_hyperparameters(perturbation={"type": "curl", "std": 1.0, "settings": {"matrix": matrix}})
    # no perturbation takes no settings, in a parameter set and in an evaluation spec alike
    with pytest.raises(ConfigError, match=r"perturbation: .*settings \['matrix'\] need a perturbation, not 'none'"):
        small_hyperparameters(perturbation={"type": "none", "settings": {"matrix": matrix}})
    with pytest.raises(ValueError, match=r"settings \['matrix'\] need a perturbation"):
        load_spec({"perturbation": "none", "settings": {"matrix": matrix}})


def test_rollouts_vmap_over_plant_mass_and_noise_level_with_one_compilation():
    hp = small_hyperparameters(feedback={"noise_std": 0.01})
    model = build_model(hp, KEY)
    trials = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=4)
    masses, levels = jnp.array([0.5, 1.0, 2.0]), jnp.array([0.01, 0.05, 0.2])

    def with_numbers(mass, level):
        m = eqx.tree_at(lambda m: m.plant.mass, model, mass)
        return eqx.tree_at(lambda m: m.feedback.noise_std, m, level)

    traces = []

    @eqx.filter_jit
    def run(mass, level):
        traces.append(1)
        return simulate(with_numbers(mass, level), trials, KEY).pos

    batched = jax.vmap(run)(masses, levels)
    for i in range(3):
        np.testing.assert_allclose(batched[i], simulate(with_numbers(masses[i], levels[i]), trials, KEY).pos, rtol=1e-5, atol=1e-6)
    run(jnp.float32(3.0), jnp.float32(0.1))  # new numbers: no new trace
    assert len(traces) == 1  # vmap batches the one traced function; new numbers reuse it


def test_ensemble_shares_one_plant_and_replicates_only_the_controller():
    hp = small_hyperparameters()
    ensemble = build_ensemble(hp, KEY, n_replicates=3)
    assert ensemble.controller.readout.weight.shape == (3, 2, 8)
    assert ensemble.plant.mass.shape == () and ensemble.feedback.noise_std.shape == ()


def test_the_analyses_run_unchanged_on_an_arm_ensemble():
    from robustreach.evaluate import evaluate
    from robustreach.fixed_points.sweep import goal_sweep
    from robustreach.measures import measures_table

    hp = arm_hyperparameters()
    ensemble = build_ensemble(hp, KEY, n_replicates=2)
    reaches = evaluate(ensemble, hp, {"perturbation": "curl", "amplitudes": [0.0, 2.0], "n_directions": 4})
    assert reaches.params["reach_length"] == pytest.approx(0.075)  # a quarter of the 0.3 m workspace
    table = measures_table(reaches, "arm", ["endpoint_error", "max_lateral_deviation", "velocity_reversals"])
    assert len(table) == 3 * 2 * 2 * 4 and np.isfinite(table["value"]).all()
    impulses = evaluate(ensemble, hp, {"trial_set": "hold", "n_grid": 1,
                                       "impulse": {"variable": "pos", "amplitudes": [0.01], "onset": 5, "duration": 2}})
    offset = np.asarray(impulses.trials.feedback_offset)[0, 0]  # the hand position fed back is offset
    np.testing.assert_allclose(np.abs(offset[5:7, :2]).sum(axis=-1), 0.01, rtol=1e-6)
    sweep = goal_sweep(ensemble, key=KEY, n_grid=1, workspace=hp.task.workspace, n_steps=10, n_starts=2,
                       progress=False)
    goal = np.asarray(sweep.points[["goal_x", "goal_y"]].iloc[0])
    np.testing.assert_allclose(goal, [0.0, 0.4], atol=1e-6)  # the centre of the arm's workspace

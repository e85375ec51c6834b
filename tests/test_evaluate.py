"""Evaluation under test conditions: axes, labels, fields, impulses, context, noise, cache.

Sizes are tiny (hidden 8, 20 steps, 4 directions); expectations come from NumPy Euler
integrations of the point mass or closed forms, not from the code under test.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small_hyperparameters
from robustreach.alignment import align_evaluation
from robustreach.evaluate import AXES, EvaluationSpec, evaluate, with_noise
from robustreach.measures import compare_lateral_deviation, evaluation_measures, lateral_deviation_summary
from robustreach.model import build_ensemble

NO_NOISE = {"feedback": 0.0, "motor": 0.0, "hidden": 0.0}
# Evaluations below share two shapes (conditions x trials x realisations) and noise settings, so
# that the file compiles the rollout only a few times: QUIET for noiseless ones, NOISY otherwise.
QUIET = {"n_directions": 4, "n_realisations": 2, "noise": NO_NOISE}
NOISY = {"n_directions": 4, "n_realisations": 3}


@pytest.fixture(scope="module")
def hp():
    return small_hyperparameters()


@pytest.fixture(scope="module")
def ensemble(hp):
    return build_ensemble(hp, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def curl_evaluation(hp, ensemble):
    return evaluate(ensemble, hp, EvaluationSpec(perturbation="curl", amplitudes=[0.0, 4.0], **NOISY))


def constant_force_ensemble(ensemble, force):
    """Every replicate outputs `force` whatever its state (readout weights 0, bias = force)."""
    readout = ensemble.controller.readout
    bias = jnp.broadcast_to(jnp.asarray(force, float), readout.bias.shape)
    return eqx.tree_at(lambda m: (m.controller.readout.weight, m.controller.readout.bias), ensemble,
                       (jnp.zeros_like(readout.weight), bias))


def test_axes_and_labels_of_a_tiny_untrained_ensemble(curl_evaluation, hp):
    ev = curl_evaluation
    assert ev.axes == AXES == ("condition", "replicate", "realisation", "trial", "time")
    assert ev.trajectory.pos.shape == (2, 2, 3, 4, 20, 2)
    assert ev.trajectory.hidden.shape == (2, 2, 3, 4, 20, 8)
    assert ev.trials.perturbations[0].amplitude.shape == (2, 4)
    assert ev.conditions == ({"amplitude": 0.0}, {"amplitude": 4.0})
    assert ev.replicates == (0, 1)
    np.testing.assert_allclose(ev.times, 0.05 * np.arange(20))
    assert list(ev.trial_table()["direction"]) == [0.0, 90.0, 180.0, 270.0]
    # The params are the full identity of the evaluation: defaults resolved from the model.
    assert ev.params["noise"] == {"feedback": hp.feedback.noise_std, "motor": hp.motor.noise_std, "hidden": 0.0}
    assert ev.params["n_steps"] == 20 and ev.params["amplitudes"] == [0.0, 4.0]


def test_curl_changes_lateral_deviation(curl_evaluation):
    lateral = evaluation_measures(curl_evaluation, ["max_lateral_deviation"])["max_lateral_deviation"]
    assert lateral.shape == (2, 2, 3, 4)
    assert not np.allclose(lateral[0], lateral[1], atol=1e-4)


def test_compare_lateral_deviation_evaluates_each_model(hp, ensemble, curl_evaluation):
    other = build_ensemble(hp, jax.random.PRNGKey(5))
    summary = compare_lateral_deviation({"first": (ensemble, hp), "second": (other, hp)}, [0.0, 4.0],
                                        n_directions=4, n_realisations=3)
    assert list(summary["condition"]) == ["first", "first", "second", "second"]
    assert list(summary["amplitude"]) == [0.0, 4.0, 0.0, 4.0]
    # Same spec and seed as the fixture: the first model's numbers are the fixture's.
    expected = lateral_deviation_summary({"first": curl_evaluation})
    np.testing.assert_allclose(summary["mean"][:2], expected["mean"], rtol=1e-6)
    assert not np.allclose(summary["mean"][:2], summary["mean"][2:])


def test_realisations_differ_and_conditions_share_noise(curl_evaluation):
    force = np.asarray(curl_evaluation.trajectory.force)
    # Update 1 starts at rest, so the curl (velocity-dependent) has not acted yet: both
    # conditions see the same noise and give the same force, while realisations differ.
    np.testing.assert_allclose(force[0, ..., 1, :], force[1, ..., 1, :], atol=1e-6)
    assert not np.allclose(force[0, :, 0, :, 1], force[0, :, 1, :, 1])


def numpy_point_mass(force, curl, n_steps, dt=0.05, mass=1.0):
    """Explicit Euler from rest at the origin under a constant force and a curl field."""
    pos, vel = np.zeros(2), np.zeros(2)
    positions = [pos]
    for _ in range(n_steps - 1):
        external = curl * np.array([-vel[1], vel[0]])
        pos, vel = pos + dt * vel, vel + dt * (np.asarray(force) + external) / mass
        positions.append(pos)
    return np.array(positions)


def test_curl_condition_matches_a_numpy_integration(hp, ensemble):
    model = constant_force_ensemble(ensemble, [1.0, 0.0])
    ev = evaluate(model, hp, {"perturbation": "curl", "amplitudes": [1.5, -3.0], **QUIET})
    pos = np.asarray(ev.trajectory.pos)  # all trials start at the origin
    for c, amplitude in enumerate([1.5, -3.0]):
        expected = numpy_point_mass([1.0, 0.0], amplitude, 20)
        np.testing.assert_allclose(pos[c], np.broadcast_to(expected, pos[c].shape), atol=1e-5)
    # Pushed along +x, a CCW (positive) curl deflects to +y, a negative one to -y.
    assert pos[0, ..., -1, 1].min() > 0 > pos[1, ..., -1, 1].max()


def test_constant_field_pushes_each_reach_to_its_left(hp, ensemble):
    model = constant_force_ensemble(ensemble, [0.0, 0.0])
    ev = evaluate(model, hp, {"perturbation": "constant", "amplitudes": [0.0, 0.4], **QUIET})
    aligned = np.asarray(align_evaluation(ev).pos)
    t = np.arange(20)
    # Euler from rest under a constant acceleration a: pos_t = a dt^2 t (t - 1) / 2.
    expected = 0.4 * 0.05**2 * t * (t - 1) / 2
    np.testing.assert_allclose(aligned[1, ..., 1], np.broadcast_to(expected, aligned.shape[1:-1]), atol=1e-6)
    np.testing.assert_allclose(aligned[1, ..., 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(aligned[0], 0.0, atol=1e-7)


def test_noise_override_removes_the_variability(hp, ensemble):
    ev = evaluate(ensemble, hp, {"perturbation": "curl", "amplitudes": [0.0, 4.0], **QUIET})
    pos = np.asarray(ev.trajectory.pos)
    np.testing.assert_allclose(pos[:, :, 0], pos[:, :, 1])
    assert ev.params["noise"] == NO_NOISE
    # The override leaves the model itself alone.
    levels = lambda m: np.array([m.feedback.noise_std, m.motor.noise_std, m.hidden_noise_std])
    np.testing.assert_allclose(levels(ensemble), [hp.feedback.noise_std, hp.motor.noise_std, 0.0], rtol=1e-7)
    quiet = with_noise(ensemble, motor=0.0, hidden=0.3)
    np.testing.assert_allclose(levels(quiet), [hp.feedback.noise_std, 0.0, 0.3], rtol=1e-7)
    assert (quiet.feedback.noisy, quiet.motor.noisy, quiet.hidden_noisy) == (True, False, True)


def test_impulses_and_context_on_a_hold_set():
    hp = small_hyperparameters(context={"variant": "binary"})
    model = build_ensemble(hp, jax.random.PRNGKey(1))
    impulse = {"variable": "pos", "amplitudes": [0.0, 0.8], "onset": 6, "duration": 3, "direction": "y"}
    ev = evaluate(model, hp, {"trial_set": "hold", "n_grid": 2, "impulse": impulse, "context": [-1.0, 2.0]})
    assert ev.conditions == (
        {"amplitude": 0.0, "impulse_amplitude": 0.0, "context": -1.0},
        {"amplitude": 0.0, "impulse_amplitude": 0.0, "context": 2.0},
        {"amplitude": 0.0, "impulse_amplitude": 0.8, "context": -1.0},
        {"amplitude": 0.0, "impulse_amplitude": 0.8, "context": 2.0},
    )
    assert ev.trajectory.pos.shape == (4, 2, 1, 4, 20, 2)
    net_input = np.asarray(ev.trajectory.network_input)
    for c, labels in enumerate(ev.conditions):
        np.testing.assert_allclose(net_input[c, ..., 1:, 0], labels["context"])
    # Same noise in both impulse conditions: before the onset the feedback is identical, at the
    # onset it differs by exactly the offset 0.8 along y on the position.
    feedback = np.asarray(ev.trajectory.feedback)
    difference = feedback[2] - feedback[0]
    np.testing.assert_allclose(difference[..., :6, :], 0.0, atol=1e-6)
    np.testing.assert_allclose(difference[..., 6, :], np.broadcast_to([0.0, 0.8, 0.0, 0.0], difference[..., 6, :].shape), atol=1e-5)
    np.testing.assert_allclose(np.asarray(ev.impulse_angle), np.pi / 2)
    measures = evaluation_measures(ev)
    assert {"peak_response", "settling_time"} <= set(measures)
    # Without an impulse the hold trials barely move compared with the impulse response.
    assert np.abs(measures["peak_response"][2:]).mean() > np.abs(measures["peak_response"][:2]).mean()


def test_random_impulse_directions_are_per_trial_and_seeded(hp, ensemble):
    impulse = {"variable": "vel", "amplitudes": [0.5, 1.0], "onset": 5, "duration": 2, "direction": "random"}
    spec = {"trial_set": "hold", "n_grid": 2, "impulse": impulse, "n_realisations": 3}
    first = evaluate(ensemble, hp, spec)
    again = evaluate(ensemble, hp, spec)
    other = evaluate(ensemble, hp, {**spec, "seed": 1})
    np.testing.assert_array_equal(first.impulse_angle, again.impulse_angle)
    assert len(set(np.round(np.asarray(first.impulse_angle), 6))) == 4
    assert not np.allclose(first.impulse_angle, other.impulse_angle)
    # The offset acts on the fed-back velocity along each trial's own direction.
    offsets = np.asarray(first.trials.feedback_offset[1, :, 5, 2:])
    angles = np.asarray(first.impulse_angle)
    np.testing.assert_allclose(offsets, np.stack([np.cos(angles), np.sin(angles)], -1), atol=1e-6)


class DictCache:
    """A stand-in store with the `cached_evaluation` contract, counting computations."""

    def __init__(self):
        self.saved, self.computed = {}, 0

    def cached_evaluation(self, model_hash, eval_params, compute):
        key = (model_hash, repr(sorted(eval_params.items())))
        if key not in self.saved:
            self.computed += 1
            self.saved[key] = compute()
        return self.saved[key]


def test_store_caches_by_model_hash_and_params(hp, ensemble):
    cache = DictCache()
    spec = {"perturbation": "curl", "amplitudes": [0.0, 1.0], **QUIET}
    first = evaluate(ensemble, hp, spec, store=cache, model_hash="abc")
    second = evaluate(ensemble, hp, spec, store=cache, model_hash="abc")
    assert cache.computed == 1
    np.testing.assert_array_equal(first.trajectory.pos, second.trajectory.pos)
    evaluate(ensemble, hp, {**spec, "seed": 3}, store=cache, model_hash="abc")
    evaluate(ensemble, hp, spec, store=cache, model_hash="def")
    assert cache.computed == 3
    with pytest.raises(ValueError, match="model_hash"):
        evaluate(ensemble, hp, spec, store=cache)


def test_results_store_round_trip(hp, ensemble, tmp_path):
    from robustreach.store import ResultsStore

    store = ResultsStore(tmp_path / "results")
    spec = {"perturbation": "curl", "amplitudes": [0.0, 1.0], **NOISY}
    computed = evaluate(ensemble, hp, spec, store=store, model_hash="f" * 64)
    loaded = evaluate(ensemble, hp, spec, store=store, model_hash="f" * 64)
    assert len(store.find("evaluations")) == 1
    for name in ("pos", "vel", "force", "hidden", "network_input"):
        np.testing.assert_array_equal(getattr(computed.trajectory, name), getattr(loaded.trajectory, name))
    assert loaded.conditions == computed.conditions


def test_bad_specs_name_the_key(hp, ensemble):
    with pytest.raises(ValueError, match="n_directionz"):
        evaluate(ensemble, hp, {"n_directionz": 3})
    with pytest.raises(ValueError, match="perturbation"):
        evaluate(ensemble, hp, {"amplitudes": [1.0]})
    with pytest.raises(ValueError, match="no context input"):
        evaluate(ensemble, hp, {"context": [1.0]})
    with pytest.raises(ValueError, match="n_steps=20"):
        evaluate(ensemble, hp, {"impulse": {"variable": "pos", "amplitudes": [1.0], "onset": 18, "duration": 5}})
    with pytest.raises(ValueError, match="inputs"):
        evaluate(ensemble, small_hyperparameters(feedback={"variables": ["pos"]}), {})

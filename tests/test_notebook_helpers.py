"""Notebook helpers: evaluation specs, the shared replicate selection, summary tables and text.

Expectations come from hand-computed values, NumPy Euler integrations of the point mass, or the
trial generator itself (for the context input of unperturbed trials). Sizes are tiny (hidden 8,
20 steps, 4 directions).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import small_hyperparameters
from robustreach.experiment import TrainedModel
from robustreach.model import build_ensemble
from robustreach.notebook import (
    condition_indices,
    evaluate_trained,
    field_spec,
    impulse_spec,
    measure_summary,
    measures_of,
    select_trained_replicates,
    summary_table,
    trend_text,
    unperturbed_context,
)
from robustreach.tasks import TrialSpec, training_trials

# Readouts that ignore the hidden state make each replicate push with a constant force; with no
# motor noise, its path is a closed-form Euler integration.
FORCES = np.array([[0.0, 0.0], [0.3, 0.0], [8.0, 8.0]])
QUIET = {"motor": {"noise_std": 0.0}, "feedback": {"noise_std": 0.0}}


def constant_force_model(hp, forces, label="model", hash_="a" * 64) -> TrainedModel:
    ensemble = build_ensemble(hp, jax.random.PRNGKey(0), n_replicates=len(forces))
    readout = ensemble.controller.readout
    ensemble = eqx.tree_at(
        lambda m: (m.controller.readout.weight, m.controller.readout.bias),
        ensemble,
        (jnp.zeros_like(readout.weight), jnp.asarray(forces, jnp.float32)),
    )
    return TrainedModel(label, hp, ensemble, {"hash": hash_}, {})


def numpy_endpoint_errors(force, n_steps, dt, n_directions, reach_length=0.5):
    """Endpoint error of each centre-out reach from the origin under a constant force (m = 1)."""
    pos, vel = np.zeros(2), np.zeros(2)
    for _ in range(n_steps - 1):
        pos, vel = pos + dt * vel, vel + dt * np.asarray(force)
    angles = 2 * np.pi * np.arange(n_directions) / n_directions
    targets = reach_length * np.stack([np.cos(angles), np.sin(angles)], -1)
    return np.linalg.norm(pos - targets, axis=-1)


@pytest.mark.parametrize(
    "context",
    [
        {"variant": "binary", "on_value": 1.0, "off_value": -1.0},
        {"variant": "binary", "on_value": 1.0, "off_value": 0.0},
        {"variant": "amplitude"},
        {"variant": "std_scaled"},
    ],
)
def test_unperturbed_context_matches_the_trial_generator(context):
    # With p_perturbed = 0 every training trial is unperturbed: its context is the reference.
    hp = small_hyperparameters(perturbation={"type": "curl", "std": 1.0, "p_perturbed": 0.0}, context=context)
    trials = training_trials(TrialSpec.from_hyperparameters(hp), jax.random.PRNGKey(3), 16)
    assert not bool(trials.perturbed.any())
    np.testing.assert_array_equal(np.asarray(trials.context), unperturbed_context(hp))


def test_unperturbed_context_is_none_without_a_context_input():
    assert unperturbed_context(small_hyperparameters()) is None


def test_field_spec_takes_the_amplitudes_of_the_named_field():
    evaluation = {"amplitudes": {"curl": [0, 2.0], "constant": [0.0, 0.1]}, "n_directions": 6, "seed": 4}
    spec = field_spec(evaluation, "constant")
    assert spec["perturbation"] == "constant" and spec["amplitudes"] == [0.0, 0.1]
    assert spec["n_directions"] == 6 and spec["seed"] == 4
    assert field_spec(evaluation, "curl")["amplitudes"] == [0.0, 2.0]
    with pytest.raises(ValueError, match="'none'"):
        field_spec(evaluation, "none")
    with pytest.raises(ValueError, match="n_directionz"):
        field_spec({**evaluation, "n_directionz": 3}, "curl")


def test_impulse_spec_nests_the_impulse_keys():
    impulses = {"trial_set": "hold", "n_grid": 3, "onset": 12, "duration": 4, "direction": "y",
                "amplitudes": {"pos": [0.0, 1.8], "vel": [1.2]}, "n_realisations": 2}
    spec = impulse_spec(impulses, "vel")
    assert spec["impulse"] == {"variable": "vel", "amplitudes": [1.2], "onset": 12, "duration": 4, "direction": "y"}
    assert (spec["trial_set"], spec["n_grid"], spec["n_realisations"]) == ("hold", 3, 2)
    assert spec["perturbation"] == "none" and spec["amplitudes"] == [0.0]
    with pytest.raises(ValueError, match="'force'"):
        impulse_spec(impulses, "force")
    with pytest.raises(ValueError, match="direction"):
        impulse_spec({**impulses, "direction": "z"}, "pos")


def test_replicate_selection_matches_a_numpy_integration(tmp_path):
    from robustreach.store import ResultsStore

    hp = small_hyperparameters(**QUIET)
    trained = constant_force_model(hp, FORCES)
    store = ResultsStore(tmp_path / "results")
    k = 0.5
    selection = select_trained_replicates(store, [trained], {"n_directions": 4, "amplitudes": {"curl": [1.0]}}, k=k)

    means = np.array([numpy_endpoint_errors(f, hp.task.n_steps, hp.plant.dt, 4).mean() for f in FORCES])
    threshold = means.min() + k * np.std(means)
    np.testing.assert_allclose(selection["value"], means, rtol=1e-5)
    np.testing.assert_allclose(selection["threshold"], threshold, rtol=1e-5)
    assert selection["included"].tolist() == (means <= threshold).tolist()
    assert not all(selection["included"])  # the far-flung replicate 2 is excluded
    assert selection.loc[selection["best"], "replicate"].tolist() == [int(np.argmin(means))]

    # Cached: one unperturbed evaluation recorded, not recomputed on the second call.
    assert len(store.find("evaluations")) == 1
    again = select_trained_replicates(store, [trained], {"n_directions": 4}, k=k)
    assert len(store.find("evaluations")) == 1
    pd.testing.assert_frame_equal(again, selection)


def test_replicate_selection_evaluates_with_the_unperturbed_context(tmp_path):
    from robustreach.store import ResultsStore

    hp = small_hyperparameters(context={"variant": "binary", "on_value": 1.0, "off_value": -1.0},
                               perturbation={"type": "curl", "std": 1.0, "p_perturbed": 0.5}, **QUIET)
    store = ResultsStore(tmp_path / "results")
    select_trained_replicates(store, [constant_force_model(hp, FORCES[:2])], {"n_directions": 4})
    (record,) = store.find("evaluations")
    assert record["hyperparameters"]["context"] == [-1.0]
    assert record["hyperparameters"]["amplitudes"] == [0.0]


def test_evaluate_trained_keys_by_label_and_caches_by_hash(tmp_path):
    from robustreach.store import ResultsStore

    hp = small_hyperparameters(**QUIET)
    models = [constant_force_model(hp, FORCES[:2], "still", "b" * 64), constant_force_model(hp, FORCES[1:], "pushed", "c" * 64)]
    store = ResultsStore(tmp_path / "results")
    spec = {"perturbation": "curl", "amplitudes": [0.0, 2.0], "n_directions": 4}
    evaluations = evaluate_trained(store, models, spec)
    assert list(evaluations) == ["still", "pushed"]
    assert sorted(r["model_hash"] for r in store.find("evaluations")) == ["b" * 64, "c" * 64]
    # Replicate 0 of "pushed" pushes with FORCES[1]: its end point is the NumPy integration's.
    pos, vel = np.zeros(2), np.zeros(2)
    for _ in range(hp.task.n_steps - 1):
        pos, vel = pos + hp.plant.dt * vel, vel + hp.plant.dt * FORCES[1]
    np.testing.assert_allclose(np.asarray(evaluations["pushed"].trajectory.pos[0, 0, 0, :, -1]), np.tile(pos, (4, 1)), atol=1e-5)
    with pytest.raises(ValueError, match="distinct"):
        evaluate_trained(None, [models[0], models[0]], spec)

    # Test-condition lookup and the stacked table of both models.
    assert condition_indices(evaluations["still"], amplitude=2.0) == [1]
    with pytest.raises(ValueError, match="amplitude"):
        condition_indices(evaluations["still"], amplitude=3.0)
    with pytest.raises(KeyError, match="context"):
        condition_indices(evaluations["still"], context=1.0)
    table = measures_of(evaluations, ["endpoint_error"])
    assert len(table) == 2 * 2 * 2 * 4  # models x conditions x replicates x trials
    pushed = table[(table["condition"] == "pushed") & (table["replicate"] == 0) & (table["amplitude"] == 0.0)]
    expected = numpy_endpoint_errors(FORCES[1], hp.task.n_steps, hp.plant.dt, 4)
    np.testing.assert_allclose(pushed.sort_values("trial")["value"], expected, rtol=1e-5)


def test_summary_table_by_hand():
    table = pd.DataFrame(
        {
            "condition": ["a"] * 4 + ["b"] * 4,
            "amplitude": [0.0, 0.0, 1.0, 1.0] * 2,
            "measure": ["endpoint_error", "time_to_target"] * 4,
            "value": [0.1, 2.0, 0.3, np.nan, 0.2, 1.0, 0.4, 3.0],
        }
    )
    table = pd.concat([table, table.assign(value=table["value"] + 0.2)], ignore_index=True)
    summary = summary_table(table, ("condition", "amplitude"), ["time_to_target", "endpoint_error"], digits=2)
    assert list(summary.columns) == ["Time to target (s)", "Endpoint error"]
    # condition a, amplitude 0: endpoint errors 0.1 and 0.3 -> 0.2 ± 0.1.
    assert summary.loc[("a", 0.0), "Endpoint error"] == "0.2 ± 0.1"
    assert summary.loc[("a", 0.0), "Time to target (s)"] == "2.1 ± 0.1"
    assert summary.loc[("a", 1.0), "Time to target (s)"] == "never"  # only NaN: never settled
    assert summary.loc[("b", 1.0), "Time to target (s)"] == "3.1 ± 0.1"
    with pytest.raises(ValueError, match="peak_response"):
        summary_table(table, measures=["peak_response"])


def test_measure_summary_filters_rows_and_replicates_by_hand():
    table = pd.DataFrame(
        {
            "condition": ["a"] * 6,
            "amplitude": [0.0, 0.0, 2.0, 2.0, 2.0, 2.0],
            "context": [1.0, 1.0, 1.0, 1.0, -1.0, -1.0],
            "replicate": [0, 1, 0, 1, 0, 1],
            "measure": ["max_lateral_deviation"] * 6,
            "value": [0.1, 0.3, 0.2, 0.6, 0.4, 1.0],
        }
    )
    summary = measure_summary(table, "max_lateral_deviation", ("condition", "context"), amplitude=2.0)
    assert summary["context"].tolist() == [-1.0, 1.0]
    np.testing.assert_allclose(summary["mean"], [0.7, 0.4])
    np.testing.assert_allclose(summary["std"], [0.3, 0.2])
    selection = pd.DataFrame({"condition": ["a", "a"], "replicate": [0, 1], "included": [True, False]})
    kept = measure_summary(table, "max_lateral_deviation", ("condition", "context"), selection=selection, amplitude=2.0)
    np.testing.assert_allclose(kept["mean"], [0.4, 0.2])
    assert kept["n"].tolist() == [1, 1]
    with pytest.raises(KeyError, match="impulse_amplitude"):
        measure_summary(table, "max_lateral_deviation", ("condition",), impulse_amplitude=1.0)
    with pytest.raises(ValueError, match="amplitude': 3.0"):
        measure_summary(table, "max_lateral_deviation", ("condition",), amplitude=3.0)


def test_trend_text_states_the_numbers():
    summary = pd.DataFrame(
        {
            "condition": ["std=0", "std=0", "std=1", "std=1"],
            "amplitude": [0.0, 4.0, 0.0, 4.0],
            "mean": [0.02, 0.2, 0.03, 0.15],
            "std": [0.01, 0.05, 0.01, 0.02],
        }
    )
    text = trend_text(summary, x="amplitude", label="Max. lateral deviation")
    assert text.splitlines() == [
        "**Max. lateral deviation** (mean ± std):",
        "",
        "- std=0: 0.02 ± 0.01 at amplitude 0, 0.2 ± 0.05 at amplitude 4",
        "- std=1: 0.03 ± 0.01 at amplitude 0, 0.15 ± 0.02 at amplitude 4 (25% smaller than std=0 there)",
    ]
    with pytest.raises(KeyError, match="context"):
        trend_text(summary, x="context", label="x")
    # Signed measures (peak responses) are compared by magnitude.
    signed = summary.assign(mean=-summary["mean"])
    assert trend_text(signed, x="amplitude", label="Peak").endswith("(25% smaller than std=0 there)")

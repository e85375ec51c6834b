"""Per-trial measures on hand-made trajectories, tidy tables, and replicate selection."""

import math

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from robustreach.measures import (
    OSCILLATION_MEASURES,
    REACH_MEASURES,
    best_replicate,
    endpoint_error,
    filter_replicates,
    included_replicates,
    lateral_deviation_summary,
    max_force,
    max_forward_velocity,
    max_lateral_deviation,
    max_lateral_velocity,
    measures_table,
    path_length,
    peak_response,
    select_evaluations,
    select_replicates,
    settling_time,
    summarise_spread,
    time_to_target,
)
from synthetic_evaluations import DT, bump_height, synthetic_evaluation

# A hand-made path: two 3-4-5 segments, then at rest; the target is (0.6, 0.85).
POS = jnp.array([[0.0, 0.0], [0.3, 0.4], [0.6, 0.8], [0.6, 0.8], [0.6, 0.8]])
TARGET = jnp.array([0.6, 0.85])


def test_endpoint_error_and_path_length_by_hand():
    assert float(endpoint_error(POS, TARGET)) == pytest.approx(0.05)
    assert float(path_length(POS)) == pytest.approx(1.0)  # 0.5 + 0.5


def test_reach_frame_maxima_by_hand():
    aligned_pos = jnp.array([[0.0, 0.0], [0.1, 0.1], [0.2, -0.3], [0.4, 0.2]])
    assert float(max_lateral_deviation(aligned_pos)) == pytest.approx(0.3)  # |-0.3|
    aligned_vel = jnp.array([[0.0, 0.0], [1.5, -0.7], [2.5, 0.4], [1.0, 0.1]])
    assert float(max_forward_velocity(aligned_vel)) == pytest.approx(2.5)
    assert float(max_lateral_velocity(aligned_vel)) == pytest.approx(0.7)
    force = jnp.array([[0.0, 0.0], [3.0, 4.0], [1.0, -1.0]])
    assert float(max_force(force)) == pytest.approx(5.0)


def test_time_to_target_counts_only_the_final_entry():
    # Distances to the target 0: 1, 0.01 (inside), 0.2 (leaves), 0.03, 0.02, 0.01: settles at index 3.
    distances = np.array([1.0, 0.01, 0.2, 0.03, 0.02, 0.01])
    pos = jnp.asarray(np.stack([distances, np.zeros(6)], -1))
    assert float(time_to_target(pos, jnp.zeros(2), dt=0.1, radius=0.05)) == pytest.approx(0.3)
    # A larger radius admits index 1 onwards (0.2 < 0.25).
    assert float(time_to_target(pos, jnp.zeros(2), dt=0.1, radius=0.25)) == pytest.approx(0.1)
    # Never inside at the end: NaN.
    assert math.isnan(float(time_to_target(pos[:3], jnp.zeros(2), dt=0.1, radius=0.05)))


def test_impulse_measures_by_hand():
    signal = jnp.array([0.0, 0.0, 0.1, -0.4, 0.2, 0.05])
    assert float(peak_response(signal, onset=2)) == pytest.approx(-0.4)  # sign kept
    assert float(peak_response(signal, onset=4)) == pytest.approx(0.2)
    # Position leaves the target at the impulse (onset 2) and is back for good at index 5.
    distances = np.array([0.0, 0.0, 0.1, 0.3, 0.06, 0.01])
    pos = jnp.asarray(np.stack([np.zeros(6), distances], -1))
    assert float(settling_time(pos, jnp.zeros(2), onset=2, dt=0.5, radius=0.05)) == pytest.approx(1.5)
    # Never leaving the radius settles at once.
    assert float(settling_time(pos * 0.1, jnp.zeros(2), onset=2, dt=0.5, radius=0.05)) == 0.0


def test_measures_table_is_long_and_matches_the_closed_form():
    evaluation = synthetic_evaluation()
    table = measures_table(evaluation, "trained")
    n_rows = 3 * 3 * 2 * 4  # conditions x replicates x realisations x trials
    assert len(table) == n_rows * (len(REACH_MEASURES) + len(OSCILLATION_MEASURES))
    for column in ("condition", "test_condition", "amplitude", "replicate", "realisation", "trial", "direction", "measure", "value"):
        assert column in table
    assert set(table["condition"]) == {"trained"}
    assert sorted(set(table["direction"])) == [0.0, 90.0, 180.0, 270.0]

    lateral = table[table["measure"] == "max_lateral_deviation"]
    expected = [bump_height(a, r, k) for a, r, k in zip(lateral["amplitude"], lateral["replicate"], lateral["realisation"])]
    np.testing.assert_allclose(lateral["value"], expected, atol=1e-6)
    path = table[table["measure"] == "path_length"]["value"]
    # A straight reach of 0.5 (no bump at amplitude 0, replicate 0, realisation 0) has path length 0.5.
    straight = table[(table["measure"] == "path_length") & (table["amplitude"] == 0) & (table["realisation"] == 0)]
    np.testing.assert_allclose(straight["value"], 0.5, atol=1e-6)
    assert (path >= 0.5 - 1e-6).all()
    forces = table[table["measure"] == "max_force"]["value"]
    np.testing.assert_allclose(forces, math.hypot(2.0, 0.5), atol=1e-6)
    # The straight path (no bump) is at distance 0.5 (1 - t / 20) from its target: with radius
    # 0.06 it enters for good at t = 18 (0.05 < 0.06; t = 17 gives 0.075).
    ttt = measures_table(evaluation, "trained", ["time_to_target"], radius=0.06)
    straight = ttt[(ttt["amplitude"] == 0) & (ttt["realisation"] == 0)]
    np.testing.assert_allclose(straight["value"], 18 * DT, atol=1e-9)


def test_oscillation_measures_of_the_half_sine_bump():
    """A lateral half-sine bump reverses its lateral velocity once; no bump never does."""
    wide = measures_table(synthetic_evaluation(), "c", wide=True)
    bumped = wide["amplitude"] > 0
    np.testing.assert_array_equal(wide.loc[bumped, "velocity_reversals"], 1)
    straight = (wide["amplitude"] == 0) & (wide["realisation"] == 0)
    np.testing.assert_array_equal(wide.loc[straight, "velocity_reversals"], 0)
    np.testing.assert_allclose(wide["path_length_ratio"], wide["path_length"] / 0.5, rtol=1e-5)
    assert wide.loc[straight, "damping_ratio"].isna().all()  # nothing to fit on a straight line


def test_wide_table_has_one_column_per_measure():
    wide = measures_table(synthetic_evaluation(), "c", ["endpoint_error", "path_length"], wide=True)
    assert {"endpoint_error", "path_length"} <= set(wide.columns) and "measure" not in wide
    assert len(wide) == 3 * 3 * 2 * 4


def test_unknown_measure_is_rejected_by_name():
    with pytest.raises(ValueError, match="peak_response"):
        measures_table(synthetic_evaluation(), "c", ["peak_response"])  # no impulses here


def hand_table():
    """Two training conditions, two trials per replicate; replicate means chosen by hand."""
    means = {("A", 0): 1.0, ("A", 1): 1.1, ("A", 2): 1.2, ("A", 3): 5.0, ("B", 0): 2.0, ("B", 1): 2.0}
    rows = []
    for (condition, replicate), mean in means.items():
        for trial, offset in enumerate((-0.1, 0.1)):
            rows.append({"condition": condition, "replicate": replicate, "trial": trial, "amplitude": 0.0,
                             "measure": "endpoint_error", "value": mean + offset})
            rows.append({"condition": condition, "replicate": replicate, "trial": trial, "amplitude": 1.0,
                             "measure": "endpoint_error", "value": 100.0 * (replicate == 0)})
    return pd.DataFrame(rows)


def test_replicate_exclusion_on_a_hand_made_table():
    selection = select_replicates(hand_table(), "endpoint_error", where={"amplitude": 0.0}, k=2.0)
    a = selection[selection["condition"] == "A"].set_index("replicate")
    np.testing.assert_allclose(a["value"], [1.0, 1.1, 1.2, 5.0])
    # std of (1.0, 1.1, 1.2, 5.0) with ddof 0: sqrt(11.4275 / 4) = 1.690229..., threshold 1 + 2 * that.
    assert a["threshold"].iloc[0] == pytest.approx(1.0 + 2 * math.sqrt(11.4275 / 4))
    assert list(a["included"]) == [True, True, True, False]
    assert list(a["best"]) == [True, False, False, False]
    b = selection[selection["condition"] == "B"].set_index("replicate")
    assert list(b["included"]) == [True, True]  # zero spread: the tie is included
    assert list(b["best"]) == [True, False]  # the first of tied replicates
    assert included_replicates(selection, "A") == [0, 1, 2]
    assert best_replicate(selection, "B") == 0
    # A tighter k excludes more: 1 + 0.1 * 1.69 = 1.169 keeps replicates 0 and 1 only.
    tight = select_replicates(hand_table(), "endpoint_error", where={"amplitude": 0.0}, k=0.1)
    assert included_replicates(tight, "A") == [0, 1]


def test_higher_is_better_flips_the_rule():
    selection = select_replicates(hand_table(), "endpoint_error", where={"amplitude": 0.0}, higher_is_better=True)
    a = selection[selection["condition"] == "A"].set_index("replicate")
    assert best_replicate(selection, "A") == 3
    # 5.0 - 2 * 1.690 = 1.62: every other replicate falls below it.
    assert list(a["included"]) == [False, False, False, True]


def test_filter_replicates_drops_the_excluded_rows_everywhere():
    table = hand_table()
    selection = select_replicates(table, "endpoint_error", where={"amplitude": 0.0})
    kept = filter_replicates(table, selection)
    assert len(kept) == len(table) - 4  # replicate A/3: two trials x two amplitudes
    assert not ((kept["condition"] == "A") & (kept["replicate"] == 3)).any()


def test_selection_subsets_evaluations_keeping_replicate_labels():
    evaluation = synthetic_evaluation()
    table = measures_table(evaluation, "only")
    # Lateral deviation grows with the replicate index: at amplitude 2 the means are 0.205, 0.405,
    # 0.605 (+0.005 realisation average); k = 0.5 admits best + 0.5 * 0.1633 = 0.287: replicate 0 only.
    selection = select_replicates(table, "max_lateral_deviation", where={"amplitude": 2.0}, k=0.5)
    assert included_replicates(selection, "only") == [0]
    selection = select_replicates(table, "max_lateral_deviation", where={"amplitude": 2.0}, k=1.3)
    assert included_replicates(selection, "only") == [0, 1]
    subset = select_evaluations({"only": evaluation}, selection)["only"]
    assert subset.replicates == (0, 1)
    np.testing.assert_array_equal(subset.trajectory.pos, evaluation.trajectory.pos[:, :2])
    reordered = evaluation.take_replicates([2, 0])
    np.testing.assert_array_equal(reordered.trajectory.pos[:, 0], evaluation.trajectory.pos[:, 2])
    # The table of a subset names the original replicates.
    assert sorted(set(measures_table(reordered, "only")["replicate"])) == [0, 2]


def test_bad_selection_inputs_name_the_problem():
    with pytest.raises(KeyError, match="no measure 'nope'"):
        select_replicates(hand_table(), "nope")
    with pytest.raises(KeyError, match="no column 'context'"):
        select_replicates(hand_table(), "endpoint_error", where={"context": 1})
    selection = select_replicates(hand_table(), "endpoint_error")
    with pytest.raises(KeyError, match="no condition 'Z'"):
        included_replicates(selection, "Z")


def test_lateral_deviation_summary_matches_the_closed_form():
    evaluations = {"three": synthetic_evaluation(), "two": synthetic_evaluation(n_replicates=2)}
    summary = lateral_deviation_summary(evaluations).set_index(["condition", "amplitude"])
    for label, n_replicates in (("three", 3), ("two", 2)):
        for amplitude in (0.0, 1.0, 2.0):
            heights = np.array([[bump_height(amplitude, r, k) for k in range(2)] for r in range(n_replicates)])
            row = summary.loc[(label, amplitude)]
            assert row["mean"] == pytest.approx(heights.mean(), abs=1e-6)
            assert row["std"] == pytest.approx(heights.std(), abs=1e-6)  # every trial of a replicate is alike
            assert row["replicate_std"] == pytest.approx(heights.mean(axis=1).std(), abs=1e-6)
            assert row["n"] == n_replicates * 2 * 4
    table = measures_table(evaluations["three"], "three")
    selection = select_replicates(table, "max_lateral_deviation", where={"amplitude": 2.0}, k=0.5)
    selected = lateral_deviation_summary({"three": evaluations["three"]}, selection=selection)
    assert (selected["n"] == 2 * 4).all()  # replicate 0 only


def test_summarise_spread_by_hand():
    """Two replicates of three trials, one group: every statistic written out by hand."""
    values = {0: [1.0, 2.0, 6.0], 1: [3.0, 5.0, np.nan]}  # a never-settled trial is NaN
    table = pd.DataFrame([
        {"condition": "a", "amplitude": 1.0, "replicate": r, "trial": i, "measure": "m", "value": v}
        for r, trial_values in values.items() for i, v in enumerate(trial_values)
    ])
    row = summarise_spread(table).iloc[0]
    # trials: 1, 2, 3, 5, 6 (NaN skipped)
    assert row["n"] == 5 and row["mean"] == pytest.approx(3.4)
    assert row["std"] == pytest.approx(np.sqrt(((1 - 3.4) ** 2 + (2 - 3.4) ** 2 + (3 - 3.4) ** 2 + (5 - 3.4) ** 2 + (6 - 3.4) ** 2) / 5))
    assert (row["q25"], row["median"], row["q75"]) == (2.0, 3.0, 5.0)
    # replicate means 3 and 4
    assert row["replicates"] == 2 and (row["replicate_min"], row["replicate_max"]) == (3.0, 4.0)
    assert row["replicate_std"] == pytest.approx(0.5)

"""Tables and sentences of goal sweeps, on a hand-made sweep whose aggregates are worked out
by hand (see `fixed_points_synthetic`)."""

import numpy as np
import pandas as pd
import pytest
from fixed_points_synthetic import DT, synthetic_sweep
from robustreach.fixed_points.summaries import (
    by_context,
    centre_goal,
    continuum_table,
    continuum_text,
    dynamics_text,
    hold_points,
    input_sv_table,
    leading_mode_summary,
    readout_overlap_table,
    spectra_at,
    stability_table,
    tolerance_text,
    training_context_note,
)


def row(table, context, condition="A"):
    found = table[(table["condition"] == condition) & (table["context"] == context)]
    assert len(found) == 1
    return found.iloc[0]


def test_continuum_table_by_hand():
    table = continuum_table({"A": synthetic_sweep()})
    assert list(table["condition"]) == ["A", "A"] and list(table["context"]) == [0.0, 1.0]
    zero, one = row(table, 0.0), row(table, 1.0)
    assert (zero["replicates"], zero["goals"], zero["goals_without_point"]) == (2, 3, 0)
    assert zero["mean_distinct"] == 1 and zero["max_distinct"] == 1 and zero["max_within_goal_spread"] == 0
    # Context 1: one goal of one replicate has a second (saddle) point 0.3 from the hold point.
    assert one["mean_distinct"] == pytest.approx(7 / 6) and one["max_distinct"] == 2
    assert one["max_within_goal_spread"] == pytest.approx(0.3) and one["hold_points_stable"] == 1.0
    # Tangent errors per replicate: 0.02 x (1, 2, 2, 3) over the four directed pairs.
    assert zero["median_tangent_error"] == pytest.approx(0.04) and zero["max_tangent_error"] == pytest.approx(0.06)
    assert zero["median_neighbour_distance"] == pytest.approx(0.2) and one["median_neighbour_distance"] == pytest.approx(0.3)
    assert zero["hold_variance_in_2_PCs"] == pytest.approx(0.98)  # the lower replicate
    assert table["smooth"].all()


def test_continuum_flags_missing_goals_and_large_errors():
    missing = continuum_table({"A": synthetic_sweep(missing_goal=True)})
    assert row(missing, 0.0)["goals_without_point"] == 1 and not row(missing, 0.0)["smooth"]
    assert row(missing, 0.0)["mean_distinct"] == pytest.approx(5 / 6) and row(missing, 1.0)["smooth"]
    rough = continuum_table({"A": synthetic_sweep(tangent_error=0.2)})  # median 0.4
    assert not rough["smooth"].any()


def test_continuum_text_states_each_case():
    text = continuum_text(continuum_table({"A": synthetic_sweep()}))
    assert "Every goal had a fixed point" in text and "up to 2" in text
    assert "smooth sheet" in text and "at least 98.0%" in text and "4.0%" in text  # median error range
    missing = continuum_text(continuum_table({"A": synthetic_sweep(missing_goal=True)}))
    assert "Some goals had no fixed point" in missing and "A, context 0" in missing
    rough = continuum_text(continuum_table({"A": synthetic_sweep(tangent_error=0.2)}))
    assert "do not form one smooth sheet" in rough and "smooth sheet parameterised" not in rough
    assert "No fixed points" in continuum_text(pd.DataFrame())


def test_stability_table_counts():
    table = stability_table({"A": synthetic_sweep()})
    zero, one = row(table, 0.0), row(table, 1.0)
    assert (zero["points"], zero["stable"], zero["saddle"], zero["unstable"]) == (6, 6, 0, 0)
    assert (one["points"], one["stable"], one["saddle"]) == (7, 6, 1)
    assert one["saddles by unstable modes"] == "1 × 1" and zero["saddles by unstable modes"] == "–"
    assert (zero["rotational pairs (median)"], one["rotational pairs (median)"]) == (0, 1)
    assert one["slow modes (median)"] == 1 and one["leading mode complex"] == 0
    assert row(stability_table({"A": synthetic_sweep()}, hold_only=True), 1.0)["points"] == 6


def test_leading_mode_summary_is_the_median_over_goals():
    table = leading_mode_summary({"A": synthetic_sweep()})
    assert len(table) == 4
    for r in table.itertuples():
        middle = 0.8 + 0.1 * r.context + 0.01 + 0.02 * r.replicate  # goal 1 of goals 0, 1, 2
        assert r.lead_abs == pytest.approx(middle) and r.lead_tau == pytest.approx(-DT / np.log(middle))
        assert r.lead_abs_min == pytest.approx(middle - 0.01) and r.lead_abs_max == pytest.approx(middle + 0.01)
        assert r.goals == 3


def test_readout_overlap_table_and_random_baseline():
    weights = np.random.default_rng(1).normal(size=(2, 2, 3))
    table = readout_overlap_table({"A": synthetic_sweep()}, slow_tau=0.4, readouts={"A": weights})
    zero, one = row(table, 0.0), row(table, 1.0)
    # Context 0: no mode has tau > 0.4 (leading |lambda| <= 0.84); context 1: mode 0 of every hold point.
    assert zero["slow modes per point"] == 0 and np.isnan(zero["slow modes overlap"])
    assert zero["leading mode overlap"] == pytest.approx(0.5) and zero["other stable modes overlap"] == pytest.approx(0.35)
    assert one["slow modes per point"] == 1 and one["slow modes overlap"] == pytest.approx(0.9)
    assert one["other stable modes overlap"] == pytest.approx(0.2)
    # Baseline against Monte Carlo: RMS of ||W v|| / ||W||_2 over random unit directions v.
    v = np.random.default_rng(2).normal(size=(200_000, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rms = [np.sqrt(np.mean(np.sum((v @ w.T) ** 2, axis=1))) / np.linalg.norm(w, 2) for w in weights]
    assert zero["random direction overlap"] == pytest.approx(np.mean(rms), rel=5e-3)


def test_input_sv_table_rows_are_the_hold_points_singular_values():
    sweep = synthetic_sweep()
    table = input_sv_table({"A": sweep})
    hold = sweep.points[sweep.points["is_hold_point"]]
    assert len(table) == 3 * len(hold) and set(table["sv_index"]) == {1, 2, 3}
    first = table[table["sv_index"] == 1]["value"].to_numpy()
    np.testing.assert_allclose(first, sweep.input_sv[hold["point"].to_numpy(), 0])
    assert (table["measure"] == "singular value of dF/du").all()


def test_hold_points_and_centre_goal():
    sweep = synthetic_sweep()
    assert len(hold_points({"A": sweep, "B": sweep})) == 24 and centre_goal(sweep.points) == 1


def test_spectra_at_adds_goal_distance_and_stability():
    sweep = synthetic_sweep()
    rows = spectra_at(sweep, replicate=0, context=1.0)
    assert len(rows) == 4 * 2  # three hold points and the saddle, two modes each
    saddle = rows[~rows["is_hold_point"]]
    assert (saddle["stability"] == "saddle").all() and (saddle["goal_distance"] == 0.5).all()
    assert sorted(set(rows["goal_distance"])) == [0.0, 0.5]
    with pytest.raises(KeyError, match="colour"):
        spectra_at(sweep, colour=1)
    with pytest.raises(ValueError, match="no eigenvalues"):
        spectra_at(sweep, replicate=5)


def test_dynamics_text_claims_only_what_the_numbers_show():
    sweep = synthetic_sweep()
    sweeps = {"A": sweep}
    text = dynamics_text(leading_mode_summary(sweeps), stability_table(sweeps),
                         readout=readout_overlap_table(sweeps, slow_tau=0.4), input_sv=input_sv_table(sweeps))
    # Medians over replicates: 0.82 at context 0 and 0.92 at context 1.
    assert "rises monotonically" in text and "0: 0.820, 1: 0.920" in text
    assert "approaches 1 as the context gets higher" in text
    assert "Of 13 distinct fixed points 12 are stable, 1 saddles" in text
    assert "Slow modes appear at context 1" in text
    assert "largest singular value of dF/du (median) rises monotonically" in text

    def leading(values):
        return pd.DataFrame({"condition": "B", "replicate": 0, "context": [-1.0, 0.0, 1.0],
                             "lead_abs": values, "lead_tau": -DT / np.log(np.minimum(values, 0.999))})

    falling = dynamics_text(leading([0.95, 0.9, 0.8]), pd.DataFrame())
    assert "falls monotonically" in falling and "as the context gets lower" in falling
    bumpy = dynamics_text(leading([0.9, 0.8, 0.85]), pd.DataFrame())
    assert "non-monotonically" in bumpy and "lowest at context 0, highest at -1" in bumpy
    assert "approaches 1" not in bumpy
    growing = dynamics_text(leading([0.9, 0.99, 1.05]), pd.DataFrame())
    assert "At context 1 the leading mode does not decay" in growing and "approaches 1" not in growing


def test_tolerance_and_training_notes():
    text = tolerance_text({"tol_q": 1e-10, "dedup_tol": 1e-3, "n_starts": 16, "noise_std": 0.1}, 32)
    assert "summed over the 32 hidden units" in text and f"{np.sqrt(2e-10 / 32):.1e}" in text
    binary = {"variant": "binary", "on_value": 1.0, "off_value": -1.0}
    assert "context values 0, 2 lie outside" in training_context_note(binary, [-1.0, 0.0, 1.0, 2.0])
    assert "every swept context value lies within" in training_context_note({"variant": "std_scaled"}, [0.0, 0.5, 1.0])
    assert "values -3 lie outside" in training_context_note({"variant": "amplitude"}, [-3.0, 0.0, 1.5])
    assert "no context input" in training_context_note({"variant": "none"}, [])


def test_by_context_turns_the_table():
    turned = by_context(continuum_table({"A": synthetic_sweep()}))
    assert list(turned.columns) == [("A", 0.0), ("A", 1.0)]
    assert turned.loc["mean distinct", ("A", 1.0)] == "1.17" and turned.loc["smooth", ("A", 0.0)] == "yes"
    assert turned.loc["median tangent error", ("A", 0.0)] == "0.04"

"""Tables, text and figures of hold-point branches, on a hand-made `HoldBranches` whose
counts are easy to work out: one replicate, a context branch that folds (stable, then a
saddle between two folds, then stable again) and two goal branches without bifurcations."""

import numpy as np
import pandas as pd
import pytest
from robustreach.fixed_points.cache import frame_from_arrays
from robustreach.fixed_points.hold_branches import (
    HoldBranches,
    bifurcation_table,
    continuation_summary,
    continuation_text,
    from_arrays,
    to_arrays,
)
from robustreach.plots.continuation import branch_pca, eigenvalue_moduli
from robustreach.store.evaluations import decode_npz, encode_npz


def synthetic() -> HoldBranches:
    spec = [  # branch, family, goal, context, input name, start, end
        (0, "context", 4, np.nan, "context", -1.0, 2.0),
        (1, "goal", -1, 0.0, "goal_x", -0.5, 0.5),
        (2, "goal", -1, 1.0, "goal_x", -0.5, 0.5),
    ]
    along, h = [], []
    rng = np.random.default_rng(0)
    for b, family, goal, context, name, start, end in spec:
        if b == 0:  # S-shaped in the input: up to 1.5, back to 0, up to 2; unstable between the folds
            inputs = np.concatenate([np.linspace(-1, 1.5, 6), np.linspace(1.3, 0.2, 4), np.linspace(0.4, 2, 5)])
            stability = ["stable"] * 6 + ["saddle"] * 4 + ["stable"] * 5
        else:
            inputs, stability = np.linspace(start, end, 5), ["stable"] * 5
        n = len(inputs)
        lead = np.where(np.asarray(stability) == "saddle", 1.05, 0.95)
        along.append(pd.DataFrame({
            "branch": b, "replicate": 0, "family": family, "goal": goal, "context": context, "input_name": name,
            "point": np.arange(n), "s": (inputs - start) / (end - start), "input": inputs,
            "arclength": np.arange(n) * 0.1, "q": 1e-24, "n_unstable": (lead > 1).astype(int), "stability": stability,
            "abs_1": lead, "abs_2": 0.5,
        }))
        h.append(rng.normal(size=(n, 4)))
    along = pd.concat(along, ignore_index=True)
    bifurcations = pd.DataFrame({
        "branch": [0, 0], "kind": ["fold", "fold"], "point": [5, 9], "s": [2.5 / 3, 1.2 / 3], "arclength": [0.5, 0.9],
        "eig_real": [1.0, 1.0], "eig_imag": [0.0, 0.0], "abs": [1.0, 1.0], "angle": [0.0, 0.0],
        "n_unstable_before": [0, 1], "n_unstable_after": [1, 0], "replicate": 0, "family": "context", "goal": 4,
        "context": np.nan, "input_name": "context", "input": [1.5, 0.2],
    })
    branches = pd.DataFrame({
        "branch": [0, 1, 2], "replicate": 0, "family": ["context", "goal", "goal"], "goal": [4, -1, -1],
        "context": [np.nan, 0.0, 1.0], "input_name": ["context", "goal_x", "goal_x"],
        "input_start": [-1.0, -0.5, -0.5], "input_end": [2.0, 0.5, 0.5], "status": ["end", "end", "lost"],
        "n_points": [15, 5, 5], "arclength": [1.4, 0.4, 0.4], "n_newton": [28, 8, 12], "n_rejected": [0, 0, 3],
        "newton_per_arclength": [20.0, 20.0, 30.0], "max_q": [1e-24, 2e-24, 1e-23],
        "stability_start": "stable", "stability_end": "stable", "s_end": [1.0, 1.0, 0.7],
        "n_fold": [2, 0, 0], "n_branch_point": 0, "n_flip": 0, "n_neimark_sacker": 0,
    })
    agreement = pd.DataFrame({
        "branch": [0, 0, 1, 1, 2, 2], "replicate": 0, "family": ["context"] * 2 + ["goal"] * 4,
        "goal": [4, 4, 3, 5, 3, 5], "context": [-1.0, 2.0, 0.0, 0.0, 1.0, 1.0], "input": [-1, 2, -0.5, 0.5, -0.5, 0.5],
        "n_crossings": [1, 1, 1, 1, 1, 0], "distance_to_hold_point": [1e-6, 3e-6, 2e-6, 1e-6, 1e-6, np.nan],
        "distance_to_nearest_point": [1e-6, 3e-6, 2e-6, 1e-6, 1e-6, np.nan], "sweep_q": 1e-11,
    })
    return HoldBranches(branches=branches, bifurcations=bifurcations, along=along, agreement=agreement,
                        h=np.concatenate(h), bifurcation_h=rng.normal(size=(2, 4)))


def test_summary_counts_per_condition_and_family():
    summary = continuation_summary({"a": synthetic()}).set_index("family")
    assert summary.loc["context", "branches"] == 1 and summary.loc["goal", "branches"] == 2
    assert summary.loc["goal", "reached_end"] == 1  # one goal branch was lost
    assert summary.loc["context", "folds"] == 2 and summary.loc["goal", "folds"] == 0
    assert summary.loc["goal", "newton_per_arclength"] == 25.0  # median of 20 and 30
    assert summary.loc["goal", "max_q"] == 1e-23
    assert summary.loc["context", "max_distance_to_sweep"] == 3e-6
    assert summary.loc["goal", "samples_missed"] == 1


def test_text_states_the_numbers():
    found = {"a": synthetic()}
    text = continuation_text(continuation_summary(found), bifurcation_table(found))
    assert "1 of 1 reached the end" in text and "1 of 2 reached the end" in text
    assert "2 folds (at context 1.5, 0.2)" in text
    assert "within 3.0e-06" in text and "1 sampled inputs were not reached" in text
    assert "No eigenvalue crosses the unit circle" in text  # the goal branches
    assert continuation_text(pd.DataFrame(), pd.DataFrame()) == "No branch was continued."
    none = synthetic()._replace(bifurcations=synthetic().bifurcations.iloc[:0])
    assert list(bifurcation_table({"a": none}).columns)[:6] == ["condition", "replicate", "family", "goal", "context",
                                                               "kind"]


def test_hold_branches_round_trip_through_plain_arrays():
    found = synthetic()
    back = from_arrays(decode_npz(encode_npz(to_arrays(found))))
    for name in ("branches", "bifurcations", "along", "agreement"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(found, name), check_dtype=False)
    np.testing.assert_array_equal(back.h, found.h)
    with pytest.raises(ValueError, match="missing"):
        from_arrays({"branches": frame_from_arrays({})})


def test_branch_figure_colours_by_stability_and_marks_folds():
    fig = branch_pca(synthetic(), 0, "context")
    lines = [t for t in fig.data if t.mode == "lines"]
    # Per panel: stable, saddle, stable runs, each sharing its end point with the next.
    assert [t.name for t in lines] == ["stable", "saddle", "stable"] * 2
    assert [len(t.x) for t in lines[:3]] == [7, 5, 5]
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(markers) == 2 and list(markers[0].x) == [1.5, 0.2]
    with pytest.raises(ValueError, match="no goal branches for replicate 3"):
        branch_pca(synthetic(), 3, "goal")


def test_moduli_figure_has_one_panel_per_branch_and_the_unit_line():
    fig = eigenvalue_moduli(synthetic(), 0, "goal")
    assert len(fig.data) == 4  # 2 branches x (|lambda_1|, |lambda_2|)
    assert [a.text for a in fig.layout.annotations] == ["context 0", "context 1"]
    assert {shape.y0 for shape in fig.layout.shapes} == {1.0}

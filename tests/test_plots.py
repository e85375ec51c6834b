"""Figure builders: zero lines beneath the data, hover data, values drawn, selections, history."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest
from robustreach.measures import concat_tables, measures_table, select_replicates
from robustreach.plots.distributions import measure_distributions
from robustreach.plots.profiles import profiles
from robustreach.plots.training import loss_history
from robustreach.plots.trajectories import aligned_trajectories, centre_out_paths
from synthetic_evaluations import bump_height, synthetic_evaluation


@pytest.fixture(scope="module")
def evaluations():
    return {"control": synthetic_evaluation(), "robust": synthetic_evaluation(n_replicates=2)}


def is_zero_line(shape) -> bool:
    return shape.type == "line" and shape.y0 == 0 and shape.y1 == 0 and shape.layer == "below"


def test_profiles_draw_a_zero_line_beneath_every_panel(evaluations):
    fig = profiles(evaluations, variables=("vel", "force"))
    n_panels = 4 * 3  # (vel, force) x (forward, lateral) rows, three test conditions
    zero_lines = [s for s in fig.layout.shapes if is_zero_line(s)]
    assert len(zero_lines) == n_panels
    assert is_zero_line(fig.layout.shapes[0])
    assert len({(s.xref, s.yref) for s in zero_lines}) == n_panels  # one per panel


def test_profile_means_and_bands_match_numpy(evaluations):
    fig = profiles({"control": evaluations["control"]}, variables=("pos",), components=("lateral",))
    evaluation = evaluations["control"]
    n_steps = evaluation.n_steps
    bump = np.sin(np.pi * np.arange(n_steps) / (n_steps - 1))
    lines = [trace for trace in fig.data if trace.mode == "lines" and trace.fill is None]
    bands = [trace for trace in fig.data if trace.fill == "toself"]
    assert len(lines) == len(bands) == 3
    for c, amplitude in enumerate([0.0, 1.0, 2.0]):
        heights = np.array([[bump_height(amplitude, r, k) for k in range(2)] for r in range(3)]).ravel()
        heights = np.repeat(heights, 4)  # four trials per (replicate, realisation)
        expected_mean = heights.mean() * bump
        expected_std = heights.std() * np.abs(bump)
        np.testing.assert_allclose(lines[c].y, expected_mean, atol=1e-6)
        np.testing.assert_allclose(lines[c].x, 0.05 * np.arange(n_steps))
        upper = np.asarray(bands[c].y[:n_steps])
        np.testing.assert_allclose(upper, expected_mean + expected_std, atol=1e-6)


def test_every_aligned_trace_hovers_trial_replicate_and_condition(evaluations):
    fig = aligned_trajectories(evaluations, realisations=None)
    traces = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert len(traces) == 2 * 3  # one trace per (model, test condition)
    for trace in traces:
        for field in ("customdata[0]", "customdata[1]", "customdata[2]"):
            assert field in trace.hovertemplate
        assert "trial" in trace.hovertemplate and "replicate" in trace.hovertemplate and "condition" in trace.hovertemplate
        assert trace.customdata is not None and len(trace.customdata) == len(trace.x)

    # Check the labels against the geometry: each point's (trial, replicate) must be the
    # trajectory drawn there. The lateral bump identifies replicate and realisation.
    n_steps = evaluations["control"].n_steps
    bump = np.sin(np.pi * np.arange(n_steps) / (n_steps - 1))
    for trace in traces:
        condition = trace.customdata[0][2]
        amplitude = float(trace.customdata[0][3].split("=")[1])
        assert trace.name == condition
        data = np.asarray(trace.customdata, dtype=object)
        y = np.asarray(trace.y, float)
        for start in range(0, len(y), n_steps + 1):
            trial, replicate, label, _, realisation, direction = data[start]
            assert label == condition
            expected = bump_height(amplitude, replicate, realisation) * bump
            np.testing.assert_allclose(y[start : start + n_steps], expected, atol=1e-6)
            assert float(direction) == 90.0 * trial
            assert math.isnan(y[start + n_steps])  # gap between trajectories


def test_hover_names_original_replicates_after_selection(evaluations):
    subset = {"control": evaluations["control"].take_replicates([2])}
    fig = aligned_trajectories(subset)
    assert {row[1] for trace in fig.data for row in trace.customdata} == {2}


def test_aligned_trajectories_colour_by_amplitude_and_reject_mismatch(evaluations):
    fig = aligned_trajectories({"control": evaluations["control"]}, colour_by="amplitude")
    assert [t.name for t in fig.data] == ["amplitude=0", "amplitude=1", "amplitude=2"]
    assert len({t.line.color for t in fig.data}) == 3
    other = synthetic_evaluation(amplitudes=(0.0, 4.0))
    with pytest.raises(ValueError, match="different test conditions"):
        aligned_trajectories({"a": evaluations["control"], "b": other})


def test_centre_out_paths_mark_starts_and_goals(evaluations):
    evaluation = evaluations["control"]
    fig = centre_out_paths(evaluation, condition=1, replicate=1, label="control")
    goals = next(t for t in fig.data if t.name == "goal")
    starts = next(t for t in fig.data if t.name == "start")
    np.testing.assert_allclose(np.stack([goals.x, goals.y], -1), np.asarray(evaluation.trials.target_pos[1]), atol=1e-7)
    assert list(starts.x) == [0.0] and list(starts.y) == [0.0]
    paths = [t for t in fig.data if t.mode == "lines"]
    assert len(paths) == 4
    np.testing.assert_allclose(paths[1].x, evaluation.trajectory.pos[1, 1, 0, 1, :, 0], atol=1e-7)
    assert len({t.line.color for t in paths}) == 4  # one colour per direction


def test_distributions_group_conditions_with_per_point_hover(evaluations):
    table = concat_tables([measures_table(ev, label) for label, ev in evaluations.items()])
    fig = measure_distributions(table, "max_lateral_deviation")
    assert [t.name for t in fig.data] == ["control", "robust"]
    assert fig.layout.violinmode == "group"
    for trace in fig.data:
        rows = table[(table["condition"] == trace.name) & (table["measure"] == "max_lateral_deviation")]
        assert len(trace.y) == len(rows)
        assert "replicate %{customdata[1]}" in trace.hovertemplate
        # each point's value is the known bump height of its replicate and realisation
        for (label, replicate, trial, _, realisation), x, y in zip(trace.customdata, trace.x, trace.y):
            assert label == trace.name
            assert y == pytest.approx(bump_height(float(x), int(replicate), int(realisation)), abs=1e-6)

    selection = select_replicates(table, "max_lateral_deviation", where={"amplitude": 2.0}, k=0.5)
    filtered = measure_distributions(table, "max_lateral_deviation", kind="box", selection=selection)
    assert {int(row[1]) for trace in filtered.data for row in trace.customdata} == {0}
    with pytest.raises(ValueError, match="no rows for measure"):
        measure_distributions(table, "peak_response")


def history(n_batches=30, n_replicates=3):
    batches = np.arange(n_batches)
    total = np.exp(-batches / 10.0)[:, None] * (1.0 + np.arange(n_replicates))
    validation = np.full((n_batches, n_replicates), np.nan)
    validation[::10] = total[::10] * 1.1
    return {
        "loss/total": total,
        "loss/position": 0.5 * total,
        "validation/total": validation,
        "best_batch": np.array([20, 10, 0]),
        "learning_rate": np.full(n_batches, 0.01),  # other keys are ignored
    }


def test_loss_history_log_scale_and_best_batches():
    fig = loss_history(history())
    assert fig.layout.yaxis.type == "log"
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 2 * 3  # two terms x three replicates
    assert {t.name for t in lines} == {"total", "position"}
    np.testing.assert_allclose(lines[1].y, np.exp(-np.arange(30) / 10.0) * 2.0)
    best = next(t for t in fig.data if t.name == "best batch")
    assert list(best.x) == [20, 10, 0]
    # marked on the validation total at those batches: 1.1 x training total
    expected = [1.1 * math.exp(-b / 10.0) * (1 + r) for r, b in enumerate([20, 10, 0])]
    np.testing.assert_allclose(best.y, expected)
    assert list(best.customdata) == [0, 1, 2]


def test_loss_history_rejects_bad_input_by_name():
    with pytest.raises(KeyError, match="hidden"):
        loss_history(history(), terms=["hidden"])
    with pytest.raises(KeyError, match="loss/<term>"):
        loss_history({"best_batch": np.zeros(2)})
    bad = history()
    bad["loss/position"] = bad["loss/position"][:5]
    with pytest.raises(ValueError, match="shape"):
        loss_history(bad)

"""`measure_curves`: means and error bars against a swept value, panels, colours, selection."""

import itertools

import numpy as np
import pandas as pd
import pytest
from robustreach.plots.style import colours
from robustreach.plots.sweeps import measure_curves

CONTEXTS = [-1.0, 0.0, 2.0]
AMPLITUDES = [0.0, 1.0]


def value(condition, amplitude, context, replicate, trial):
    """A known value per row: the group means and stds below follow from it by hand."""
    return (1.0 if condition == "a" else 3.0) * amplitude + 0.5 * context + 0.1 * replicate + 0.01 * trial


@pytest.fixture(scope="module")
def table():
    rows = [
        {"condition": c, "amplitude": a, "context": x, "replicate": r, "realisation": 0, "trial": t,
         "measure": "max_lateral_deviation", "value": value(c, a, x, r, t)}
        for c, a, x, r, t in itertools.product(["a", "b"], AMPLITUDES, CONTEXTS, range(3), range(2))
    ]
    other = [{**row, "measure": "endpoint_error", "value": -1.0} for row in rows]
    return pd.DataFrame(rows + other)


def expected(condition, amplitude, replicates=range(3)):
    groups = [[value(condition, amplitude, x, r, t) for r in replicates for t in range(2)] for x in CONTEXTS]
    return np.array([np.mean(g) for g in groups]), np.array([np.std(g) for g in groups])


def test_one_panel_per_condition_one_line_per_amplitude_with_means_and_stds(table):
    fig = measure_curves(table, "max_lateral_deviation", x="context", colour="amplitude", facet="condition")
    assert [a.text for a in fig.layout.annotations] == ["a", "b"]
    assert len(fig.data) == 2 * 2
    palette = colours("amplitude", AMPLITUDES)
    for trace, (condition, (i, amplitude)) in zip(fig.data, itertools.product("ab", enumerate(AMPLITUDES))):
        mean, std = expected(condition, amplitude)
        np.testing.assert_allclose(trace.x, CONTEXTS)
        np.testing.assert_allclose(trace.y, mean)
        np.testing.assert_allclose(trace.error_y.array, std)
        assert trace.line.color == palette[i]
        assert trace.xaxis == ("x" if condition == "a" else "x2")
        assert "n=%{customdata[1]}" in trace.hovertemplate
        assert all(int(n) == 6 for n in np.asarray(trace.customdata)[:, 1])  # 3 replicates x 2 trials
    assert sum(t.showlegend for t in fig.data) == 2  # legend entries once, not per panel


def test_selection_drops_excluded_replicates(table):
    selection = pd.DataFrame({"condition": ["a"] * 3 + ["b"] * 3, "replicate": [0, 1, 2] * 2,
                              "included": [True, False, True, True, True, True]})
    fig = measure_curves(table, "max_lateral_deviation", selection=selection)
    mean, std = expected("a", 1.0, replicates=[0, 2])
    np.testing.assert_allclose(fig.data[1].y, mean)
    np.testing.assert_allclose(fig.data[1].error_y.array, std)


def test_single_panel_coloured_by_condition(table):
    fig = measure_curves(table[table["amplitude"] == 1.0], "max_lateral_deviation", colour="condition", facet=None)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert [t.line.color for t in fig.data] == colours("train_condition", ["a", "b"])
    np.testing.assert_allclose(fig.data[1].y, expected("b", 1.0)[0])


def test_bad_arguments_name_the_problem(table):
    with pytest.raises(ValueError, match="path_length"):
        measure_curves(table, "path_length")
    with pytest.raises(KeyError, match="impulse_amplitude"):
        measure_curves(table, "max_lateral_deviation", x="impulse_amplitude")
    with pytest.raises(ValueError, match="colour"):
        measure_curves(table, "max_lateral_deviation", colour="replicate")

"""Column titles of side-by-side test conditions name only the labels that differ."""

import dataclasses

from robustreach.plots.profiles import profiles
from robustreach.plots.trajectories import aligned_trajectories, column_titles
from synthetic_evaluations import synthetic_evaluation


def test_column_titles_drop_shared_labels():
    conditions = [{"amplitude": 0.0, "impulse_amplitude": a} for a in (0.0, 0.6, 1.8)]
    assert column_titles(conditions) == ["impulse_amplitude=0", "impulse_amplitude=0.6", "impulse_amplitude=1.8"]
    mixed = [{"amplitude": a, "context": c} for a in (0.0, 2.0) for c in (-1.0, 1.0)]
    assert column_titles(mixed) == ["amplitude=0, context=-1", "amplitude=0, context=1",
                                    "amplitude=2, context=-1", "amplitude=2, context=1"]
    assert column_titles([{"amplitude": 2.0, "context": 1.0}]) == ["amplitude=2, context=1"]  # nothing varies


def test_figures_title_columns_by_the_varying_label():
    evaluation = synthetic_evaluation(n_replicates=1, n_realisations=1)
    impulses = tuple({"amplitude": 0.0, "impulse_amplitude": a} for a in (0.0, 0.5, 1.0))
    evaluation = dataclasses.replace(evaluation, conditions=impulses)
    expected = ["impulse_amplitude=0", "impulse_amplitude=0.5", "impulse_amplitude=1"]
    fig = aligned_trajectories({"model": evaluation})
    # the column titles, then one x title shared by the columns (not one per column, which overlap)
    assert [a.text for a in fig.layout.annotations] == [*expected, "position along the reach"]
    assert all(not axis.title.text for axis in (fig.layout.xaxis, fig.layout.xaxis2, fig.layout.xaxis3))
    fig = profiles({"model": evaluation}, variables=("vel",), components=("forward",))
    assert [a.text for a in fig.layout.annotations] == expected

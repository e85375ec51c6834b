"""Colour conventions and shared layout of `robustreach.plots.style`."""

import plotly.colors as pc
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots
from robustreach.plots.style import KINDS, add_zero_line, apply_style, colour_map, colours, with_alpha


def rgb(colour):
    return tuple(float(v) for v in pc.unlabel_rgb(colour))


def test_ordered_kinds_follow_their_scale_by_rank():
    levels = [0, 0.5, 1, 2, 4]
    expected = pc.sample_colorscale("Plasma", [0.0, 0.2, 0.4, 0.6, 0.8])  # evenly spaced ranks
    assert colours("amplitude", levels) == expected
    # A subset keeps the colours of the full set when the levels are given.
    assert colours("amplitude", [4, 0], levels=levels) == [expected[4], expected[0]]
    assert colours("train_condition", ["control", "robust"]) == pc.sample_colorscale("Viridis", [0.0, 0.8])
    with pytest.raises(ValueError, match="not among the levels"):
        colours("amplitude", [3], levels=levels)


def test_context_is_diverging_with_grey_at_zero():
    low, zero, high = colours("context", [-2.0, 0.0, 2.0])
    assert rgb(zero) == (140.0, 140.0, 140.0)
    assert rgb(low)[2] > rgb(low)[0] and rgb(high)[0] > rgb(high)[2]  # blue below, red above
    # Placed by value / max |level|: -1 of +-4 is -2 of +-8, and lies between -4 and 0.
    assert colours("context", [-1.0], levels=[-4, 4]) == colours("context", [-2.0], levels=[-8, 8])
    minus, extreme = colours("context", [-1.0, -4.0], levels=[-4, 4])
    assert rgb(extreme)[2] > rgb(minus)[2] > 140.0 > rgb(minus)[0] > rgb(extreme)[0]
    # Only the largest magnitude matters: levels [-4, 1] scale like [-4, 4].
    assert colours("context", [1.0], levels=[-4, 1]) == colours("context", [1.0], levels=[-4, 4])


def test_directions_are_cyclic_in_degrees():
    a, b, c = colours("direction", [0.0, 360.0, 180.0])
    assert a == b and a != c
    assert colours("direction", [-90.0]) == colours("direction", [270.0])


def test_replicates_and_terms_use_qualitative_palettes():
    palette = [pc.validate_colors([c], colortype="rgb")[0] for c in pc.qualitative.Safe]
    assert colours("replicate", [0, 1, len(palette)]) == [palette[0], palette[1], palette[0]]
    assert colour_map("term", ["total", "position", "total"]) == dict(zip(["total", "position"], colours("term", ["total", "position"])))
    assert set(KINDS) == {"train_condition", "amplitude", "context", "direction", "replicate", "term"}
    with pytest.raises(ValueError, match="unknown colour kind"):
        colours("speed", [1])


def test_with_alpha_and_zero_line_and_style():
    assert with_alpha("#ff8000", 0.25) == "rgba(255, 128, 0, 0.25)"
    fig = make_subplots(rows=2, cols=2)
    add_zero_line(fig)  # before any trace: still one per panel, beneath the data
    assert len(fig.layout.shapes) == 4 and all(s.layer == "below" and s.y0 == 0 for s in fig.layout.shapes)
    single = add_zero_line(go.Figure(), axis="x")
    assert single.layout.shapes[0].x0 == 0 and single.layout.shapes[0].x1 == 0
    styled = apply_style(go.Figure(), title="T")
    assert styled.layout.title.text == "T" and styled.layout.xaxis.ticks == "outside"

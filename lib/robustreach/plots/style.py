"""Shared look of every figure: one colour scale per kind of variable, and the layout style.

Each kind of variable has its own scale, so that a colour means the same thing across figures:

| kind | scale | values |
|---|---|---|
| `train_condition` | sequential (Viridis, dark to green) | training conditions, ordered by value |
| `amplitude` | sequential (Plasma, dark to orange) | test amplitudes (fields, impulses) |
| `context` | diverging blue - grey - red, grey at 0 | context-input values, symmetric about 0 |
| `direction` | cyclic (Phase) | reach or impulse directions in degrees (360 wraps to 0) |
| `replicate` | qualitative (Safe) | replicate indices |
| `term` | qualitative (Dark2) | loss terms and other unordered categories |

```python
fig = go.Figure()
for amplitude, colour in zip(amplitudes, colours("amplitude", amplitudes)):
    fig.add_scatter(x=..., y=..., line_color=colour, name=f"{amplitude}")
add_zero_line(fig)      # beneath the data
apply_style(fig)
```
Ordered kinds place values by rank among `levels` (default: the distinct values given), so
skewed level sets such as 0, 0.5, 1, 2, 4 still get evenly spaced colours; pass the full set of
levels to keep colours identical between figures that show different subsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go

Kind = Literal["train_condition", "amplitude", "context", "direction", "replicate", "term"]

# Sequential scales stop short of their lightest end, which is hard to see on white.
_SEQUENTIAL = {"train_condition": ("Viridis", 0.0, 0.8), "amplitude": ("Plasma", 0.0, 0.8)}
_DIVERGING = pc.make_colorscale(["#2166ac", "#8c8c8c", "#b2182b"])
_CYCLIC = pc.cyclical.Phase
_QUALITATIVE = {"replicate": pc.qualitative.Safe, "term": pc.qualitative.Dark2}
KINDS: tuple[str, ...] = (*_SEQUENTIAL, "context", "direction", *_QUALITATIVE)

FONT = {"family": "Helvetica, Arial, sans-serif", "size": 13, "color": "#222222"}
ZERO_LINE = {"color": "#9a9a9a", "width": 1, "dash": "dot"}


def _rgb(colour: str) -> str:
    """Any plotly colour string (hex or rgb) as `rgb(r, g, b)`."""
    return pc.validate_colors([colour], colortype="rgb")[0]


def _distinct(values: Sequence[Any]) -> list[Any]:
    """Distinct values: sorted when all are numbers, else in order of first appearance."""
    unique = list(dict.fromkeys(values))
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in unique):
        return sorted(unique)
    return unique


def colours(kind: Kind, values: Sequence[Any], levels: Sequence[Any] | None = None) -> list[str]:
    """One colour (`rgb(r, g, b)`) per entry of `values`, from the scale of this `kind`.

    - ordered kinds (`train_condition`, `amplitude`): by rank among `levels`;
    - `context`: by value on a diverging scale symmetric about 0, spanning max |levels|;
    - `direction`: angle in degrees on a cyclic scale;
    - `replicate`: integer index into a qualitative palette; `term`: rank among `levels`.
    """
    values = list(values)
    if kind not in KINDS:
        raise ValueError(f"unknown colour kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not values:
        return []
    levels = _distinct(values if levels is None else list(levels))
    missing = [v for v in values if v not in levels] if kind in (*_SEQUENTIAL, "term") else []
    if missing:
        raise ValueError(f"values {missing} of kind {kind!r} are not among the levels {levels}")

    if kind in _SEQUENTIAL:
        name, low, high = _SEQUENTIAL[kind]
        span = max(len(levels) - 1, 1)
        positions = [low + (high - low) * levels.index(v) / span for v in values]
        return pc.sample_colorscale(name, positions)
    if kind == "context":
        numbers = np.asarray(values, float)
        scale = float(np.max(np.abs(np.asarray(levels, float)))) or 1.0
        return pc.sample_colorscale(_DIVERGING, list(np.clip(0.5 + 0.5 * numbers / scale, 0.0, 1.0)))
    if kind == "direction":
        return pc.sample_colorscale(_CYCLIC, list(np.mod(np.asarray(values, float), 360.0) / 360.0))
    palette = _QUALITATIVE[kind]
    indices = [int(v) for v in values] if kind == "replicate" else [levels.index(v) for v in values]
    return [_rgb(palette[i % len(palette)]) for i in indices]


def colour_map(kind: Kind, values: Sequence[Any], levels: Sequence[Any] | None = None) -> dict[Any, str]:
    """`{value: colour}` for the distinct `values` (see `colours`)."""
    distinct = _distinct(list(values))
    return dict(zip(distinct, colours(kind, distinct, levels)))


def with_alpha(colour: str, alpha: float) -> str:
    """The same colour as `rgba(r, g, b, alpha)`, e.g. for ±1 std bands."""
    r, g, b = pc.unlabel_rgb(_rgb(colour))
    return f"rgba({int(r)}, {int(g)}, {int(b)}, {alpha})"


def add_zero_line(fig: go.Figure, axis: Literal["x", "y"] = "y", **position: Any) -> go.Figure:
    """A dotted line at 0 drawn beneath every trace (a layout shape with `layer="below"`).

    `position` passes `row`/`col` through to plotly (default: every subplot, if any).
    """
    if not position and fig._has_subplots():  # plotly's own check for make_subplots figures
        # Also into subplots without traces yet: zero lines are drawn before the data.
        position = {"row": "all", "col": "all", "exclude_empty_subplots": False}
    add = fig.add_hline if axis == "y" else fig.add_vline
    add(0, line=ZERO_LINE, layer="below", **position)
    return fig


def apply_style(fig: go.Figure, *, title: str | None = None) -> go.Figure:
    """The project's layout: white template, one font, outside ticks, compact margins."""
    fig.update_layout(
        template="simple_white",
        font=FONT,
        hoverlabel={"font_size": 12},
        legend={"tracegroupgap": 2, "itemsizing": "constant"},
        margin={"l": 60, "r": 20, "t": 60 if title or fig.layout.title.text else 30, "b": 50},
    )
    if title is not None:
        fig.update_layout(title={"text": title, "x": 0.02})
    fig.update_xaxes(ticks="outside", showline=True, zeroline=False)
    fig.update_yaxes(ticks="outside", showline=True, zeroline=False)
    return fig

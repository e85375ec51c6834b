"""A measure against a swept test value (context input, field or impulse amplitude).

```python
table = concat_tables([measures_table(ev, label) for label, ev in evaluations.items()])
measure_curves(table, "max_lateral_deviation", x="context", colour="amplitude")  # panel per model
measure_curves(table, "peak_response", x="impulse_amplitude", colour="condition", facet=None)
```
Each line is the mean over replicates, realisations and trials of one (`facet`, `colour`)
group, with error bars of ±1 population std, as in `measures.summarise`. Takes the long
tables of `robustreach.measures`; a `selection` drops excluded replicates first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from robustreach.measures import LABELS, filter_replicates
from robustreach.plots.style import apply_style, colours

# Colour scale for each column a line may be coloured by (see `plots.style`).
COLUMN_KINDS = {"amplitude": "amplitude", "impulse_amplitude": "amplitude", "context": "context", "condition": "train_condition"}


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value)


def measure_curves(
    table: pd.DataFrame,
    measure: str,
    *,
    x: str = "context",
    colour: str = "amplitude",
    facet: str | None = "condition",
    selection: pd.DataFrame | None = None,
    title: str | None = None,
) -> go.Figure:
    """Mean ± 1 std of `measure` against `x`: one line per `colour` value, one panel per `facet`
    value (one panel if `facet` is None). Hover gives the group, mean, std and count."""
    if colour not in COLUMN_KINDS:
        raise ValueError(f"measure_curves: colour must be one of {', '.join(COLUMN_KINDS)}, got {colour!r}")
    required = {x, colour, "measure", "value"} | ({facet} if facet else set())
    missing = sorted(required - set(table.columns))
    if missing:
        raise KeyError(f"measure_curves: the table lacks columns {missing} (expects a long measures table)")
    if selection is not None:
        table = filter_replicates(table, selection)
    rows = table[table["measure"] == measure]
    if rows.empty:
        raise ValueError(f"measure_curves: no rows for measure {measure!r}; the table has {sorted(set(table['measure']))}")

    panels = list(dict.fromkeys(rows[facet])) if facet else [None]
    levels = sorted(set(rows[colour])) if colour != "condition" else list(dict.fromkeys(rows[colour]))
    palette = dict(zip(levels, colours(COLUMN_KINDS[colour], levels)))
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True,
                        subplot_titles=[_text(p) for p in panels] if facet else None)
    for col, panel in enumerate(panels, start=1):
        part = rows if facet is None else rows[rows[facet] == panel]
        stats = part.groupby([colour, x])["value"].agg(mean="mean", std=lambda v: v.std(ddof=0), n="count").reset_index()
        for level in levels:
            line = stats[stats[colour] == level].sort_values(x)
            if line.empty:
                continue
            name = f"{colour.replace('_', ' ')} {_text(level)}" if colour != "condition" else str(level)
            fig.add_scatter(
                x=line[x], y=line["mean"], mode="lines+markers", name=name, legendgroup=name, showlegend=col == 1,
                line={"color": palette[level], "width": 2}, marker={"color": palette[level], "size": 6},
                error_y={"type": "data", "array": line["std"].to_numpy(), "thickness": 1, "width": 3},
                customdata=np.stack([line["std"], line["n"]], axis=-1),
                hovertemplate=(f"{_text(panel) + '<br>' if facet else ''}{name}<br>{x.replace('_', ' ')} %{{x:g}}"
                               "<br>mean %{y:.4g} ± %{customdata[0]:.3g} (n=%{customdata[1]})<extra></extra>"),
                row=1, col=col,
            )
    fig.update_xaxes(title_text=x.replace("_", " "))
    fig.update_yaxes(title_text=LABELS.get(measure, measure), col=1)
    return apply_style(fig, title=title)

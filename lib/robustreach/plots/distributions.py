"""Distributions of a behavioural measure: training conditions compared across test amplitudes.

```python
table = concat_tables([measures_table(ev0, "control"), measures_table(ev1, "robust")])
measure_distributions(table, "max_lateral_deviation")              # violins, x: amplitude
measure_distributions(table, "endpoint_error", kind="box", selection=selection)
```
Takes the long tables of `robustreach.measures`. Every point's hover names its replicate, trial,
direction and realisation; a `selection` from `measures.select_replicates` drops excluded
replicates first, as in the tables.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from robustreach.measures import LABELS, filter_replicates
from robustreach.plots.style import apply_style, colours, with_alpha

HOVER_TEMPLATE = (
    "condition %{customdata[0]}<br>replicate %{customdata[1]}<br>trial %{customdata[2]}"
    " (direction %{customdata[3]}°)<br>realisation %{customdata[4]}<br>%{y:.4g}<extra></extra>"
)


def measure_distributions(
    table: pd.DataFrame,
    measure: str,
    *,
    x: str = "amplitude",
    colour: str = "condition",
    kind: Literal["violin", "box"] = "violin",
    selection: pd.DataFrame | None = None,
    points: bool = True,
    title: str | None = None,
) -> go.Figure:
    """One violin (or box) per (`colour` group, `x` value), grouped side by side at each `x`."""
    required = {x, colour, "replicate", "trial", "measure", "value"}
    missing = sorted(required - set(table.columns))
    if missing:
        raise KeyError(f"measure_distributions: the table lacks columns {missing} (expects a long measures table)")
    if kind not in ("violin", "box"):
        raise ValueError(f"measure_distributions: kind must be 'violin' or 'box', got {kind!r}")
    if selection is not None:
        table = filter_replicates(table, selection, by=colour)
    rows = table[table["measure"] == measure]
    if rows.empty:
        raise ValueError(f"measure_distributions: no rows for measure {measure!r}; the table has {sorted(set(table['measure']))}")

    groups = list(dict.fromkeys(rows[colour]))
    x_levels = sorted(set(rows[x]))
    palette = dict(zip(groups, colours("train_condition", groups)))
    x_text = {value: f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value) for value in x_levels}
    trace = go.Violin if kind == "violin" else go.Box
    fig = go.Figure()
    for group in groups:
        part = rows[rows[colour] == group].sort_values(x, kind="stable")
        customdata = np.stack(
            [
                part[colour].astype(str).to_numpy(),
                part["replicate"].to_numpy(),
                part["trial"].to_numpy(),
                part["direction"].map("{:g}".format).to_numpy() if "direction" in part else np.full(len(part), ""),
                part["realisation"].to_numpy() if "realisation" in part else np.zeros(len(part), int),
            ],
            axis=-1,
        ).astype(object)
        style = {
            "x": part[x].map(x_text).to_numpy(), "y": part["value"].to_numpy(), "name": str(group), "legendgroup": str(group),
            "marker": {"color": palette[group], "size": 4}, "line": {"color": palette[group]},
            "fillcolor": with_alpha(palette[group], 0.3), "customdata": customdata, "hovertemplate": HOVER_TEMPLATE,
            "offsetgroup": str(group),
        }
        if kind == "violin":
            fig.add_trace(trace(**style, points="all" if points else False, pointpos=0, jitter=0.3,
                                spanmode="hard", box={"visible": True}, meanline={"visible": True}))
        else:
            fig.add_trace(trace(**style, boxpoints="all" if points else False, pointpos=0, jitter=0.3))
    fig.update_layout(**({"violinmode": "group"} if kind == "violin" else {"boxmode": "group"}))
    fig.update_xaxes(title_text=x.replace("_", " "), type="category", categoryorder="array",
                     categoryarray=[x_text[v] for v in x_levels])
    fig.update_yaxes(title_text=LABELS.get(measure, measure))
    return apply_style(fig, title=title)

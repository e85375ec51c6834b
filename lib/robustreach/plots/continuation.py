"""Figures of continued hold-point branches (`fixed_points.hold_branches.HoldBranches`).

```python
branch_pca(found, replicate=0, family="context")    # PC1 and PC2 against the input, by stability
eigenvalue_moduli(found, replicate=0, family="context")   # leading |lambda| along the branch
```
Lines are coloured by stability (as in `plots.fixed_points`); bifurcations are marked with
symbols by kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from robustreach.plots.fixed_points import _STABILITY_COLOURS, UNIT_CIRCLE, pca_basis
from robustreach.plots.style import apply_style

if TYPE_CHECKING:
    from robustreach.fixed_points.hold_branches import HoldBranches

_KIND_SYMBOLS = {"fold": "triangle-up", "branch_point": "square", "flip": "star", "neimark_sacker": "hexagram"}
_INPUT_TITLES = {"context": "context value", "goal_x": "goal x", "goal_y": "goal y"}


def _rows(found: HoldBranches, replicate: int, family: str) -> pd.DataFrame:
    along = found.along
    rows = along[(along["replicate"] == replicate) & (along["family"] == family)]
    if rows.empty:
        raise ValueError(f"no {family} branches for replicate {replicate}")
    return rows


def _label(rows: pd.DataFrame) -> str:
    context = rows["context"].iloc[0]
    return f"context {context:g}" if rows["family"].iloc[0] == "goal" else f"goal {int(rows['goal'].iloc[0])}"


def _stability_segments(fig, x, y, stability, name, row, col, shown):
    """One line per run of equal stability (runs share their end points, so the line is unbroken)."""
    change = np.flatnonzero(stability[1:] != stability[:-1]) + 1
    bounds = [0, *change, len(x)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        label = stability[a]
        fig.add_trace(go.Scatter(
            x=x[a:min(b + 1, len(x))], y=y[a:min(b + 1, len(y))], mode="lines", name=label, legendgroup=label,
            line={"color": _STABILITY_COLOURS[label], "width": 2}, showlegend=label not in shown,
            hovertemplate=f"{name}<br>%{{x:.3g}}, %{{y:.3g}}<br>{label}<extra></extra>",
        ), row=row, col=col)
        shown.add(label)


def _bifurcation_markers(fig, bif, values, row, col, shown):
    for kind, part in bif.groupby("kind"):
        fig.add_trace(go.Scatter(
            x=part["input"], y=values[part.index], mode="markers", name=kind.replace("_", " "), legendgroup=kind,
            marker={"symbol": _KIND_SYMBOLS[kind], "size": 11, "color": "#222222"}, showlegend=kind not in shown,
            hovertemplate=kind + " at %{x:.6g}<extra></extra>",
        ), row=row, col=col)
        shown.add(kind)


def branch_pca(found: HoldBranches, replicate: int, family: str, *, title: str | None = None) -> go.Figure:
    """The replicate's branches of one family in the first two principal components of their
    hidden states (one panel each) against the input (context value, or the goal coordinate
    along the line), coloured by stability, with bifurcations marked. A fold shows as the
    branch turning back in the input."""
    rows = _rows(found, replicate, family)
    h = found.h[rows.index.to_numpy()]
    pca = pca_basis(h, 2)
    pcs = pca.project(h)
    fig = make_subplots(rows=1, cols=2,
                        subplot_titles=[f"PC{i + 1} ({pca.explained[i]:.0%})" for i in range(2)])
    shown: set[str] = set()
    mine = ((found.bifurcations["replicate"] == replicate) & (found.bifurcations["family"] == family)).to_numpy() \
        if len(found.bifurcations) else np.zeros(0, bool)
    bif = found.bifurcations[mine].reset_index(drop=True)
    bif_pcs = pca.project(found.bifurcation_h[mine]) if len(bif) else None
    for branch, part in rows.groupby("branch"):
        local = np.flatnonzero(rows["branch"].to_numpy() == branch)
        for col in (1, 2):
            _stability_segments(fig, part["input"].to_numpy(), pcs[local, col - 1], part["stability"].to_numpy(),
                                _label(part), 1, col, shown)
    if bif_pcs is not None:
        for col in (1, 2):
            _bifurcation_markers(fig, bif, bif_pcs[:, col - 1], 1, col, shown)
    fig.update_xaxes(title_text=_INPUT_TITLES.get(rows["input_name"].iloc[0], rows["input_name"].iloc[0]))
    return apply_style(fig, title=title)


def eigenvalue_moduli(found: HoldBranches, replicate: int, family: str, *, title: str | None = None) -> go.Figure:
    """The leading `|lambda|` (`abs_1`, `abs_2`, ... of `found.along`) along the replicate's
    branches of one family against the input, with the unit line: where a modulus crosses 1
    the branch changes stability. One panel per branch."""
    rows = _rows(found, replicate, family)
    branches = list(rows.groupby("branch"))
    fig = make_subplots(rows=1, cols=len(branches), shared_yaxes=True,
                        subplot_titles=[_label(part) for _, part in branches])
    columns = [c for c in rows.columns if c.startswith("abs_")]
    shades = ["#222222", "#6a6a6a", "#a8a8a8", "#c8c8c8", "#dddddd"]
    for col, (_, part) in enumerate(branches, start=1):
        for i, column in enumerate(columns):
            fig.add_trace(go.Scatter(
                x=part["input"], y=part[column], mode="lines", name=f"|λ{i + 1}|", legendgroup=column,
                line={"color": shades[min(i, len(shades) - 1)], "width": 2 if i == 0 else 1}, showlegend=col == 1,
                customdata=part[["arclength", "stability"]].to_numpy(),
                hovertemplate=f"|λ{i + 1}| = %{{y:.4f}}<br>input %{{x:.4g}}<br>arclength %{{customdata[0]:.3g}}"
                              "<br>%{customdata[1]}<extra></extra>",
            ), row=1, col=col)
        fig.add_hline(1.0, line=UNIT_CIRCLE, layer="below", row=1, col=col)
    fig.update_xaxes(title_text=_INPUT_TITLES.get(rows["input_name"].iloc[0], rows["input_name"].iloc[0]))
    fig.update_yaxes(title_text="|λ|", row=1, col=1)
    return apply_style(fig, title=title)

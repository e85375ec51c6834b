"""Profiles over time: mean ± 1 std of aligned velocity, force or position components.

```python
profiles({"control": ev0, "robust": ev1})                       # rows: vel/force x forward/lateral
profiles({"robust": ev1}, colour_by="amplitude", variables=("vel",))
```
The mean and std run over replicates, realisations and trials of each (model, test condition).
A zero line lies beneath the traces in every panel (a layout shape with `layer="below"`,
added before any trace), so that it never hides the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from robustreach.alignment import COMPONENTS, align_evaluation
from robustreach.evaluate import Evaluation
from robustreach.plots.style import add_zero_line, apply_style, with_alpha
from robustreach.plots.trajectories import check_same_conditions, panel_layout

VARIABLE_NAMES = {"pos": "position", "vel": "velocity", "force": "force", "external_force": "external force"}


def mean_and_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std over every axis but the last (time)."""
    flat = values.reshape(-1, values.shape[-1])
    return flat.mean(axis=0), flat.std(axis=0)


def _band(fig: go.Figure, t: np.ndarray, mean: np.ndarray, std: np.ndarray, colour: str, group: str, row: int, col: int) -> None:
    """The ±1 std band as one closed polygon (no hover, no legend entry)."""
    fig.add_scatter(
        x=np.concatenate([t, t[::-1]]), y=np.concatenate([mean + std, (mean - std)[::-1]]),
        fill="toself", fillcolor=with_alpha(colour, 0.2), line={"width": 0}, hoverinfo="skip",
        showlegend=False, legendgroup=group, row=row, col=col,
    )


def profiles(
    evaluations: Mapping[Any, Evaluation],
    *,
    variables: Sequence[Literal["pos", "vel", "force", "external_force"]] = ("vel", "force"),
    components: Sequence[Literal["forward", "lateral"]] = COMPONENTS,
    colour_by: Literal["train_condition", "amplitude", "impulse_amplitude", "context"] = "train_condition",
    conditions: Sequence[int] | None = None,
    reference: Literal["reach", "impulse"] = "reach",
    title: str | None = None,
) -> go.Figure:
    """Rows: each variable x component; columns: test conditions (or models, see below).

    `colour_by="train_condition"`: one colour per model (key of `evaluations`), one column per
    test condition; otherwise one column per model and one colour per value of that test label.
    """
    if not evaluations:
        raise ValueError("profiles: no evaluations given")
    unknown = [v for v in variables if v not in VARIABLE_NAMES] + [c for c in components if c not in COMPONENTS]
    if unknown:
        raise ValueError(f"profiles: unknown variable(s)/component(s) {unknown}; variables: {list(VARIABLE_NAMES)}, components: {list(COMPONENTS)}")
    all_conditions = check_same_conditions(evaluations)
    conditions = list(range(len(all_conditions)) if conditions is None else conditions)
    models = list(evaluations)
    layout = panel_layout("profiles", colour_by, models, conditions, all_conditions)

    panels = [(v, component) for v in variables for component in components]
    fig = make_subplots(rows=len(panels), cols=len(layout.titles), shared_xaxes=True, shared_yaxes="rows",
                        column_titles=layout.titles, vertical_spacing=0.04)
    add_zero_line(fig)  # first, beneath everything
    shown: set[str] = set()
    for model, evaluation in evaluations.items():
        aligned = align_evaluation(evaluation, reference)
        t = evaluation.times
        for c in conditions:
            colour, name, col = layout.trace(model, c)
            for row, (variable, component) in enumerate(panels, start=1):
                values = np.asarray(getattr(aligned, variable)[c, ..., COMPONENTS.index(component)])
                mean, std = mean_and_std(values)
                _band(fig, t, mean, std, colour, name, row, col)
                fig.add_scatter(
                    x=t, y=mean, mode="lines", name=name, legendgroup=name, showlegend=name not in shown,
                    line={"color": colour, "width": 2}, customdata=np.stack([std, np.full(len(t), name, dtype=object)], -1),
                    hovertemplate=f"{name}<br>t=%{{x:.2f}} s<br>mean %{{y:.3f}} ± %{{customdata[0]:.3f}}<extra></extra>",
                    row=row, col=col,
                )
                shown.add(name)
    for row, (variable, component) in enumerate(panels, start=1):
        fig.update_yaxes(title_text=f"{component} {VARIABLE_NAMES[variable]}", row=row, col=1)
    fig.update_xaxes(title_text="time (s)", row=len(panels))
    fig.update_layout(height=max(300, 220 * len(panels)))
    return apply_style(fig, title=title)

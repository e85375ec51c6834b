"""Trajectory figures: 2D paths of centre-out sets, and trajectories aligned on the reach.

```python
centre_out_paths(evaluation, condition=0)                  # one replicate's paths, by direction
aligned_trajectories({"control": ev0, "robust": ev1})      # columns: test conditions
aligned_trajectories({"robust": ev1}, colour_by="amplitude")  # one panel, colour: amplitude
```
Hovering over any trajectory names its trial, replicate and training condition (and test
condition, realisation and direction): every trace carries per-point `customdata`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from robustreach.alignment import align_evaluation
from robustreach.evaluate import Evaluation
from robustreach.plots.style import add_zero_line, apply_style, colours

HOVER_FIELDS = ("trial", "replicate", "condition", "test", "realisation", "direction")
HOVER_TEMPLATE = (
    "condition %{customdata[2]}<br>test %{customdata[3]}<br>replicate %{customdata[1]}"
    "<br>trial %{customdata[0]} (direction %{customdata[5]}°)<br>realisation %{customdata[4]}"
    "<br>(%{x:.3f}, %{y:.3f})<extra></extra>"
)
# Colour kind for each test-condition label.
LABEL_KINDS = {"amplitude": "amplitude", "impulse_amplitude": "amplitude", "context": "context"}


def condition_text(labels: Mapping[str, float]) -> str:
    """A test condition's labels as short text, e.g. `amplitude=2, context=1`."""
    return ", ".join(f"{name}={value:g}" for name, value in labels.items()) or "default"


class PanelLayout(NamedTuple):
    """Columns of a figure comparing models across test conditions, and each trace's look."""

    titles: list[str]
    trace: Callable[[Any, int], tuple[str, str, int]]  # (model, condition) -> (colour, legend name, column)


def panel_layout(
    caller: str, colour_by: str, models: Sequence[Any], conditions: Sequence[int], all_conditions: Sequence[Mapping[str, float]]
) -> PanelLayout:
    """`colour_by="train_condition"`: one column per test condition, a colour per model;
    otherwise one column per model, coloured by that test-condition label."""
    if colour_by == "train_condition":
        palette = dict(zip(models, colours("train_condition", list(models))))
        titles = column_titles([all_conditions[c] for c in conditions])
        return PanelLayout(titles, lambda model, c: (palette[model], str(model), list(conditions).index(c) + 1))
    if colour_by not in all_conditions[0]:
        raise ValueError(f"{caller}: colour_by={colour_by!r} is not a label of these conditions {all_conditions[0]}")
    values = [all_conditions[c][colour_by] for c in conditions]
    palette = dict(zip(conditions, colours(LABEL_KINDS[colour_by], values)))
    return PanelLayout(
        [str(m) for m in models],
        lambda model, c: (palette[c], f"{colour_by}={all_conditions[c][colour_by]:g}", list(models).index(model) + 1),
    )


def column_titles(conditions: Sequence[Mapping[str, float]]) -> list[str]:
    """Short titles of test conditions shown side by side: only the labels that differ among
    them (e.g. `impulse_amplitude=0.6`, not the shared `amplitude=0`); all labels if none do."""
    names = list(conditions[0]) if conditions else []
    varying = [n for n in names if len({c.get(n) for c in conditions}) > 1] or names
    return [condition_text({n: c[n] for n in varying}) for c in conditions]


def line_segments(
    paths: np.ndarray, info: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many paths `(n, time, 2)` as one trace: x, y with NaN gaps, and per-point customdata.

    `info` `(n, fields)` is repeated over each path's points (the gap rows repeat it too).
    """
    n, n_time, _ = paths.shape
    padded = np.concatenate([paths, np.full((n, 1, 2), np.nan)], axis=1).reshape(-1, 2)
    customdata = np.repeat(np.asarray(info, dtype=object), n_time + 1, axis=0)
    return padded[:, 0], padded[:, 1], customdata


def _trajectory_info(evaluation: Evaluation, condition: Any, condition_index: int, realisations: Sequence[int]) -> np.ndarray:
    """Hover fields for every (replicate, realisation, trial) of one test condition."""
    directions = evaluation.trial_table()["direction"].to_numpy()
    test = condition_text(evaluation.conditions[condition_index])
    rows = [
        (trial, replicate, str(condition), test, realisation, f"{directions[trial]:g}")
        for replicate in evaluation.replicates
        for realisation in realisations
        for trial in range(evaluation.n_trials)
    ]
    return np.asarray(rows, dtype=object)


def check_same_conditions(evaluations: Mapping[Any, Evaluation]) -> tuple[dict[str, float], ...]:
    """The test conditions shared by every evaluation (figures compare models condition by condition)."""
    first_label, first = next(iter(evaluations.items()))
    for label, evaluation in evaluations.items():
        if evaluation.conditions != first.conditions:
            raise ValueError(
                f"evaluations {first_label!r} and {label!r} have different test conditions "
                f"({first.conditions} vs {evaluation.conditions}); evaluate them with the same spec"
            )
    return first.conditions


def centre_out_paths(
    evaluation: Evaluation,
    *,
    condition: int = 0,
    replicate: int | None = None,
    realisation: int = 0,
    label: str = "",
    title: str | None = None,
) -> go.Figure:
    """2D paths of one replicate in one test condition, coloured by reach direction,
    with the start (filled black) and goal (open circles) of every reach."""
    replicate = evaluation.replicates[0] if replicate is None else replicate
    r = evaluation.replicates.index(replicate)
    pos = np.asarray(evaluation.trajectory.pos[condition, r, realisation])  # (trial, time, 2)
    trials = evaluation.trial_table()
    direction_colours = colours("direction", trials["direction"])
    info = _trajectory_info(evaluation, label, condition, [realisation])
    info = info[[i for i, row in enumerate(info) if row[1] == replicate]]

    fig = go.Figure()
    for trial, colour in zip(range(evaluation.n_trials), direction_colours):
        fig.add_scatter(
            x=pos[trial, :, 0], y=pos[trial, :, 1], mode="lines", line={"color": colour, "width": 1.5},
            customdata=np.repeat(info[trial : trial + 1], pos.shape[1], axis=0), hovertemplate=HOVER_TEMPLATE,
            showlegend=False, name=f"trial {trial}",
        )
    fig.add_scatter(
        x=trials["target_x"], y=trials["target_y"], mode="markers", name="goal",
        marker={"symbol": "circle-open", "size": 12, "color": direction_colours, "line": {"width": 2}},
        customdata=info, hovertemplate="goal of trial %{customdata[0]} (direction %{customdata[5]}°)<extra></extra>",
    )
    starts = trials.drop_duplicates(["start_x", "start_y"])
    fig.add_scatter(
        x=starts["start_x"], y=starts["start_y"], mode="markers", name="start",
        marker={"symbol": "circle", "size": 8, "color": "black"},
        customdata=info[starts.index], hovertemplate="start<extra></extra>",
    )
    fig.update_xaxes(title_text="x")
    fig.update_yaxes(title_text="y", scaleanchor="x", scaleratio=1)
    heading = title if title is not None else f"{label} {condition_text(evaluation.conditions[condition])}, replicate {replicate}".strip()
    return apply_style(fig, title=heading)


def aligned_trajectories(
    evaluations: Mapping[Any, Evaluation],
    *,
    colour_by: Literal["train_condition", "amplitude", "impulse_amplitude", "context"] = "train_condition",
    conditions: Sequence[int] | None = None,
    realisations: Sequence[int] | None = (0,),
    reference: Literal["reach", "impulse"] = "reach",
    title: str | None = None,
) -> go.Figure:
    """Lateral against forward position (relative to the start), every trial and replicate.

    `colour_by="train_condition"`: one column per test condition, one colour per trained model
    (key of `evaluations`); otherwise one column per trained model, one colour per value of that
    test label. `conditions` picks test conditions (indices), `realisations` noise realisations
    (None: all). Each (model, test condition) is one trace of NaN-separated lines.
    """
    if not evaluations:
        raise ValueError("aligned_trajectories: no evaluations given")
    all_conditions = check_same_conditions(evaluations)
    conditions = list(range(len(all_conditions)) if conditions is None else conditions)
    models = list(evaluations)
    layout = panel_layout("aligned_trajectories", colour_by, models, conditions, all_conditions)

    axis = "impulse" if reference == "impulse" else "reach"
    # one x title under all the columns: one per column would overlap its neighbours
    fig = make_subplots(rows=1, cols=len(layout.titles), subplot_titles=layout.titles, shared_yaxes=True, shared_xaxes=True,
                        x_title=f"position along the {axis}")
    add_zero_line(fig)
    shown: set[str] = set()
    for model, evaluation in evaluations.items():
        aligned = np.asarray(align_evaluation(evaluation, reference).pos)  # (cond, rep, real, trial, time, 2)
        chosen = list(range(evaluation.n_realisations) if realisations is None else realisations)
        for c in conditions:
            paths = aligned[c][:, chosen].reshape(-1, evaluation.n_steps, 2)
            x, y, customdata = line_segments(paths, _trajectory_info(evaluation, model, c, chosen))
            colour, name, column = layout.trace(model, c)
            fig.add_scatter(
                x=x, y=y, mode="lines", name=name, legendgroup=name, showlegend=name not in shown,
                line={"color": colour, "width": 1}, opacity=0.6,
                customdata=customdata, hovertemplate=HOVER_TEMPLATE, row=1, col=column,
            )
            shown.add(name)
    fig.update_yaxes(title_text=f"position across the {axis} (CCW +)", col=1)
    return apply_style(fig, title=title)

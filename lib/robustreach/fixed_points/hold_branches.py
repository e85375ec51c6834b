"""Branches of a trained network's hold points, continued across context and along goals.

A goal sweep finds the hold point (where a hold trial comes to rest) independently at each
sampled goal and context. Continuation follows it in between, with `continuation`:

- *context branches*: per replicate, from the hold point at the centre goal and the most
  negative swept context, along `u*(g, c)` with `c` rising to the most positive;
- *goal branches*: per replicate and context, from the hold point at the first goal of the
  grid's row (`line="x"`) or column (`line="y"`) through the centre, to its last goal.

Both paths are straight segments in input space (`u*` is linear in `c` and `g`). Along each
branch: stability, the leading `|lambda|`, bifurcations (`bifurcations`), and where the
branch crosses the sampled inputs, its distance from the sweep's own points there (an
independent check: the sweep solved there from scratch).

```python
options = continuation_options({"line": "x"})
found = hold_branches(model, sweep, **options)   # HoldBranches: tables + hidden states
sets = hold_branch_sets(store, models, sweeps, sweep_options, options)   # cached, by condition
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from robustreach.fixed_points.bifurcations import branch_eigenvalues, locate_bifurcations
from robustreach.fixed_points.cache import cache_key as sweep_cache_key
from robustreach.fixed_points.cache import result_from_arrays, result_to_arrays
from robustreach.fixed_points.continuation import Branches, continue_branches, points_at
from robustreach.fixed_points.summaries import centre_goal
from robustreach.fixed_points.sweep import GoalSweep, n_context_inputs, steady_state_inputs
from robustreach.model import ReachingModel, is_ensemble, replicate_count, select_replicate
from robustreach.options import ContinuationOptions, check_options

CONTINUATION_DEFAULTS: dict[str, Any] = ContinuationOptions().model_dump()
"""`hold_branches`' options a notebook may set: the goal line through the centre ("x": the
grid's row, "y": its column), the largest continuation step, points kept per branch, and how
many leading `|lambda|` the `along` table keeps."""
CACHE_FORMAT = 1
_TABLES = ("branches", "bifurcations", "along", "agreement")
_ARRAYS = ("h", "bifurcation_h")


class HoldBranches(NamedTuple):
    """Tables of continued hold-point branches, and hidden states (row `i` of `along` is
    `h[i]`, row `i` of `bifurcations` is `bifurcation_h[i]`).

    - `branches`: one row per branch (`family` "context" or "goal", what it holds fixed,
      status, points, arclength, Newton iterations, largest `q`, stability at both ends,
      bifurcation counts).
    - `bifurcations`: one row per located bifurcation (`kind`, `s`, `input`: the context
      value or goal coordinate there, the critical eigenvalue).
    - `along`: one row per branch point (`s`, `input`, `q`, `n_unstable`, `stability`,
      `abs_1`... the leading `|lambda|`).
    - `agreement`: per branch and sampled input, the branch's crossings there and the
      distance from the nearest crossing to the sweep's hold point and to its nearest point.
    """

    branches: pd.DataFrame
    bifurcations: pd.DataFrame
    along: pd.DataFrame
    agreement: pd.DataFrame
    h: np.ndarray
    bifurcation_h: np.ndarray


def continuation_options(params: Mapping[str, Any] | ContinuationOptions | None) -> dict[str, Any]:
    """The continuation parameters with defaults filled in (`options.ContinuationOptions`),
    checked before any work; errors name the key as `continuation.<key>`."""
    return check_options(ContinuationOptions, params, "continuation")


def _single(model: ReachingModel, replicate: int) -> ReachingModel:
    return select_replicate(model, replicate) if is_ensemble(model) else model


def hold_branches(
    model: ReachingModel,
    sweep: GoalSweep,
    *,
    line: str = CONTINUATION_DEFAULTS["line"],
    max_step: float = CONTINUATION_DEFAULTS["max_step"],
    max_points: int = CONTINUATION_DEFAULTS["max_points"],
    n_moduli: int = CONTINUATION_DEFAULTS["n_moduli"],
) -> HoldBranches:
    """Continue the sweep's hold points of `model` (single or ensemble) across context and
    along the goal line (see the module docstring); float64 throughout."""
    continuation_options({"line": line, "max_step": max_step, "max_points": max_points, "n_moduli": n_moduli})
    points = sweep.points
    if points.empty:
        raise ValueError("the sweep has no fixed points to continue")
    hold = points[points["is_hold_point"]]
    goals = points[["goal", "goal_x", "goal_y"]].drop_duplicates("goal").set_index("goal").sort_index()
    centre = centre_goal(points)
    axis, across = ("goal_x", "goal_y") if line == "x" else ("goal_y", "goal_x")
    on_line = goals[np.isclose(goals[across], goals.loc[centre, across])].sort_values(axis)
    contexts = np.sort(points["context"].unique())
    single_context = n_context_inputs(model) == 1
    n_rep = replicate_count(model)

    specs, h0, knots, replicate = [], [], [], []

    def add(spec, start_rows, u_start, u_end):
        if start_rows.empty or u_start is None or u_end is None:
            return
        specs.append(spec)
        h0.append(sweep.h[int(start_rows["point"].iloc[0])])
        knots.append(np.stack([u_start, u_end]))
        replicate.append(spec["replicate"])

    def input_at(single, goal, context):
        """`u*` at a swept (goal, context): from the sweep, else (one context input) the model."""
        rows = points[(points["goal"] == goal) & (points["context"] == context)]
        if len(rows):
            return sweep.u[int(rows["point"].iloc[0])]
        if single_context:
            return np.asarray(steady_state_inputs(single, goals.loc[[goal], ["goal_x", "goal_y"]].to_numpy(),
                                                  np.asarray([[context]])))[0, 0]
        return None

    for r in range(n_rep):
        single = _single(model, r)
        mine = hold[hold["replicate"] == r]
        if single_context and len(contexts) > 1:  # with several context inputs, no order of contexts
            add({"replicate": r, "family": "context", "goal": centre, "context": np.nan,
                 "input_name": "context", "input_start": contexts[0], "input_end": contexts[-1]},
                mine[(mine["goal"] == centre) & (mine["context"] == contexts[0])],
                input_at(single, centre, contexts[0]), input_at(single, centre, contexts[-1]))
        if len(on_line) > 1:
            first, last = on_line.index[0], on_line.index[-1]
            for c in contexts:
                add({"replicate": r, "family": "goal", "goal": -1, "context": c, "input_name": axis,
                     "input_start": on_line.loc[first, axis], "input_end": on_line.loc[last, axis]},
                    mine[(mine["goal"] == first) & (mine["context"] == c)], input_at(single, first, c),
                    input_at(single, last, c))
    if not specs:
        raise ValueError("nothing to continue: the sweep needs several contexts or several goals on the line, "
                         "with hold points at the start")

    ensemble = is_ensemble(model)
    step = model.controller.step
    branches = continue_branches(step, np.stack(h0), np.stack(knots), replicate=replicate if ensemble else None,
                                 max_step=max_step, max_points=max_points)
    eigvals = branch_eigenvalues(step, branches)
    found = locate_bifurcations(step, branches, eigvals)
    spec = pd.DataFrame(specs)
    spec.insert(0, "branch", np.arange(len(spec)))
    to_input = lambda b, s: spec["input_start"].iloc[b] + s * (spec["input_end"].iloc[b] - spec["input_start"].iloc[b])

    along, h_rows = _along(branches, eigvals, spec, to_input, n_moduli)
    bif = found.table.merge(spec[["branch", "replicate", "family", "goal", "context", "input_name"]], on="branch")
    bif["input"] = [to_input(b, s) for b, s in zip(bif["branch"], bif["s"])]
    agreement = _agreement(step, branches, spec, sweep, on_line, contexts, axis)
    table = _branch_table(branches, spec, along, bif)
    return HoldBranches(branches=table, bifurcations=bif, along=along, agreement=agreement, h=h_rows,
                        bifurcation_h=found.h)


def _along(branches: Branches, eigvals, spec, to_input, n_moduli):
    rows, hs = [], []
    for b in range(len(branches)):
        h, s, _ = branches.points(b)
        n = len(h)
        mod = np.abs(eigvals[b, :n])
        n_unstable = (mod > 1).sum(axis=1)
        x = np.concatenate([h, s[:, None]], axis=1)
        frame = pd.DataFrame({
            "branch": b, "point": np.arange(n), "s": s, "input": to_input(b, s),
            "arclength": np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(x, axis=0), axis=1))]),
            "q": branches.q[b, :n], "n_unstable": n_unstable,
            "stability": np.where(n_unstable == 0, "stable",
                                  np.where(n_unstable == mod.shape[1], "unstable", "saddle")),
            **{f"abs_{i + 1}": mod[:, i] for i in range(min(n_moduli, mod.shape[1]))},
        })
        rows.append(frame)
        hs.append(h)
    along = pd.concat(rows, ignore_index=True)
    keys = spec[["branch", "replicate", "family", "goal", "context", "input_name"]]
    return keys.merge(along, on="branch"), np.concatenate(hs)


def _agreement(step, branches, spec, sweep, on_line, contexts, axis) -> pd.DataFrame:
    """Distance from each branch's crossings of the sampled inputs to the sweep's points there."""
    rows = []
    points = sweep.points
    for b, row in spec.iterrows():
        if row["family"] == "context":
            samples = [(c, row["goal"], (c - contexts[0]) / (contexts[-1] - contexts[0])) for c in contexts]
        else:
            span = row["input_end"] - row["input_start"]
            samples = [(row["context"], g, (on_line.loc[g, axis] - row["input_start"]) / span) for g in on_line.index]
        crossings = points_at(step, branches, [s for *_, s in samples], branch=b)[0]
        for c, g, s in samples:
            here = [h for s_, h in crossings if np.isclose(s_, s)]
            at = points[(points["replicate"] == row["replicate"]) & (points["goal"] == g) & (points["context"] == c)]
            hold_at = at[at["is_hold_point"]]
            entry = {"branch": b, "replicate": row["replicate"], "family": row["family"], "goal": g, "context": c,
                     "input": row["input_start"] + s * (row["input_end"] - row["input_start"]),
                     "n_crossings": len(here), "distance_to_hold_point": np.nan, "distance_to_nearest_point": np.nan,
                     "sweep_q": np.nan}
            if here and len(at):
                h_sweep = sweep.h[at["point"].to_numpy()]
                d = np.linalg.norm(np.asarray(here)[:, None] - h_sweep[None], axis=-1)  # (crossing, sweep point)
                entry["distance_to_nearest_point"] = float(d.min())
                if len(hold_at):
                    d_hold = np.linalg.norm(np.asarray(here) - sweep.h[int(hold_at["point"].iloc[0])], axis=-1)
                    entry["distance_to_hold_point"] = float(d_hold.min())
                    entry["sweep_q"] = float(hold_at["q"].iloc[0])
            rows.append(entry)
    return pd.DataFrame(rows)


def _branch_table(branches: Branches, spec, along, bif) -> pd.DataFrame:
    first = along.groupby("branch").first()
    last = along.groupby("branch").last()
    table = spec.assign(
        status=branches.status, n_points=branches.n_points, arclength=branches.arclength, n_newton=branches.n_newton,
        n_rejected=branches.n_rejected, newton_per_arclength=branches.n_newton / np.maximum(branches.arclength, 1e-300),
        max_q=along.groupby("branch")["q"].max().reindex(spec["branch"]).to_numpy(),
        stability_start=first["stability"].reindex(spec["branch"]).to_numpy(),
        stability_end=last["stability"].reindex(spec["branch"]).to_numpy(),
        s_end=last["s"].reindex(spec["branch"]).to_numpy(),
    )
    for kind in ("fold", "branch_point", "flip", "neimark_sacker"):
        counts = bif[bif["kind"] == kind].groupby("branch").size()
        table[f"n_{kind}"] = counts.reindex(spec["branch"]).fillna(0).astype(int).to_numpy()
    return table


def to_arrays(result: HoldBranches) -> dict[str, Any]:
    """A plain tree of NumPy arrays (stored as `.npz` by the results index)."""
    return result_to_arrays(result, _TABLES, _ARRAYS)


def from_arrays(arrays: Mapping[str, Any]) -> HoldBranches:
    """Inverse of `to_arrays`."""
    return result_from_arrays(HoldBranches, arrays, _TABLES, _ARRAYS)


def cache_key(sweep_options: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """What a result is cached under (with the model hash): the sweep's key and these options."""
    return {"analysis": "fixed_points/continuation", "format": CACHE_FORMAT, "sweep": sweep_cache_key(sweep_options),
            **continuation_options(options)}


def cached_hold_branches(store, model_hash: str | None, model: ReachingModel, sweep: GoalSweep,
                         sweep_options: Mapping[str, Any], options: Mapping[str, Any]) -> HoldBranches:
    """`hold_branches`, loaded from `store` when this model and these options were run
    before; `store=None` computes without caching."""
    options = continuation_options(options)
    compute = lambda: to_arrays(hold_branches(model, sweep, **options))
    if store is None:
        return from_arrays(compute())
    if not model_hash:
        raise ValueError("cached_hold_branches: a model hash is needed to cache in the store")
    return from_arrays(store.cached_evaluation(model_hash, cache_key(sweep_options, options), compute))


def hold_branch_sets(store, models: Sequence[Any], sweeps: Mapping[str, GoalSweep], sweep_options: Mapping[str, Any],
                     options: Mapping[str, Any]) -> dict[str, HoldBranches]:
    """`cached_hold_branches` of every trained model (`experiment.TrainedModel`), keyed by
    condition label, from the goal sweeps of `fixed_points.cache.goal_sweeps`."""
    options = continuation_options(options)
    return {m.label: cached_hold_branches(store, m.record["hash"] if store is not None else None, m.model,
                                          sweeps[m.label], sweep_options, options) for m in models}


def _by_condition(sets: Mapping[str, HoldBranches], name: str) -> pd.DataFrame:
    frames = [getattr(found, name).assign(condition=label) for label, found in sets.items()
              if len(getattr(found, name))]
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    return table[["condition", *[c for c in table.columns if c != "condition"]]]


def branch_table(sets: Mapping[str, HoldBranches]) -> pd.DataFrame:
    """Every branch of every training condition and replicate (`HoldBranches.branches`)."""
    return _by_condition(sets, "branches")


def bifurcation_table(sets: Mapping[str, HoldBranches]) -> pd.DataFrame:
    """Every located bifurcation, per training condition and replicate, in the order met."""
    keep = ["condition", "replicate", "family", "goal", "context", "kind", "input_name", "input", "s", "abs", "angle",
            "n_unstable_before", "n_unstable_after"]
    table = _by_condition(sets, "bifurcations")
    return pd.DataFrame(columns=keep) if table.empty else table[keep]


def continuation_summary(sets: Mapping[str, HoldBranches]) -> pd.DataFrame:
    """Per training condition and family (context / goal branches): how many branches reached
    the path's end, Newton iterations per unit arclength (median), the largest `q` on any
    branch, how far the branches pass from the sweep's points at the sampled inputs (largest
    distance to the nearest point, median distance to the hold point), stability at both ends,
    and the bifurcations found by kind."""
    branches = branch_table(sets)
    if branches.empty:
        return branches
    agreement = _by_condition(sets, "agreement")
    keys = ["condition", "family"]
    grouped = branches.groupby(keys)
    out = pd.DataFrame({
        "branches": grouped.size(),
        "reached_end": grouped["status"].agg(lambda s: int(np.sum(s == "end"))),
        "newton_per_arclength": grouped["newton_per_arclength"].median(),
        "max_q": grouped["max_q"].max(),
        "stable_at_start": grouped["stability_start"].agg(lambda s: int(np.sum(s == "stable"))),
        "stable_at_end": grouped["stability_end"].agg(lambda s: int(np.sum(s == "stable"))),
        **{f"{kind}s": grouped[f"n_{kind}"].sum() for kind in ("fold", "branch_point", "flip", "neimark_sacker")},
    })
    if len(agreement):
        a = agreement.groupby(keys)
        out["max_distance_to_sweep"] = a["distance_to_nearest_point"].max()
        out["median_distance_to_hold_point"] = a["distance_to_hold_point"].median()
        out["samples_missed"] = a["n_crossings"].agg(lambda n: int(np.sum(n == 0)))
    return out.reset_index()


_KIND_WORDS = {"fold": "fold", "branch_point": "branch point", "flip": "flip",
               "neimark_sacker": "Neimark-Sacker crossing"}


def continuation_text(summary: pd.DataFrame, bifurcations: pd.DataFrame) -> str:
    """Markdown stating what `continuation_summary` and `bifurcation_table` show: whether the
    branches ran through, agree with the sweep, and where (if anywhere) stability changes."""
    if summary.empty:
        return "No branch was continued."
    lines = []
    for row in summary.itertuples(index=False):
        what = ("context branches (centre goal, lowest to highest context)" if row.family == "context"
                else "goal branches (along the line of goals, at each context)")
        text = (f"- **{row.condition}**, {what}: {row.reached_end} of {row.branches} reached the end of their path "
                f"(median {row.newton_per_arclength:.3g} Newton iterations per unit arclength; largest q "
                f"{row.max_q:.1e}).")
        if hasattr(row, "max_distance_to_sweep") and np.isfinite(row.max_distance_to_sweep):
            text += (f" At the sampled inputs they pass within {row.max_distance_to_sweep:.1e} of a point the sweep "
                     f"found independently (median {row.median_distance_to_hold_point:.1e} from its hold point)")
            text += (f"; {row.samples_missed} sampled inputs were not reached." if row.samples_missed else ".")
        found = bifurcations[(bifurcations["condition"] == row.condition) & (bifurcations["family"] == row.family)] \
            if len(bifurcations) else bifurcations
        if found.empty:
            stable = "stable" if row.stable_at_start == row.branches == row.stable_at_end else "of unchanged stability"
            text += f" No eigenvalue crosses the unit circle along them: the hold points stay {stable} throughout."
        else:
            parts = []
            for kind, part in found.groupby("kind", sort=False):
                where = ", ".join(f"{v:.3g}" for v in part["input"])
                plural = "s" if len(part) > 1 else ""
                parts.append(f"{len(part)} {_KIND_WORDS[kind]}{plural} (at {part['input_name'].iloc[0]} {where})")
            text += " Stability changes: " + "; ".join(parts) + "."
        lines.append(text)
    return "\n".join(lines)

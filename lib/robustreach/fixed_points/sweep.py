"""Goal steady-state sweep: fixed points of a trained ensemble while it rests at each goal.

Resting at goal `g` under context `c`, the network input is constant,
`u*(g, c) = [c, g, 0, 0, g, 0, 0]` (context, target position and velocity, fed-back
position and velocity; built by the model's own `steady_state_input`). For every replicate,
goal and context the sweep searches fixed points of `F(h, u*) = h` from hidden states of
simulated hold trials (second half of each trial) plus Gaussian noise, keeps the distinct
ones (`q = 1/2 ||F(h, u*) - h||^2 < tol_q`, merged within `dedup_tol`), labels them, and marks
the *hold point*: the fixed point nearest to where the hold trial actually ends.

Whether the hold points form a smooth manifold parameterised by the goal is checked, for
each pair of neighbouring goals, against the implicit-function prediction
`dh*/du = (I - J)^{-1} B` (J = dF/dh, B = dF/du at the hold point): on a smooth manifold the
step between neighbours is predicted up to a second-order error, while a jump to another
branch of fixed points is not. The distance between neighbours is set against the spread of
the distinct fixed points within each goal.

```python
sweep = goal_sweep(model, key=key, contexts=[-1.0, 0.0, 1.0], n_grid=5)
sweep.points        # one row per distinct fixed point: replicate, goal, context, labels
sweep.conditions    # one row per (replicate, goal, context): counts, hold point
sweep.neighbours    # one row per pair of neighbouring goals: distance, tangent error
sweep.summary       # one row per (replicate, context): is it a continuum?
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from scipy.spatial import cKDTree

from robustreach.fixed_points.filtering import filter_fixed_points
from robustreach.fixed_points.finder import find_fixed_points, sample_starts
from robustreach.fixed_points.linearise import linearise, points_table, spectra_table
from robustreach.model import (
    ReachingModel,
    is_ensemble,
    replicate_count,
    select_replicate,
    simulate,
    steady_state_input,
)
from robustreach.progress import progress_bar
from robustreach.tasks import grid_centres, with_context
from robustreach.trials import unperturbed_trials


class GoalSweep(NamedTuple):
    """Tidy results of `goal_sweep` (see the module docstring), plus the fixed points'
    hidden states `h` and constant inputs `u` (row `i` of `points`), the singular values of
    `dF/du` there (`input_sv`, descending), and the hold trials' hidden states
    `hold_hidden` `(replicate, context, goal, time, hidden)` for figures."""

    points: pd.DataFrame
    spectra: pd.DataFrame
    conditions: pd.DataFrame
    neighbours: pd.DataFrame
    summary: pd.DataFrame
    h: Float[np.ndarray, "point hidden"]
    hold_hidden: Float[np.ndarray, "replicate context goal time hidden"]
    u: Float[np.ndarray, "point input"]
    input_sv: Float[np.ndarray, "point sv"]


def n_context_inputs(model: ReachingModel) -> int:
    """Context inputs the model takes: its input size minus target (4) and fed-back (2 each)."""
    return int(model.controller.cell.input_size) - 4 - 2 * len(model.feedback_variables)


def _context_rows(model: ReachingModel, contexts: ArrayLike | None) -> np.ndarray:
    n_context = n_context_inputs(model)
    if n_context == 0:
        if contexts is not None and np.size(contexts) > 0:
            raise ValueError(f"this model takes no context input; got contexts={contexts!r}")
        return np.zeros((1, 0))
    if contexts is None:
        raise ValueError(f"this model takes {n_context} context input(s): pass contexts (a list of values)")
    rows = np.asarray(contexts, float)
    rows = rows[:, None] if rows.ndim == 1 and n_context == 1 else rows
    if rows.ndim != 2 or rows.shape[1] != n_context or len(rows) == 0:
        raise ValueError(f"contexts must be a list of values with {n_context} entries each; got shape {rows.shape}")
    return rows


def steady_state_inputs(
    model: ReachingModel, goals: Float[ArrayLike, "goal 2"], contexts: Float[ArrayLike, "context n_context"]
) -> Float[Array, "context goal input"]:
    """`u*(g, c)` for every context and goal, from the model's `steady_state_input`."""
    one = lambda c, g: steady_state_input(model, g, c)
    return jax.vmap(lambda c: jax.vmap(lambda g: one(c, g))(jnp.asarray(goals, float)))(jnp.asarray(contexts, float))


def hold_hidden_states(
    model: ReachingModel,
    goals: Float[ArrayLike, "goal 2"],
    contexts: Float[ArrayLike, "context n_context"],
    *,
    n_steps: int,
    key: PRNGKeyArray,
) -> Float[Array, "context goal time hidden"]:
    """Hidden states of hold trials (start = target = goal) under each context, with the
    model's own noise."""
    goals = jnp.asarray(goals, float)
    contexts = jnp.asarray(contexts, float)
    trials = unperturbed_trials(goals, goals, n_steps, contexts.shape[1], model.plant.n_observed)

    def one(context, k):
        return simulate(model, with_context(trials, context), k).hidden

    return jax.vmap(one)(contexts, jax.random.split(key, contexts.shape[0]))


def _neighbour_pairs(goals: np.ndarray) -> np.ndarray:
    """Pairs (i < j) of goals at the smallest distance between any two goals (grid edges)."""
    if len(goals) < 2:
        return np.zeros((0, 2), int)
    tree = cKDTree(goals)
    spacing = tree.query(goals, k=2)[0][:, 1].min()
    return np.asarray(sorted(tree.query_pairs(spacing * 1.001)), int).reshape(-1, 2)


def goal_sweep(
    model: ReachingModel,
    *,
    key: PRNGKeyArray,
    contexts: Sequence[float] | ArrayLike | None = None,
    n_grid: int = 5,
    workspace: Sequence[Sequence[float]] = ((-1.0, -1.0), (1.0, 1.0)),
    goals: Float[ArrayLike, "goal 2"] | None = None,
    n_steps: int = 100,
    n_starts: int = 32,
    noise_std: float = 0.1,
    tol_q: float = 1e-10,
    dedup_tol: float = 1e-3,
    finder_options: dict[str, Any] | None = None,
    progress: bool = True,
    finder_progress: bool = True,
) -> GoalSweep:
    """Fixed points at every goal, context and replicate of `model` (single or ensemble).

    **Arguments:**

    - `model`: a `ReachingModel`; an ensemble (leading replicate axis) is swept per replicate.
    - `key`: PRNG key for the hold trials' noise and the starting states' noise.
    - `contexts`: context values (one per condition; rows for several context inputs);
      leave None for a model without context input.
    - `n_grid`, `workspace`: goals on the odd `n_grid` x `n_grid` grid of `tasks.grid_centres`
      (odd, so that the workspace centre is included); or give `goals` directly.
    - `n_steps`: length of the hold trials that provide the starting states.
    - `n_starts`, `noise_std`: starting states per condition, drawn from the second half of
      the hold trial plus N(0, noise_std^2) per unit (noise reaches unstable points too).
    - `tol_q`, `dedup_tol`: `q < tol_q` keeps a candidate; distinct within `dedup_tol` on `[h, u]`.
    - `finder_options`: further keyword arguments of `find_fixed_points`; the search is
      bounded to (-1, 1), where every fixed point of a GRU or leaky tanh cell lies.
    - `progress`: progress bar over replicates; `finder_progress`: the finder's own bars too
      (off keeps executed notebooks readable: one bar instead of two per replicate).
    """
    if goals is None:
        if n_grid % 2 == 0:
            raise ValueError(f"n_grid must be odd so that the workspace centre is a goal; got {n_grid}")
        goals = grid_centres(np.asarray(workspace, float), n_grid)
    goals = np.asarray(goals, float)
    if goals.ndim != 2 or goals.shape[1] != 2 or len(goals) == 0:
        raise ValueError(f"goals must have shape (goal, 2); got {goals.shape}")
    if n_steps < 2 or n_starts < 1 or noise_std < 0:
        raise ValueError(f"need n_steps >= 2, n_starts >= 1, noise_std >= 0; got {n_steps}, {n_starts}, {noise_std}")
    context_rows = _context_rows(model, contexts)
    options = {"bounds": (-1.0, 1.0), **(finder_options or {})}
    n_goal, n_ctx = len(goals), len(context_rows)
    context_value = context_rows[:, 0] if context_rows.shape[1] == 1 else np.arange(n_ctx)  # table key
    dt = float(model.plant.dt)
    n_rep = replicate_count(model)
    pairs = _neighbour_pairs(goals)

    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in ("points", "spectra", "conditions", "neighbours")}
    h_all, u_all, sv_all, hold_all = [], [], [], []
    for replicate, rep_key in progress_bar(list(enumerate(jax.random.split(key, n_rep))), desc="goal sweep: replicates",
                                   disable=not progress):
        single = select_replicate(model, replicate) if is_ensemble(model) else model
        step = single.controller.step
        hold_key, start_key = jax.random.split(rep_key)
        inputs = np.asarray(steady_state_inputs(single, goals, context_rows))  # (ctx, goal, input)
        hold = np.asarray(hold_hidden_states(single, goals, context_rows, n_steps=n_steps, key=hold_key))
        hold_all.append(hold)
        settled = hold[:, :, n_steps // 2:]  # (ctx, goal, time, hidden)
        end_state = hold[:, :, -max(1, n_steps // 10):].mean(axis=2)  # where the trial rests
        keys = jax.random.split(start_key, n_ctx * n_goal).reshape(n_ctx, n_goal, -1)
        starts = jax.vmap(jax.vmap(lambda k, s: sample_starts(k, s, n_starts, noise_std)))(keys, jnp.asarray(settled))
        h0 = np.asarray(starts).reshape(-1, hold.shape[-1])
        u = np.repeat(inputs.reshape(n_ctx * n_goal, -1), n_starts, axis=0)
        result = find_fixed_points(step, h0, u, tol_q=tol_q, progress=progress and finder_progress, **options)

        rows, hs, us = [], [], []
        for c in range(n_ctx):
            for g in range(n_goal):
                cond = np.arange((c * n_goal + g) * n_starts, (c * n_goal + g + 1) * n_starts)
                part = result.select(cond)
                distinct = filter_fixed_points(part, tol_q=tol_q, dedup_tol=dedup_tol)
                h_d = np.asarray(distinct.result.h)
                dist = np.linalg.norm(h_d - end_state[c, g], axis=1) if len(h_d) else np.zeros(0)
                hold_index = int(np.argmin(dist)) if len(h_d) else -1
                spread = (np.linalg.norm(h_d[:, None] - h_d[None], axis=-1).max() if len(h_d) > 1 else 0.0)
                for i in range(len(h_d)):
                    rows.append({"replicate": replicate, "goal": g, "goal_x": goals[g, 0], "goal_y": goals[g, 1],
                                     "context": context_value[c], "n_starts": int(distinct.n_merged[i]),
                                     "is_hold_point": i == hold_index, "distance_to_hold_end": float(dist[i]),
                                     "q": float(np.asarray(distinct.result.q)[i])})
                hs.append(h_d)
                us.append(np.asarray(distinct.result.u))
                tables["conditions"].append(pd.DataFrame([{
                    "replicate": replicate, "goal": g, "goal_x": goals[g, 0], "goal_y": goals[g, 1], "context": context_value[c],
                    "n_candidates": n_starts, "n_converged": int(np.sum(np.asarray(part.converged))),
                    "n_distinct": len(h_d), "within_goal_spread": float(spread),
                    "hold_distance": float(dist[hold_index]) if len(h_d) else np.nan,
                }]))
        keys_frame = pd.DataFrame(rows)
        h_rep, u_rep = np.concatenate(hs), np.concatenate(us)
        if len(h_rep):
            lin = linearise(step, h_rep, u_rep)
            readout = np.asarray(single.controller.readout.weight)
            table = points_table(lin, dt=dt, readout=readout, keys=keys_frame.drop(columns="q"), q=keys_frame["q"])
            tables["points"].append(table)
            tables["spectra"].append(spectra_table(lin, dt=dt, readout=readout,
                                                   keys=keys_frame[["replicate", "goal", "context", "is_hold_point"]]))
            tables["neighbours"].append(_neighbour_table(replicate, goals, context_value, pairs, keys_frame, h_rep,
                                                         u_rep, lin))
        h_all.append(h_rep)
        u_all.append(u_rep)
        sv_all.append(lin.input_sv if len(h_rep) else np.zeros((0, min(h_rep.shape[1], u_rep.shape[1]))))

    points = _concat(tables["points"])
    if len(points):  # a running index over the whole sweep, matching the rows of `h`
        points["point"] = np.arange(len(points))
    conditions = _concat(tables["conditions"])
    neighbours = _concat(tables["neighbours"])
    spectra = _concat(tables["spectra"])
    if len(spectra):
        offsets = np.cumsum([0] + [len(t) for t in tables["points"]])[:-1]
        spectra["point"] = spectra["point"] + np.repeat(offsets, [len(t) for t in tables["spectra"]])
    return GoalSweep(
        points=points, spectra=spectra, conditions=conditions, neighbours=neighbours,
        summary=_summary(conditions, neighbours, points, np.concatenate(h_all) if h_all else np.zeros((0, 0))),
        h=np.concatenate(h_all) if h_all else np.zeros((0, 0)), hold_hidden=np.stack(hold_all),
        u=np.concatenate(u_all) if u_all else np.zeros((0, 0)),
        input_sv=np.concatenate(sv_all) if sv_all else np.zeros((0, 0)),
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _neighbour_table(replicate, goals, context_value, pairs, keys, h, u, lin) -> pd.DataFrame:
    """Per neighbouring pair of goals (both ways) and context: the distance between hold
    points, and the relative error of the first-order prediction `(I - J)^{-1} B du`."""
    rows = []
    hold = keys[keys["is_hold_point"]]
    eye = np.eye(h.shape[1])
    for c in np.unique(keys["context"]):
        index = {int(r.goal): int(i) for i, r in hold[hold["context"] == c].iterrows()}
        for a, b in [*map(tuple, pairs), *map(tuple, pairs[:, ::-1])]:
            if a not in index or b not in index:
                continue
            i, j = index[a], index[b]
            actual = h[j] - h[i]
            predicted = np.linalg.solve(eye - lin.jac_h[i], lin.jac_u[i] @ (u[j] - u[i]))
            norm = np.linalg.norm(actual)
            rows.append({"replicate": replicate, "context": c, "goal": a, "neighbour": b,
                             "goal_step": float(np.linalg.norm(goals[b] - goals[a])), "distance": float(norm),
                             "predicted_distance": float(np.linalg.norm(predicted)),
                             "tangent_error": float(np.linalg.norm(actual - predicted) / norm) if norm > 0 else 0.0})
    return pd.DataFrame(rows)


def _summary(conditions: pd.DataFrame, neighbours: pd.DataFrame, points: pd.DataFrame, h: np.ndarray) -> pd.DataFrame:
    """Per (replicate, context): how many fixed points per goal, how far hold points move
    between neighbouring goals against the spread within a goal, the median tangent error,
    and the share of hold-point variance in the first two principal components across goals."""
    if conditions.empty:
        return pd.DataFrame()
    keys = ["replicate", "context"]
    out = conditions.groupby(keys).agg(
        n_goals=("goal", "size"), mean_distinct=("n_distinct", "mean"), max_distinct=("n_distinct", "max"),
        goals_without_point=("n_distinct", lambda x: int(np.sum(x == 0))),
        max_within_goal_spread=("within_goal_spread", "max"), max_hold_distance=("hold_distance", "max"),
    )
    if not points.empty:
        hold = points[points["is_hold_point"]]
        out["hold_points_stable"] = hold.groupby(keys)["stability"].agg(lambda s: float(np.mean(s == "stable")))

        def pc2_share(rows: pd.DataFrame) -> float:
            x = h[rows["point"].to_numpy()]
            s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
            return float(s[:2].sum() / s.sum()) if len(x) > 2 and s.sum() > 0 else np.nan

        out["hold_variance_in_2_pcs"] = hold.groupby(keys)[["point"]].apply(pc2_share)
    if not neighbours.empty:
        grouped = neighbours.groupby(keys)
        out["median_neighbour_distance"] = grouped["distance"].median()
        out["median_tangent_error"] = grouped["tangent_error"].median()
        out["max_tangent_error"] = grouped["tangent_error"].max()
    return out.reset_index()

"""Linearising a goal sweep's fixed points again, and checking that the linearisation
predicts the network's next step.

The sweep keeps tables, not Jacobians (they would dominate the cache), so figures and checks
that need eigenvectors or `J` recompute them for the points they show; this is cheap.

The one-step check perturbs a fixed point `(h*, u*)` by `dh` (state) or `du` (input) of norm
`s` in random directions and compares the change `F(h* + dh, u* + du) - F(h*, u*)` with its
linear prediction `J dh + B du`. For a smooth `F` the relative error is the second-order remainder,
so it grows in proportion to `s` (slope 1 on log-log axes) until the linearisation fails.
It runs in float64, so that rounding does not swamp the error at small `s`.

```python
rows, lin = replicate_linearisation(model, sweep, replicate=0)   # rows of sweep.points
check = one_step_check(model, sweep, scales=[1e-3, 1e-2, 1e-1], n_samples=8, key=key)
one_step_summary(check)
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import pandas as pd
from jaxtyping import PRNGKeyArray

from robustreach.fixed_points.linearise import Linearisation, jacobians, linearisation_error, linearise
from robustreach.fixed_points.summaries import centre_goal
from robustreach.fixed_points.sweep import GoalSweep
from robustreach.model import ReachingModel, is_ensemble, replicate_count, select_replicate


def replicate_model(model: ReachingModel, replicate: int) -> ReachingModel:
    """One replicate of an ensemble (the model itself if it is a single network)."""
    if not is_ensemble(model):
        if replicate != 0:
            raise ValueError(f"a single model has only replicate 0; got {replicate}")
        return model
    n = replicate_count(model)
    if not 0 <= replicate < n:
        raise ValueError(f"replicate must lie in 0..{n - 1}; got {replicate}")
    return select_replicate(model, replicate)


def replicate_linearisation(model: ReachingModel, sweep: GoalSweep, replicate: int) -> tuple[pd.DataFrame, Linearisation]:
    """The sweep's fixed points of one replicate (rows of `sweep.points`) and their
    linearisation under that replicate's step."""
    rows = sweep.points[sweep.points["replicate"] == replicate] if len(sweep.points) else sweep.points
    if rows.empty:
        raise ValueError(f"the sweep has no fixed points for replicate {replicate}")
    index = rows["point"].to_numpy()
    step = replicate_model(model, replicate).controller.step
    return rows, linearise(step, sweep.h[index], sweep.u[index])


def _unit_rows(key: PRNGKeyArray, n: int, dim: int) -> np.ndarray:
    x = np.asarray(jax.random.normal(key, (n, dim)), np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def one_step_check(
    model: ReachingModel,
    sweep: GoalSweep,
    *,
    scales: Sequence[float],
    n_samples: int,
    key: PRNGKeyArray,
    goal: int | None = None,
) -> pd.DataFrame:
    """Relative error of the linear one-step prediction at the hold points of one goal
    (default: the centre goal), for every replicate and context.

    One row per (replicate, context, kind, scale, sample): `kind` "state" perturbs `h` by a
    random direction of norm `scale` (with `du = 0`), "input" perturbs `u` likewise (with
    `dh = 0`); `error` is `||F(h*+dh, u*+du) - F(h*, u*) - (J dh + B du)|| / ||J dh + B du||`.
    """
    scales = [float(s) for s in scales]
    if not scales or any(not s > 0 for s in scales) or n_samples < 1:
        raise ValueError(f"need positive scales and n_samples >= 1; got {scales} and {n_samples}")
    points = sweep.points
    if points.empty:
        raise ValueError("the sweep has no fixed points to check")
    goal = centre_goal(points) if goal is None else goal
    hold = points[points["is_hold_point"] & (points["goal"] == goal)]
    if hold.empty:
        raise ValueError(f"the sweep has no hold point at goal {goal}")
    rows = []
    with jax.enable_x64(True):
        for (replicate, context, point), k in zip(hold[["replicate", "context", "point"]].itertuples(index=False),
                                                   jax.random.split(key, len(hold))):
            single = replicate_model(model, int(replicate))
            step = jtu.tree_map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x,
                                single.controller.step)
            h, u = np.asarray(sweep.h[point], np.float64), np.asarray(sweep.u[point], np.float64)
            jac_h, jac_u = jacobians(step, h[None], u[None])
            k_state, k_input = jax.random.split(k)
            for kind, direction_key, dim in (("state", k_state, h.size), ("input", k_input, u.size)):
                directions = _unit_rows(direction_key, n_samples, dim)
                for scale in scales:
                    dh = scale * directions if kind == "state" else np.zeros((n_samples, h.size))
                    du = scale * directions if kind == "input" else np.zeros((n_samples, u.size))
                    error = linearisation_error(step, h, u, jac_h[0], jac_u[0], dh, du)
                    rows += [{"replicate": int(replicate), "context": context, "goal": goal, "kind": kind,
                              "scale": scale, "sample": i, "error": float(e)} for i, e in enumerate(error)]
    return pd.DataFrame(rows)


def one_step_summary(checks: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Median and 90th percentile of the relative error per (condition,) kind and scale, and
    the log-log slope of the median against the scale (1: a second-order remainder)."""
    if isinstance(checks, Mapping):
        checks = pd.concat([c.assign(condition=label) for label, c in checks.items()], ignore_index=True)
    keys = [k for k in ("condition", "kind") if k in checks]
    table = checks.groupby([*keys, "scale"])["error"].agg(
        median="median", p90=lambda e: float(np.quantile(e, 0.9))).reset_index()

    def slope(rows: pd.DataFrame) -> float:
        ok = rows["median"] > 0
        if ok.sum() < 2:
            return np.nan
        return float(np.polyfit(np.log10(rows.loc[ok, "scale"]), np.log10(rows.loc[ok, "median"]), 1)[0])

    slopes = table.groupby(keys)[["scale", "median"]].apply(slope).rename("slope")
    return table.merge(slopes.reset_index(), on=keys)


def one_step_text(summary: pd.DataFrame) -> str:
    """Markdown stating a `one_step_summary`: per kind of perturbation, the error at the
    smallest and largest scale and the slope, and what the slope means."""
    lines = []
    for kind, rows in summary.groupby("kind", sort=False):
        rows = rows.sort_values("scale")
        small, large = rows[rows["scale"] == rows["scale"].min()], rows[rows["scale"] == rows["scale"].max()]
        slope_low, slope_high = rows["slope"].min(), rows["slope"].max()
        slope = f"{slope_low:.2f}" if np.isclose(slope_low, slope_high, atol=0.005) else f"{slope_low:.2f} to {slope_high:.2f}"
        fits = np.all(np.abs(rows["slope"] - 1) < 0.25)
        meaning = ("so the error is the second-order remainder of a smooth map and the modes describe the "
                   "network near the hold point" if fits else
                   "so the error does not scale like a second-order remainder over this range (rounding at "
                   "the small end, or the linearisation failing at the large end)")
        lines.append(f"- **{kind} perturbations**: median relative error {small['median'].max():.2g} at norm "
                     f"{small['scale'].iloc[0]:g} and {large['median'].max():.2g} at norm {large['scale'].iloc[0]:g} "
                     f"(worst condition); log-log slope {slope}, {meaning}.")
    return "\n".join(lines)

"""Continuation of fixed points of `F(h, u)` along a path of inputs `u(s)`, `s` in [0, 1].

A fixed point moves with the input: the solutions of `G(h, s) = F(h, u(s)) - h = 0` form
curves (branches) in `(h, s)` space. Pseudo-arclength continuation follows a branch in
steps of length `delta` along its tangent, so it passes folds (where the branch turns back
in `s`) instead of failing there as re-solving at each input would:

1. tangent `t`: the unit null vector of the augmented Jacobian `[dF/dh - I, dF/du du/dsigma]`,
   oriented to keep the direction of travel (`t . t_previous > 0`);
2. predictor `x_pred = x + delta t`, with `x = (h, sigma)`;
3. corrector: Newton's method with the exact Jacobian (`jax.jacfwd`) on the bordered system
   `G(x) = 0, t . (x - x_pred) = 0`;
4. adaptive step: `delta` grows after quick convergence and halves after a failed correction;
   a branch is *lost* when `delta` falls below `min_step`.

`sigma = s L` is the distance along the path in input units (`L` the path's length), so the
arclength is measured in `[h, u]` units, as the finder's de-duplication is. A path is a
piecewise-linear curve through `knots` (two knots: a straight segment); beyond its ends it is
extended linearly, so a corrector may step slightly past an end, and a branch that reaches an
end is landed on it exactly (Newton at fixed `s`).

Every branch runs inside one `lax.while_loop` under `vmap` (branches that have stopped are
masked), in float64 by default (a scoped `jax.enable_x64`; the global setting is left alone).
Branches of different replicates of an ensemble run together: pass the ensemble's step and
each branch's `replicate`.

Residuals: `q = 1/2 ||F(h, u) - h||^2` (a sum over units), as in the finder.

```python
path = InputPath.segment(u_start, u_end)
branches = continue_branches(step, h0, path)          # h0: fixed points at s = 0, one per branch
branches.h[b, :branches.n_points[b]]                  # the branch's points; .s, .u, .tangent too
```
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from robustreach.fixed_points.finder import StepFn

RUNNING, END, START, LOST, MAX_POINTS = 0, 1, 2, 3, 4
STATUS = {RUNNING: "running", END: "end", START: "start", LOST: "lost", MAX_POINTS: "max_points"}
"""Why a branch stopped: it reached the path's end (`s = 1`) or start (`s = 0`), it was lost
(no correction converged even at `min_step`), or it filled `max_points`."""

DEFAULT_TOL_Q = {"float64": 1e-20, "float32": 1e-10}
"""Newton tolerance on `q` by precision: float64 gives `||F - h|| < 1.4e-10`."""


class InputPath(eqx.Module):
    """A piecewise-linear path through `knots` in input space, parametrised by the distance
    `sigma` along it (0 at the first knot, `length` at the last), extended linearly beyond."""

    knots: Float[Array, "knot input"]

    @staticmethod
    def segment(start: Float[ArrayLike, " input"], end: Float[ArrayLike, " input"]) -> InputPath:
        """The straight segment from `start` to `end`."""
        return InputPath(jnp.stack([jnp.asarray(start), jnp.asarray(end)]))

    @property
    def cumulative(self) -> Float[Array, " knot"]:
        seg = jnp.linalg.norm(jnp.diff(self.knots, axis=0), axis=-1)
        return jnp.concatenate([jnp.zeros(1, self.knots.dtype), jnp.cumsum(seg)])

    @property
    def length(self) -> Float[Array, ""]:
        return self.cumulative[-1]

    def __call__(self, sigma: Float[ArrayLike, ""]) -> Float[Array, " input"]:
        cum = self.cumulative
        k = jnp.clip(jnp.searchsorted(cum, sigma, side="right") - 1, 0, cum.shape[0] - 2)
        frac = (sigma - cum[k]) / (cum[k + 1] - cum[k])
        return self.knots[k] + frac * (self.knots[k + 1] - self.knots[k])


class Branches(NamedTuple):
    """Continued branches (host NumPy arrays; entries past `n_points[b]` are NaN).

    - `h`, `s`, `u`: points of each branch (`s` in [0, 1], `u = path(s)`).
    - `tangent`: unit tangents in `(h, sigma)` space (`sigma = s L`).
    - `q`: `1/2 ||F(h, u) - h||^2` at each point (recomputed after the run).
    - `n_points`, `status` (see `STATUS`), `arclength` travelled, `n_newton` (Newton
      iterations, failed corrections included), `n_rejected` (failed corrections).
    - `knots` (branch, knot, input), `replicate` (index into an ensemble step, or None).
    """

    h: Float[np.ndarray, "branch point hidden"]
    s: Float[np.ndarray, "branch point"]
    u: Float[np.ndarray, "branch point input"]
    tangent: Float[np.ndarray, "branch point n1"]
    q: Float[np.ndarray, "branch point"]
    n_points: Int[np.ndarray, " branch"]
    status: np.ndarray
    arclength: Float[np.ndarray, " branch"]
    n_newton: Int[np.ndarray, " branch"]
    n_rejected: Int[np.ndarray, " branch"]
    knots: Float[np.ndarray, "branch knot input"]
    replicate: Int[np.ndarray, " branch"] | None

    def __len__(self) -> int:
        return int(self.h.shape[0])

    def points(self, branch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(h, s, u)` of one branch, without padding."""
        n = int(self.n_points[branch])
        return self.h[branch, :n], self.s[branch, :n], self.u[branch, :n]


def to_float64(tree):
    """Cast the floating-point array leaves of a pytree (e.g. a step's weights) to float64;
    call inside `jax.enable_x64(True)`."""
    return jtu.tree_map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, tree)


def branch_step(step, replicate: int | None) -> StepFn:
    """The step of one branch: `step` itself, or replicate `replicate` of an ensemble step."""
    return step if replicate is None else jtu.tree_map(lambda x: x[replicate] if eqx.is_array(x) else x, step)


def residual(step: StepFn, path: InputPath, x: Float[Array, " n1"]) -> Float[Array, " hidden"]:
    """`G(x) = F(h, u(sigma)) - h` at `x = (h, sigma)`."""
    return step(x[:-1], path(x[-1])) - x[:-1]


def _bordered(step, path, x, row):
    a, g = jax.jacfwd(lambda x_: (residual(step, path, x_),) * 2, has_aux=True)(x)
    return g, jnp.concatenate([a, row[None]], axis=0)


def correct(step, path, x, row, target, tol_q, max_newton):
    """Newton's method on `G(x) = 0, row . x = target` from `x`, with the exact Jacobian.

    Stops once `q = 1/2 ||G||^2 < tol_q`, on a non-finite iterate, on a Newton step longer
    than the one before (no contraction, e.g. at the rounding floor), or after `max_newton`
    iterations. Returns the last iterate, its `q` (it converged if `q < tol_q`) and the number
    of iterations.
    """

    def cond(carry):
        i, _, q, _, failed = carry
        return (i < max_newton) & ~(q < tol_q) & ~failed

    def body(carry):
        i, x, _, last, _ = carry
        g, m = _bordered(step, path, x, row)
        dx = jnp.linalg.solve(m, -jnp.concatenate([g, (row @ x - target)[None]]))
        x = x + dx
        size = jnp.linalg.norm(dx)
        g = residual(step, path, x)
        q = 0.5 * jnp.sum(g * g)
        failed = ~jnp.isfinite(q) | (size > last)
        return i + 1, x, q, size, failed

    g0 = residual(step, path, x)
    q0 = 0.5 * jnp.sum(g0 * g0)
    inf = jnp.asarray(jnp.inf, x.dtype)
    i, x, q, _, _ = jax.lax.while_loop(cond, body, (jnp.asarray(0), x, jnp.where(row @ x == target, q0, inf), inf,
                                                     jnp.asarray(False)))
    return x, q, i


def tangent(step, path, x, reference):
    """Unit null vector of `dG/dx` at `x`, oriented so that `t . reference > 0`."""
    _, m = _bordered(step, path, x, reference)
    t = jnp.linalg.solve(m, jnp.zeros(x.shape[0], x.dtype).at[-1].set(1.0))
    return t / jnp.linalg.norm(t)


def _continue_one(step, path, h0, sigma0, direction, first_step, min_step, max_step, tol_q, max_newton, min_cos,
                  max_points):
    """One branch from `(h0, sigma0)` towards `direction` (+1: s = 1, -1: s = 0).

    The first pass through the loop corrects `h0` at fixed `sigma0` (point 0); every later
    pass is one predictor-corrector attempt. One corrector and one tangent in the loop body
    keep the compiled program small.
    """
    n1 = h0.shape[0] + 1
    dtype = h0.dtype
    end = path.length
    unit_sigma = jnp.zeros(n1, dtype).at[-1].set(1.0)
    x0 = jnp.concatenate([h0, sigma0[None]])
    xs = jnp.full((max_points, n1), jnp.nan, dtype)
    carry = (x0, direction * unit_sigma, jnp.asarray(first_step, dtype), jnp.asarray(RUNNING), jnp.asarray(0), xs,
             xs, jnp.asarray(0), jnp.asarray(0), jnp.asarray(0.0, dtype))

    def cond(carry):
        return carry[3] == RUNNING

    def body(carry):
        x, t, delta, status, k, xs, ts, n_newton, n_rejected, arclength = carry
        first = k == 0
        sigma_pred = x[-1] + delta * t[-1]
        beyond = ~first & ((sigma_pred > end) | (sigma_pred < 0))
        sigma_end = jnp.where(sigma_pred > end, end, 0.0)
        # Near an end, land on it: predict to where the tangent meets it, correct at fixed s.
        reach = jnp.where(beyond, (sigma_end - x[-1]) / jnp.where(t[-1] == 0, 1.0, t[-1]),
                          jnp.where(first, 0.0, delta))
        x_pred = x + reach * t
        row = jnp.where(beyond | first, unit_sigma, t)
        x_new, q, iters = correct(step, path, x_pred, row, row @ x_pred, tol_q, max_newton)
        ok = q < tol_q
        t_new = tangent(step, path, x_new, t)
        inside = (x_new[-1] >= 0) & (x_new[-1] <= end)
        ok = ok & jnp.all(jnp.isfinite(t_new)) & (first | (
            (t_new @ t > min_cos) & (jnp.linalg.norm(x_new - x) < 2 * jnp.maximum(delta, reach)) & (beyond | inside)))
        grow = jnp.where(iters <= 2, 1.5, jnp.where(iters <= 4, 1.0, 0.7))
        # Written whether accepted or not: entries from k on are not kept.
        xs, ts = xs.at[k].set(x_new), ts.at[k].set(t_new)
        arclength = arclength + jnp.where(ok & ~first, jnp.linalg.norm(x_new - x), 0.0)
        k_new = k + ok
        delta_new = jnp.where(ok | first, jnp.minimum(delta * jnp.where(first, 1.0, grow), max_step), delta / 2)
        status = jnp.where(ok & beyond, jnp.where(sigma_end == end, END, START), status)
        status = jnp.where(~ok & (first | (delta_new < min_step)), LOST, status)
        status = jnp.where((status == RUNNING) & (k_new >= max_points), MAX_POINTS, status)
        return (jnp.where(ok, x_new, x), jnp.where(ok, t_new, t), delta_new, status, k_new, xs, ts,
                n_newton + iters, n_rejected + (~ok & ~first), arclength)

    _, _, _, status, k, xs, ts, n_newton, n_rejected, arclength = jax.lax.while_loop(cond, body, carry)
    return xs, ts, k, status, n_newton, n_rejected, arclength


@eqx.filter_jit
def _continue_all(step, knots, replicate, h0, sigma0, direction, options):
    def one(knots_, replicate_, h0_, sigma0_, direction_):
        path = InputPath(knots_)
        step_ = step if replicate_ is None else branch_step(step, replicate_)
        return _continue_one(step_, path, h0_, sigma0_, direction_, **options)

    return jax.vmap(one)(knots, replicate, h0, sigma0, direction)


@eqx.filter_jit
def _q_along(step, knots, replicate, xs):
    def one(knots_, replicate_, xs_):
        path, step_ = InputPath(knots_), (step if replicate_ is None else branch_step(step, replicate_))
        g = jax.vmap(lambda x: residual(step_, path, jnp.nan_to_num(x)))(xs_)
        return 0.5 * jnp.sum(g * g, axis=-1)

    return jax.vmap(one)(knots, replicate, xs)


def _knots_per_branch(knots: ArrayLike, n_branch: int) -> np.ndarray:
    knots = np.asarray(knots, np.float64)
    if knots.ndim == 2:
        knots = np.broadcast_to(knots, (n_branch, *knots.shape))
    if knots.ndim != 3 or knots.shape[0] != n_branch or knots.shape[1] < 2:
        raise ValueError(f"path knots must have shape (knot, input) or ({n_branch}, knot, input) with at least "
                         f"two knots; got {knots.shape}")
    segments = np.linalg.norm(np.diff(knots, axis=1), axis=-1)
    if not np.all(np.isfinite(knots)) or np.any(segments <= 0):
        raise ValueError("path knots must be finite, and consecutive knots distinct (no zero-length segments)")
    return knots


def continue_branches(
    step: StepFn,
    h0: Float[ArrayLike, "branch hidden"],
    path: InputPath | Float[ArrayLike, "knot input"] | Float[ArrayLike, "branch knot input"],
    *,
    s0: float | Float[ArrayLike, " branch"] = 0.0,
    direction: int | Int[ArrayLike, " branch"] = 1,
    replicate: Int[ArrayLike, " branch"] | None = None,
    first_step: float = 0.01,
    min_step: float = 1e-8,
    max_step: float = 0.05,
    tol_q: float | None = None,
    max_newton: int = 8,
    min_cos: float = 0.9,
    max_points: int = 500,
    float64: bool = True,
) -> Branches:
    """Follow the fixed point of `step` through each `h0[b]` along its input path.

    **Arguments:**

    - `step`: pure JAX `F(h, u) -> h` (an ensemble's step when `replicate` is given: each
      array leaf has a leading replicate axis, and branch `b` uses `replicate[b]`).
    - `h0`: a fixed point (or a good guess: it is corrected at `s0` first) per branch.
    - `path`: an `InputPath` or its knots, shared or one per branch `(branch, knot, input)`.
    - `s0`, `direction`: where each branch starts on its path (in [0, 1]) and which way it
      goes (+1 towards `s = 1`, -1 towards `s = 0`).
    - `first_step`, `min_step`, `max_step`: step lengths in `(h, sigma)` arclength.
    - `tol_q`: the corrector's tolerance on `q = 1/2 ||F(h, u) - h||^2` (sum over units);
      default `DEFAULT_TOL_Q` for the precision.
    - `max_newton`: Newton iterations per correction before it counts as failed.
    - `min_cos`: smallest cosine between successive tangents; a sharper turn is refused
      (a shorter step is tried), which keeps the corrector from jumping between branches.
    - `max_points`: points stored per branch (the branch stops with status "max_points").
    - `float64`: run in float64 inside a scoped `jax.enable_x64`.
    """
    h0 = np.asarray(h0)
    if h0.ndim != 2 or h0.shape[0] == 0:
        raise ValueError(f"h0 must have shape (branch, hidden) with at least one branch; got {h0.shape}")
    n_branch = h0.shape[0]
    knots = _knots_per_branch(path.knots if isinstance(path, InputPath) else path, n_branch)
    s0 = np.broadcast_to(np.asarray(s0, np.float64), (n_branch,))
    direction = np.broadcast_to(np.asarray(direction), (n_branch,))
    if np.any((s0 < 0) | (s0 > 1)) or not np.all(np.isin(direction, (-1, 1))):
        raise ValueError(f"s0 must lie in [0, 1] and direction be +1 or -1; got {s0} and {direction}")
    if not 0 < min_step <= first_step <= max_step:
        raise ValueError(f"need 0 < min_step <= first_step <= max_step; got {min_step}, {first_step}, {max_step}")
    if int(max_points) < 2 or int(max_newton) < 1 or not -1 <= min_cos < 1:
        raise ValueError(f"need max_points >= 2, max_newton >= 1, -1 <= min_cos < 1; got {max_points}, {max_newton}, "
                         f"{min_cos}")
    precision = "float64" if float64 else "float32"
    tol_q = DEFAULT_TOL_Q[precision] if tol_q is None else float(tol_q)
    if replicate is not None:
        replicate = np.broadcast_to(np.asarray(replicate, np.int32), (n_branch,))
        n_rep = {np.shape(x)[0] for x in jtu.tree_leaves(step) if eqx.is_array(x)}
        if len(n_rep) != 1 or replicate.min() < 0 or replicate.max() >= n_rep.pop():
            raise ValueError("with replicate, step must be an ensemble (every array leaf with the same leading "
                             "replicate axis) and replicate indices must lie within it")
    with jax.enable_x64(float64):
        dtype = jnp.float64 if float64 else jnp.float32
        # Numbers as arrays, so that changing them does not recompile; counts are static.
        options = {name: jnp.asarray(value, dtype) for name, value in dict(
            first_step=first_step, min_step=min_step, max_step=max_step, tol_q=tol_q, min_cos=min_cos).items()}
        options.update(max_newton=int(max_newton), max_points=int(max_points))
        step_run = to_float64(step) if float64 else step
        knots_j = jnp.asarray(knots, dtype)
        lengths = np.linalg.norm(np.diff(knots, axis=1), axis=-1).sum(axis=1)
        rep = None if replicate is None else jnp.asarray(replicate)
        out = _continue_all(step_run, knots_j, rep, jnp.asarray(h0, dtype), jnp.asarray(s0 * lengths, dtype),
                            jnp.asarray(direction, dtype), options)
        xs, ts, k, status, n_newton, n_rejected, arclength = out
        q = _q_along(step_run, knots_j, rep, xs)
        xs, ts, q = np.asarray(xs, np.float64), np.asarray(ts, np.float64), np.asarray(q, np.float64)
        u = np.asarray(jax.vmap(lambda kn, x: jax.vmap(InputPath(kn))(jnp.nan_to_num(x[:, -1])))(knots_j,
                                                                                                   jnp.asarray(xs)))
    valid = np.arange(xs.shape[1])[None] < np.asarray(k)[:, None]
    nan = lambda a: np.where(valid.reshape(valid.shape + (1,) * (a.ndim - 2)), a, np.nan)
    return Branches(
        h=nan(xs[..., :-1]), s=nan(xs[..., -1] / lengths[:, None]), u=nan(np.asarray(u, np.float64)),
        tangent=nan(ts), q=nan(q), n_points=np.asarray(k), status=np.asarray([STATUS[int(c)] for c in status]),
        arclength=np.asarray(arclength, np.float64), n_newton=np.asarray(n_newton), n_rejected=np.asarray(n_rejected),
        knots=knots, replicate=replicate,
    )


def points_at(
    step: StepFn,
    branches: Branches,
    s: Float[ArrayLike, " sample"],
    *,
    branch: int | None = None,
    tol_q: float | None = None,
    max_newton: int = 8,
) -> list[list[tuple[float, np.ndarray]]]:
    """Where each branch crosses the path positions `s`: for every branch, a list of
    `(s_value, h)` pairs, one per crossing (a branch that folds crosses some `s` several
    times). Each `h` is solved at exactly that `s` by Newton's method (float64), starting
    from the chord between the two branch points that bracket it. At a fold or branch point
    itself that solve is singular, so sample positions there are unreliable."""
    s = np.asarray(s, np.float64).ravel()
    tol_q = DEFAULT_TOL_Q["float64"] if tol_q is None else tol_q
    out = []
    with jax.enable_x64(True):
        step64 = to_float64(step)
        for b in range(len(branches)) if branch is None else [branch]:
            h, sb, _ = branches.points(b)
            knots = jnp.asarray(branches.knots[b])
            path = InputPath(knots)
            length = float(path.length)
            one_step = branch_step(step64, None if branches.replicate is None else int(branches.replicate[b]))
            crossings = []
            for target in s:
                d = sb - target
                exact = np.flatnonzero(d == 0)
                brackets = np.flatnonzero(d[:-1] * d[1:] < 0)
                for i in sorted({*exact.tolist(), *brackets.tolist()}):
                    w = 0.0 if d[i] == 0 else d[i] / (d[i] - d[i + 1])
                    guess = (1 - w) * h[i] + w * h[min(i + 1, len(h) - 1)]
                    x0 = jnp.asarray(np.append(guess, target * length))
                    row = jnp.zeros(x0.shape[0]).at[-1].set(1.0)
                    x, q, _ = _correct_jit(one_step, path, x0, row, jnp.asarray(target * length),
                                           jnp.asarray(tol_q), max_newton)
                    if bool(q < tol_q):
                        crossings.append((float(target), np.asarray(x[:-1])))
            out.append(crossings)
    return out


_correct_jit = eqx.filter_jit(correct)

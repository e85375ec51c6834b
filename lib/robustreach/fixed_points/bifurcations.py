"""Where a continued branch of fixed points changes stability, and of which kind.

A fixed point loses (or gains) stability where an eigenvalue of `J = dF/dh` crosses the
unit circle. Each way of crossing has a test function that changes sign there:

| kind | crossing | test function |
|---|---|---|
| `fold` | real eigenvalue through +1, branch turns back in `s` | `ds/darclength`, the tangent's input component |
| `branch_point` | real eigenvalue through +1, branch goes on (transcritical, pitchfork) | `det(J - I)` |
| `flip` | real eigenvalue through -1 (period doubling) | `det(J + I)` |
| `neimark_sacker` | complex pair through the unit circle | `prod_{i<j} (lambda_i lambda_j - 1)` |

The last is the determinant of the bialternate product `J (.) J - I` written through the
eigenvalues; it also vanishes at a *neutral saddle* (two real eigenvalues with product 1,
not a bifurcation), so a zero counts as Neimark-Sacker only when a complex pair lies on the
unit circle there. A fold where the branch meets another (the symmetric branch of a
pitchfork) changes the tangent's sign but not `det(J - I)`: it is reported as a fold.

Signs are compared between successive branch points; a change is then located by bisection
along the branch (each trial point corrected onto it by Newton's method, as the continuation
does) until the bracket is shorter than `tol` in arclength. Adaptive steps keep two crossings
from falling between the same two points in practice, though nothing guarantees it.

```python
branches = continue_branches(step, h0, path)
eigvals = branch_eigenvalues(step, branches)            # (branch, point, mode), |lambda| descending
found = locate_bifurcations(step, branches, eigvals)    # .table, .h, .u at each bifurcation
```
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Complex, Float

from robustreach.fixed_points.continuation import (
    DEFAULT_TOL_Q,
    Branches,
    InputPath,
    StepFn,
    _correct_jit,
    branch_step,
    tangent,
    to_float64,
)

KINDS = ("fold", "branch_point", "flip", "neimark_sacker")
NS_TOL = 1e-3  # a complex pair within this of |lambda| = 1 at a located zero makes it Neimark-Sacker


class Bifurcations(NamedTuple):
    """Located bifurcations: `table` (one row each: `branch`, `kind`, `point` (the branch
    point before it), `s`, `arclength` from the branch's start, the critical eigenvalue
    `eig_real`, `eig_imag`, `abs`, `angle`, and `n_unstable` before and after), with `h` and
    `u` at each (rows of the table)."""

    table: pd.DataFrame
    h: Float[np.ndarray, "bifurcation hidden"]
    u: Float[np.ndarray, "bifurcation input"]


def sorted_eigenvalues(jac: Float[np.ndarray, "... n n"]) -> Complex[np.ndarray, "... n"]:
    """Eigenvalues by `|lambda|` descending, the positive imaginary part of a pair first
    (the convention of `linearise.eigendecompose`)."""
    w = np.linalg.eigvals(jac)
    order = np.lexsort((-w.imag, -np.round(np.abs(w), 10)), axis=-1)
    return np.take_along_axis(w, order, -1)


def bialternate_sign(eigvals: Complex[np.ndarray, "... n"]) -> np.ndarray:
    """Sign of `prod_{i<j} (lambda_i lambda_j - 1)` (real for a real matrix), from the sum of
    the factors' phases, so the product itself (which over- or underflows) is never formed."""
    w = np.asarray(eigvals)
    i, j = np.triu_indices(w.shape[-1], 1)
    phase = np.angle(w[..., i] * w[..., j] - 1).sum(axis=-1)
    return np.sign(np.round(np.cos(phase)))


def _jac_h(step, path, x):
    return jax.jacfwd(step)(x[:-1], path(x[-1]))


@eqx.filter_jit
def _jacs(step, path, xs):
    return jax.vmap(lambda x: _jac_h(step, path, x))(xs)


@eqx.filter_jit
def _probe(step, path, x, reference):
    """The tangent's input component and `dF/dh` at one point (one compiled call)."""
    return tangent(step, path, x, reference)[-1], _jac_h(step, path, x)


def _test_values(jac: np.ndarray, tangent_sigma: np.ndarray, eigvals: np.ndarray) -> dict[str, np.ndarray]:
    eye = np.eye(jac.shape[-1])
    return {
        "fold": np.sign(tangent_sigma),
        "branch_point": np.linalg.slogdet(jac - eye)[0],
        "flip": np.linalg.slogdet(jac + eye)[0],
        "neimark_sacker": bialternate_sign(eigvals),
    }


def branch_jacobians(step: StepFn, branches: Branches) -> list[Float[np.ndarray, "point hidden hidden"]]:
    """`dF/dh` at every point of every branch, in float64."""
    out = []
    with jax.enable_x64(True):
        step64 = to_float64(step)
        for b in range(len(branches)):
            h, s, _ = branches.points(b)
            path = InputPath(jnp.asarray(branches.knots[b]))
            one = _one_step(step64, branches, b)
            x = jnp.asarray(np.concatenate([h, (s * float(path.length))[:, None]], axis=1))
            out.append(np.asarray(_jacs(one, path, x)) if len(h) else np.zeros((0,) * 3))
    return out


def _one_step(step, branches: Branches, b: int):
    return branch_step(step, None if branches.replicate is None else int(branches.replicate[b]))


def branch_eigenvalues(step: StepFn, branches: Branches) -> Complex[np.ndarray, "branch point mode"]:
    """Eigenvalues of `dF/dh` along every branch (sorted by `|lambda|` descending; NaN past
    each branch's end)."""
    n_hidden = branches.h.shape[-1]
    out = np.full(branches.h.shape[:2] + (n_hidden,), np.nan + 0j)
    for b, jac in enumerate(branch_jacobians(step, branches)):
        if len(jac):
            out[b, :len(jac)] = sorted_eigenvalues(jac)
    return out


def _critical(kind: str, w: np.ndarray) -> complex | None:
    if kind in ("fold", "branch_point"):
        real = w[np.abs(w.imag) < 1e-9]
        return complex(real[np.argmin(np.abs(real - 1))]) if len(real) else complex(w[np.argmin(np.abs(w - 1))])
    if kind == "flip":
        return complex(w[np.argmin(np.abs(w + 1))])
    pairs = w[w.imag > 1e-9]
    if len(pairs) == 0:
        return None
    best = pairs[np.argmin(np.abs(np.abs(pairs) - 1))]
    return complex(best) if abs(abs(best) - 1) < NS_TOL else None


def locate_bifurcations(
    step: StepFn,
    branches: Branches,
    eigvals: Complex[np.ndarray, "branch point mode"] | None = None,
    *,
    tol: float = 1e-10,
    tol_q: float | None = None,
    max_newton: int = 12,
    max_bisections: int = 80,
) -> Bifurcations:
    """Every sign change of a test function between successive branch points, located by
    bisection along the branch to `tol` in arclength (see the module docstring).

    A sign change of `det(J - I)` at the same bracket as a fold is the fold itself, so it
    is reported once, as a fold. `tol_q` and `max_newton` are the corrector's (float64).
    """
    eigvals = branch_eigenvalues(step, branches) if eigvals is None else eigvals
    tol_q = DEFAULT_TOL_Q["float64"] if tol_q is None else tol_q
    rows, hs, us = [], [], []
    with jax.enable_x64(True):
        step64 = to_float64(step)
        jacs = branch_jacobians(step, branches)
        for b, jac in enumerate(jacs):
            n = int(branches.n_points[b])
            if n < 2:
                continue
            path = InputPath(jnp.asarray(branches.knots[b]))
            length = float(path.length)
            one = _one_step(step64, branches, b)
            x = np.concatenate([branches.h[b, :n], (branches.s[b, :n] * length)[:, None]], axis=1)
            t = branches.tangent[b, :n]
            signs = _test_values(jac, t[:, -1], eigvals[b, :n])
            chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(x, axis=0), axis=1))])
            n_unstable = np.sum(np.abs(eigvals[b, :n]) > 1, axis=1)
            for kind in KINDS:
                changes = np.flatnonzero(signs[kind][:-1] * signs[kind][1:] < 0)
                if kind == "branch_point":
                    changes = changes[~np.isin(changes, np.flatnonzero(signs["fold"][:-1] * signs["fold"][1:] < 0))]
                for i in changes:
                    located = _bisect(one, path, x[i], x[i + 1], t[i], kind, signs[kind][i], tol, tol_q, max_newton,
                                      max_bisections)
                    if located is None:
                        continue
                    x_star, w = located
                    critical = _critical(kind, w)
                    if critical is None:  # a neutral saddle, not a bifurcation
                        continue
                    rows.append({
                        "branch": b, "kind": kind, "point": int(i), "s": x_star[-1] / length,
                        "arclength": chord[i] + float(np.linalg.norm(x_star - x[i])),
                        "eig_real": critical.real, "eig_imag": critical.imag, "abs": abs(critical),
                        "angle": float(np.angle(critical)),
                        "n_unstable_before": int(n_unstable[i]), "n_unstable_after": int(n_unstable[i + 1]),
                    })
                    hs.append(x_star[:-1])
                    us.append(np.asarray(path(jnp.asarray(x_star[-1]))))
    table = pd.DataFrame(rows, columns=["branch", "kind", "point", "s", "arclength", "eig_real", "eig_imag", "abs",
                                        "angle", "n_unstable_before", "n_unstable_after"])
    order = table.sort_values(["branch", "arclength"]).index.to_numpy()
    n_hidden, n_input = branches.h.shape[-1], branches.knots.shape[-1]
    h = np.asarray(hs).reshape(-1, n_hidden)[order]
    u = np.asarray(us).reshape(-1, n_input)[order]
    return Bifurcations(table.loc[order].reset_index(drop=True), h, u)


def _bisect(step, path, x_a, x_b, t_a, kind, sign_a, tol, tol_q, max_newton, max_bisections):
    """Bisection on the arclength coordinate `tau = t_a . (x - x_a)` between two branch
    points; returns the located point and its eigenvalues, or None if a correction failed."""
    t_a_j = jnp.asarray(t_a)
    tight = 1e-12 * tol_q
    eye = np.eye(x_a.shape[0] - 1)

    def at(tau, tau_end):
        guess = x_a + (tau / tau_end) * (x_b - x_a)  # on the hyperplane t_a . (x - x_a) = tau
        # Newton to the rounding floor (`tight`): near a branch point the corrector is ill
        # conditioned and the location is only as good as the residual.
        x, q, _ = _correct_jit(step, path, jnp.asarray(guess), t_a_j, jnp.asarray(float(t_a @ x_a) + tau),
                               jnp.asarray(tight), max_newton)
        return np.asarray(x), bool(q < tol_q)

    def sign(x):
        t_sigma, jac = _probe(step, path, jnp.asarray(x), t_a_j)
        if kind == "fold":
            return np.sign(float(t_sigma))
        jac = np.asarray(jac)
        if kind == "branch_point":
            return np.linalg.slogdet(jac - eye)[0]
        if kind == "flip":
            return np.linalg.slogdet(jac + eye)[0]
        return bialternate_sign(np.linalg.eigvals(jac))

    lo, hi = 0.0, float(t_a @ (x_b - x_a))
    tau_end = hi
    for _ in range(max_bisections):
        if hi - lo <= tol:
            break
        mid = 0.5 * (lo + hi)
        x, ok = at(mid, tau_end)
        if not ok:
            return None
        if sign(x) == sign_a:
            lo = mid
        else:
            hi = mid
    x, ok = at(0.5 * (lo + hi), tau_end)
    if not ok:
        return None
    return x, sorted_eigenvalues(np.asarray(_probe(step, path, jnp.asarray(x), t_a_j)[1]))

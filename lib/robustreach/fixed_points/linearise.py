"""Linearisation at fixed points: Jacobians, eigenmodes, and labels per point.

Near a fixed point `(h*, u*)` of `F`, `F(h* + dh, u* + du) - h* ~ J dh + B du` with
`J = dF/dh` and `B = dF/du`. `J`'s eigenvalues `lambda` set what the network does there:
a mode with `|lambda| > 1` grows (the point is a saddle, or unstable if all modes grow),
`|lambda| < 1` decays with time constant `tau = -dt / log|lambda|`, and a complex pair
rotates `|arg lambda| / (2 pi dt)` cycles per unit time.

Conventions: eigenvalues are sorted by `|lambda|` descending (a conjugate pair with the
positive imaginary part first); right eigenvectors `v_i` have unit norm; left eigenvectors
`w_i` (with `w_i^H J = lambda_i w_i^H`) are scaled so that `w_i^H v_i = 1`, so `w_i^H dh`
is the amplitude of mode `i` in a perturbation `dh`, and `||w_i||` is the eigenvalue's
condition number (1 for a normal matrix; large values flag strong non-normality).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import pandas as pd
import scipy.linalg
from jaxtyping import ArrayLike, Complex, Float

from robustreach.fixed_points.finder import StepFn, _as_batch


class Linearisation(eqx.Module):
    """Jacobians and eigenmodes at each of `point` fixed points (host NumPy arrays).

    `right[p, :, i]` and `left[p, :, i]` are the right and left eigenvectors of mode `i`
    of point `p` (columns), with `left[p, :, i].conj() @ right[p, :, i] = 1`.
    `input_sv` holds the singular values of `dF/du`, descending.
    """

    jac_h: Float[np.ndarray, "point hidden hidden"]
    jac_u: Float[np.ndarray, "point hidden input"]
    eigvals: Complex[np.ndarray, "point mode"]
    right: Complex[np.ndarray, "point hidden mode"]
    left: Complex[np.ndarray, "point hidden mode"]
    input_sv: Float[np.ndarray, "point sv"]

    def __len__(self) -> int:
        return int(self.jac_h.shape[0])


def _precision(dtype) -> object:
    """A scoped float64 context when the points are float64; global JAX state is untouched."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else nullcontext()


def jacobians(
    step: StepFn,
    h: Float[ArrayLike, "point hidden"],
    u: Float[ArrayLike, " input"] | Float[ArrayLike, "point input"],
) -> tuple[Float[np.ndarray, "point hidden hidden"], Float[np.ndarray, "point hidden input"]]:
    """`dF/dh` and `dF/du` at every point, by forward-mode autodiff (`jax.jacfwd`).

    Float64 points are differentiated in float64 (the step's float leaves cast inside a
    scoped `jax.enable_x64`); otherwise in the points' own precision.
    """
    dtype = np.asarray(h).dtype
    with _precision(dtype):
        if dtype == np.float64:
            step = jtu.tree_map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, step)
        h, u = _as_batch(step, jnp.asarray(np.asarray(h)), jnp.asarray(np.asarray(u, dtype)))
        jac_h, jac_u = _batched_jacobians(step, h, u)
        return np.asarray(jac_h), np.asarray(jac_u)


@eqx.filter_jit
def _batched_jacobians(step, h, u):
    return jax.vmap(jax.jacfwd(step, argnums=(0, 1)))(h, u)


def eigendecompose(
    jac: Float[ArrayLike, "point n n"],
    *,
    method: Literal["auto", "jax", "scipy"] = "auto",
) -> tuple[Complex[np.ndarray, "point n"], Complex[np.ndarray, "point n n"], Complex[np.ndarray, "point n n"]]:
    """Eigenvalues, right and left eigenvectors of each matrix, in the module's conventions.

    `method="jax"` uses `jax.lax.linalg.eig` (LAPACK `geev`, batched; CPU and GPU backends),
    `"scipy"` calls `scipy.linalg.eig(left=True)` per matrix on the host; `"auto"` picks
    JAX where the default backend supports it (CPU, GPU) and SciPy elsewhere (e.g. TPU).
    """
    jac = np.asarray(jac)
    if jac.ndim != 3 or jac.shape[1] != jac.shape[2]:
        raise ValueError(f"jac must have shape (point, n, n); got {jac.shape}")
    if method == "auto":
        method = "jax" if jax.default_backend() in ("cpu", "gpu", "cuda", "rocm") else "scipy"
    if method == "jax":
        with _precision(jac.dtype):
            w, vl, vr = jax.lax.linalg.eig(jnp.asarray(jac), compute_left_eigenvectors=True,
                                           compute_right_eigenvectors=True)
            w, vl, vr = np.asarray(w), np.asarray(vl), np.asarray(vr)
    elif method == "scipy":
        parts = [scipy.linalg.eig(m, left=True, right=True) for m in jac]
        w = np.stack([p[0] for p in parts]) if parts else np.zeros(jac.shape[:2], complex)
        vl = np.stack([p[1] for p in parts]) if parts else np.zeros(jac.shape, complex)
        vr = np.stack([p[2] for p in parts]) if parts else np.zeros(jac.shape, complex)
    else:
        raise ValueError(f"method must be 'auto', 'jax' or 'scipy'; got {method!r}")
    # Sort by |lambda| descending; conjugate partners have equal |lambda| up to rounding, so
    # compare moduli at 10 significant digits and put the positive imaginary part first.
    order = np.lexsort((-w.imag, -np.round(np.abs(w), 10)), axis=-1)
    w = np.take_along_axis(w, order, -1)
    vr = np.take_along_axis(vr, order[:, None, :], -1)
    vl = np.take_along_axis(vl, order[:, None, :], -1)
    vr = vr / np.linalg.norm(vr, axis=1, keepdims=True)
    # Dual scaling: w_i^H v_i = 1 (conj of the factor, since w enters conjugated).
    overlap = np.einsum("pni,pni->pi", vl.conj(), vr)
    vl = vl / overlap.conj()[:, None, :]
    return w, vr, vl


def linearise(
    step: StepFn,
    h: Float[ArrayLike, "point hidden"],
    u: Float[ArrayLike, " input"] | Float[ArrayLike, "point input"],
    *,
    method: Literal["auto", "jax", "scipy"] = "auto",
) -> Linearisation:
    """Jacobians, eigendecomposition of `dF/dh` and singular values of `dF/du` at each point."""
    jac_h, jac_u = jacobians(step, h, u)
    w, vr, vl = eigendecompose(jac_h, method=method)
    return Linearisation(jac_h=jac_h, jac_u=jac_u, eigvals=w, right=vr, left=vl,
                         input_sv=np.linalg.svd(jac_u, compute_uv=False))


def time_constants(eigvals: ArrayLike, dt: float) -> np.ndarray:
    """`tau = -dt / log|lambda|`: decay time of a stable mode, minus the growth time of an
    unstable one; `inf` where `|lambda| = 1` and 0 where `lambda = 0`."""
    if not dt > 0:
        raise ValueError(f"dt must be positive; got {dt}")
    mod = np.abs(np.asarray(eigvals))
    with np.errstate(divide="ignore"):
        return np.where(mod == 1, np.inf, -dt / np.log(mod))  # log 1 = 0.0 would give -inf


def readout_gain(readout: Float[ArrayLike, "out hidden"], vectors: Complex[ArrayLike, "... hidden mode"]) -> np.ndarray:
    """`||W v|| / ||v||` per mode: how strongly a unit of mode activity shows in the readout.

    For a complex pair, the norms over real and imaginary parts average the gain over the
    rotation's phase. Divide by `||W||_2` (as `readout_overlap` does) to get a value in [0, 1].
    """
    readout = np.asarray(readout)
    vectors = np.asarray(vectors)
    if readout.ndim != 2 or readout.shape[1] != vectors.shape[-2]:
        raise ValueError(f"readout must have shape (out, {vectors.shape[-2]}); got {readout.shape}")
    return np.linalg.norm(np.einsum("oh,...hm->...om", readout, vectors), axis=-2) / np.linalg.norm(vectors, axis=-2)


def _keys_frame(keys: pd.DataFrame | Mapping[str, ArrayLike] | None, n: int) -> pd.DataFrame:
    frame = pd.DataFrame() if keys is None else pd.DataFrame(keys).reset_index(drop=True)
    if keys is not None and len(frame) != n:
        raise ValueError(f"keys must have one row per fixed point ({n}); got {len(frame)}")
    return frame


def spectra_table(
    lin: Linearisation,
    *,
    dt: float,
    readout: Float[ArrayLike, "out hidden"] | None = None,
    keys: pd.DataFrame | Mapping[str, ArrayLike] | None = None,
) -> pd.DataFrame:
    """One row per (point, mode): eigenvalue, modulus, angle, `tau`, rotation frequency
    (cycles per unit time), unstable flag, condition number `||w||`, and, given a readout
    matrix, `readout_gain` and `readout_overlap` (gain divided by `||W||_2`)."""
    n_point, n_mode = lin.eigvals.shape
    w = lin.eigvals.ravel()
    table = pd.DataFrame({
        "point": np.repeat(np.arange(n_point), n_mode),
        "mode": np.tile(np.arange(n_mode), n_point),
        "eig_real": w.real, "eig_imag": w.imag, "abs": np.abs(w), "angle": np.angle(w),
        "tau": time_constants(w, dt), "frequency": np.abs(np.angle(w)) / (2 * np.pi * dt),
        "unstable": np.abs(w) > 1, "condition": np.linalg.norm(lin.left, axis=1).ravel(),
    })
    if readout is not None:
        gain = readout_gain(readout, lin.right).ravel()
        table["readout_gain"] = gain
        table["readout_overlap"] = gain / np.linalg.norm(np.asarray(readout), 2)
    frame = _keys_frame(keys, n_point)
    if frame.empty:
        return table
    return pd.concat([frame.iloc[table["point"]].reset_index(drop=True), table], axis=1)


def points_table(
    lin: Linearisation,
    *,
    dt: float,
    q: ArrayLike | None = None,
    readout: Float[ArrayLike, "out hidden"] | None = None,
    keys: pd.DataFrame | Mapping[str, ArrayLike] | None = None,
    slow_tau: float | None = None,
) -> pd.DataFrame:
    """One row per fixed point with its labels.

    `stability` is "stable" (no `|lambda| > 1`), "saddle" (some) or "unstable" (all);
    `n_unstable` counts modes with `|lambda| > 1`, `n_rotational_pairs` complex-conjugate
    pairs; `lead_*` describe the mode of largest `|lambda|` (`lead_tau = -dt/log|lambda_1|`);
    `n_slow` counts stable modes with `tau > slow_tau` (default `10 dt`); with a readout,
    `readout_overlap_lead` is the leading mode's gain over `||W||_2`; `input_sv_max` and
    `input_rank` summarise `dF/du` (rank at relative tolerance 1e-6).
    """
    n_point = len(lin)
    w = lin.eigvals
    mod = np.abs(w)
    n_unstable = (mod > 1).sum(axis=1)
    tau = time_constants(w, dt)
    slow_tau = 10 * dt if slow_tau is None else slow_tau
    stability = np.where(n_unstable == 0, "stable", np.where(n_unstable == w.shape[1], "unstable", "saddle"))
    table = pd.DataFrame({
        "point": np.arange(n_point),
        "stability": stability,
        "n_unstable": n_unstable,
        "n_rotational_pairs": (w.imag > 0).sum(axis=1),
        "n_slow": ((mod < 1) & (tau > slow_tau)).sum(axis=1),
        "lead_abs": mod[:, 0], "lead_real": w[:, 0].real, "lead_imag": w[:, 0].imag, "lead_tau": tau[:, 0],
        "input_sv_max": lin.input_sv[:, 0],
        "input_rank": (lin.input_sv > 1e-6 * lin.input_sv[:, :1]).sum(axis=1),
    })
    if q is not None:
        table.insert(1, "q", np.asarray(q))
    if readout is not None:
        table["readout_overlap_lead"] = readout_gain(readout, lin.right[:, :, :1])[:, 0] / np.linalg.norm(
            np.asarray(readout), 2)
    frame = _keys_frame(keys, n_point)
    return pd.concat([frame, table], axis=1) if not frame.empty else table


def linearisation_error(
    step: StepFn,
    h_star: Float[ArrayLike, " hidden"],
    u_star: Float[ArrayLike, " input"],
    jac_h: Float[ArrayLike, "hidden hidden"],
    jac_u: Float[ArrayLike, "hidden input"],
    dh: Float[ArrayLike, "sample hidden"],
    du: Float[ArrayLike, "sample input"],
) -> Float[np.ndarray, " sample"]:
    """Relative error of the linear prediction of one step from a fixed point:
    `||F(h*+dh, u*+du) - F(h*, u*) - (J dh + B du)|| / ||J dh + B du||` per sample.

    It shrinks in proportion to the perturbation's size where the linearisation holds, so
    it tells how far from the point the modes describe the network. `F(h*, u*)` equals `h*`
    at an exact fixed point; subtracting it rather than `h*` keeps the finder's residual
    (`sqrt(2 q)`, fixed while the perturbation shrinks) out of the error.
    """
    h_star, u_star = jnp.asarray(h_star), jnp.asarray(u_star)
    dh, du = jnp.asarray(dh, h_star.dtype), jnp.asarray(du, h_star.dtype)
    actual = jax.vmap(lambda a, b: step(h_star + a, u_star + b))(dh, du) - step(h_star, u_star)
    predicted = dh @ jnp.asarray(jac_h).T + du @ jnp.asarray(jac_u).T
    return np.asarray(jnp.linalg.norm(actual - predicted, axis=-1) / jnp.linalg.norm(predicted, axis=-1))

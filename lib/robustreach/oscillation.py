"""How oscillatory ("loopy") a response is: reversals, a second-order fit, path-length ratio.

The research question: under perturbations, do trajectories go "from straight to loopy"? Three
measures on a scalar response `x(t)` (e.g. the lateral position of a perturbed reach, or the
position along a feedback impulse), each over any leading batch axes:

| measure | definition |
|---|---|
| `velocity_reversals` | sign changes of the velocity `v(t)`, counting only samples with `|v| > fraction * max|v|` (hysteresis: noise near zero is not a reversal) |
| `second_order_fit` | damping ratio `zeta` and damped frequency `f` (Hz) of the discrete AR(2) model with offset `x[t+1] = a1 x[t] + a2 x[t-1] + c`, fitted by least squares; its poles `z` give `s = log(z) / dt` |
| `path_length_ratio` | path length over the straight distance from start to goal (1 for a straight path) |

A sampled damped sinusoid `x_t = c0 + A r^t cos(theta t + phi)` satisfies the AR(2) recurrence
exactly, as does a sum of two decaying exponentials, so the fit recovers `zeta` and `f` of
such signals to rounding. A complex pair of poles gives `zeta = -Re(s) / |s|` and
`f = Im(s) / 2 pi`; two real poles in (0, 1) give `f = 0` and
`zeta = -(s1 + s2) / (2 sqrt(s1 s2)) >= 1` (overdamped); a single pole (a first-order
response, where AR(2) is degenerate) gives `f = 0` and `zeta = NaN` (undefined). Signals
with no variation, or poles outside (0, 1] on the real axis (no continuous-time
counterpart), give NaN.

These are analysis functions on host (NumPy) arrays: they run after an evaluation, on data
that has left the compiled model.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

DEFAULT_REVERSAL_FRACTION = 0.05
# Relative improvement of the AR(2) residual over AR(1) below which the signal is first order.
_FIRST_ORDER_RTOL = 1e-8


def velocity_reversals(
    velocity: Float[np.ndarray, "*batch time"], fraction: float = DEFAULT_REVERSAL_FRACTION
) -> Float[np.ndarray, "*batch"]:
    """Number of sign changes of `velocity`, ignoring samples below `fraction` of its peak."""
    v = np.asarray(velocity, dtype=float)
    threshold = fraction * np.max(np.abs(v), axis=-1, keepdims=True)
    signs = np.where(np.abs(v) > threshold, np.sign(v), 0.0)
    # Carry the last non-zero sign forward so that samples under the threshold are skipped.
    index = np.where(signs != 0, np.arange(v.shape[-1]), 0)
    index = np.maximum.accumulate(index, axis=-1)
    carried = np.take_along_axis(signs, index, axis=-1)
    changes = (carried[..., 1:] * carried[..., :-1]) < 0
    return changes.sum(axis=-1).astype(float)


def path_length_ratio(
    pos: Float[np.ndarray, "*batch time 2"], start: Float[np.ndarray, "*batch 2"], goal: Float[np.ndarray, "*batch 2"]
) -> Float[np.ndarray, "*batch"]:
    """Path length over `||goal - start||`; NaN where start and goal coincide (holds)."""
    pos = np.asarray(pos, dtype=float)
    length = np.linalg.norm(np.diff(pos, axis=-2), axis=-1).sum(axis=-1)
    straight = np.linalg.norm(np.asarray(goal, dtype=float) - np.asarray(start, dtype=float), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(straight > 1e-9, length / np.where(straight > 1e-9, straight, 1.0), np.nan)


def _residual(design: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients (minimum norm) and residual sum of squares, batched."""
    coefficients = np.einsum("...ij,...j->...i", np.linalg.pinv(design), target)
    residual = target - np.einsum("...ij,...j->...i", design, coefficients)
    return coefficients, np.sum(residual**2, axis=-1)


def second_order_fit(
    signal: Float[np.ndarray, "*batch time"], dt: float, start: int | np.ndarray = 0
) -> tuple[Float[np.ndarray, "*batch"], Float[np.ndarray, "*batch"]]:
    """Damping ratio and damped frequency (Hz) of an AR(2)-with-offset fit to `signal`.

    Only samples from index `start` on (an int, or one per series broadcasting over the batch
    axes, e.g. the time of each trial's peak) enter the fit, which needs at least 5 of them
    (fewer give NaN). See the module docstring for the cases.
    """
    x = np.asarray(signal, dtype=float)
    time = np.arange(x.shape[-1])
    start = np.broadcast_to(np.asarray(start), x.shape[:-1])[..., None]
    used = time >= start
    centred = x - x[..., -1:]
    scale = np.max(np.where(used, np.abs(centred), 0.0), axis=-1, keepdims=True)
    flat = (scale[..., 0] <= 1e-12) | (used.sum(axis=-1) < 5)
    x = centred / np.where(scale > 1e-12, scale, 1.0)  # conditioning only: poles are scale-free
    # Rows whose three samples are not all in the window are zeroed: they then add nothing.
    row = used[..., :-2].astype(float)
    target = row * x[..., 2:]
    design2 = np.stack([x[..., 1:-1], x[..., :-2], np.ones_like(target)], axis=-1) * row[..., None]
    design1 = np.stack([x[..., 1:-1], np.ones_like(target)], axis=-1) * row[..., None]
    coefficients2, rss2 = _residual(design2, target)
    coefficients1, rss1 = _residual(design1, target)
    a1, a2 = coefficients2[..., 0], coefficients2[..., 1]
    b1 = coefficients1[..., 0]
    n_rows = np.maximum(row.sum(axis=-1, keepdims=True), 1.0)
    energy = np.sum(row * (target - target.sum(axis=-1, keepdims=True) / n_rows) ** 2, axis=-1)
    first_order = (rss1 - rss2) <= _FIRST_ORDER_RTOL * np.maximum(energy, 1e-300)

    # Poles of z^2 - a1 z - a2.
    discriminant = (a1**2 + 4 * a2).astype(complex)
    root = np.sqrt(discriminant)
    z1, z2 = (a1 + root) / 2, (a1 - root) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        s1, s2 = np.log(z1) / dt, np.log(z2) / dt
        complex_pair = discriminant.real < 0
        modulus = np.abs(s1)
        zeta_complex = -s1.real / modulus
        freq_complex = np.abs(s1.imag) / (2 * np.pi)
        real_ok = (z1.real > 0) & (z2.real > 0) & (z1.real <= 1) & (z2.real <= 1)
        product = s1.real * s2.real
        zeta_real = np.where(product > 0, -(s1.real + s2.real) / (2 * np.sqrt(np.abs(product))), np.nan)
    zeta = np.where(complex_pair, zeta_complex, np.where(real_ok, zeta_real, np.nan))
    freq = np.where(complex_pair, freq_complex, np.where(real_ok, 0.0, np.nan))
    first_order_ok = (b1 > 0) & (b1 <= 1)
    zeta = np.where(first_order, np.nan, zeta)
    freq = np.where(first_order, np.where(first_order_ok, 0.0, np.nan), freq)
    return np.where(flat, np.nan, zeta), np.where(flat, np.nan, freq)

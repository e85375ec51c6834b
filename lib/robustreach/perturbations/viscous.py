"""Viscous field with any 2x2 matrix: `f = a B v`.

`B = [[0, -1], [1, 0]]` is the curl field; the default is the velocity-dependent field of
Shadmehr & Mussa-Ivaldi (1994), in N s/m, for which amplitude 1 is the published field.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from robustreach.perturbations.base import AbstractPerturbation, per_trial, register

SHADMEHR_MUSSA_IVALDI = ((-10.1, -11.2), (-11.2, 11.1))


@register
class Viscous(AbstractPerturbation):
    """Velocity-dependent force `f = B v` with a per-trial matrix `B` (amplitude times `matrix`)."""

    name = "viscous"
    test_amplitudes = (0.0, 0.03, 0.06, 0.12, 0.25)
    matrix: Float[Array, "*trials 2 2"]

    @classmethod
    def draw(cls, key, amplitude, start, target, *, matrix=SHADMEHR_MUSSA_IVALDI):
        return cls(_scaled(amplitude, matrix))

    @classmethod
    def fixed(cls, amplitude, start, target, *, matrix=SHADMEHR_MUSSA_IVALDI):
        return cls(_scaled(per_trial(amplitude, start), matrix))

    def force(self, pos, vel, start, target):
        return self.matrix @ vel


def _scaled(amplitude: Float[Array, "*trials"], matrix) -> Float[Array, "*trials 2 2"]:
    matrix = jnp.asarray(matrix, float)
    if matrix.shape != (2, 2):
        raise ValueError(f"viscous field: matrix must be 2x2, got shape {matrix.shape}")
    return jnp.asarray(amplitude, float)[..., None, None] * matrix

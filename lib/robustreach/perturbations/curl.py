"""Curl field: a force perpendicular to the hand's velocity, `f = a (-v_y, v_x)` (a > 0: counter-clockwise)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from robustreach.perturbations.base import AbstractPerturbation, per_trial, register


@register
class Curl(AbstractPerturbation):
    """Velocity-dependent curl field of per-trial amplitude `a`."""

    name = "curl"
    test_amplitudes = (0.0, 0.5, 1.0, 2.0, 4.0)
    amplitude: Float[Array, "*trials"]

    @classmethod
    def draw(cls, key, amplitude, start, target):
        return cls(per_trial(amplitude, start))

    @classmethod
    def fixed(cls, amplitude, start, target):
        return cls(per_trial(amplitude, start))

    def force(self, pos, vel, start, target):
        return self.amplitude * jnp.stack([-vel[1], vel[0]])

"""Constant field: the same force on the hand at every step, `f = a (cos θ, sin θ)`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from robustreach.perturbations.base import AbstractPerturbation, per_trial, register


@register
class Constant(AbstractPerturbation):
    """Constant force per trial. Training: direction uniform at random. Evaluation: orthogonal
    (counter-clockwise) to the reach direction, so that every reach is pushed the same way."""

    name = "constant"
    test_amplitudes = (0.0, 0.05, 0.1, 0.2, 0.4)
    vector: Float[Array, "*trials 2"]

    @classmethod
    def draw(cls, key, amplitude, start, target):
        angle = jax.random.uniform(key, jnp.shape(amplitude), minval=0.0, maxval=2 * jnp.pi)
        return cls(_polar(amplitude, angle))

    @classmethod
    def fixed(cls, amplitude, start, target):
        delta = target - start
        angle = jnp.arctan2(delta[..., 1], delta[..., 0]) + jnp.pi / 2
        return cls(_polar(per_trial(amplitude, start), angle))

    def force(self, pos, vel, start, target):
        return self.vector


def _polar(amplitude: Float[Array, "*trials"], angle: Float[Array, "*trials"]) -> Float[Array, "*trials 2"]:
    return amplitude[..., None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)

"""Force channel (error clamp): a stiff spring and damper that hold the hand on the straight
line from start to target, acting only across it:
```
n = unit normal of (target - start)
f = -g (k (pos - start) . n + c vel . n) n
```
The force the controller pushes into the channel is then minus the channel's force, which the
rollout records as the external force; `lateral_component` reads it off. `g` is the per-trial
gain (1: channel on, 0: off). Trials with start = target have no line and get no force.

Explicit Euler keeps a mass `m` in the channel stable only when `k dt < c < (4 m + k dt^2) / (2 dt)`
(see `euler_stable`); the defaults suit the reference point mass (`m = 1`, `dt = 0.05`: the
lateral error decays by 0.71 per step).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from robustreach.perturbations.base import AbstractPerturbation, per_trial, register

STIFFNESS = 200.0
DAMPING = 20.0


@register
class Channel(AbstractPerturbation):
    """Force-channel probe trials; amplitude is the channel's gain (training: on when perturbed)."""

    name = "channel"
    test_amplitudes = (0.0, 1.0)
    gain: Float[Array, "*trials"]
    stiffness: Float[Array, "*trials"]
    damping: Float[Array, "*trials"]

    @classmethod
    def draw(cls, key, amplitude, start, target, *, stiffness=STIFFNESS, damping=DAMPING):
        gain = (jnp.asarray(amplitude) != 0).astype(float)
        return cls(gain, per_trial(stiffness, start), per_trial(damping, start))

    @classmethod
    def fixed(cls, amplitude, start, target, *, stiffness=STIFFNESS, damping=DAMPING):
        return cls(per_trial(amplitude, start), per_trial(stiffness, start), per_trial(damping, start))

    def force(self, pos, vel, start, target):
        normal = channel_normal(start, target)
        return -self.gain * (self.stiffness * (pos - start) @ normal + self.damping * vel @ normal) * normal


def channel_normal(start: Float[Array, "*batch 2"], target: Float[Array, "*batch 2"]) -> Float[Array, "*batch 2"]:
    """Unit vector across the start-target line (counter-clockwise of the reach); zero if start = target."""
    delta = target - start
    length = jnp.linalg.norm(delta, axis=-1, keepdims=True)
    normal = jnp.stack([-delta[..., 1], delta[..., 0]], axis=-1)
    return jnp.where(length > 0, normal / jnp.where(length > 0, length, 1.0), 0.0)


def lateral_component(
    vectors: Float[Array, "*batch n_steps 2"], start: Float[Array, "*batch 2"], target: Float[Array, "*batch 2"]
) -> Float[Array, "*batch n_steps"]:
    """Signed component across the channel (counter-clockwise positive) of positions, forces, ...

    Applied to a channel trial's external force, this is the recorded channel force; its
    negative is the lateral force the controller produced."""
    return jnp.einsum("...ti,...i->...t", vectors, channel_normal(start, target))


def euler_stable(stiffness: float, damping: float, mass: float, dt: float) -> Bool[Array, ""]:
    """Whether explicit Euler keeps a mass in this channel stable (both eigenvalues inside the unit circle)."""
    k, c = stiffness * dt**2 / mass, damping * dt / mass
    return jnp.asarray((k < c) & (c < (4 + k) / 2))

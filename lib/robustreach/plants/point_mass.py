"""A point mass in the plane with linear damping, pushed directly by the controller.

```
d pos / dt = vel
d vel / dt = (u + f_hand) / m - (b / m) * vel
```
Integrated by `AbstractPlant.step` this is exactly `robustreach.plant.PointMass.step`.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from robustreach.plants.base import AbstractPlant, as_float_array, register_plant


class PointMassState(eqx.Module):
    """Position and velocity of the mass (which is also the hand)."""

    pos: Float[Array, "2"]
    vel: Float[Array, "2"]


@register_plant
class PointMass(AbstractPlant[PointMassState]):
    """Point mass with linear damping; the controller's output is a 2D force.

    Defaults are the reference values (feedbax): `mass = 1`, `damping = 0`, `dt = 0.05`.
    """

    name = "point_mass"

    mass: Float[Array, ""] = eqx.field(converter=as_float_array, default=1.0)
    damping: Float[Array, ""] = eqx.field(converter=as_float_array, default=0.0)
    dt: Float[Array, ""] = eqx.field(converter=as_float_array, default=0.05)

    @classmethod
    def from_config(cls, config) -> PointMass:
        return cls(mass=config.mass, damping=config.damping, dt=config.dt)

    def initial_state(self, effector_pos: Float[Array, "2"], effector_vel: Float[Array, "2"]) -> PointMassState:
        return PointMassState(jnp.asarray(effector_pos, float), jnp.asarray(effector_vel, float))

    def vector_field(
        self, state: PointMassState, control: Float[Array, "2"], hand_force: Float[Array, "2"]
    ) -> PointMassState:
        # Same operations in the same order as `robustreach.plant.PointMass`, for identical steps.
        acceleration = (control + hand_force) / self.mass - (self.damping / self.mass) * state.vel
        return PointMassState(state.vel, acceleration)

    def effector(self, state: PointMassState) -> tuple[Float[Array, "2"], Float[Array, "2"]]:
        return state.pos, state.vel

    def observation(self, state: PointMassState) -> Float[Array, "4"]:
        return jnp.concatenate([state.pos, state.vel])

    @property
    def observation_labels(self) -> tuple[str, ...]:
        return ("pos_x", "pos_y", "vel_x", "vel_y")

    @property
    def n_controls(self) -> int:
        return 2

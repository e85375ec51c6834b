"""The point-mass plant: a mass in 2D integrated with explicit Euler.

```
pos' = pos + dt * vel
vel' = vel + dt * ((u + f_ext) / m - (b / m) * vel)
```
No clipping of forces or states (feedbax semantics).
"""

import equinox as eqx
from jaxtyping import Array, Float


class PointMass(eqx.Module):
    """Point mass with linear damping; `step` is one explicit Euler update."""

    mass: float = eqx.field(static=True)
    damping: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    def step(
        self, pos: Float[Array, "2"], vel: Float[Array, "2"], force: Float[Array, "2"]
    ) -> tuple[Float[Array, "2"], Float[Array, "2"]]:
        """Advance one time step; `force` is the total force (controller plus external)."""
        acceleration = force / self.mass - (self.damping / self.mass) * vel
        return pos + self.dt * vel, vel + self.dt * acceleration

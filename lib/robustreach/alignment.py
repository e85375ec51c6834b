"""Trajectories in the frame of each trial: along and across the reach (or the impulse).

For a unit direction `d = (cos a, sin a)` the frame is `forward = d` and
`lateral = (-sin a, cos a)` (`d` turned 90 degrees counter-clockwise), so a point left of the
reach has positive lateral component. Positions are taken relative to the trial's start;
velocities and forces are projected as they are.

```python
aligned = align_evaluation(evaluation)          # reach frame
aligned.pos[..., 1]                             # lateral deviation, (cond, rep, real, trial, time)
aligned = align_evaluation(evaluation, "impulse")   # frame of each feedback impulse
```
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from robustreach.evaluate import Evaluation
from robustreach.model import Trajectory

COMPONENTS = ("forward", "lateral")


class Aligned(eqx.Module):
    """Position (relative to the start), velocity and forces as (forward, lateral) components."""

    pos: Float[Array, "*batch time 2"]
    vel: Float[Array, "*batch time 2"]
    force: Float[Array, "*batch time 2"]
    external_force: Float[Array, "*batch time 2"]


def project(vectors: Float[Array, "*batch time 2"], angle: Float[Array, "*batch"]) -> Float[Array, "*batch time 2"]:
    """Components of `vectors` along `(cos a, sin a)` and along its CCW perpendicular."""
    cos, sin = jnp.cos(angle)[..., None], jnp.sin(angle)[..., None]
    x, y = vectors[..., 0], vectors[..., 1]
    return jnp.stack([cos * x + sin * y, -sin * x + cos * y], axis=-1)


def align(trajectory: Trajectory, start: Float[Array, "*batch 2"], angle: Float[Array, "*batch"]) -> Aligned:
    """A trajectory in the frame at `angle`, positions relative to `start` (shapes broadcast)."""
    return Aligned(
        pos=project(trajectory.pos - start[..., None, :], angle),
        vel=project(trajectory.vel, angle),
        force=project(trajectory.force, angle),
        external_force=project(trajectory.external_force, angle),
    )


def align_evaluation(evaluation: Evaluation, reference: Literal["reach", "impulse"] = "reach") -> Aligned:
    """Every trajectory of an evaluation in its trial's reach frame (or impulse frame).

    Hold trials have no reach direction; their reach frame is the x axis.
    """
    trials = evaluation.trials
    # trials have axes (condition, trial); the trajectory also has replicate and realisation.
    start = trials.init_pos[:, None, None]
    if reference == "reach":
        angle = trials.reach_angle[:, None, None]
    elif reference == "impulse":
        if evaluation.impulse_angle is None:
            raise ValueError("align_evaluation: reference 'impulse' needs an evaluation with feedback impulses")
        angle = jnp.broadcast_to(evaluation.impulse_angle, trials.reach_angle.shape)[:, None, None]
    else:
        raise ValueError(f"align_evaluation: reference must be 'reach' or 'impulse', got {reference!r}")
    return align(evaluation.trajectory, start, angle)

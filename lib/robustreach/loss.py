"""Loss terms of the reaching task and their weighting (model spec defaults).

Per trial, terms sum over updates `t = 1 .. n_steps - 1`, then average over trials:

- position: `sum_t ||pos_t - target||^2 * d_t` with `d = linspace(1/(N-1), 1, N-1) ** 6`;
- final velocity: `||vel_{N-1} - target_vel||^2`;
- controller output: `sum_t ||force_t||^2` (the noisy force);
- hidden activity: `sum_t ||h_t||^2`.

`total` is the sum of the weighted terms. The readout-norm term
`(||W_readout||_F - c)^2` is a training-only addition (`readout_norm_penalty`).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from robustreach.config import LossConfig
from robustreach.model import Trajectory
from robustreach.trials import Trials

TASK_TERMS = ("position", "final_velocity", "controller_output", "hidden")


class LossWeights(eqx.Module):
    """Weights as arrays, so that conditions with different weights can be batched."""

    position: Float[Array, ""]
    final_velocity: Float[Array, ""]
    controller_output: Float[Array, ""]
    hidden: Float[Array, ""]
    discount_exponent: Float[Array, ""]

    @classmethod
    def from_config(cls, config: LossConfig) -> LossWeights:
        return cls(*(jnp.asarray(getattr(config, name), float) for name in (*TASK_TERMS, "discount_exponent")))


def position_discount(n_steps: int, exponent: Float[Array, ""] | float = 6.0) -> Float[Array, " n_updates"]:
    """Weights of the position error over updates 1..n_steps-1, rising to 1 at the end."""
    return jnp.linspace(1.0 / (n_steps - 1), 1.0, n_steps - 1) ** exponent


def loss_terms(trajectory: Trajectory, trials: Trials, weights: LossWeights) -> dict[str, Float[Array, ""]]:
    """Weighted task-loss terms averaged over the batch of trials, and their `total`."""
    n_steps = trajectory.pos.shape[-2]
    # Weights over all n_steps indices, zero at index 0, rather than slicing off index 0:
    # XLA copies a sliced (vmapped) scan output, which cost more than the rollout itself.
    updates = (jnp.arange(n_steps) >= 1).astype(trajectory.pos.dtype)
    discount = jnp.concatenate([jnp.zeros(1), position_discount(n_steps, weights.discount_exponent)])
    pos_error = jnp.sum((trajectory.pos - trials.target_pos[..., None, :]) ** 2, axis=-1)
    unweighted = {
        "position": jnp.sum(pos_error * discount, axis=-1),
        "final_velocity": jnp.sum((trajectory.vel[..., -1, :] - trials.target_vel) ** 2, axis=-1),
        "controller_output": jnp.sum(jnp.sum(trajectory.force**2, axis=-1) * updates, axis=-1),
        "hidden": jnp.sum(jnp.sum(trajectory.hidden**2, axis=-1) * updates, axis=-1),
    }
    terms = {name: getattr(weights, name) * jnp.mean(value) for name, value in unweighted.items()}
    terms["total"] = sum(terms[name] for name in TASK_TERMS)
    return terms


def readout_norm_penalty(readout_weight: Float[Array, "n_controls hidden"], target: float, weight: float) -> Float[Array, ""]:
    """`weight * (||W_readout||_F - target)^2`, the optional training-only term."""
    return weight * (jnp.linalg.norm(readout_weight) - target) ** 2

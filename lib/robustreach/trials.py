"""`Trials`: the per-trial arrays that one rollout needs, batched along the leading axes."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from robustreach.perturbations import AbstractPerturbation

# What the point mass's (and, by default, the arm's) observation holds, in order: the
# feedback offsets of impulses use the plant's `observation_labels`, this by default.
FEEDBACK_STATE = ("pos_x", "pos_y", "vel_x", "vel_y")


class Trials(eqx.Module):
    """Start and target states, context input and perturbations of a batch of trials.

    - `perturbations`: forces at the hand acting together (`robustreach.perturbations`), each
      with its per-trial parameters batched like the other fields; `()` for none.
    - `feedback_offset`: added to the fed-back observation at each step (feedback impulses);
      index `t` acts on the feedback consumed by update `t` (index 0 is never used).
    - `perturbed`: whether the trial counts as perturbed (for context inputs and analysis).
    """

    init_pos: Float[Array, "*batch 2"]
    init_vel: Float[Array, "*batch 2"]
    target_pos: Float[Array, "*batch 2"]
    target_vel: Float[Array, "*batch 2"]
    context: Float[Array, "*batch n_context"]
    perturbations: tuple[AbstractPerturbation, ...]
    feedback_offset: Float[Array, "*batch n_steps n_observed"]
    perturbed: Bool[Array, "*batch"]

    @property
    def n_trials(self) -> int:
        return self.init_pos.shape[0]

    @property
    def n_steps(self) -> int:
        return self.feedback_offset.shape[-2]

    @property
    def reach_angle(self) -> Float[Array, "*batch"]:
        """Direction of the reach (radians); 0 for hold trials."""
        delta = self.target_pos - self.init_pos
        return jnp.arctan2(delta[..., 1], delta[..., 0])


def unperturbed_trials(
    init_pos: Float[Array, "batch 2"],
    target_pos: Float[Array, "batch 2"],
    n_steps: int,
    n_context: int = 0,
    n_observed: int = len(FEEDBACK_STATE),
) -> Trials:
    """Reaches from rest at `init_pos` to rest at `target_pos`, no perturbation, zero context."""
    n = init_pos.shape[0]
    zeros2 = jnp.zeros((n, 2))
    return Trials(
        init_pos=jnp.asarray(init_pos, float),
        init_vel=zeros2,
        target_pos=jnp.asarray(target_pos, float),
        target_vel=zeros2,
        context=jnp.zeros((n, n_context)),
        perturbations=(),
        feedback_offset=jnp.zeros((n, n_steps, n_observed)),
        perturbed=jnp.zeros(n, bool),
    )

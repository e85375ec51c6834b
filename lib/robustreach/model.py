"""The closed-loop reaching model and its whole-trial rollout.

One update `t` (1 <= t < n_steps), from the state after update `t - 1`:

1. feedback: `[pos, vel]` through the feedback channel (delay, then noise), plus any offset;
2. controller: input = context, target pos, target vel, fed-back pos/vel; GRU update; readout;
3. motor channel: force = readout output plus motor noise;
4. perturbations: `f_ext = curl * (-vel_y, vel_x) + constant force`;
5. plant: one Euler step with `force + f_ext`.

`simulate` runs this as one `lax.scan` per trial, `vmap`ped over trials.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from robustreach.channels import FeedbackChannel, MotorChannel
from robustreach.config import Hyperparameters, load_hyperparameters
from robustreach.controller import Controller
from robustreach.plant import PointMass
from robustreach.trials import Trials

_FEEDBACK_SLICES = {"pos": slice(0, 2), "vel": slice(2, 4)}


class Trajectory(eqx.Module):
    """Every step of a trial. Index 0 is the initial state (zeros for the controller's
    quantities); index `t >= 1` is the state after update `t` with that update's signals.

    `feedback` is what the network received in update `t`: the noisy, delayed (and offset)
    `[pos, vel]` of the plant, i.e. the state after update `t - 1 - delay` (clipped at 0).
    """

    pos: Float[Array, "*batch n_steps 2"]
    vel: Float[Array, "*batch n_steps 2"]
    command: Float[Array, "*batch n_steps 2"]  # readout output, before motor noise
    force: Float[Array, "*batch n_steps 2"]  # controller force applied to the plant
    external_force: Float[Array, "*batch n_steps 2"]
    feedback: Float[Array, "*batch n_steps 4"]
    network_input: Float[Array, "*batch n_steps n_inputs"]
    hidden: Float[Array, "*batch n_steps hidden"]


class ReachingModel(eqx.Module):
    """Controller (trained) in closed loop with channels and plant (fixed)."""

    controller: Controller
    plant: PointMass
    feedback: FeedbackChannel
    motor: MotorChannel
    feedback_variables: tuple[str, ...] = eqx.field(static=True)
    hidden_noise_std: float = eqx.field(static=True)

    def network_input(
        self,
        context: Float[Array, " n_context"],
        target_pos: Float[Array, " 2"],
        target_vel: Float[Array, " 2"],
        feedback: Float[Array, " 4"],
    ) -> Float[Array, " n_inputs"]:
        """Input vector in the fixed order: context, target pos, target vel, fed-back variables.

        Static slices rather than an index array: inside the rollout's scan an index array is a
        gather, whose gradient is a scatter-add in every backward step.
        """
        fed_back = [feedback[..., _FEEDBACK_SLICES[variable]] for variable in self.feedback_variables]
        return jnp.concatenate([context, target_pos, target_vel, *fed_back])

    def rollout(self, trial: Trials, key: PRNGKeyArray) -> Trajectory:
        """One trial (unbatched `trial`), compiled as a single `lax.scan`."""
        n_steps = trial.feedback_offset.shape[0]
        hidden_size = self.controller.hidden_size
        initial_state = jnp.concatenate([trial.init_pos, trial.init_vel])

        def update(carry, inputs):
            pos, vel, queue, hidden = carry
            offset, noise = inputs
            queue, feedback = self.feedback(queue, jnp.concatenate([pos, vel]), noise["feedback"])
            feedback = feedback + offset
            net_input = self.network_input(trial.context, trial.target_pos, trial.target_vel, feedback)
            hidden = self.controller.cell(net_input, hidden) + self.hidden_noise_std * noise["hidden"]
            command = self.controller.readout(hidden)
            force = self.motor(command, noise["motor_multiplicative"], noise["motor_additive"])
            external = trial.curl * jnp.array([-vel[1], vel[0]]) + trial.force
            pos, vel = self.plant.step(pos, vel, force + external)
            outputs = (pos, vel, command, force, external, feedback, net_input, hidden)
            return (pos, vel, queue, hidden), outputs

        carry = (trial.init_pos, trial.init_vel, self.feedback.init_queue(initial_state), jnp.zeros(hidden_size))
        _, outputs = jax.lax.scan(update, carry, (trial.feedback_offset[1:], self._draw_noise(key, n_steps - 1)))

        initial = (
            trial.init_pos,
            trial.init_vel,
            jnp.zeros(2),
            jnp.zeros(2),
            jnp.zeros(2),
            jnp.zeros(4),
            jnp.zeros(outputs[6].shape[-1]),
            jnp.zeros(hidden_size),
        )
        stacked = [jnp.concatenate([first[None], rest], axis=0) for first, rest in zip(initial, outputs)]
        return Trajectory(*stacked)


    def _draw_noise(self, key: PRNGKeyArray, n_updates: int) -> dict[str, Float[Array, "n_updates _"]]:
        """All standard-normal samples of a trial at once (one vectorised draw per source).

        Sources whose std is zero get zeros instead of random draws: generating random bits
        for 50 hidden units per step would otherwise be a large share of a training step.
        """
        sizes = {"feedback": 4, "hidden": self.controller.hidden_size, "motor_multiplicative": 2, "motor_additive": 2}
        stds = {"feedback": self.feedback.noise_std, "hidden": self.hidden_noise_std,
                "motor_multiplicative": self.motor.noise_std, "motor_additive": self.motor.noise_std}
        keys = jax.random.split(key, len(sizes))
        return {
            name: jax.random.normal(k, (n_updates, size)) if stds[name] > 0 else jnp.zeros((n_updates, size))
            for k, (name, size) in zip(keys, sizes.items())
        }


def simulate(model: ReachingModel, trials: Trials, key: PRNGKeyArray) -> Trajectory:
    """Roll out a batch of trials (leading axis of `trials`) with one model; one key per trial."""
    keys = jax.random.split(key, trials.n_trials)
    return jax.vmap(model.rollout)(trials, keys)


def simulate_replicates(model: ReachingModel, trials: Trials, key: PRNGKeyArray) -> Trajectory:
    """Roll out the same trials with every replicate of an ensemble model.

    Returns arrays with a leading replicate axis; each replicate gets independent noise.
    """
    n_replicates = replicate_count(model)
    keys = jax.random.split(key, n_replicates)
    return eqx.filter_vmap(simulate, in_axes=(eqx.if_array(0), None, 0))(model, trials, keys)


def is_ensemble(model: ReachingModel) -> bool:
    """Whether the controller's arrays carry a leading replicate axis (`build_ensemble`)."""
    return model.controller.readout.weight.ndim == 3


def replicate_count(model: ReachingModel) -> int:
    """Size of the leading replicate axis of an ensemble model's controller (1 for a single model)."""
    return model.controller.readout.weight.shape[0] if is_ensemble(model) else 1


def build_model(hp: Hyperparameters, key: PRNGKeyArray) -> ReachingModel:
    """A single model with freshly initialised controller weights."""
    controller = Controller(
        hp.n_inputs,
        hp.controller.hidden_size,
        cell=hp.controller.cell,
        orthogonal_recurrent_init=hp.controller.orthogonal_recurrent_init,
        leak=hp.controller.leak,
        key=key,
    )
    return ReachingModel(
        controller=controller,
        plant=PointMass(mass=hp.plant.mass, damping=hp.plant.damping, dt=hp.plant.dt),
        feedback=FeedbackChannel(delay=hp.feedback.delay, noise_std=hp.feedback.noise_std),
        motor=MotorChannel(noise_std=hp.motor.noise_std),
        feedback_variables=tuple(hp.feedback.variables),
        hidden_noise_std=hp.controller.hidden_noise_std,
    )


def build_ensemble(hp: Hyperparameters, key: PRNGKeyArray, n_replicates: int | None = None) -> ReachingModel:
    """`n_replicates` (default `hp.train.n_replicates`) models stacked along a leading axis."""
    n = hp.train.n_replicates if n_replicates is None else n_replicates
    return eqx.filter_vmap(lambda k: build_model(hp, k))(jax.random.split(key, n))


def skeleton_from_hyperparameters(hyperparameters: dict[str, Any]) -> ReachingModel:
    """A like-shaped ensemble to deserialise saved weights into (used by the results store)."""
    return build_ensemble(load_hyperparameters(hyperparameters), jax.random.PRNGKey(0))


def select_replicate(model: ReachingModel, index: int) -> ReachingModel:
    """One replicate of an ensemble model, as a single model."""
    return jax.tree_util.tree_map(lambda x: x[index] if eqx.is_array(x) else x, model)


def steady_state_input(
    model: ReachingModel, goal: Float[Array, " 2"], context: Float[Array, " n_context"]
) -> Float[Array, " n_inputs"]:
    """Network input while resting at `goal`: target = feedback position = goal, velocities 0."""
    zeros = jnp.zeros(2)
    return model.network_input(jnp.asarray(context, float), goal, zeros, jnp.concatenate([goal, zeros]))

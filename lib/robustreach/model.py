"""The closed-loop reaching model and its whole-trial rollout.

One update `t` (1 <= t < n_steps), from the plant's state after update `t - 1`:

1. feedback: the plant's observation through the feedback channel (delay, then noise), plus
   any offset;
2. controller: input = context, target pos, target vel, fed-back variables; GRU update; readout;
3. motor channel: control = readout output plus motor noise (forces or torques, as the plant takes);
4. perturbations: the force at the hand, summed over the trial's perturbations, from the
   hand's position and velocity before the step;
5. plant: one explicit Euler step under the control and that force.

`simulate` runs this as one `lax.scan` per trial, `vmap`ped over trials. The plant
(`robustreach.plants`) and the perturbations (`robustreach.perturbations`) are the extension
points; nothing here assumes a state layout.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from robustreach.channels import FeedbackChannel, MotorChannel, is_noisy
from robustreach.config import Hyperparameters, load_hyperparameters
from robustreach.controller import Controller
from robustreach.perturbations import total_force
from robustreach.plants import AbstractPlant, as_float_array, build_plant
from robustreach.trials import Trials


class Trajectory(eqx.Module):
    """Every step of a trial. Index 0 is the initial state (zeros for the controller's
    quantities); index `t >= 1` is the state after update `t` with that update's signals.

    `pos` and `vel` are the hand's (the plant's effector). `feedback` is what the network
    received in update `t`: the noisy, delayed (and offset) observation of the plant, i.e. of
    the state after update `t - 1 - delay` (clipped at 0).
    """

    pos: Float[Array, "*batch n_steps 2"]
    vel: Float[Array, "*batch n_steps 2"]
    command: Float[Array, "*batch n_steps n_controls"]  # readout output, before motor noise
    force: Float[Array, "*batch n_steps n_controls"]  # the controller's output applied to the plant
    external_force: Float[Array, "*batch n_steps 2"]  # the perturbations' force at the hand
    feedback: Float[Array, "*batch n_steps n_observed"]
    network_input: Float[Array, "*batch n_steps n_inputs"]
    hidden: Float[Array, "*batch n_steps hidden"]


def feedback_slices(labels: tuple[str, ...], variables: tuple[str, ...]) -> tuple[slice, ...]:
    """Where each fed-back variable (`pos`: `pos_x`, `pos_y`, ...) lies in an observation."""
    slices = []
    for variable in variables:
        indices = [i for i, label in enumerate(labels) if label.rsplit("_", 1)[0] == variable]
        if not indices or indices != list(range(indices[0], indices[-1] + 1)):
            raise ValueError(f"feedback variable {variable!r} is not observed as one block in {labels}")
        slices.append(slice(indices[0], indices[-1] + 1))
    return tuple(slices)


def network_input_size(hp: Hyperparameters) -> int:
    """Size of the network input: context, target position and velocity, and the fed-back
    variables as the plant observes them."""
    plant = build_plant(hp.plant)
    fed_back = feedback_slices(plant.observation_labels, tuple(hp.feedback.variables))
    return hp.context.n_inputs + 2 + 2 + sum(s.stop - s.start for s in fed_back)


class ReachingModel(eqx.Module):
    """Controller (trained) in closed loop with channels and plant (fixed).

    Of an ensemble (`build_ensemble`) only the controller's arrays carry the replicate axis;
    the plant and the channels are shared. Their numbers are array leaves, so a study can
    `vmap` over a mass or a noise level without recompiling.
    """

    controller: Controller
    plant: AbstractPlant
    feedback: FeedbackChannel
    motor: MotorChannel
    hidden_noise_std: Float[Array, ""] = eqx.field(converter=as_float_array)
    feedback_variables: tuple[str, ...] = eqx.field(static=True)
    hidden_noisy: bool = eqx.field(static=True)

    def network_input(
        self,
        context: Float[Array, " n_context"],
        target_pos: Float[Array, " 2"],
        target_vel: Float[Array, " 2"],
        feedback: Float[Array, " n_observed"],
    ) -> Float[Array, " n_inputs"]:
        """Input vector in the fixed order: context, target pos, target vel, fed-back variables.

        Static slices rather than an index array: inside the rollout's scan an index array is a
        gather, whose gradient is a scatter-add in every backward step.
        """
        slices = feedback_slices(self.plant.observation_labels, self.feedback_variables)
        return jnp.concatenate([context, target_pos, target_vel, *(feedback[..., s] for s in slices)])

    def rollout(self, trial: Trials, key: PRNGKeyArray) -> Trajectory:
        """One trial (unbatched `trial`), compiled as a single `lax.scan`."""
        n_steps = trial.feedback_offset.shape[0]
        initial_state = self.plant.initial_state(trial.init_pos, trial.init_vel)

        def update(carry, inputs):
            state, queue, hidden = carry
            offset, noise = inputs
            queue, feedback = self.feedback(queue, self.plant.observation(state), noise["feedback"])
            feedback = feedback + offset
            net_input = self.network_input(trial.context, trial.target_pos, trial.target_vel, feedback)
            hidden = self.controller.cell(net_input, hidden) + self.hidden_noise_std * noise["hidden"]
            command = self.controller.readout(hidden)
            force = self.motor(command, noise["motor_multiplicative"], noise["motor_additive"])
            hand_pos, hand_vel = self.plant.effector(state)
            external = total_force(trial.perturbations, hand_pos, hand_vel, trial.init_pos, trial.target_pos)
            state = self.plant.step(state, force, external)
            pos, vel = self.plant.effector(state)
            outputs = (pos, vel, command, force, external, feedback, net_input, hidden)
            return (state, queue, hidden), outputs

        hidden = jnp.zeros(self.controller.hidden_size)
        carry = (initial_state, self.feedback.init_queue(self.plant.observation(initial_state)), hidden)
        _, outputs = jax.lax.scan(update, carry, (trial.feedback_offset[1:], self._draw_noise(key, n_steps - 1)))

        pos, vel = self.plant.effector(initial_state)
        initial = (pos, vel, *(jnp.zeros(x.shape[1:]) for x in outputs[2:]))
        stacked = [jnp.concatenate([first[None], rest], axis=0) for first, rest in zip(initial, outputs)]
        return Trajectory(*stacked)

    def _draw_noise(self, key: PRNGKeyArray, n_updates: int) -> dict[str, Float[Array, "n_updates _"]]:
        """All standard-normal samples of a trial at once (one vectorised draw per source).

        Silent sources (`noisy` false) get zeros instead of random draws: generating random
        bits for 50 hidden units per step would otherwise be a large share of a training step.
        """
        n_controls = self.plant.n_controls
        sources = {
            "feedback": (self.plant.n_observed, self.feedback.noisy),
            "hidden": (self.controller.hidden_size, self.hidden_noisy),
            "motor_multiplicative": (n_controls, self.motor.noisy),
            "motor_additive": (n_controls, self.motor.noisy),
        }
        keys = jax.random.split(key, len(sources))
        return {
            name: jax.random.normal(k, (n_updates, size)) if noisy else jnp.zeros((n_updates, size))
            for k, (name, (size, noisy)) in zip(keys, sources.items())
        }


def simulate(model: ReachingModel, trials: Trials, key: PRNGKeyArray) -> Trajectory:
    """Roll out a batch of trials (leading axis of `trials`) with one model; one key per trial."""
    keys = jax.random.split(key, trials.n_trials)
    return jax.vmap(model.rollout)(trials, keys)


def replicate_axes(model: ReachingModel) -> PyTree:
    """`in_axes` of an ensemble for `vmap` over replicates: 0 on the controller's arrays, None elsewhere."""
    axes = jax.tree_util.tree_map(lambda _: None, model)
    return eqx.tree_at(lambda m: m.controller, axes, jax.tree_util.tree_map(lambda _: 0, model.controller))


def trainable(model: ReachingModel) -> PyTree:
    """Filter spec of the trained arrays (the controller's), for `eqx.partition`."""
    spec = jax.tree_util.tree_map(lambda _: False, model)
    return eqx.tree_at(lambda m: m.controller, spec, jax.tree_util.tree_map(eqx.is_array, model.controller))


def simulate_replicates(model: ReachingModel, trials: Trials, key: PRNGKeyArray) -> Trajectory:
    """Roll out the same trials with every replicate of an ensemble model.

    Returns arrays with a leading replicate axis; each replicate gets independent noise.
    """
    n_replicates = replicate_count(model)
    keys = jax.random.split(key, n_replicates)
    return eqx.filter_vmap(simulate, in_axes=(replicate_axes(model), None, 0))(model, trials, keys)


def is_ensemble(model: ReachingModel) -> bool:
    """Whether the controller's arrays carry a leading replicate axis (`build_ensemble`)."""
    return model.controller.readout.weight.ndim == 3


def replicate_count(model: ReachingModel) -> int:
    """Size of the leading replicate axis of an ensemble model's controller (1 for a single model)."""
    return model.controller.readout.weight.shape[0] if is_ensemble(model) else 1


def build_controller(hp: Hyperparameters, key: PRNGKeyArray) -> Controller:
    """A controller with freshly initialised weights, sized for the plant's observation."""
    return Controller(
        network_input_size(hp),
        hp.controller.hidden_size,
        cell=hp.controller.cell,
        orthogonal_recurrent_init=hp.controller.orthogonal_recurrent_init,
        leak=hp.controller.leak,
        n_outputs=build_plant(hp.plant).n_controls,
        key=key,
    )


def _closed_loop(hp: Hyperparameters, controller: Controller) -> ReachingModel:
    return ReachingModel(
        controller=controller,
        plant=build_plant(hp.plant),
        feedback=FeedbackChannel(delay=hp.feedback.delay, noise_std=hp.feedback.noise_std),
        motor=MotorChannel(noise_std=hp.motor.noise_std),
        hidden_noise_std=hp.controller.hidden_noise_std,
        feedback_variables=tuple(hp.feedback.variables),
        hidden_noisy=is_noisy(hp.controller.hidden_noise_std),
    )


def build_model(hp: Hyperparameters, key: PRNGKeyArray) -> ReachingModel:
    """A single model with freshly initialised controller weights."""
    return _closed_loop(hp, build_controller(hp, key))


def build_ensemble(hp: Hyperparameters, key: PRNGKeyArray, n_replicates: int | None = None) -> ReachingModel:
    """`n_replicates` (default `hp.train.n_replicates`) controllers stacked along a leading
    axis, in one closed loop (plant and channels shared)."""
    n = hp.train.n_replicates if n_replicates is None else n_replicates
    controllers = eqx.filter_vmap(lambda k: build_controller(hp, k))(jax.random.split(key, n))
    return _closed_loop(hp, controllers)


def skeleton_from_hyperparameters(hyperparameters: dict[str, Any]) -> ReachingModel:
    """A like-shaped ensemble to deserialise saved weights into (used by the results store)."""
    return build_ensemble(load_hyperparameters(hyperparameters), jax.random.PRNGKey(0))


def deserialise_model(stream: BinaryIO, hyperparameters: dict[str, Any]) -> ReachingModel:
    """A saved ensemble: the controller's weights from `stream`, the fixed part (plant,
    channels, noise levels) built again from the hyperparameters it was trained with.

    The controller is a saved model's first field, so its leaves open the file; whatever the
    fixed part wrote after them is not read. A file saved when the fixed part held other array
    leaves (before the plant's numbers became leaves, say) therefore still loads.
    """
    like = skeleton_from_hyperparameters(hyperparameters)
    controller = eqx.tree_deserialise_leaves(stream, like.controller)
    return eqx.tree_at(lambda m: m.controller, like, controller)


def select_replicate(model: ReachingModel, index: int) -> ReachingModel:
    """One replicate of an ensemble model, as a single model."""
    controller = jax.tree_util.tree_map(lambda x: x[index] if eqx.is_array(x) else x, model.controller)
    return eqx.tree_at(lambda m: m.controller, model, controller)


def steady_state_input(
    model: ReachingModel, goal: Float[Array, " 2"], context: Float[Array, " n_context"]
) -> Float[Array, " n_inputs"]:
    """Network input while resting at `goal`: the target is `goal` at rest, and the feedback
    the plant's observation with the hand resting there."""
    goal, zeros = jnp.asarray(goal, float), jnp.zeros(2)
    rest = model.plant.observation(model.plant.initial_state(goal, zeros))
    return model.network_input(jnp.asarray(context, float), goal, zeros, rest)

"""One training step of one replicate, and its vmapped ensemble form.

Everything that changes from batch to batch (batch index, hence learning rate, perturbation
scale, optimiser reset, which parameters train) is computed from array arguments inside the
step, so a whole run compiles it once.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from robustreach.config import Hyperparameters
from robustreach.loss import TASK_TERMS, loss_terms, readout_norm_penalty
from robustreach.model import ReachingModel, simulate
from robustreach.tasks import centre_out_trials, training_trials
from robustreach.train.conditions import ConditionArrays
from robustreach.train.schedules import learning_rate_schedule, perturbation_scale_schedule

Params = PyTree  # the trained arrays of a ReachingModel (the controller's weights, `model.trainable`)
METRIC_NAMES = (*TASK_TERMS, "total", "training", "learning_rate", "perturbation_scale", "finite")


def make_optimizer(hp: Hyperparameters) -> optax.GradientTransformation:
    """Adam (or AdamW) direction without the learning rate, which the step applies itself."""
    if hp.train.optimizer == "adamw":
        return optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(hp.train.weight_decay))
    return optax.scale_by_adam()


def batch_key(base_key: PRNGKeyArray, batch: Int[Array, ""]) -> PRNGKeyArray:
    """The key of a batch depends on the global batch index only (resumable, no reuse)."""
    return jax.random.fold_in(base_key, batch)


class StepFunction(eqx.Module):
    """Per-replicate training step: draw trials, loss, gradients, masked Adam update."""

    static: ReachingModel  # non-array part of the model
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    hp: Hyperparameters = eqx.field(static=True)
    trace_counter: list = eqx.field(static=True)

    def __call__(
        self,
        params: Params,
        opt_state: PyTree,
        condition: ConditionArrays,
        batch: Int[Array, ""],
        base_key: PRNGKeyArray,
        replicate: Int[Array, ""],
    ) -> tuple[Params, PyTree, dict[str, Float[Array, ""]]]:
        self.trace_counter.append(1)  # runs at trace time only: counts compilations
        train = self.hp.train
        key = batch_key(base_key, batch)
        trial_key, noise_key = jax.random.split(key)
        if not train.shared_trials:
            trial_key = jax.random.fold_in(trial_key, replicate)
        noise_key = jax.random.fold_in(noise_key, replicate)
        scale = perturbation_scale_schedule(train)(batch)
        trials = training_trials(condition.trial_spec, trial_key, train.batch_size, scale)

        def loss_fn(p: Params):
            model = eqx.combine(p, self.static)
            terms = loss_terms(simulate(model, trials, noise_key), trials, condition.loss_weights)
            penalty = readout_norm_penalty(
                model.controller.readout.weight, condition.readout_norm_target, condition.readout_norm_weight
            )
            return terms["total"] + penalty, terms

        (training_loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        grads = self._mask_frozen(grads, batch)
        reset = jnp.isin(batch, jnp.asarray(train.opt_reset_batches, dtype=jnp.int32))
        fresh = self.optimizer.init(params)
        opt_state = jax.tree_util.tree_map(lambda new, old: jnp.where(reset, new, old), fresh, opt_state)
        direction, new_opt_state = self.optimizer.update(grads, opt_state, params)
        learning_rate = learning_rate_schedule(train)(batch)
        updates = self._mask_frozen(jax.tree_util.tree_map(lambda d: -learning_rate * d, direction), batch)
        new_params = optax.apply_updates(params, updates)

        finite = jnp.isfinite(training_loss) & _all_finite(new_params)
        keep = lambda new, old: jnp.where(finite, new, old)
        new_params = jax.tree_util.tree_map(keep, new_params, params)
        new_opt_state = jax.tree_util.tree_map(keep, new_opt_state, opt_state)
        metrics = {**terms, "training": training_loss, "learning_rate": learning_rate, "perturbation_scale": scale, "finite": finite}
        return new_params, new_opt_state, metrics

    def _mask_frozen(self, tree: Params, batch: Int[Array, ""]) -> Params:
        """Zero the parts listed in `train.train_from` before the batch they start training."""
        for part, start in self.hp.train.train_from.items():
            tree = _zero_part_before(tree, part, batch >= start)
        return tree


def _zero_part_before(tree: Params, part: str, active: Bool[Array, ""]) -> Params:
    """`tree` with the controller's `part` ("cell" or "readout") zeroed unless `active`."""
    zero_unless_active = lambda sub: jax.tree_util.tree_map(lambda x: jnp.where(active, x, 0.0), sub)
    return eqx.tree_at(lambda t: getattr(t.controller, part), tree, replace_fn=zero_unless_active)


def _all_finite(tree: PyTree) -> Bool[Array, ""]:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves))


def ensemble_step(step: StepFunction) -> Callable:
    """The step vmapped over replicates (inner) and conditions (outer), jit-compiled."""
    # filter_vmap keeps the step a PyTree: the plant's and channels' arrays it holds are
    # arguments of the compiled function (shared by every replicate), not hidden constants.
    over_replicates = eqx.filter_vmap(step, in_axes=(0, 0, None, None, None, 0))
    over_conditions = eqx.filter_vmap(over_replicates, in_axes=(0, 0, 0, None, None, None))
    return eqx.filter_jit(over_conditions)


def make_validation(hp: Hyperparameters, static: ReachingModel, trace_counter: list) -> Callable:
    """Task loss (never the custom training loss) on a fixed unperturbed centre-out set."""
    trials = centre_out_trials(
        hp.task.n_steps,
        hp.task.workspace,
        n_directions=hp.train.validation_directions,
        n_context=hp.context.n_inputs,
        n_observed=static.plant.n_observed,
    )

    def validate(params: Params, condition: ConditionArrays, key: PRNGKeyArray) -> Float[Array, ""]:
        trace_counter.append(1)
        model = eqx.combine(params, static)
        return loss_terms(simulate(model, trials, key), trials, condition.loss_weights)["total"]

    over_replicates = jax.vmap(validate, in_axes=(0, None, None))
    return eqx.filter_jit(jax.vmap(over_replicates, in_axes=(0, 0, None)))

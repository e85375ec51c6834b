"""The ensemble trainer: replicates and conditions as batch axes of the parameter arrays.

```python
result = train_conditions([hp_unperturbed, hp_curl])   # one compiled step for both
result.conditions[1].model        # curl-trained ensemble, best snapshot per replicate
result.conditions[1].history      # per-batch loss terms, lr, perturbation scale, validation
```
`method="loop"` runs the same per-replicate step in a Python loop over conditions and
replicates: the reference the vmapped path is checked against.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree
from robustreach.progress import progress_bar

from robustreach.config import Hyperparameters, load_hyperparameters
from robustreach.devices import TrainingSharding, training_sharding
from robustreach.model import ReachingModel, build_ensemble, trainable
from robustreach.provenance import provenance
from robustreach.train.checkpoint import resume_checkpoint, save_checkpoint
from robustreach.train.conditions import ConditionArrays, stack_conditions
from robustreach.train.history import best_batches, condition_history, empty_history
from robustreach.train.schedules import snapshot_batches, validation_batches
from robustreach.train.step import METRIC_NAMES, StepFunction, ensemble_step, make_optimizer, make_validation

logger = logging.getLogger(__name__)


DIVERGENCE_GROWTH = 100.0
"""A validation loss above this multiple of the initial parameters' one (or not finite) is divergence."""


def divergence(
    finite: np.ndarray, validation: np.ndarray | None, initial_validation: np.ndarray, batch: int
) -> dict[str, Any] | None:
    """`{"batch", "condition", "replicate", "reason"}` if training diverged at `batch`, else None.

    Diverged: a non-finite loss or parameters (`finite`, per condition and replicate), or a
    validation loss at `batch` (None when not computed there) that is not finite or exceeds
    `DIVERGENCE_GROWTH` times the validation loss of that replicate's initial parameters.
    """
    bad = ~np.asarray(finite).astype(bool)
    reason = "non-finite loss or parameters"
    if not bad.any():
        if validation is None:
            return None
        bad = ~(validation <= DIVERGENCE_GROWTH * initial_validation)  # also catches NaN and infinities
        reason = f"validation loss above {DIVERGENCE_GROWTH:g} times that of the initial parameters"
        if not bad.any():
            return None
    c, r = (int(i[0]) for i in np.nonzero(bad))
    return {"batch": int(batch), "condition": c, "replicate": r, "reason": reason}


@dataclass
class TrainedCondition:
    """One training condition's ensemble: the selected (best) and the final parameters."""

    hyperparameters: Hyperparameters
    model: ReachingModel  # per replicate, the snapshot with the lowest validation loss
    final_model: ReachingModel
    history: dict[str, Any]


@dataclass
class TrainingResult:
    conditions: list[TrainedCondition]
    n_batches_run: int
    diverged: dict[str, Any] | None = None  # see `divergence`
    compilations: dict[str, int] = field(default_factory=dict)


@dataclass
class TrainingSetup:
    """Initial parameters and optimiser state (condition x replicate axes) and the compiled step."""

    hyperparameters: list[Hyperparameters]
    conditions: ConditionArrays
    static: ReachingModel
    optimizer: Any
    params: PyTree
    opt_state: PyTree
    run_step: Callable
    train_key: jax.Array
    validation_key: jax.Array
    replicate_ids: jax.Array
    step_traces: list = field(default_factory=list)
    validation_traces: list = field(default_factory=list)
    sharding: TrainingSharding | None = None  # the split over CPU devices (`robustreach.devices`)

    def place(self, state: PyTree) -> PyTree:
        """Arrays with (condition, replicate) leading axes, put where the step expects them."""
        return state if self.sharding is None else jax.device_put(state, self.sharding.state)


def prepare_training(conditions: list[Hyperparameters | dict], method: Literal["vmap", "loop"] = "vmap") -> TrainingSetup:
    """Everything a run needs before its first batch (also used by `benchmarks/train.py`).

    Initial weights depend on `train.seed` only, so every condition starts from the same
    replicates and a condition trains identically alone or in a group.
    """
    if method not in ("vmap", "loop"):
        raise ValueError(f"method must be 'vmap' or 'loop', got {method!r}")
    hps = [load_hyperparameters(hp) for hp in conditions]
    hp = hps[0]
    condition_arrays = stack_conditions(hps)
    init_key, train_key, validation_key = jax.random.split(jax.random.PRNGKey(hp.train.seed), 3)
    ensemble = build_ensemble(hp, init_key)
    replicate_params, static = eqx.partition(ensemble, trainable(ensemble))  # the plant's numbers stay fixed
    params = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (len(hps), *x.shape)), replicate_params)
    optimizer = make_optimizer(hp)
    opt_state = jax.vmap(jax.vmap(optimizer.init))(params)
    step_traces: list = []
    step = StepFunction(static=static, optimizer=optimizer, hp=hp, trace_counter=step_traces)
    run_step = ensemble_step(step) if method == "vmap" else _loop_step(step, len(hps), hp.train.n_replicates)
    sharding = training_sharding(len(hps), hp.train.n_replicates) if method == "vmap" else None
    if sharding is not None:  # the vmapped step then runs on every device, one share each
        params, opt_state = jax.device_put((params, opt_state), sharding.state)
        condition_arrays = jax.device_put(condition_arrays, sharding.conditions)
    return TrainingSetup(
        hyperparameters=hps,
        conditions=condition_arrays,
        static=static,
        optimizer=optimizer,
        params=params,
        opt_state=opt_state,
        run_step=run_step,
        train_key=train_key,
        validation_key=validation_key,
        replicate_ids=jnp.arange(hp.train.n_replicates),
        step_traces=step_traces,
        sharding=sharding,
    )


def train_conditions(
    conditions: list[Hyperparameters | dict],
    *,
    method: Literal["vmap", "loop"] = "vmap",
    checkpoint_path: Path | str | None = None,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Train every condition's ensemble of `train.n_replicates` together.

    **Arguments:**

    - `conditions`: hyperparameters differing only in batchable values (see `conditions.py`).
    - `method`: "vmap" (one step over all replicates and conditions) or "loop" (reference).
    - `checkpoint_path`: where to save the training state every `train.checkpoint_every`
      batches and on Ctrl-C; if the file exists, training resumes from it.
    - `progress`: show a progress bar with the current loss.
    - `on_batch`: called with the batch index after each batch (e.g. to interrupt in tests).
    """
    setup = prepare_training(conditions, method)
    hps, hp, train = setup.hyperparameters, setup.hyperparameters[0], setup.hyperparameters[0].train
    n_conditions, n_replicates = len(hps), train.n_replicates
    condition_arrays, static, run_step = setup.conditions, setup.static, setup.run_step
    train_key, validation_key = setup.train_key, setup.validation_key
    validate = make_validation(hp, static, setup.validation_traces)

    snapshots_at = snapshot_batches(train)
    snapshot_slot = {int(b): i for i, b in enumerate(snapshots_at)}
    validate_at = set(validation_batches(train).tolist())
    params = setup.params
    state = {
        "params": params,
        "opt_state": setup.opt_state,
        "history": empty_history(train.n_batches, n_conditions, n_replicates),
        "snapshots": jax.tree_util.tree_map(lambda x: np.zeros((len(snapshots_at), *x.shape), x.dtype), params),
        "next_batch": np.zeros((), np.int32),
    }
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    resumed = resume_checkpoint(checkpoint_path, state) if checkpoint_path else None
    if resumed is not None:
        state = resumed
        logger.info("resuming from %s at batch %d", checkpoint_path, int(state["next_batch"]))
    state["params"], state["opt_state"] = setup.place((state["params"], state["opt_state"]))
    state["history"] = {k: np.array(v) for k, v in state["history"].items()}
    state["snapshots"] = jax.tree_util.tree_map(np.array, state["snapshots"])

    _log_provenance()
    if setup.sharding is not None:
        logger.info("training on %d CPU devices, one share of the %ss each", setup.sharding.n_devices, setup.sharding.axis)
    initial_validation = np.asarray(validate(setup.params, condition_arrays, validation_key))  # the divergence baseline
    replicate_ids = setup.replicate_ids
    diverged = None
    start = int(state["next_batch"])
    bar = progress_bar(range(start, train.n_batches), desc="training", initial=start, total=train.n_batches, disable=not progress)
    batch = start - 1
    try:
        for batch in bar:
            params, opt_state, metrics = run_step(
                state["params"], state["opt_state"], condition_arrays, jnp.int32(batch), train_key, replicate_ids
            )
            metrics = jax.device_get(metrics)
            finite = bool(np.all(metrics["finite"]))
            validation = np.asarray(validate(params, condition_arrays, validation_key)) if finite and batch in validate_at else None
            # Commit the batch. Its history rows and snapshot go first: an interrupt before the
            # state update leaves next_batch = batch, and the resumed run rewrites them with the
            # same values. params, opt_state and next_batch change in one dict.update call, so a
            # Ctrl-C (checked between bytecodes) sees the batch done or not done, never half.
            for name in METRIC_NAMES:
                state["history"][name][batch] = metrics[name]
            if validation is not None:
                state["history"]["validation"][batch] = validation
            if finite and batch in snapshot_slot:
                host_params = jax.device_get(params)
                for leaf, snapshot in zip(jax.tree_util.tree_leaves(host_params), jax.tree_util.tree_leaves(state["snapshots"])):
                    snapshot[snapshot_slot[batch]] = leaf
            state.update(params=params, opt_state=opt_state, next_batch=np.asarray(batch + 1, np.int32))
            diverged = divergence(metrics["finite"], validation, initial_validation, batch)
            if diverged is not None:
                logger.error("training diverged at batch %d (condition %d, replicate %d): %s; training stopped, "
                             "last finite parameters kept", batch, diverged["condition"], diverged["replicate"], diverged["reason"])
                break
            if checkpoint_path and train.checkpoint_every and (batch + 1) % train.checkpoint_every == 0:
                save_checkpoint(checkpoint_path, state)
            bar.set_postfix(loss=f"{float(np.mean(metrics['total'])):.4g}")
            if on_batch is not None:
                on_batch(batch)
    except KeyboardInterrupt:
        if checkpoint_path:
            save_checkpoint(checkpoint_path, state)
            logger.warning("interrupted: training state saved to %s (run again to resume)", checkpoint_path)
        raise
    finally:
        bar.close()

    n_done = int(state["next_batch"])
    trained = _split_conditions(hps, state, static, snapshots_at, n_done)
    compilations = {"train_step": len(setup.step_traces), "validation": len(setup.validation_traces)}
    return TrainingResult(trained, n_done, diverged, compilations)


def _split_conditions(hps, state, static, snapshots_at, n_done) -> list[TrainedCondition]:
    """Per condition: final and best-snapshot ensembles, and the condition's history."""
    taken = snapshots_at < n_done
    best = best_batches(state["history"]["validation"][:n_done], snapshots_at[taken])  # (C, R)
    slot = np.searchsorted(snapshots_at, best)
    n_conditions, n_replicates = best.shape
    c_index, r_index = np.meshgrid(np.arange(n_conditions), np.arange(n_replicates), indexing="ij")
    best_params = jax.tree_util.tree_map(lambda s: jnp.asarray(s[slot, c_index, r_index]), state["snapshots"])
    results = []
    for c, hp in enumerate(hps):
        results.append(
            TrainedCondition(
                hyperparameters=hp,
                model=eqx.combine(_take(best_params, c), static),
                final_model=eqx.combine(_take(state["params"], c), static),
                history=condition_history(state["history"], c, snapshots_at, hp.train.exclusion_k, n_done),
            )
        )
    return results


def _loop_step(step: StepFunction, n_conditions: int, n_replicates: int) -> Callable:
    """Reference path: the single-replicate step in a Python loop over conditions and replicates."""
    single = eqx.filter_jit(step)

    def run(params, opt_state, conditions, batch, key, replicate_ids) -> tuple[PyTree, PyTree, dict]:
        outputs = []
        for c in range(n_conditions):
            condition = _take(conditions, c)
            row = []
            for r in range(n_replicates):
                row.append(single(_take(params, c, r), _take(opt_state, c, r), condition, batch, key, replicate_ids[r]))
            outputs.append(jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *row))
        return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *outputs)

    return run


def _take(tree: PyTree, *index: int) -> PyTree:
    """Every leaf indexed along its leading axes."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def _log_provenance() -> None:
    info = provenance(device=True)
    git = info.get("git") or {}
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    logger.info("training with %s; git %s%s; device %s", versions, (git.get("commit") or "none")[:12],
                " (dirty)" if git.get("dirty") else "", info.get("device"))

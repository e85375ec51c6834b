"""Evaluate a trained ensemble on an evaluation set under chosen test conditions.

An `EvaluationSpec` says which trials (centre-out reaches or hold trials), which test
conditions (a perturbation of `robustreach.perturbations` at listed amplitudes, feedback impulses, context-input
values: every combination is one *condition*), which noise (the model's training noise unless
overridden) and how many noise realisations per trial. `evaluate` runs every condition,
replicate and realisation in one compiled call and returns an `Evaluation`:

```python
spec = EvaluationSpec(perturbation="curl", amplitudes=[0, 0.5, 1, 2, 4], n_realisations=2, seed=0)
evaluation = evaluate(ensemble, hyperparameters, spec, store=store, model_hash=record["hash"])
evaluation.trajectory.pos.shape   # (condition, replicate, realisation, trial, time, 2)
evaluation.condition_table()      # amplitude (and impulse_amplitude, context) per condition
```

Every condition sees the same noise realisations (common random numbers), so differences
between conditions are the conditions' doing, not the noise's. With a results store,
evaluations are cached by (model hash, `Evaluation.params`); `store` is optional.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple, Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float, PRNGKeyArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from robustreach.channels import FeedbackChannel, MotorChannel, is_noisy
from robustreach.config import Hyperparameters, load_hyperparameters
from robustreach.model import (
    ReachingModel,
    Trajectory,
    is_ensemble,
    network_input_size,
    replicate_count,
    simulate_replicates,
)
from robustreach.perturbations import check_settings
from robustreach.progress import progress_bar
from robustreach.tasks import (
    centre_out_trials,
    default_reach_length,
    hold_trials,
    random_angles,
    with_context,
    with_feedback_impulse,
    with_perturbation,
)
from robustreach.trials import FEEDBACK_STATE, Trials

AXES = ("condition", "replicate", "realisation", "trial", "time")
IMPULSE_ANGLES = {"x": 0.0, "y": np.pi / 2}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImpulseSpec(_Spec):
    """Feedback impulses: offset the fed-back `variable` for `duration` updates from `onset`."""

    variable: Literal["pos", "vel"]
    amplitudes: list[float] = Field(min_length=1)
    onset: int = Field(30, ge=1)
    duration: int = Field(5, ge=1)
    direction: Literal["x", "y", "random"] = "x"


class NoiseSpec(_Spec):
    """Noise overrides; `None` keeps the model's (training) value."""

    feedback: float | None = Field(None, ge=0.0)
    motor: float | None = Field(None, ge=0.0)
    hidden: float | None = Field(None, ge=0.0)


class EvaluationSpec(_Spec):
    """What to evaluate. Conditions are every combination of `amplitudes` x impulse amplitudes
    x `context` values, in that nesting order (the last varies fastest)."""

    trial_set: Literal["centre_out", "hold"] = "centre_out"
    n_grid: int | None = Field(None, ge=1)  # default: 1 for centre-out, 5 for hold sets
    n_directions: int = Field(24, ge=1)
    reach_length: float | None = Field(None, gt=0.0)  # default: `tasks.default_reach_length` of the workspace
    n_steps: int | None = Field(None, ge=2)  # default: the model's training n_steps
    perturbation: str = "none"  # or a kind of `perturbations.REGISTRY`
    settings: dict[str, Any] = {}  # that kind's settings (a viscous matrix, a channel's stiffness)
    amplitudes: list[float] = Field([0.0], min_length=1)
    impulse: ImpulseSpec | None = None
    context: list[float] | None = Field(None, min_length=1)
    noise: NoiseSpec = NoiseSpec()
    n_realisations: int = Field(1, ge=1)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _amplitudes_need_a_field(self) -> EvaluationSpec:
        if self.perturbation == "none" and any(a != 0 for a in self.amplitudes):
            raise ValueError(f"amplitudes {self.amplitudes} need a perturbation, not 'none'")
        check_settings(self.perturbation, self.settings)
        return self


def load_spec(spec: EvaluationSpec | Mapping[str, Any] | None) -> EvaluationSpec:
    """Validate a dict into an `EvaluationSpec`; errors name each offending key."""
    if isinstance(spec, EvaluationSpec):
        return spec
    try:
        return EvaluationSpec.model_validate(dict(spec or {}))
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in item['loc']) or '(top level)'}: {item['msg']} (got {item['input']!r})"
            for item in error.errors()
        ]
        raise ValueError("invalid evaluation spec:\n  " + "\n  ".join(problems)) from None


class Evaluation(eqx.Module):
    """Trajectories of an ensemble under test conditions, with the labels of every axis.

    - `trajectory`: arrays with axes `AXES` = (condition, replicate, realisation, trial,
      time, ...);
    - `trials`: the trials of each condition, axes (condition, trial, ...);
    - `conditions`: one dict of test-condition labels per condition (`amplitude`, and
      `impulse_amplitude` / `context` when used);
    - `replicates`: the original replicate index of each entry of the replicate axis (kept
      through `take_replicates`, so hover texts and tables name the true replicate);
    - `impulse_angle`: direction of each trial's feedback impulse (radians), or None;
    - `params`: plain-dict description of the evaluation (the cache key with the model hash).
    """

    trajectory: Trajectory
    trials: Trials
    impulse_angle: Float[Array, " trial"] | None
    conditions: tuple[dict[str, float], ...] = eqx.field(static=True)
    replicates: tuple[int, ...] = eqx.field(static=True)
    params: dict[str, Any] = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    axes = AXES

    @property
    def n_conditions(self) -> int:
        return len(self.conditions)

    @property
    def n_replicates(self) -> int:
        return len(self.replicates)

    @property
    def n_realisations(self) -> int:
        return self.trajectory.pos.shape[2]

    @property
    def n_trials(self) -> int:
        return self.trajectory.pos.shape[3]

    @property
    def n_steps(self) -> int:
        return self.trajectory.pos.shape[4]

    @property
    def times(self) -> np.ndarray:
        """Time of each trajectory index in seconds (index t is the state after update t)."""
        return self.dt * np.arange(self.n_steps)

    def condition_table(self) -> pd.DataFrame:
        """One row per condition: its index (`test_condition`) and its labels."""
        table = pd.DataFrame(list(self.conditions))
        table.insert(0, "test_condition", np.arange(self.n_conditions))
        return table

    def trial_table(self) -> pd.DataFrame:
        """One row per trial: reach direction (degrees, 0 for hold trials), start and target."""
        start = np.asarray(self.trials.init_pos[0])
        target = np.asarray(self.trials.target_pos[0])
        table = pd.DataFrame(
            {
                "trial": np.arange(self.n_trials),
                "direction": np.round(np.degrees(np.asarray(self.trials.reach_angle[0])) % 360.0, 6),
                "start_x": start[:, 0],
                "start_y": start[:, 1],
                "target_x": target[:, 0],
                "target_y": target[:, 1],
            }
        )
        if self.impulse_angle is not None:
            table["impulse_direction"] = np.round(np.degrees(np.asarray(self.impulse_angle)) % 360.0, 6)
        return table

    def take_replicates(self, indices: Sequence[int]) -> Evaluation:
        """The evaluation restricted to these replicates (original indices, as in `replicates`)."""
        positions = [self.replicates.index(int(i)) for i in indices]
        trajectory = jax.tree_util.tree_map(lambda x: x[:, jnp.asarray(positions, int)], self.trajectory)
        return dataclasses.replace(self, trajectory=trajectory, replicates=tuple(int(i) for i in indices))

    def take_conditions(self, indices: Sequence[int]) -> Evaluation:
        """The evaluation restricted to these conditions (indices into `conditions`)."""
        index = jnp.asarray(list(indices), int)
        pick = lambda x: x[index]
        return dataclasses.replace(
            self,
            trajectory=jax.tree_util.tree_map(pick, self.trajectory),
            trials=jax.tree_util.tree_map(pick, self.trials),
            conditions=tuple(self.conditions[int(i)] for i in indices),
        )


class EvaluationCache(Protocol):
    """What `evaluate` needs of a results store (`robustreach.store.ResultsStore`)."""

    def cached_evaluation(self, model_hash: str, eval_params: dict, compute: Callable[[], Any]) -> Any: ...


def with_noise(
    model: ReachingModel, *, feedback: float | None = None, motor: float | None = None, hidden: float | None = None
) -> ReachingModel:
    """The model with some noise levels replaced (`None` keeps the current value)."""
    if feedback is not None:
        model = eqx.tree_at(lambda m: m.feedback, model, FeedbackChannel(model.feedback.delay, feedback))
    if motor is not None:
        model = eqx.tree_at(lambda m: m.motor, model, MotorChannel(motor))
    if hidden is not None:  # whether the source draws at all is static: a new model, not a new leaf
        model = dataclasses.replace(model, hidden_noise_std=hidden, hidden_noisy=is_noisy(hidden))
    return model


def _check_model(model: ReachingModel, hp: Hyperparameters) -> None:
    expected = network_input_size(hp)
    weight = model.controller.cell.weight_ih
    if weight.shape[-1] != expected:
        raise ValueError(
            f"the model takes {weight.shape[-1]} inputs but its hyperparameters describe {expected} "
            "(context, target, feedback variables): pass the hyperparameters the model was trained with"
        )


def _condition_grid(spec: EvaluationSpec, n_context: int) -> list[dict[str, float]]:
    impulse = spec.impulse.amplitudes if spec.impulse else [None]
    context = spec.context if spec.context is not None else ([0.0] if n_context else [None])
    grid = []
    for amplitude, impulse_amplitude, value in itertools.product(spec.amplitudes, impulse, context):
        labels = {"amplitude": float(amplitude)}
        if impulse_amplitude is not None:
            labels["impulse_amplitude"] = float(impulse_amplitude)
        if value is not None:
            labels["context"] = float(value)
        grid.append(labels)
    return grid


def _resolve(spec: EvaluationSpec, model: ReachingModel, hp: Hyperparameters) -> dict[str, Any]:
    """The spec with every default filled in from the model: the evaluation's identity."""
    params = spec.model_dump(mode="json")
    params["n_grid"] = spec.n_grid or (1 if spec.trial_set == "centre_out" else 5)
    params["n_steps"] = spec.n_steps or hp.task.n_steps
    params["workspace"] = hp.task.workspace
    params["reach_length"] = spec.reach_length or default_reach_length(hp.task.workspace)
    params["dt"] = hp.plant.dt
    params["noise"] = {
        # the levels as the hyperparameters give them (the model holds them in float32)
        "feedback": hp.feedback.noise_std if spec.noise.feedback is None else spec.noise.feedback,
        "motor": hp.motor.noise_std if spec.noise.motor is None else spec.noise.motor,
        "hidden": hp.controller.hidden_noise_std if spec.noise.hidden is None else spec.noise.hidden,
    }
    if spec.trial_set == "hold":  # centre-out geometry does not apply
        params.pop("n_directions")
        params.pop("reach_length")
    return params


def build_trials(
    params: Mapping[str, Any],
    conditions: Sequence[Mapping[str, float]],
    n_context: int,
    observed: tuple[str, ...] = FEEDBACK_STATE,
) -> tuple[Trials, Float[Array, " trial"] | None]:
    """The trials of every condition stacked on a leading axis, and the impulse angles.

    `observed` are the plant's `observation_labels` (the feedback the impulses offset)."""
    if params["trial_set"] == "centre_out":
        base = centre_out_trials(
            params["n_steps"],
            params["workspace"],
            n_grid=params["n_grid"],
            n_directions=params["n_directions"],
            reach_length=params["reach_length"],
            n_context=n_context,
            n_observed=len(observed),
        )
    else:
        base = hold_trials(
            params["n_steps"], params["workspace"], n_grid=params["n_grid"], n_context=n_context, n_observed=len(observed)
        )

    impulse = params.get("impulse")
    angle = None
    if impulse:
        if impulse["direction"] == "random":
            angle = random_angles(jax.random.fold_in(jax.random.PRNGKey(params["seed"]), 1), base.n_trials)
        else:
            angle = jnp.full(base.n_trials, IMPULSE_ANGLES[impulse["direction"]])

    per_condition = []
    for labels in conditions:
        trials = base
        if params["perturbation"] != "none":
            trials = with_perturbation(trials, params["perturbation"], labels["amplitude"], **params.get("settings", {}))
        if impulse:
            trials = with_feedback_impulse(
                trials,
                variable=impulse["variable"],
                onset=impulse["onset"],
                duration=impulse["duration"],
                amplitude=labels["impulse_amplitude"],
                angle=angle,
                labels=observed,
            )
        if "context" in labels:
            trials = with_context(trials, labels["context"])
        per_condition.append(trials)
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_condition), angle


@eqx.filter_jit
def rollout_conditions(
    model: ReachingModel, trials: Trials, keys: PRNGKeyArray
) -> Trajectory:
    """Every condition (leading axis of `trials`) x replicate x realisation (one key each).

    The same realisation keys serve every condition. Output axes: `AXES`.
    """

    def one_condition(condition_trials: Trials) -> Trajectory:
        one_realisation = lambda key: simulate_replicates(model, condition_trials, key)
        return jax.vmap(one_realisation, out_axes=1)(keys)  # (replicate, realisation, ...)

    return jax.vmap(one_condition)(trials)


def _as_trajectory(result: Any) -> Trajectory:
    """A cached result back to a `Trajectory` (stores may return a plain dict of arrays)."""
    if isinstance(result, Trajectory):
        return result
    if isinstance(result, Mapping):
        names = [f.name for f in dataclasses.fields(Trajectory)]
        missing = [n for n in names if n not in result]
        if missing:
            raise ValueError(f"cached evaluation lacks the trajectory arrays {missing}")
        return Trajectory(**{n: jnp.asarray(result[n]) for n in names})
    raise TypeError(f"cached evaluation should be a Trajectory or a dict of arrays, got {type(result).__name__}")


class PreparedEvaluation(NamedTuple):
    """Every input of the compiled rollout of one evaluation, and the labels of its axes."""

    params: dict[str, Any]
    conditions: tuple[dict[str, float], ...]
    trials: Trials  # (condition, trial, ...)
    impulse_angle: Float[Array, " trial"] | None
    model: ReachingModel  # ensemble (leading replicate axis) with the evaluation's noise
    keys: PRNGKeyArray  # one per realisation
    dt: float


def prepare_evaluation(
    model: ReachingModel,
    hyperparameters: Hyperparameters | Mapping[str, Any],
    spec: EvaluationSpec | Mapping[str, Any] | None = None,
) -> PreparedEvaluation:
    """Validate the spec against the model and build the trials, noise and keys (no rollout)."""
    hp = load_hyperparameters(hyperparameters if isinstance(hyperparameters, Hyperparameters) else dict(hyperparameters))
    spec = load_spec(spec)
    _check_model(model, hp)
    if spec.context is not None and hp.context.n_inputs == 0:
        raise ValueError(f"evaluate: context values {spec.context} given, but the model has no context input")
    params = _resolve(spec, model, hp)
    if spec.impulse and spec.impulse.onset + spec.impulse.duration > params["n_steps"]:
        raise ValueError(
            f"evaluate: impulse onset={spec.impulse.onset} + duration={spec.impulse.duration} "
            f"exceeds n_steps={params['n_steps']}"
        )
    n_context = hp.context.n_inputs
    conditions = _condition_grid(spec, n_context)
    trials, angle = build_trials(params, conditions, n_context, model.plant.observation_labels)
    ensemble = with_noise(model, **spec.noise.model_dump())
    if not is_ensemble(model):  # a single model: a one-replicate ensemble
        ensemble = eqx.tree_at(
            lambda m: m.controller, ensemble, jax.tree_util.tree_map(lambda x: x[None] if eqx.is_array(x) else x, ensemble.controller)
        )
    keys = jax.random.split(jax.random.PRNGKey(spec.seed), spec.n_realisations)
    return PreparedEvaluation(params, tuple(conditions), trials, angle, ensemble, keys, hp.plant.dt)


def evaluate(
    model: ReachingModel,
    hyperparameters: Hyperparameters | Mapping[str, Any],
    spec: EvaluationSpec | Mapping[str, Any] | None = None,
    *,
    store: EvaluationCache | None = None,
    model_hash: str | None = None,
) -> Evaluation:
    """Run the evaluation set of `spec` with every replicate of `model` under every condition.

    **Arguments:**

    - `model`: an ensemble (`model.build_ensemble`, leading replicate axis) or a single model.
    - `hyperparameters`: those the model was trained with (n_steps, workspace, inputs, dt).
    - `spec`: an `EvaluationSpec` or a dict of its fields (defaults: 24 centre-out reaches,
      no perturbation, training noise, one realisation, seed 0).
    - `store`, `model_hash`: with a store, the result is cached under (model hash, params).
    """
    if store is not None and not model_hash:
        raise ValueError("evaluate: a store needs the model_hash to cache the evaluation under")
    prepared = prepare_evaluation(model, hyperparameters, spec)

    def compute() -> dict[str, np.ndarray]:
        trajectory = rollout_conditions(prepared.model, prepared.trials, prepared.keys)
        return {f.name: np.asarray(getattr(trajectory, f.name)) for f in dataclasses.fields(Trajectory)}

    result = compute() if store is None else store.cached_evaluation(model_hash, prepared.params, compute)
    return Evaluation(
        trajectory=_as_trajectory(result),
        trials=prepared.trials,
        impulse_angle=prepared.impulse_angle,
        conditions=prepared.conditions,
        replicates=tuple(range(replicate_count(prepared.model))),
        params=prepared.params,
        dt=prepared.dt,
    )


def evaluate_models(
    models: Mapping[Any, tuple[ReachingModel, Hyperparameters | Mapping[str, Any]]],
    spec: EvaluationSpec | Mapping[str, Any] | None = None,
    *,
    store: EvaluationCache | None = None,
    model_hashes: Mapping[Any, str] | None = None,
    progress: bool = True,
) -> dict[Any, Evaluation]:
    """`evaluate` every model (label -> (ensemble, hyperparameters)) with the same spec.

    With a store, models that have a hash in `model_hashes` are cached.
    """
    spec = load_spec(spec)
    evaluations = {}
    for label, (model, hyperparameters) in progress_bar(models.items(), desc="evaluating", disable=not progress):
        model_hash = (model_hashes or {}).get(label)
        evaluations[label] = evaluate(model, hyperparameters, spec, store=store if model_hash else None, model_hash=model_hash)
    return evaluations

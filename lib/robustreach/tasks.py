"""Trial generation: training reaches, centre-out and hold sets, and test conditions.

Training trials are drawn from a `TrialSpec` whose numeric fields are arrays, so that specs
of several training conditions can be stacked and drawn under `vmap`. Every random quantity
has its own key (amplitude and angle of a constant field are independent).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from robustreach.config import Hyperparameters
from robustreach.perturbations import perturbation_kind, static_settings
from robustreach.plants import build_plant
from robustreach.trials import FEEDBACK_STATE, Trials, unperturbed_trials


class TrialSpec(eqx.Module):
    """How to draw training trials for one condition (see `ContextConfig` for the variants)."""

    perturbation_type: str = eqx.field(static=True)
    perturbation_settings: tuple[tuple[str, object], ...] = eqx.field(static=True)
    context_variant: str = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)
    n_observed: int = eqx.field(static=True)
    workspace: Float[Array, "2 2"]
    std: Float[Array, ""]
    p_perturbed: Float[Array, ""]
    on_value: Float[Array, ""]
    off_value: Float[Array, ""]

    @classmethod
    def from_hyperparameters(cls, hp: Hyperparameters) -> TrialSpec:
        return cls(
            perturbation_type=hp.perturbation.type,
            perturbation_settings=static_settings(hp.perturbation.settings),
            context_variant=hp.context.variant,
            n_steps=hp.task.n_steps,
            n_observed=build_plant(hp.plant).n_observed,
            workspace=jnp.asarray(hp.task.workspace, float),
            std=jnp.asarray(hp.perturbation.std, float),
            p_perturbed=jnp.asarray(hp.perturbation.p_perturbed, float),
            on_value=jnp.asarray(hp.context.on_value, float),
            off_value=jnp.asarray(hp.context.off_value, float),
        )

    @property
    def n_context(self) -> int:
        return 0 if self.context_variant == "none" else 1


def training_trials(spec: TrialSpec, key: PRNGKeyArray, n_trials: int, scale: Float[Array, ""] | float = 1.0) -> Trials:
    """Random reaches in the workspace with this condition's perturbations and context.

    `scale` multiplies every perturbation amplitude (the training ramp); the context input is
    computed from the draws before that scaling.
    """
    init_key, target_key, perturbed_key, amplitude_key, angle_key, uniform_key = jax.random.split(key, 6)
    low, high = spec.workspace[0], spec.workspace[1]
    init_pos = jax.random.uniform(init_key, (n_trials, 2), minval=low, maxval=high)
    target_pos = jax.random.uniform(target_key, (n_trials, 2), minval=low, maxval=high)
    trials = unperturbed_trials(init_pos, target_pos, spec.n_steps, spec.n_context, spec.n_observed)

    if spec.perturbation_type == "none":
        perturbed = jnp.zeros(n_trials, bool)
    else:
        perturbed = jax.random.bernoulli(perturbed_key, spec.p_perturbed, (n_trials,))
    standard_amplitude = jax.random.normal(amplitude_key, (n_trials,))
    uniform_draw = jax.random.uniform(uniform_key, (n_trials,))
    if spec.context_variant == "std_scaled":
        amplitude = spec.std * uniform_draw * standard_amplitude
    else:
        amplitude = spec.std * standard_amplitude
    amplitude = jnp.where(perturbed, amplitude, 0.0) * scale

    perturbations = ()
    if spec.perturbation_type != "none":
        kind = perturbation_kind(spec.perturbation_type)
        perturbations = (kind.draw(angle_key, amplitude, init_pos, target_pos, **dict(spec.perturbation_settings)),)

    if spec.context_variant == "binary":
        context = jnp.where(perturbed, spec.on_value, spec.off_value)[:, None]
    elif spec.context_variant == "amplitude":
        context = jnp.where(perturbed, standard_amplitude, 0.0)[:, None]
    elif spec.context_variant == "std_scaled":
        context = jnp.where(perturbed, uniform_draw, 0.0)[:, None]
    else:
        context = trials.context
    return eqx.tree_at(lambda t: (t.perturbations, t.context, t.perturbed), trials, (perturbations, context, perturbed))


def grid_centres(workspace: list[list[float]] | Float[Array, "2 2"], n_grid: int) -> np.ndarray:
    """The internal points of an `n_grid` x `n_grid` grid over the workspace, shape (n^2, 2).

    `n_grid = 1` gives the workspace centre; an odd `n_grid` includes it.
    """
    if n_grid < 1:
        raise ValueError(f"n_grid must be at least 1, got {n_grid}")
    bounds = np.asarray(workspace, float)
    xs = np.linspace(bounds[0, 0], bounds[1, 0], n_grid + 2)[1:-1]
    ys = np.linspace(bounds[0, 1], bounds[1, 1], n_grid + 2)[1:-1]
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=-1)


def default_reach_length(workspace: list[list[float]] | Float[Array, "2 2"]) -> float:
    """A quarter of the workspace's shorter side (0.5 in the reference workspace `[-1, 1]^2`),
    so that centre-out reaches stay inside any workspace."""
    bounds = np.asarray(workspace, float)
    return float(np.min(bounds[1] - bounds[0]) / 4)


def reach_directions(n_directions: int) -> np.ndarray:
    """`n_directions` evenly spaced angles starting at 0 (radians)."""
    return 2 * math.pi * np.arange(n_directions) / n_directions


def centre_out_trials(
    n_steps: int,
    workspace: list[list[float]],
    *,
    n_grid: int = 1,
    n_directions: int = 24,
    reach_length: float | None = None,
    n_context: int = 0,
    n_observed: int = len(FEEDBACK_STATE),
) -> Trials:
    """Centre-out reaches: from each grid centre, one reach per direction (centre-major order);
    `reach_length` defaults to `default_reach_length(workspace)`."""
    reach_length = default_reach_length(workspace) if reach_length is None else reach_length
    centres = grid_centres(workspace, n_grid)
    angles = reach_directions(n_directions)
    starts = np.repeat(centres, n_directions, axis=0)
    offsets = reach_length * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    targets = starts + np.tile(offsets, (len(centres), 1))
    return unperturbed_trials(jnp.asarray(starts), jnp.asarray(targets), n_steps, n_context, n_observed)


def hold_trials(
    n_steps: int,
    workspace: list[list[float]],
    *,
    n_grid: int = 5,
    n_context: int = 0,
    n_observed: int = len(FEEDBACK_STATE),
) -> Trials:
    """Steady-state trials: start = target at each point of an `n_grid` x `n_grid` grid."""
    goals = jnp.asarray(grid_centres(workspace, n_grid))
    return unperturbed_trials(goals, goals, n_steps, n_context, n_observed)


def with_perturbation(trials: Trials, name: str, amplitude: float, **settings) -> Trials:
    """Every trial under the perturbation kind `name` at a fixed `amplitude` (its `fixed`),
    in place of any perturbation the trials had; zero amplitude counts as unperturbed."""
    perturbation = perturbation_kind(name).fixed(amplitude, trials.init_pos, trials.target_pos, **settings)
    perturbed = jnp.full_like(trials.perturbed, amplitude != 0)
    return eqx.tree_at(lambda t: (t.perturbations, t.perturbed), trials, ((perturbation,), perturbed))


def with_context(trials: Trials, values: float | list[float]) -> Trials:
    """Set the context input(s) of every trial to `values`."""
    values = jnp.atleast_1d(jnp.asarray(values, float))
    if values.shape[0] != trials.context.shape[-1]:
        raise ValueError(f"these trials take {trials.context.shape[-1]} context input(s), got {values.shape[0]} value(s)")
    return eqx.tree_at(lambda t: t.context, trials, jnp.broadcast_to(values, trials.context.shape))


def with_feedback_impulse(
    trials: Trials,
    *,
    variable: str,
    onset: int,
    duration: int,
    amplitude: float,
    angle: float | Float[Array, " batch"] = 0.0,
    labels: tuple[str, ...] = FEEDBACK_STATE,
) -> Trials:
    """Offset the fed-back position or velocity by `amplitude` along `angle` for `duration` steps.

    The offset acts on the feedback consumed by updates `onset .. onset + duration - 1`, on
    the entries `{variable}_x`, `{variable}_y` of the observation (`labels`: the plant's
    `observation_labels`).
    """
    if variable not in ("pos", "vel"):
        raise ValueError(f"feedback impulse variable must be 'pos' or 'vel', got {variable!r}")
    columns = [labels.index(f"{variable}_{axis}") for axis in "xy"]
    n_steps = trials.n_steps
    if not (1 <= onset and onset + duration <= n_steps and duration >= 1):
        raise ValueError(f"impulse onset={onset}, duration={duration} must lie within steps 1..{n_steps - 1}")
    angle = jnp.broadcast_to(jnp.asarray(angle, float), trials.perturbed.shape)
    vector = amplitude * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)  # (batch, 2)
    active = (jnp.arange(n_steps) >= onset) & (jnp.arange(n_steps) < onset + duration)
    offset = jnp.zeros_like(trials.feedback_offset)
    offset = offset.at[..., columns].set(active[None, :, None] * vector[:, None, :])
    return eqx.tree_at(lambda t: t.feedback_offset, trials, trials.feedback_offset + offset)


def random_angles(key: PRNGKeyArray, n_trials: int) -> Float[Array, " batch"]:
    """Uniform random directions, e.g. for impulses in random directions."""
    return jax.random.uniform(key, (n_trials,), minval=0.0, maxval=2 * jnp.pi)

"""Behavioural measures per trial, tidy tables of them, and replicate selection.

Measures (per trial; time index t is the state after update t, times in seconds):

| name | definition |
|---|---|
| `endpoint_error` | `||pos_last - target||` |
| `max_lateral_deviation` | `max_t |lateral position|` in the reach frame |
| `max_forward_velocity` | `max_t forward velocity` |
| `max_lateral_velocity` | `max_t |lateral velocity|` |
| `path_length` | `sum_t ||pos_t - pos_{t-1}||` |
| `time_to_target` | first time from which `||pos - target|| < radius` holds to the end; NaN if never |
| `max_force` | `max_t ||controller force_t||` |
| `peak_response` | impulses: signed extreme, from onset on, of the perturbed variable (position relative to the start, or velocity) along the impulse direction |
| `settling_time` | impulses: time from onset until `||pos - target|| < radius` holds to the end (0 if it never leaves); NaN if never |
| `velocity_reversals` | sign changes of the response velocity (lateral for reaches, along the impulse from its onset for impulses), ignoring samples under 5 % of its peak |
| `damping_ratio`, `oscillation_frequency` | second-order (AR(2)) fit to the response position from its peak on: damping ratio and damped frequency (Hz); see `oscillation` |
| `path_length_ratio` | path length over the straight start-to-target distance (NaN for holds) |

`radius` defaults to `DEFAULT_RADIUS = 0.05`, a tenth of the default reach length 0.5.

Tables are long (tidy): one row per (condition, test condition, replicate, realisation, trial,
measure), with `value`. Replicate selection keeps, per training condition, the replicates
whose measure is at most `best + k * std` over replicates (k = 2 by default).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float

from robustreach.alignment import align_evaluation
from robustreach.config import Hyperparameters
from robustreach.evaluate import Evaluation, EvaluationCache, evaluate_models
from robustreach.model import ReachingModel
from robustreach.oscillation import path_length_ratio, second_order_fit, velocity_reversals

DEFAULT_RADIUS = 0.05
REACH_MEASURES = (
    "endpoint_error",
    "max_lateral_deviation",
    "max_forward_velocity",
    "max_lateral_velocity",
    "path_length",
    "time_to_target",
    "max_force",
)
IMPULSE_MEASURES = ("peak_response", "settling_time")
# How oscillatory a response is (`oscillation`); the path-length ratio needs a reach (NaN for holds).
RESPONSE_OSCILLATION_MEASURES = ("velocity_reversals", "damping_ratio", "oscillation_frequency")
OSCILLATION_MEASURES = (*RESPONSE_OSCILLATION_MEASURES, "path_length_ratio")
LABELS = {
    "endpoint_error": "Endpoint error",
    "max_lateral_deviation": "Max. lateral deviation",
    "max_forward_velocity": "Max. forward velocity",
    "max_lateral_velocity": "Max. lateral velocity",
    "path_length": "Path length",
    "time_to_target": "Time to target (s)",
    "max_force": "Max. force",
    "peak_response": "Peak response",
    "settling_time": "Settling time (s)",
    "velocity_reversals": "Velocity reversals",
    "damping_ratio": "Damping ratio",
    "oscillation_frequency": "Oscillation frequency (Hz)",
    "path_length_ratio": "Path length / straight distance",
}


# --- measures on arrays (any leading batch axes, then time) --------------------------------


def endpoint_error(pos: Float[Array, "*batch time 2"], target: Float[Array, "*batch 2"]) -> Float[Array, "*batch"]:
    return jnp.linalg.norm(pos[..., -1, :] - target, axis=-1)


def max_lateral_deviation(aligned_pos: Float[Array, "*batch time 2"]) -> Float[Array, "*batch"]:
    return jnp.max(jnp.abs(aligned_pos[..., 1]), axis=-1)


def max_forward_velocity(aligned_vel: Float[Array, "*batch time 2"]) -> Float[Array, "*batch"]:
    return jnp.max(aligned_vel[..., 0], axis=-1)


def max_lateral_velocity(aligned_vel: Float[Array, "*batch time 2"]) -> Float[Array, "*batch"]:
    return jnp.max(jnp.abs(aligned_vel[..., 1]), axis=-1)


def path_length(pos: Float[Array, "*batch time 2"]) -> Float[Array, "*batch"]:
    return jnp.sum(jnp.linalg.norm(jnp.diff(pos, axis=-2), axis=-1), axis=-1)


def max_force(force: Float[Array, "*batch time 2"]) -> Float[Array, "*batch"]:
    return jnp.max(jnp.linalg.norm(force, axis=-1), axis=-1)


def _settled_from(inside: Array) -> Array:
    """First index from which `inside` holds to the end (as float), NaN if it fails at the end."""
    # Reverse cumulative AND: staying[t] = all(inside[t:]).
    staying = jnp.flip(jnp.cumprod(jnp.flip(inside.astype(int), -1), axis=-1), -1).astype(bool)
    first = jnp.argmax(staying, axis=-1).astype(float)
    return jnp.where(staying[..., -1], first, jnp.nan)


def time_to_target(
    pos: Float[Array, "*batch time 2"], target: Float[Array, "*batch 2"], dt: float, radius: float = DEFAULT_RADIUS
) -> Float[Array, "*batch"]:
    """Seconds until the position enters the radius around the target and stays there."""
    inside = jnp.linalg.norm(pos - target[..., None, :], axis=-1) < radius
    return dt * _settled_from(inside)


def peak_response(signal_along: Float[Array, "*batch time"], onset: int) -> Float[Array, "*batch"]:
    """The value of largest magnitude of `signal_along` from index `onset` on (sign kept)."""
    after = signal_along[..., onset:]
    index = jnp.argmax(jnp.abs(after), axis=-1)
    return jnp.take_along_axis(after, index[..., None], axis=-1)[..., 0]


def settling_time(
    pos: Float[Array, "*batch time 2"],
    target: Float[Array, "*batch 2"],
    onset: int,
    dt: float,
    radius: float = DEFAULT_RADIUS,
) -> Float[Array, "*batch"]:
    """Seconds from `onset` until the position is within `radius` of the target for good."""
    inside = jnp.linalg.norm(pos - target[..., None, :], axis=-1) < radius
    return dt * jnp.maximum(_settled_from(inside) - onset, 0.0)


# --- measures of an evaluation ------------------------------------------------------------


def evaluation_measures(
    evaluation: Evaluation, measures: Sequence[str] | None = None, *, radius: float = DEFAULT_RADIUS
) -> dict[str, np.ndarray]:
    """Each measure as an array with axes (condition, replicate, realisation, trial).

    Default: the reach and oscillation measures, plus the impulse measures when the
    evaluation has impulses. The oscillation measures follow the lateral response of a reach,
    or the response along the impulse from its onset.
    """
    impulse = evaluation.params.get("impulse")
    available = REACH_MEASURES + OSCILLATION_MEASURES + (IMPULSE_MEASURES if impulse else ())
    measures = list(available if measures is None else measures)
    unknown = [m for m in measures if m not in available]
    if unknown:
        raise ValueError(f"unknown measure(s) {unknown} for this evaluation; available: {', '.join(available)}")

    trajectory = evaluation.trajectory
    target = evaluation.trials.target_pos[:, None, None]  # broadcast over replicate, realisation
    aligned = align_evaluation(evaluation)
    dt = evaluation.dt
    compute = {
        "endpoint_error": lambda: endpoint_error(trajectory.pos, target),
        "max_lateral_deviation": lambda: max_lateral_deviation(aligned.pos),
        "max_forward_velocity": lambda: max_forward_velocity(aligned.vel),
        "max_lateral_velocity": lambda: max_lateral_velocity(aligned.vel),
        "path_length": lambda: path_length(trajectory.pos),
        "time_to_target": lambda: time_to_target(trajectory.pos, target, dt, radius),
        "max_force": lambda: max_force(trajectory.force),
    }
    if impulse:
        in_impulse_frame = align_evaluation(evaluation, "impulse")
        perturbed = getattr(in_impulse_frame, impulse["variable"])[..., 0]
        compute["peak_response"] = lambda: peak_response(perturbed, impulse["onset"])
        compute["settling_time"] = lambda: settling_time(trajectory.pos, target, impulse["onset"], dt, radius)
        onset = impulse["onset"]
        response_pos, response_vel = in_impulse_frame.pos[..., 0], in_impulse_frame.vel[..., 0]
    else:
        onset = 0
        response_pos, response_vel = aligned.pos[..., 1], aligned.vel[..., 1]

    @functools.cache
    def fit() -> tuple[np.ndarray, np.ndarray]:
        position = np.asarray(response_pos)
        peak = onset + np.argmax(np.abs(position[..., onset:] - position[..., -1:]), axis=-1)
        return second_order_fit(position, dt, start=peak)

    compute["velocity_reversals"] = lambda: velocity_reversals(np.asarray(response_vel)[..., onset:])
    compute["damping_ratio"] = lambda: fit()[0]
    compute["oscillation_frequency"] = lambda: fit()[1]
    start = np.asarray(evaluation.trials.init_pos)[:, None, None]
    compute["path_length_ratio"] = lambda: path_length_ratio(trajectory.pos, start, target)
    return {name: np.asarray(compute[name]()) for name in measures}


def _index_table(evaluation: Evaluation) -> pd.DataFrame:
    """One row per (condition, replicate, realisation, trial), with labels of each axis."""
    shape = (evaluation.n_conditions, evaluation.n_replicates, evaluation.n_realisations, evaluation.n_trials)
    grid = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    table = pd.DataFrame({name: axis.ravel() for name, axis in zip(("test_condition", "replicate", "realisation", "trial"), grid)})
    table["replicate"] = np.asarray(evaluation.replicates)[table["replicate"]]
    table = table.merge(evaluation.condition_table(), on="test_condition", how="left")
    trials = evaluation.trial_table()
    keep = ["trial", "direction"] + (["impulse_direction"] if "impulse_direction" in trials else [])
    return table.merge(trials[keep], on="trial", how="left")


def measures_table(
    evaluation: Evaluation,
    condition: Any,
    measures: Sequence[str] | None = None,
    *,
    radius: float = DEFAULT_RADIUS,
    wide: bool = False,
) -> pd.DataFrame:
    """Tidy table of per-trial measures of one trained model (training `condition` label).

    Columns: condition, test_condition, amplitude (and impulse_amplitude / context when
    used), replicate, realisation, trial, direction (degrees), then `measure` and `value`
    (long format, default) or one column per measure (`wide=True`).
    """
    values = evaluation_measures(evaluation, measures, radius=radius)
    index = _index_table(evaluation)
    index.insert(0, "condition", condition)
    labels = [c for c in index.columns if c not in ("condition", "test_condition", "replicate", "realisation", "trial")]
    ordered = ["condition", "test_condition", *[c for c in labels if c not in ("direction", "impulse_direction")],
               "replicate", "realisation", "trial", *[c for c in ("direction", "impulse_direction") if c in labels]]
    index = index[ordered]
    wide_table = index.assign(**{name: array.ravel() for name, array in values.items()})
    if wide:
        return wide_table
    return wide_table.melt(id_vars=ordered, value_vars=list(values), var_name="measure", value_name="value")


def concat_tables(tables: Mapping[Any, pd.DataFrame] | Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack the tables of several trained models (training conditions)."""
    return pd.concat(list(tables.values()) if isinstance(tables, Mapping) else list(tables), ignore_index=True)


# --- replicate selection ------------------------------------------------------------------


def select_replicates(
    table: pd.DataFrame,
    measure: str,
    *,
    k: float = 2.0,
    by: str = "condition",
    where: Mapping[str, Any] | None = None,
    higher_is_better: bool = False,
) -> pd.DataFrame:
    """Best and included replicates per `by` group, from the mean of `measure` per replicate.

    A replicate is included when its mean is within `best + k * std` (`best - k * std` when
    higher is better), with `std` the population standard deviation (ddof 0) of the
    replicate means of its group. `where` restricts the rows first (e.g. `{"amplitude": 0}`).
    The table needs columns `by`, `replicate`, and `measure`/`value` (long) or `measure` (wide).

    Returns one row per (group, replicate): value, threshold, best (bool), included (bool).
    """
    rows = table
    for column, value in (where or {}).items():
        if column not in rows:
            raise KeyError(f"select_replicates: no column {column!r} to filter on; columns: {list(rows.columns)}")
        rows = rows[rows[column] == value]
    if "measure" in rows and "value" in rows:
        if measure not in set(rows["measure"]):
            raise KeyError(f"select_replicates: no measure {measure!r}; the table has {sorted(set(rows['measure']))}")
        values = rows[rows["measure"] == measure].rename(columns={"value": "_value"})
    elif measure in rows:
        values = rows.rename(columns={measure: "_value"})
    else:
        raise KeyError(f"select_replicates: the table has neither a {measure!r} column nor measure/value columns")
    for column in (by, "replicate"):
        if column not in values:
            raise KeyError(f"select_replicates: the table lacks the column {column!r}")
    if values.empty:
        raise ValueError(f"select_replicates: no rows of {measure!r} left after filtering with {dict(where or {})}")

    summary = values.groupby([by, "replicate"], sort=True)["_value"].mean().rename("value").reset_index()
    sign = -1.0 if higher_is_better else 1.0
    scores = sign * summary["value"]
    group = summary.groupby(by)["value"]
    best_score = scores.groupby(summary[by]).transform("min")
    spread = group.transform(lambda v: float(np.std(v.to_numpy())))
    summary["threshold"] = sign * (best_score + k * spread)
    summary["best"] = summary.index.isin(scores.groupby(summary[by]).idxmin())  # first of any ties
    summary["included"] = scores <= best_score + k * spread
    return summary


def filter_replicates(table: pd.DataFrame, selection: pd.DataFrame, by: str = "condition") -> pd.DataFrame:
    """The rows of `table` that belong to included replicates of `selection`."""
    included = selection.loc[selection["included"], [by, "replicate"]]
    return table.merge(included, on=[by, "replicate"], how="inner")


def included_replicates(selection: pd.DataFrame, group: Any, by: str = "condition") -> list[int]:
    """Indices of the included replicates of one group, e.g. for `Evaluation.take_replicates`."""
    rows = selection[selection[by] == group]
    if rows.empty:
        raise KeyError(f"included_replicates: no {by} {group!r} in the selection; it has {sorted(set(selection[by]))}")
    return sorted(int(r) for r in rows.loc[rows["included"], "replicate"])


def best_replicate(selection: pd.DataFrame, group: Any, by: str = "condition") -> int:
    """Index of the best replicate of one group."""
    rows = selection[(selection[by] == group) & selection["best"]]
    if rows.empty:
        raise KeyError(f"best_replicate: no {by} {group!r} in the selection; it has {sorted(set(selection[by]))}")
    return int(rows["replicate"].iloc[0])


def select_evaluations(
    evaluations: Mapping[Any, Evaluation], selection: pd.DataFrame, by: str = "condition"
) -> dict[Any, Evaluation]:
    """Each evaluation restricted to the included replicates of its training condition."""
    return {label: ev.take_replicates(included_replicates(selection, label, by)) for label, ev in evaluations.items()}


def summarise(table: pd.DataFrame, by: Sequence[str] = ("condition", "amplitude")) -> pd.DataFrame:
    """Mean, population std and count of each measure per group (long tables), NaN skipped."""
    return (
        table.groupby([*by, "measure"])["value"]
        .agg(mean="mean", std=lambda v: v.std(ddof=0), n="count")  # NaN (never settled) skipped
        .reset_index()
    )


def summarise_spread(table: pd.DataFrame, by: Sequence[str] = ("condition", "amplitude")) -> pd.DataFrame:
    """`summarise` with the spread over trials and over replicates told apart: per group and
    measure, also the median and quartiles over trials, and the std, min and max of the
    replicates' means (`replicates`: how many have a value). NaN skipped."""
    keys = [*by, "measure"]
    summary = summarise(table, by)
    quartiles = table.groupby(keys)["value"].quantile([0.25, 0.5, 0.75]).unstack()
    quartiles.columns = ["q25", "median", "q75"]
    per_replicate = table.groupby([*keys, "replicate"])["value"].mean()
    spread = per_replicate.groupby(keys).agg(
        replicates="count", replicate_std=lambda v: v.std(ddof=0), replicate_min="min", replicate_max="max"
    )
    return summary.merge(quartiles.reset_index(), on=keys).merge(spread.reset_index(), on=keys)


def lateral_deviation_summary(evaluations: Mapping[Any, Evaluation], *, selection: pd.DataFrame | None = None) -> pd.DataFrame:
    """Maximum lateral deviation per (training condition, test amplitude) of several models.

    One row per (condition, amplitude): `mean`, population `std` and count `n` over replicates,
    realisations and trials, and `replicate_std`, the std of the per-replicate means.
    `selection` (from `select_replicates`) drops excluded replicates first.
    """
    table = concat_tables([measures_table(ev, label, ["max_lateral_deviation"]) for label, ev in evaluations.items()])
    if selection is not None:
        table = filter_replicates(table, selection)
    summary = summarise_spread(table, ("condition", "amplitude"))
    return summary[["condition", "amplitude", "mean", "std", "n", "replicate_std"]]


def compare_lateral_deviation(
    models: Mapping[Any, tuple[ReachingModel, Hyperparameters | Mapping[str, Any]]],
    amplitudes: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0),
    *,
    perturbation: str = "curl",
    n_directions: int = 24,
    n_realisations: int = 1,
    seed: int = 0,
    selection: pd.DataFrame | None = None,
    store: EvaluationCache | None = None,
    model_hashes: Mapping[Any, str] | None = None,
) -> pd.DataFrame:
    """Evaluate each model (label -> (ensemble, hyperparameters)) on centre-out reaches under
    a curl (or constant) field at each amplitude; `lateral_deviation_summary` of the result."""
    spec = {"perturbation": perturbation, "amplitudes": list(amplitudes), "n_directions": n_directions,
            "n_realisations": n_realisations, "seed": seed}
    evaluations = evaluate_models(models, spec, store=store, model_hashes=model_hashes)
    return lateral_deviation_summary(evaluations, selection=selection)

"""Goal sweeps cached in the results index, keyed by model hash and sweep parameters.

A `GoalSweep` is stored through `store.cached_evaluation` as a plain tree (a dict of NumPy
arrays per table, so the `.npz` file reads with NumPy alone): each table becomes
`{column: array}`, with text columns as `{"categories": [...], "codes": array}` because the
archive holds numbers only. Reruns with the same model and parameters load instead of
searching again; a retrained model has a new hash, so a stale sweep is never returned.

```python
options = sweep_options({"n_grid": 5, "contexts": [-1.0, 0.0, 1.0]})  # defaults filled in, checked first
sweeps = goal_sweeps(store, trained_models(store, hps), options)   # {condition label: GoalSweep}
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd

from robustreach.fixed_points.sweep import GoalSweep, goal_sweep
from robustreach.options import SweepOptions, check_options

# `goal_sweep`'s arguments a notebook may set (plus the PRNG seed), with their defaults: those
# of `options.SweepOptions`, the one place they are defined.
SWEEP_DEFAULTS: dict[str, Any] = SweepOptions().model_dump()
# Part of every cache key: bump when the stored layout or the sweep's algorithm changes.
CACHE_FORMAT = 2  # 2: the finder hands over to Levenberg-Marquardt at q < 1 (was 1e-3)
_TABLES = ("points", "spectra", "conditions", "neighbours", "summary")
_ARRAYS = ("h", "u", "input_sv", "hold_hidden")


def sweep_options(params: Mapping[str, Any] | SweepOptions | None) -> dict[str, Any]:
    """The sweep parameters with defaults filled in, checked before any work starts.

    Keys and checks are those of `options.SweepOptions`; `contexts` is a list of numbers (or
    of equal-length lists, for several context inputs), or None for models without a context
    input. Errors name the key as `fixed_points.<key>`.
    """
    return check_options(SweepOptions, params, "fixed_points")


def frame_to_arrays(frame: pd.DataFrame) -> dict[str, Any]:
    """`{column: array}`; text columns become `{"categories": [str, ...], "codes": array}`."""
    out: dict[str, Any] = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind in "biufc":
            out[str(column)] = values.to_numpy()
        else:
            categorical = pd.Categorical(values.astype(str))
            out[str(column)] = {"categories": [str(c) for c in categorical.categories],
                                "codes": np.asarray(categorical.codes, np.int32)}
    return out


def frame_from_arrays(arrays: Mapping[str, Any]) -> pd.DataFrame:
    """Inverse of `frame_to_arrays` (text columns come back as plain strings)."""
    columns = {}
    for column, values in arrays.items():
        if isinstance(values, Mapping):
            columns[column] = np.asarray(values["categories"], dtype=object)[np.asarray(values["codes"])]
        else:
            columns[column] = np.asarray(values)
    return pd.DataFrame(columns)


def result_to_arrays(result: Any, tables: Sequence[str], arrays: Sequence[str]) -> dict[str, Any]:
    """A result's `tables` (DataFrames) and `arrays` as a plain tree of NumPy arrays (`.npz`)."""
    return {**{name: frame_to_arrays(getattr(result, name)) for name in tables},
            **{name: np.asarray(getattr(result, name)) for name in arrays}}


def result_from_arrays(kind: type, stored: Mapping[str, Any], tables: Sequence[str], arrays: Sequence[str]) -> Any:
    """Inverse of `result_to_arrays`: a `kind` built from the stored tree; missing names are an error."""
    missing = sorted((set(tables) | set(arrays)) - set(stored))
    if missing:
        raise ValueError(f"not a stored {kind.__name__}: missing {missing}")
    return kind(**{name: frame_from_arrays(stored[name]) for name in tables},
                **{name: np.asarray(stored[name]) for name in arrays})


def sweep_to_arrays(sweep: GoalSweep) -> dict[str, Any]:
    """A `GoalSweep` as a plain tree of NumPy arrays (see the module docstring)."""
    return result_to_arrays(sweep, _TABLES, _ARRAYS)


def sweep_from_arrays(arrays: Mapping[str, Any]) -> GoalSweep:
    """Inverse of `sweep_to_arrays`."""
    return result_from_arrays(GoalSweep, arrays, _TABLES, _ARRAYS)


def cache_key(options: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation parameters a sweep is cached under (with the model hash)."""
    return {"analysis": "fixed_points/goal_sweep", "format": CACHE_FORMAT, **sweep_options(options)}


def cached_goal_sweep(
    store,
    model_hash: str | None,
    model,
    options: Mapping[str, Any],
    *,
    workspace: Sequence[Sequence[float]] | None = None,
    progress: bool = True,
) -> GoalSweep:
    """`goal_sweep` of `model` with `options` (see `sweep_options`; `seed` makes the PRNG
    key) over the goals of its `workspace` (the model's `task.workspace`; None: the default
    one), loaded from `store` when this model hash was swept with these options before (the
    hash covers the workspace). `store=None` computes without caching."""
    options = sweep_options(options)
    kwargs = {k: v for k, v in options.items() if k != "seed"}
    if workspace is not None:
        kwargs["workspace"] = [list(map(float, corner)) for corner in workspace]

    def compute() -> dict[str, Any]:
        sweep = goal_sweep(model, key=jax.random.PRNGKey(options["seed"]), progress=progress, finder_progress=False,
                           **kwargs)
        return sweep_to_arrays(sweep)

    if store is None:
        return sweep_from_arrays(compute())
    if not model_hash:
        raise ValueError("cached_goal_sweep: a model hash is needed to cache in the store")
    return sweep_from_arrays(store.cached_evaluation(model_hash, cache_key(options), compute))


def goal_sweeps(store, models: Sequence[Any], options: Mapping[str, Any], *, progress: bool = True) -> dict[str, GoalSweep]:
    """`cached_goal_sweep` of every trained model (`experiment.TrainedModel`: every replicate,
    goals in the model's own workspace), keyed by condition label."""
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"goal_sweeps: condition labels must be distinct, got {labels}")
    return {m.label: cached_goal_sweep(store, m.record["hash"] if store is not None else None, m.model, options,
                                       workspace=m.hyperparameters.task.workspace, progress=progress) for m in models}

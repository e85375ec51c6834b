"""Experiments as notebooks see them: shared hyperparameter sections plus training conditions.

A notebook's parameters are the hyperparameter sections (`plant`, `train`, ...) and
`conditions`, nested like the sections but with lists of values, whose combinations are the
training conditions compared in that notebook (e.g. `{"perturbation": {"std": [0.0, 1.0]}}`).
Every notebook of a part takes the same parameters, with the same defaults
(`part_defaults`), so each one finds the models that the training notebook trained.

```python
store = results_store()
hps = expand_conditions(sections, conditions)
models = trained_models(store, hps, conditions=conditions)   # trains what is missing
```
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustreach.config import Hyperparameters, load_hyperparameters
from robustreach.model import ReachingModel

SECTIONS = tuple(Hyperparameters.model_fields)

# Demo-size defaults of each part's notebooks (parameter files give the real sizes).
_DEMO_TRAIN = {"n_replicates": 2, "batch_size": 64, "n_batches": 300, "constant_lr_batches": 150, "validation_every": 25}
PART_DEFAULTS: dict[str, dict[str, Any]] = {
    "part1": {
        "controller": {"hidden_size": 32},
        "perturbation": {"type": "curl"},
        "train": _DEMO_TRAIN,
        "conditions": {"perturbation": {"std": [0.0, 1.0]}},
    },
    "part2": {
        "controller": {"hidden_size": 32},
        "perturbation": {"type": "curl", "std": 1.0, "p_perturbed": 0.5},
        "context": {"variant": "binary", "on_value": 1.0, "off_value": 0.0},
        "train": _DEMO_TRAIN,
        "conditions": {"perturbation": {"std": [1.0]}},
    },
}


def part_defaults(part: str) -> dict[str, Any]:
    """Default notebook parameters of a part: every hyperparameter section, and `conditions`."""
    if part not in PART_DEFAULTS:
        raise ValueError(f"unknown part {part!r}; known: {', '.join(PART_DEFAULTS)}")
    overrides = {k: v for k, v in PART_DEFAULTS[part].items() if k != "conditions"}
    return {**load_hyperparameters(overrides).to_dict(), "conditions": PART_DEFAULTS[part]["conditions"]}


def _condition_keys(conditions: dict[str, dict[str, list[Any]]]) -> list[tuple[str, str]]:
    keys = []
    for section, fields in conditions.items():
        if section not in SECTIONS or not isinstance(fields, dict):
            raise ValueError(f"conditions.{section}: must be a hyperparameter section ({', '.join(SECTIONS)}) mapping fields to lists")
        for field, values in fields.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"conditions.{section}.{field}: must be a non-empty list of values, got {values!r}")
            keys.append((section, field))
    return keys


def expand_conditions(sections: dict[str, Any], conditions: dict[str, dict[str, list[Any]]] | None = None) -> list[Hyperparameters]:
    """One validated `Hyperparameters` per combination of the `conditions` values."""
    conditions = conditions or {}
    keys = _condition_keys(conditions)
    result = []
    for combination in itertools.product(*(conditions[s][f] for s, f in keys)):
        merged = {name: dict(sections[name]) for name in SECTIONS if name in sections}
        for (section, field), value in zip(keys, combination):
            merged.setdefault(section, {})[field] = value
        label = ", ".join(f"{s}.{f}={v}" for (s, f), v in zip(keys, combination))
        result.append(load_hyperparameters(merged, source=f"condition {label}" if label else ""))
    return result


def condition_label(hp: Hyperparameters, conditions: dict[str, dict[str, list[Any]]] | None) -> str:
    """A short label naming the condition's values of the varied fields, e.g. 'std=0.5'."""
    keys = _condition_keys(conditions or {})
    if not keys:
        return "model"
    values = hp.to_dict()
    return ", ".join(f"{field}={values[section][field]:g}" if isinstance(values[section][field], float)
                     else f"{field}={values[section][field]}" for section, field in keys)


def results_dir() -> Path:
    """`$ROBUSTREACH_RESULTS`, else `results/` in the repository containing the working directory."""
    if os.environ.get("ROBUSTREACH_RESULTS"):
        return Path(os.environ["ROBUSTREACH_RESULTS"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").exists() and (folder / "lib" / "robustreach").exists():
            return folder / "results"
    return here / "results"


def results_store(root: str | Path | None = None):
    """The results index (`robustreach.store.ResultsStore`) at `root` or `results_dir()`."""
    from robustreach.store import ResultsStore

    return ResultsStore(root or results_dir())


@dataclass
class TrainedModel:
    """A trained ensemble with its condition label, index record and training history."""

    label: str
    hyperparameters: Hyperparameters
    model: ReachingModel
    record: dict[str, Any]
    history: dict[str, Any]


def trained_models(
    store, hps: list[Hyperparameters], *, conditions: dict[str, list[Any]] | None = None, train_missing: bool = True, progress: bool = True
) -> list[TrainedModel]:
    """The newest trained model of each condition, training those missing (unless told not to)."""
    from robustreach.train.runner import existing_model, train_parameter_sets

    if train_missing:  # skips the conditions already in the index
        summary = train_parameter_sets([hp.to_dict() for hp in hps], store, progress=progress)
        if summary.failed:
            raise RuntimeError("training failed: " + "; ".join(f["error"] for f in summary.failed))
    else:
        missing = [hp for hp in hps if existing_model(store, hp) is None]
        if missing:
            raise LookupError(f"{len(missing)} condition(s) have no trained model in {store.root}; run the training notebook first")
    result = []
    for hp in hps:
        record = existing_model(store, hp)
        if record is None:
            raise LookupError(f"no usable model for {condition_label(hp, conditions)} (training diverged?)")
        model, record = store.load_model(record)
        history = store.load_side_file(record, "history")
        result.append(TrainedModel(condition_label(hp, conditions), hp, model, record, history))
    return result


def check_notebook_parameters(parameters: dict[str, Any], *, where: str) -> None:
    """Validate the hyperparameters a notebook will receive, before any run starts.

    Notebooks that take hyperparameter sections get every training condition validated
    (value ranges, choices, schedule consistency); errors name `where` and the field.
    """
    from robustreach.config import ConfigError
    from robustreach.paramfiles import ParamFileError

    if not any(name in parameters for name in SECTIONS):
        return
    try:
        expand_conditions(parameters, parameters.get("conditions"))
    except (ConfigError, ValueError) as error:
        raise ParamFileError(f"{where}: {error}") from None

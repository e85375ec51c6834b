"""Experiments as notebooks see them: shared hyperparameter sections plus training conditions.

A notebook's parameters are the hyperparameter sections (`plant`, `train`, ...) and
`conditions`, a mapping of dotted hyperparameter keys to lists of values whose combinations
are the training conditions compared in that notebook (e.g. `{"perturbation.std": [0, 1]}`).
Every notebook of a part takes the same parameters, so each one finds the models that the
training notebook trained, through the results index.

```python
store = results_store()
hps = expand_conditions(sections, conditions)
models = trained_models(store, hps)          # trains what is missing, loads the rest
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


def demo_sections(**overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every hyperparameter section with its defaults, some fields overridden (for parameter cells)."""
    return load_hyperparameters(overrides).to_dict()


def expand_conditions(sections: dict[str, Any], conditions: dict[str, list[Any]] | None = None) -> list[Hyperparameters]:
    """One validated `Hyperparameters` per combination of the `conditions` values."""
    conditions = conditions or {}
    for key, values in conditions.items():
        if key.split(".")[0] not in SECTIONS or key.count(".") != 1:
            raise ValueError(f"conditions key {key!r} must be 'section.field' with section one of {', '.join(SECTIONS)}")
        if not isinstance(values, list) or not values:
            raise ValueError(f"conditions[{key!r}] must be a non-empty list, got {values!r}")
    result = []
    for combination in itertools.product(*conditions.values()):
        merged = {name: dict(sections.get(name, {})) for name in SECTIONS if name in sections}
        for key, value in zip(conditions, combination):
            section, field = key.split(".")
            merged.setdefault(section, {})[field] = value
        result.append(load_hyperparameters(merged, source=f"conditions {dict(zip(conditions, combination))}"))
    return result


def condition_label(hp: Hyperparameters, conditions: dict[str, list[Any]] | None) -> str:
    """A short label naming the condition's values of the varied keys, e.g. 'std=0.5'."""
    if not conditions:
        return "model"
    values = hp.to_dict()
    parts = []
    for key in conditions:
        section, field = key.split(".")
        parts.append(f"{field}={values[section][field]:g}" if isinstance(values[section][field], float) else f"{field}={values[section][field]}")
    return ", ".join(parts)


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

    missing = [hp for hp in hps if existing_model(store, hp) is None]
    if missing and not train_missing:
        raise LookupError(f"{len(missing)} condition(s) have no trained model in {store.root}; run the training notebook first")
    if missing:
        summary = train_parameter_sets([hp.to_dict() for hp in missing], store, progress=progress)
        if summary.failed:
            raise RuntimeError("training failed: " + "; ".join(f["error"] for f in summary.failed))
    result = []
    for hp in hps:
        record = existing_model(store, hp)
        if record is None:
            raise LookupError(f"no usable model for {condition_label(hp, conditions)} (training diverged?)")
        model, record = store.load_model(record)
        history = store.load_side_file(record, "history")
        result.append(TrainedModel(condition_label(hp, conditions), hp, model, record, history))
    return result

"""Experiments as notebooks see them: a part's parameters, training conditions, trained models.

A notebook's parameters cell holds plain values: `part` (whose defaults fill in the rest),
`hyperparameters` (sections to override), `conditions` (the training conditions compared,
nested like the sections but with lists of values, e.g. `{"perturbation": {"std": [0.0,
1.0]}}`; None: the part's) and one options dict per analysis it runs. `resolve_parameters`
fills in every value from the one place defaults live (`options`: library defaults and
`PART_DEFAULTS`), so each notebook of a part finds the models its training notebook trained,
and `robustreach train FILE` trains exactly those (`paramfiles.file_models`).

```python
p = resolve_parameters("part1", {"train": {"n_batches": 500}}, None, evaluation={})
hps = expand_conditions(p, p["conditions"])
models = trained_models(results_store(), hps, conditions=p["conditions"])   # trains what is missing
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustreach.config import Hyperparameters
from robustreach.model import ReachingModel
from robustreach.options import PART_DEFAULTS, condition_label, expand_conditions, resolve, resolve_parameters
from robustreach.train.runner import existing_model, train_parameter_sets

__all__ = [
    "PART_DEFAULTS",
    "TrainedModel",
    "check_notebook_parameters",
    "condition_label",
    "expand_conditions",
    "part_defaults",
    "resolve_parameters",
    "results_dir",
    "results_store",
    "trained_models",
]


def part_defaults(part: str) -> dict[str, Any]:
    """Every parameter of a part with its value when nothing overrides it (sections at the top)."""
    return resolve(part).model_dump(mode="json")


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
    """Validate a notebook's parameters (its whole parameters cell after injection, `part`
    included) before any run starts: every value, and every training condition's
    hyperparameters (ranges, schedule consistency). Errors name `where` and the key.

    Without `part` there is nothing to resolve against: `paramfiles.load_paramfile` has
    already checked what a parameter file injects, with each notebook's part.
    """
    from robustreach.config import ConfigError
    from robustreach.paramfiles import ParamFileError

    if "part" not in parameters:
        return
    try:
        resolved = resolve_parameters(**parameters)
        expand_conditions(resolved, resolved["conditions"])
    except (ConfigError, ValueError) as error:
        raise ParamFileError(f"{where}: {error}") from None

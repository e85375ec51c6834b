"""Train parameter sets and save each model through the results index.

A parameter set (as a notebook receives it) holds hyperparameter sections and `conditions`;
each combination of the conditions' values is one model (an ensemble of replicates).

Sets already trained with identical hyperparameters are skipped unless `force`; sets that
can share one compiled step are trained together; a failing group does not stop the others.

```python
records = train_parameter_sets(expand(load_paramfile("params/part1.yml")), ResultsStore("results"))
```
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustreach.compile_cache import enable_compile_cache
from robustreach.config import ConfigError, Hyperparameters
from robustreach.hashing import params_hash, short_hash
from robustreach.train.conditions import group_conditions
from robustreach.train.trainer import TrainedCondition, train_conditions

logger = logging.getLogger(__name__)


@dataclass
class TrainingSummary:
    trained: list[dict[str, Any]] = field(default_factory=list)  # model records saved now
    skipped: list[dict[str, Any]] = field(default_factory=list)  # existing records reused
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"hyperparameters", "error"}

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.trained + self.skipped


def hyperparameters_of(parameter_set: dict[str, Any], *, source: str = "") -> list[Hyperparameters]:
    """The models a parameter set defines: its hyperparameter sections combined with each of
    its training `conditions` (other notebook parameters are ignored)."""
    from robustreach.experiment import expand_conditions

    sections = {k: v for k, v in parameter_set.items() if k in Hyperparameters.model_fields}
    try:
        return expand_conditions(sections, parameter_set.get("conditions"))
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}" if source else str(error)) from None
    except ValueError as error:  # a malformed `conditions` mapping
        raise ConfigError(f"{source}: {error}" if source else str(error)) from None


def existing_model(store, hp: Hyperparameters) -> dict[str, Any] | None:
    """The newest usable model record trained with exactly these hyperparameters, if any."""
    records = [r for r in store.find("models", {"params_hash": params_hash(hp.to_dict())}) if r.get("status") == "ok"]
    return max(records, key=lambda r: r.get("created", "")) if records else None


def train_parameter_sets(
    parameter_sets: list[dict[str, Any]],
    store,
    *,
    force: bool = False,
    method: str = "vmap",
    progress: bool = True,
    source: str = "",
) -> TrainingSummary:
    """Train every set (validated first), skipping those already in the index unless `force`.

    Compiled steps go to (and come from) the compilation cache of the store's results folder.
    """
    hps = [
        hp
        for i, parameter_set in enumerate(parameter_sets)
        for hp in hyperparameters_of(parameter_set, source=f"{source} set {i}" if source else f"set {i}")
    ]
    unique: dict[str, Hyperparameters] = {}
    for hp in hps:
        unique.setdefault(params_hash(hp.to_dict()), hp)
    summary = TrainingSummary()
    enable_compile_cache(store.root)
    to_train = []
    for hp in unique.values():
        record = None if force else existing_model(store, hp)
        if record is not None:
            summary.skipped.append(record)
        else:
            to_train.append(hp)
    for group in group_conditions(to_train):
        members = [to_train[i] for i in group]
        group_hash = short_hash(params_hash([hp.to_dict() for hp in members]))
        checkpoint = Path(store.root) / "checkpoints" / f"{group_hash}.eqx"
        try:
            result = train_conditions(members, method=method, checkpoint_path=checkpoint, progress=progress)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 - keep going: the other groups' results must not be lost
            logger.error("training failed for %d condition(s): %s", len(members), error)
            for hp in members:
                summary.failed.append({"hyperparameters": hp.to_dict(), "error": "".join(traceback.format_exception_only(error)).strip()})
            continue
        for trained in result.conditions:
            summary.trained.append(save_trained(store, trained, result.diverged, result.n_batches_run))
        checkpoint.unlink(missing_ok=True)
    return summary


def save_trained(store, trained: TrainedCondition, diverged: dict | None, n_batches_run: int) -> dict[str, Any]:
    """Save one condition's selected ensemble, with its history, through the index."""
    history = trained.history
    status = "diverged" if diverged else "ok"
    return store.save_model(
        trained.model,
        trained.hyperparameters.to_dict(),
        side_files={"history": history},
        extra={
            "status": status,
            "diverged": diverged,
            "n_batches_run": n_batches_run,
            "best_batch": history["best_batch"].tolist(),
            "excluded_replicates": [int(i) for i, flag in enumerate(history["excluded"]) if flag],
            "best_validation": [float(v) for v in history["best_validation"]],
        },
    )

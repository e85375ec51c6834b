"""Train parameter sets and save each model through the results index.

A parameter set (as a notebook receives it) holds hyperparameter sections and `conditions`;
each combination of the conditions' values is one model (an ensemble of replicates).

Sets already trained with identical hyperparameters (and whose model files are intact) are
skipped unless `force`; sets whose training diverged are reported as failed and not retrained
unless `force`; sets that can share one compiled step are trained together; a failing group
does not stop the others; a per-set lock keeps two processes from training one set.

```python
records = train_parameter_sets(expand(load_paramfile("params/part1.yml")), ResultsStore("results"))
```
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from filelock import Timeout

from robustreach.compile_cache import enable_compile_cache
from robustreach.config import ConfigError, Hyperparameters, load_hyperparameters
from robustreach.hashing import params_hash
from robustreach.options import expand_conditions
from robustreach.store.training import checkpoint_file, training_lock
from robustreach.train.conditions import group_conditions
from robustreach.train.trainer import TrainedCondition, train_conditions

logger = logging.getLogger(__name__)


@dataclass
class TrainingSummary:
    trained: list[dict[str, Any]] = field(default_factory=list)  # model records saved now (status ok)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # existing records reused
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"hyperparameters", "error"}: errors and divergences
    diverged: list[dict[str, Any]] = field(default_factory=list)  # records of diverged sets (now or earlier)
    notes: list[str] = field(default_factory=list)  # why sets were retrained (model file gone, ...)

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.trained + self.skipped


def hyperparameters_of(parameter_set: dict[str, Any], *, source: str = "") -> list[Hyperparameters]:
    """The models a parameter set defines: its hyperparameter sections combined with each of
    its training `conditions` (other notebook parameters are ignored)."""
    sections = {k: v for k, v in parameter_set.items() if k in Hyperparameters.model_fields}
    try:
        return expand_conditions(sections, parameter_set.get("conditions"))
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}" if source else str(error)) from None
    except ValueError as error:  # a malformed `conditions` mapping
        raise ConfigError(f"{source}: {error}" if source else str(error)) from None


def _newest_first(store, hp: Hyperparameters) -> list[dict[str, Any]]:
    wanted = params_hash(hp.to_dict())
    records = store.find("models", {"params_hash": wanted})
    if not records:  # saved before a field was added? Compare with today's defaults filled in.
        records = [r for r in store.find("models") if _revalidated_hash(r) == wanted]
    return sorted(records, key=lambda r: r.get("created", ""), reverse=True)


def _revalidated_hash(record: dict[str, Any]) -> str | None:
    """The hash of a model record's hyperparameters validated again by today's schema (None if
    they no longer validate): a set saved before a field with a default was added hashes as
    the same set written today, so its trained models are found rather than trained again."""
    try:
        return params_hash(load_hyperparameters(record.get("hyperparameters") or {}).to_dict())
    except ConfigError:
        return None


def existing_model(store, hp: Hyperparameters, *, notes: list[str] | None = None) -> dict[str, Any] | None:
    """The newest usable model trained with exactly these hyperparameters, if any: status "ok"
    and its files present, readable and matching the record's hash. Records failing that
    check are passed over, with the reason appended to `notes` (and logged) if given."""
    for record in _newest_first(store, hp):
        if record.get("status") != "ok":
            continue
        problem = store.model_problem(record)
        if problem is None:
            return record
        if notes is not None:
            notes.append(f"model {record['hash'][:12]} is not usable ({problem}); its parameter set is trained again")
            logger.warning(notes[-1])
    return None


def diverged_model(store, hp: Hyperparameters) -> dict[str, Any] | None:
    """The record of an earlier training of these hyperparameters that diverged, if that is the
    newest record of the set (then it is not retrained unless forced)."""
    records = _newest_first(store, hp)
    return records[0] if records and records[0].get("status") == "diverged" else None


def _diverged_failure(record: dict[str, Any], *, earlier: bool) -> dict[str, Any]:
    info = record.get("diverged") or {}
    when = "earlier: " if earlier else ""
    error = (
        f"training diverged ({when}{info.get('reason', 'non-finite values')} at batch {info.get('batch')}); "
        f"recorded as model {record['hash'][:12]} with status 'diverged'"
        + ("; --force to train it again" if earlier else "; change its hyperparameters (e.g. train.learning_rate)")
    )
    return {"hyperparameters": record.get("hyperparameters"), "hash": record["hash"], "error": error}


@contextmanager
def _training_locks(store, hps: list[Hyperparameters]) -> Iterator[None]:
    """Hold the per-set locks of `hps` (in hash order, so two processes never deadlock)."""
    with ExitStack() as stack:
        for h in sorted({params_hash(hp.to_dict()) for hp in hps}):
            lock = training_lock(store.root, h)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                logger.warning("waiting for another process that is training set %s (lock %s)", h[:12], lock.lock_file)
                lock.acquire()
            stack.callback(lock.release)
        yield


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

    A set counts as trained only while its model file is there and intact (otherwise it is
    trained again, with a note saying why). A set whose newest record diverged is reported
    as failed, not retrained, unless `force`. One process trains a set at a time: a second
    waits for the first (per-set lock) and then uses its record. Compiled steps go to (and
    come from) the compilation cache of the store's results folder.
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
    to_train = [hp for hp in unique.values() if force or not _settled(store, hp, summary, notes=summary.notes)]
    for group in group_conditions(to_train):
        members = [to_train[i] for i in group]
        with _training_locks(store, members):
            if not force:  # another process may have trained some of them while we waited
                members = [hp for hp in members if not _settled(store, hp, summary, notes=None)]
            if members:
                _train_group(store, members, summary, method=method, progress=progress)
    return summary


def _settled(store, hp: Hyperparameters, summary: TrainingSummary, notes: list[str] | None) -> bool:
    """Whether `hp` needs no training: recorded as usable (-> skipped) or as diverged (-> failed)."""
    record = existing_model(store, hp, notes=notes)
    if record is not None:
        summary.skipped.append(record)
        return True
    diverged = diverged_model(store, hp)
    if diverged is not None:
        summary.diverged.append(diverged)
        summary.failed.append(_diverged_failure(diverged, earlier=True))
        return True
    return False


def _train_group(store, members: list[Hyperparameters], summary: TrainingSummary, *, method: str, progress: bool) -> None:
    """Train sets that share one compiled step, resuming from their checkpoint, and record them."""
    checkpoint = checkpoint_file(store.root, params_hash([hp.to_dict() for hp in members]))
    try:
        result = train_conditions(members, method=method, checkpoint_path=checkpoint, progress=progress)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # noqa: BLE001 - keep going: the other groups' results must not be lost
        logger.error("training failed for %d condition(s): %s", len(members), error)
        for hp in members:
            summary.failed.append({"hyperparameters": hp.to_dict(), "error": "".join(traceback.format_exception_only(error)).strip()})
        return
    for trained in result.conditions:
        record = save_trained(store, trained, result.diverged, result.n_batches_run)
        if record["status"] == "diverged":
            summary.diverged.append(record)
            summary.failed.append(_diverged_failure(record, earlier=False))
        else:
            summary.trained.append(record)
    checkpoint.unlink(missing_ok=True)


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

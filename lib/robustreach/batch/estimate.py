"""How long a batch will take, from a few calibrated training batches on this machine.

Every run that trains (a notebook taking hyperparameter sections trains the models its set
needs and the index lacks) is charged for the training groups it will train, in the order the
batch runs them: a model is paid for by the first run that needs it. Each distinct group shape
is calibrated once: its step compiled (the compilation goes to the compilation cache, so the
real run loads it) and a few batches timed. Nothing is written to the index.

```python
plan = estimate_batch("params/part1.yml", results="results")
print(plan.report())     # seconds per run and for the file
```
Only training is estimated; analysis time is not (the report says so).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustreach.config import Hyperparameters
from robustreach.model import network_input_size

__all__ = ["BatchEstimate", "GroupCalibration", "RunEstimate", "calibrate_group", "estimate_batch", "format_duration"]

CALIBRATION_BATCHES = 3


@dataclass
class GroupCalibration:
    """Measured cost of one training group: compile (first call) and seconds per batch."""

    n_conditions: int
    hidden_size: int
    batch_size: int
    n_replicates: int
    compile_s: float
    s_per_batch: float
    n_devices: int = 1  # CPU devices the step is split over (`robustreach.devices`)

    def training_s(self, n_batches: int) -> float:
        return self.compile_s + n_batches * self.s_per_batch


@dataclass
class RunEstimate:
    """One run of the batch and the training it will do (0 when its models exist)."""

    notebook: str
    hash: str
    training_s: float
    n_models: int  # models this run trains
    up_to_date: bool = False


@dataclass
class BatchEstimate:
    paramfile: Path
    runs: list[RunEstimate] = field(default_factory=list)
    groups: list[GroupCalibration] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return sum(run.training_s for run in self.runs)

    def remaining_s(self, done_hashes: set[str]) -> float:
        """Estimated training seconds of the runs not in `done_hashes`."""
        return sum(run.training_s for run in self.runs if run.hash not in done_hashes)

    def report(self) -> str:
        lines = [f"{self.paramfile}: estimated training time on this machine (analysis not included)"]
        for group in self.groups:
            lines.append(
                f"  calibrated {group.n_conditions} condition(s) x {group.n_replicates} replicates, hidden "
                f"{group.hidden_size}, batch {group.batch_size}"
                + (f", split over {group.n_devices} CPU devices" if group.n_devices > 1 else "")
                + f": {group.s_per_batch:.3g} s/batch, compile {group.compile_s:.3g} s"
            )
        for run in self.runs:
            state = "up to date" if run.up_to_date else (
                f"{format_duration(run.training_s)} ({run.n_models} model(s) to train)" if run.n_models else "no training")
            lines.append(f"  {run.notebook} run {run.hash[:12]}: {state}")
        lines.append(f"  total: {format_duration(self.total_s)} of training for {len(self.runs)} run(s)")
        return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """`1 h 02 min`, `3 min 05 s` or `12 s`."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def calibrate_group(members: list[Hyperparameters], n_batches: int = CALIBRATION_BATCHES) -> GroupCalibration:
    """Compile the group's training step and time `n_batches` batches (median); trains nothing kept."""
    import jax
    import jax.numpy as jnp

    from robustreach.train.trainer import prepare_training

    setup = prepare_training(members)
    params, opt_state = setup.params, setup.opt_state

    def step(batch: int) -> None:
        jax.block_until_ready(setup.run_step(params, opt_state, setup.conditions, jnp.int32(batch),
                                             setup.train_key, setup.replicate_ids))

    start = time.perf_counter()
    step(0)
    first = time.perf_counter() - start
    times = []
    for batch in range(1, n_batches + 1):
        start = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - start)
    per_batch = statistics.median(times)
    hp = members[0]
    return GroupCalibration(len(members), hp.controller.hidden_size, hp.train.batch_size, hp.train.n_replicates,
                            compile_s=max(first - per_batch, 0.0), s_per_batch=per_batch,
                            n_devices=setup.sharding.n_devices if setup.sharding else 1)


def _shape_key(members: list[Hyperparameters]) -> tuple[Any, ...]:
    """What a batch's time depends on (not the number of batches, nor the batchable values)."""
    hp = members[0]
    return (len(members), hp.plant.type, hp.controller.hidden_size, hp.controller.cell, network_input_size(hp),
            hp.task.n_steps, hp.train.batch_size, hp.train.n_replicates, hp.perturbation.type, hp.context.variant)


def estimate_batch(
    paramfile: str | Path,
    *,
    results: str | Path = "results",
    root: str | Path | None = None,
    force: bool = False,
    calibration_batches: int = CALIBRATION_BATCHES,
) -> BatchEstimate:
    """Estimated training time of each run of `paramfile` and of the whole file.

    Runs up to date (unless `force`) and models already in the index cost nothing (notebooks
    never retrain those, even with `force`); the parameter file and every hyperparameter are validated first (`ParamFileError`).
    """
    from robustreach.batch.runner import up_to_date
    from robustreach.batch.runs import plan_runs
    from robustreach.compile_cache import enable_compile_cache
    from robustreach.experiment import check_notebook_parameters, expand_conditions, resolve_parameters
    from robustreach.hashing import params_hash
    from robustreach.paramfiles import load_paramfile
    from robustreach.store import ResultsStore
    from robustreach.train.conditions import group_conditions
    from robustreach.options import ANALYSES
    from robustreach.train.runner import existing_model

    pf = load_paramfile(paramfile, root=root)
    results = Path(results).resolve()
    plan = plan_runs(pf, results)
    for spec in plan:
        check_notebook_parameters(spec.parameters, where=f"{pf.path}: {spec.notebook}")
    store = ResultsStore(results)
    done = {} if force else up_to_date(store, plan)
    enable_compile_cache(results)  # the calibration's compilations serve the real runs

    defaults = {nb.name: nb.defaults for nb in pf.notebooks}
    estimate = BatchEstimate(paramfile=Path(paramfile))
    calibrations: dict[tuple[Any, ...], GroupCalibration] = {}
    paid: set[str] = set()  # models trained by an earlier run of the batch
    for spec in plan:
        if spec.hash in done:
            estimate.runs.append(RunEstimate(spec.notebook, spec.hash, 0.0, 0, up_to_date=True))
            continue
        missing: dict[str, Hyperparameters] = {}
        values = {**defaults[spec.notebook], **spec.parameters}  # what the kernel will hold
        if "hyperparameters" in values:  # the notebook trains or loads models: resolve as it does
            analyses = {name: values[name] for name in ANALYSES if name in values}
            resolved = resolve_parameters(values.get("part"), values["hyperparameters"], values.get("conditions"),
                                          **analyses)
            for hp in expand_conditions(resolved, resolved["conditions"]):
                key = params_hash(hp.to_dict())
                if key not in paid and existing_model(store, hp) is None:
                    missing.setdefault(key, hp)
        hps = list(missing.values())
        seconds = 0.0
        for group in group_conditions(hps):
            members = [hps[i] for i in group]
            shape = _shape_key(members)
            if shape not in calibrations:
                calibrations[shape] = calibrate_group(members, calibration_batches)
                estimate.groups.append(calibrations[shape])
            seconds += calibrations[shape].training_s(members[0].train.n_batches)
        paid.update(missing)
        estimate.runs.append(RunEstimate(spec.notebook, spec.hash, seconds, len(hps)))
    return estimate

"""Where runs execute: in this process, a local process pool, a Dask cluster, or Slurm.

Every executor takes the same `RunSpec`s and yields `(spec, result)` pairs as runs finish,
in any order; the coordinating process records them. A worker that dies (killed job, lost
Dask worker) yields a failed result rather than stopping the batch.

```python
for spec, result in run_specs(specs, executor="dask", jobs=4):
    ...
```
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from robustreach.batch.execute import execute_run
from robustreach.batch.runs import RunSpec

__all__ = ["EXECUTORS", "ExecutorName", "SlurmOptions", "run_specs"]

ExecutorName = Literal["sequential", "processes", "dask", "slurm"]
EXECUTORS: tuple[str, ...] = ("sequential", "processes", "dask", "slurm")
Result = tuple[RunSpec, dict[str, Any]]


@dataclass(frozen=True)
class SlurmOptions:
    """Slurm job options (submitit); `cluster="local"` runs the same jobs as local processes."""

    partition: str | None = None
    time_min: int = 60
    gpus: int = 0
    cpus: int = 2
    mem_gb: float | None = None
    cluster: str | None = "slurm"  # submitit's cluster: "slurm", "local", "debug", or None to detect


def _worker_failure(spec: RunSpec, error: BaseException, duration: float | None = None) -> dict[str, Any]:
    """A result for a run whose worker failed before returning one."""
    return {
        "hash": spec.hash,
        "status": "failed",
        "duration_s": duration,
        "error": {"cell_index": None, "execution_count": None, "ename": type(error).__name__, "evalue": str(error)},
        "files": spec.files,
    }


def _sequential(specs: Sequence[RunSpec]) -> Iterator[Result]:
    for spec in specs:
        yield spec, execute_run(spec)


def _processes(specs: Sequence[RunSpec], jobs: int) -> Iterator[Result]:
    # spawn: the parent may hold threads (tqdm, Dask, JAX), which fork does not copy safely.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(execute_run, spec): spec for spec in specs}
        for future in as_completed(futures):
            spec = futures[future]
            try:
                yield spec, future.result()
            except Exception as error:  # noqa: BLE001 -- e.g. a worker process killed
                yield spec, _worker_failure(spec, error)


def _dask(specs: Sequence[RunSpec], jobs: int, scheduler: str | None) -> Iterator[Result]:
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    if scheduler is None:
        # One single-threaded worker process per job: papermill changes the working directory
        # and the environment of the process it runs in.
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        futures = {client.submit(execute_run, spec, pure=False, key=f"run-{spec.hash[:12]}"): spec for spec in specs}
        for future in dask_completed(futures):
            spec = futures[future]
            try:
                yield spec, future.result()
            except Exception as error:  # noqa: BLE001 -- a lost or killed worker
                yield spec, _worker_failure(spec, error)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _slurm(specs: Sequence[RunSpec], jobs: int, options: SlurmOptions, folder: Path) -> Iterator[Result]:
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    executor.update_parameters(
        name="robustreach",
        timeout_min=options.time_min,
        gpus_per_node=options.gpus,
        cpus_per_task=options.cpus,
        mem_gb=options.mem_gb,
        slurm_partition=options.partition,
        slurm_array_parallelism=jobs,
    )
    with executor.batch():
        submitted = [(spec, executor.submit(execute_run, spec)) for spec in specs]
    pending = list(submitted)
    while pending:
        still = []
        for spec, job in pending:
            if not job.done():
                still.append((spec, job))
                continue
            try:
                yield spec, job.result()
            except Exception as error:  # noqa: BLE001 -- job killed, timed out, or lost
                yield spec, _worker_failure(spec, error)
        pending = still
        if pending:
            time.sleep(0.5)


def run_specs(
    specs: Sequence[RunSpec],
    *,
    executor: ExecutorName = "sequential",
    jobs: int = 1,
    scheduler: str | None = None,
    slurm: SlurmOptions | None = None,
    slurm_folder: str | Path | None = None,
) -> Iterator[Result]:
    """Execute `specs` on `executor`, yielding `(spec, result)` as each run finishes.

    `jobs` runs at a time (processes, dask workers, Slurm array parallelism); `scheduler`
    is a Dask scheduler address (default: a LocalCluster of `jobs` workers); Slurm job
    files go to `slurm_folder` (default `<results>/slurm`).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if not specs:
        return iter(())
    if executor == "sequential":
        return _sequential(specs)
    if executor == "processes":
        return _processes(specs, jobs)
    if executor == "dask":
        return _dask(specs, jobs, scheduler)
    if executor == "slurm":
        folder = Path(slurm_folder) if slurm_folder is not None else Path(specs[0].results) / "slurm"
        return _slurm(specs, jobs, slurm or SlurmOptions(), folder)
    raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")

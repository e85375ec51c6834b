"""Execute notebooks with papermill, once per parameter set of a parameter file.

- `runs`: the run hash and `RunSpec` (what one run is, where its files go);
- `execute`: `execute_run(spec)`, run in a worker, returns a result dict;
- `executors`: sequential, local process pool, Dask, Slurm (submitit);
- `runner`: `run_batch(paramfile, ...)`, the coordinator that skips, records and summarises.
"""

from robustreach.batch.execute import KERNEL_ENV, ensure_kernel, execute_run, kernel_environment
from robustreach.batch.executors import EXECUTORS, SlurmOptions, run_specs
from robustreach.batch.runner import BatchSummary, run_batch, up_to_date
from robustreach.batch.runs import RunSpec, plan_runs, run_hash

__all__ = [
    "EXECUTORS",
    "KERNEL_ENV",
    "BatchSummary",
    "RunSpec",
    "SlurmOptions",
    "ensure_kernel",
    "execute_run",
    "kernel_environment",
    "plan_runs",
    "run_batch",
    "run_hash",
    "run_specs",
    "up_to_date",
]

"""Each executor runs the same batch for real and gives the same records.

Process pool and a local Dask cluster (2 workers each); Slurm through submitit's local
executor, which runs each job as a separate process with the same pickled function.
"""

import os

import pytest
from batch_helpers import batch, make_project, report
from robustreach.batch import SlurmOptions
from robustreach.store import ResultsStore

PARAMS = """
notebooks: [notebooks/echo.qmd]
grid:
  cfg.n: [5]
sets:
  - {cfg.n: 6, cfg.fail: true}
"""


@pytest.mark.parametrize(
    "options",
    [
        {"executor": "processes", "jobs": 2},
        {"executor": "dask", "jobs": 2},
        {"executor": "slurm", "jobs": 2, "slurm": SlurmOptions(cluster="local", time_min=5, partition="debug")},
    ],
    ids=["processes", "dask", "slurm-local"],
)
def test_executor_runs_the_batch(tmp_path, options):
    project = make_project(tmp_path, PARAMS)
    summary = batch(project, **options)
    assert summary.exit_code == 1
    assert [r["hyperparameters"]["cfg"]["n"] for r in summary.ok] == [5]
    assert [r["hyperparameters"]["cfg"]["n"] for r in summary.failed] == [6]
    failed = summary.failed[0]["error"]
    assert (failed["ename"], failed["evalue"]) == ("RuntimeError", "asked to fail (label a)")
    assert failed["cell_index"] is not None
    results = project / "results"
    records = {r["hash"]: r for r in ResultsStore(results).find("runs")}
    assert set(records) == {r["hash"] for r in summary.ok + summary.failed}
    ok = summary.ok[0]
    got = report(results / ok["files"]["notebook"])
    assert got["cfg"]["n"] == 5 and got["types"]["scale"] == "float"
    assert got["env"]["ROBUSTREACH_RESULTS"] == str(results.resolve())
    assert got["parent_pid"] != os.getpid()  # the kernel was started by a worker, not by us
    assert all((results / r["files"]["notebook"]).is_file() for r in records.values())


def test_dask_executor_uses_a_given_scheduler(tmp_path):
    from distributed import Client, LocalCluster

    project = make_project(tmp_path, PARAMS)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        (worker_pid,) = client.run(os.getpid).values()
        summary = batch(project, executor="dask", scheduler=cluster.scheduler_address)
    assert [r["hyperparameters"]["cfg"]["n"] for r in summary.ok] == [5]
    assert [r["hyperparameters"]["cfg"]["n"] for r in summary.failed] == [6]
    got = report(project / "results" / summary.ok[0]["files"]["notebook"])
    assert got["parent_pid"] == worker_pid  # executed by that cluster's worker

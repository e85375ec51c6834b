"""Run a parameter file: plan the runs, skip finished ones, execute the rest, record all.

Only this coordinating process writes the index (table "runs"); workers return result
dicts. A run is up to date when the index holds a record with its hash, status "ok", and
its executed notebook still exists; `force=True` reruns everything. One failing run does not
stop the others: the summary lists each failure with its cell and error.

```python
summary = run_batch("params/demo.yml", results="results", executor="processes", jobs=4)
print(summary.report()); raise SystemExit(summary.exit_code)
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from robustreach.batch.estimate import BatchEstimate, format_duration
from robustreach.batch.execute import ensure_kernel
from robustreach.batch.executors import ExecutorName, SlurmOptions, run_specs
from robustreach.batch.progress import watch_runs
from robustreach.batch.runs import RunSpec, plan_runs
from robustreach.experiment import check_notebook_parameters
from robustreach.paramfiles import load_paramfile
from robustreach.store import ResultsStore

__all__ = ["BatchSummary", "run_batch", "up_to_date"]

TABLE = "runs"


@dataclass
class BatchSummary:
    """What a batch did: records of runs that passed, failed, or were skipped as up to date."""

    paramfile: Path
    ok: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def report(self) -> str:
        """A few lines for the terminal: counts, then one line per failure."""
        counts = f"{len(self.ok)} ok, {len(self.failed)} failed, {len(self.skipped)} up to date (skipped)"
        lines = [f"{self.paramfile}: {counts}"]
        for record in self.failed:
            error = record.get("error") or {}
            cell = error.get("cell_index")
            where = f"cell {cell}" if cell is not None else "before any cell ran"
            if error.get("execution_count") is not None:
                where += f" (In [{error['execution_count']}])"
            lines.append(
                f"  FAILED {record['notebook']} run {record['hash'][:12]}: {where}: "
                f"{error.get('ename')}: {error.get('evalue')}\n    see {record['files']['notebook']}, {record['files']['log']}"
            )
        return "\n".join(lines)


def up_to_date(store: ResultsStore, specs: list[RunSpec]) -> dict[str, dict[str, Any]]:
    """Run hash -> the "runs" record that makes that spec unnecessary (ok, notebook on disk)."""
    finished = {r["hash"]: r for r in store.find(TABLE, where={"status": "ok"})}  # one read of the index
    return {
        spec.hash: finished[spec.hash]
        for spec in specs
        if spec.hash in finished and (Path(spec.results) / finished[spec.hash]["files"]["notebook"]).is_file()
    }


def _record(spec: RunSpec, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "hash": spec.hash,
        "hyperparameters": spec.parameters,
        "notebook": spec.notebook,
        "part": spec.part,
        "status": result["status"],
        "duration_s": result["duration_s"],
        "error": result["error"],
        "files": result["files"],
    }


def run_batch(
    paramfile: str | Path,
    *,
    results: str | Path = "results",
    executor: ExecutorName = "sequential",
    jobs: int = 1,
    force: bool = False,
    scheduler: str | None = None,
    slurm: SlurmOptions | None = None,
    root: str | Path | None = None,
    kernel_name: str = "python3",
    execution_timeout: int | None = None,
    progress: bool = True,
    estimate: BatchEstimate | None = None,
) -> BatchSummary:
    """Execute every (notebook, parameter set) of `paramfile` that is not up to date.

    The parameter file is validated completely before anything runs (`ParamFileError`).
    Returns a `BatchSummary`; its `exit_code` is non-zero when a run failed. With an
    `estimate` (`estimate_batch`), the progress bar shows the estimated training time left.
    """
    pf = load_paramfile(paramfile, root=root)
    results = Path(results).resolve()
    options = {"kernel_name": kernel_name, "execution_timeout": execution_timeout}
    plan = plan_runs(pf, results, **options)
    for spec in plan:  # hyperparameter values too, before any run
        check_notebook_parameters(spec.parameters, where=f"{pf.path}: {spec.notebook}")
    store = ResultsStore(results)
    summary = BatchSummary(paramfile=Path(paramfile))
    # An estimate: notebooks that read the index are planned again when their turn comes.
    expected = len(plan) - (0 if force else len(up_to_date(store, plan)))
    bar = tqdm(total=expected, desc=f"{pf.path.stem} runs", unit="run", disable=not progress or not expected)
    finished: set[str] = set()

    def show_status() -> None:
        # The postfix belongs to `watch_runs` (each running run's progress): status goes first.
        status = [f"{len(summary.failed)} failed"] if finished else []
        if estimate is not None:
            status.append(f"training left ~{format_duration(estimate.remaining_s(finished))} (estimated)")
        bar.set_description(f"{pf.path.stem} runs" + (f" ({', '.join(status)})" if status else ""), refresh=False)

    show_status()
    try:
        # Notebooks run in the order the file lists them: every run of one notebook finishes
        # before the next notebook's are planned and started, so analyses find the models
        # training produced and index pages see the figures the analyses saved.
        for notebook in pf.notebooks:
            stage = plan_runs(pf, results, notebooks=[notebook.name], store=store, **options)
            done = {} if force else up_to_date(store, stage)
            summary.skipped += [done[s.hash] for s in stage if s.hash in done]
            todo = [s for s in stage if s.hash not in done]
            if not todo:
                continue
            ensure_kernel(kernel_name)
            with watch_runs(bar, todo):  # each running run's own progress (training) after the bar
                for spec, result in run_specs(todo, executor=executor, jobs=jobs, scheduler=scheduler, slurm=slurm):
                    record = store.upsert(TABLE, _record(spec, result), key="hash")
                    (summary.ok if record["status"] == "ok" else summary.failed).append(record)
                    finished.add(spec.hash)
                    show_status()
                    bar.update()
        bar.total = bar.n  # the estimate counted index-reading runs that proved up to date
    finally:
        bar.close()
    return summary

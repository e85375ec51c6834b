"""What one run is: a notebook, the parameters papermill injects, and where its files go.

A run is identified by its hash, sha256 of the notebook's source text, the injected
parameters (canonical JSON) and the library version: the same notebook run with the same
values by the same library gives the same hash, so a finished run can be skipped.

A notebook that shows what the index holds (the figures page) says so in its front matter,
`robustreach: {reads-index: [figures]}`; the hashes of those tables' records then enter its
run hash, so it reruns exactly when they change.

```
results/runs/<notebook stem>/<short run hash>/<stem>.ipynb    executed notebook
                                             /<stem>.log      the kernel's stdout/stderr
                                             /parameters.json what was injected
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustreach import __version__
from robustreach.hashing import params_hash, short_hash
from robustreach.paramfiles import ParamFile, expand
from robustreach.qmd import front_matter, reads_qmd

__all__ = ["RunSpec", "plan_runs", "run_hash"]


def run_hash(notebook_source: str, parameters: dict[str, Any], version: str = __version__, index_state: str | None = None) -> str:
    """sha256 of notebook source + canonical parameters + library version (full hex), and of
    the index tables the notebook reads, when it reads any."""
    identity = {"notebook": notebook_source, "parameters": parameters, "version": version}
    if index_state is not None:
        identity["index_state"] = index_state
    return params_hash(identity)


def tables_read(notebook_source: str) -> list[str]:
    """The index tables a notebook declares it reads (`robustreach: {reads-index: [...]}`)."""
    options = front_matter(reads_qmd(notebook_source)).get("robustreach") or {}
    tables = options.get("reads-index") or []
    return [tables] if isinstance(tables, str) else list(tables)


def index_state(store: Any, tables: list[str]) -> str | None:
    """A hash of the record hashes of `tables`, or None when the notebook reads none."""
    if not tables:
        return None
    return params_hash({table: sorted(r["hash"] for r in store.find(table)) for table in sorted(tables)})


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to execute one run; plain values, so it pickles anywhere."""

    notebook: str  # path relative to the repository, as in the parameter file
    notebook_path: str  # absolute
    parameters: dict[str, Any]  # injected by papermill, typed as the notebook's defaults
    hash: str
    results: str  # absolute results directory
    part: str  # the parameter file's stem (demo, part1, ...)
    kernel_name: str = "python3"
    execution_timeout: int | None = None  # seconds per cell; None: no limit

    @property
    def stem(self) -> str:
        return Path(self.notebook).stem

    @property
    def relative_dir(self) -> str:
        """The run's directory relative to the results directory."""
        return f"runs/{self.stem}/{short_hash(self.hash)}"

    @property
    def files(self) -> dict[str, str]:
        """The run's files, relative to the results directory."""
        return {
            "notebook": f"{self.relative_dir}/{self.stem}.ipynb",
            "log": f"{self.relative_dir}/{self.stem}.log",
            "parameters": f"{self.relative_dir}/parameters.json",
        }


def plan_runs(
    pf: ParamFile, results: str | Path, *, notebooks: list[str] | None = None, store: Any = None, **options: Any
) -> list[RunSpec]:
    """One run per (notebook, parameter set), in file order; runs with equal hashes once.

    Two sets that differ only in parameters a notebook does not declare give that notebook
    the same run (a grid over an analysis parameter does not retrain). `notebooks` limits
    the plan to those (as named in the file); `store` supplies the index state for
    notebooks that read the index (plan those just before they run).
    """
    results = str(Path(results).resolve())
    specs: dict[str, RunSpec] = {}
    chosen = [nb for nb in pf.notebooks if notebooks is None or nb.name in notebooks]
    sources = {nb.name: nb.path.read_text(encoding="utf-8") for nb in chosen}
    states = {name: index_state(store, tables_read(src)) if store is not None else None for name, src in sources.items()}
    for pset in expand(pf):
        for nb in chosen:
            parameters = nb.parameters_for(pset)
            h = run_hash(sources[nb.name], parameters, index_state=states[nb.name])
            specs.setdefault(
                h,
                RunSpec(
                    notebook=nb.name,
                    notebook_path=str(nb.path),
                    parameters=parameters,
                    hash=h,
                    results=results,
                    part=pf.path.stem,
                    **options,
                ),
            )
    return list(specs.values())


def records_on_disk(results: str | Path) -> list[dict[str, Any]]:
    """"runs" records remade from the run folders under `results/runs/` (for `db rebuild`).

    Each executed notebook carries its run hash, notebook and part in its metadata (see
    `batch.execute`), and `parameters.json` what was injected; a notebook with an error
    output is a failed run. The duration is not kept on disk (None).
    """
    import json

    import nbformat

    root = Path(results)
    records = []
    for notebook in sorted(root.glob("runs/*/*/*.ipynb")):
        folder = notebook.parent
        if folder.name.startswith(".") or notebook.stem != folder.parent.name:
            continue
        try:
            nb = nbformat.read(notebook, as_version=4)
            meta = nb.metadata.get("robustreach") or {}
            parameters = json.loads((folder / "parameters.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(meta.get("run_hash"), str) or short_hash(meta["run_hash"]) != folder.name:
            continue
        error = None
        for index, cell in enumerate(nb.cells):
            failed = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if failed:
                error = {"cell_index": index, "execution_count": cell.get("execution_count"),
                         "ename": failed[0].get("ename"), "evalue": failed[0].get("evalue")}
                break
        stem = folder.parent.name
        files = {
            key: f"runs/{stem}/{folder.name}/{name}"
            for key, name in (("notebook", f"{stem}.ipynb"), ("log", f"{stem}.log"), ("parameters", "parameters.json"))
            if (folder / name).is_file()
        }
        records.append(
            {
                "hash": meta["run_hash"],
                "hyperparameters": parameters,
                "notebook": meta.get("notebook"),
                "part": meta.get("part"),
                "status": "ok" if error is None else "failed",
                "duration_s": None,
                "error": error,
                "files": files,
            }
        )
    return records

"""What one run is: a notebook, the parameters papermill injects, and where its files go.

A run is identified by its hash, sha256 of the notebook's source text, the injected
parameters (canonical JSON) and the library version: the same notebook run with the same
values by the same library gives the same hash, so a finished run can be skipped.

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

__all__ = ["RunSpec", "plan_runs", "run_hash"]


def run_hash(notebook_source: str, parameters: dict[str, Any], version: str = __version__) -> str:
    """sha256 of notebook source + canonical parameters + library version (full hex)."""
    return params_hash({"notebook": notebook_source, "parameters": parameters, "version": version})


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


def plan_runs(pf: ParamFile, results: str | Path, **options: Any) -> list[RunSpec]:
    """One run per (notebook, parameter set), in file order; runs with equal hashes once.

    Two sets that differ only in parameters a notebook does not declare give that notebook
    the same run (a grid over an analysis parameter does not retrain).
    """
    results = str(Path(results).resolve())
    specs: dict[str, RunSpec] = {}
    sources = {nb.name: nb.path.read_text(encoding="utf-8") for nb in pf.notebooks}
    for pset in expand(pf):
        for nb in pf.notebooks:
            parameters = nb.parameters_for(pset)
            h = run_hash(sources[nb.name], parameters)
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

"""Per-run overhead of papermill execution against the notebooks' own compute.

Executes every run of a parameter file (default `params/demo.yml`; the fixture notebooks in
`tests/fixtures/params/bench.yml` while the demo does not exist) one after the other in a
fresh results directory, and splits each run's wall time using papermill's own timings:

- robustreach: outside papermill's own clock (reading the `.qmd`, labelling the executed
  notebook, moving the run directory into place);
- kernel + papermill: inside papermill's clock but in no cell (kernel start and stop,
  parameter injection, saving the notebook after each cell);
- imports: cells that only import modules (paid again by every run's fresh kernel);
- compute: the other cells, the notebook's own work.

Prints a table and writes `benchmarks/batch.json`. By default the compilation cache is off.
With `--compile-cache`, the batch runs twice into fresh results directories: cold (an empty
`jax-cache/`) and warm (the cache the cold pass filled, nothing else kept, so models train
again); per run, the time that the warm cache saves, over the cold time, is the share of the
run spent compiling (loading an entry costs a little, so that share is a lower bound).

    python benchmarks/batch.py [--params FILE] [--repeats N] [--compile-cache]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from robustreach import __version__
from robustreach.batch import ensure_kernel, execute_run, plan_runs
from robustreach.compile_cache import ENV_VAR
from robustreach.paramfiles import load_paramfile
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "params/demo.yml"
FIXTURE = ROOT / "tests/fixtures/params/bench.yml"


def is_import_cell(source: str) -> bool:
    """A code cell whose statements are all imports."""
    try:
        body = ast.parse("\n".join(line for line in source.split("\n") if not line.startswith(("%", "!")))).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)


def split_times(executed: Path, wall: float) -> dict[str, float]:
    nb = nbformat.read(executed, as_version=4)
    papermill_s = nb.metadata["papermill"]["duration"]
    imports = compute = 0.0
    for cell in nb.cells:
        duration = cell.metadata.get("papermill", {}).get("duration") or 0.0
        if cell.cell_type != "code":
            continue
        if is_import_cell(cell.source):
            imports += duration
        else:
            compute += duration
    return {
        "wall_s": wall,
        "robustreach_s": max(wall - papermill_s, 0.0),
        "kernel_papermill_s": max(papermill_s - imports - compute, 0.0),
        "imports_s": imports,
        "compute_s": compute,
    }


def execute_all(specs, repeats: int, desc: str) -> list[dict]:
    rows = []
    for spec in tqdm([s for s in specs for _ in range(repeats)], desc=desc, unit="run"):
        start = time.perf_counter()
        result = execute_run(spec)
        wall = time.perf_counter() - start
        if result["status"] != "ok":
            raise SystemExit(f"run {spec.hash[:12]} of {spec.notebook} failed: {result['error']}")
        times = split_times(Path(spec.results) / result["files"]["notebook"], wall)
        rows.append({"notebook": spec.notebook, "run": spec.hash[:12], **times})
    return rows


def cold_and_warm(pf) -> list[dict]:
    """Every run with an empty compilation cache, then again (fresh results) with the filled one."""
    with tempfile.TemporaryDirectory(prefix="robustreach-bench-") as tmp:
        cold_dir, warm_dir, cache = Path(tmp) / "cold", Path(tmp) / "warm", Path(tmp) / "jax-cache"
        os.environ[ENV_VAR] = str(cache)
        try:
            cold = execute_all(plan_runs(pf, cold_dir), 1, "cold cache")
            entries = sum(1 for _ in cache.iterdir())
            warm = execute_all(plan_runs(pf, warm_dir), 1, "warm cache")
        finally:
            os.environ.pop(ENV_VAR, None)
    rows = []
    for c, w in zip(cold, warm):
        rows.append({"notebook": c["notebook"], "run": c["run"], "cold_s": c["wall_s"], "warm_s": w["wall_s"],
                     "cold_compute_s": c["compute_s"], "warm_compute_s": w["compute_s"],
                     "compile_share": max(c["wall_s"] - w["wall_s"], 0.0) / c["wall_s"]})
    header = f"{'notebook':<38} {'run':<12} {'cold s':>7} {'warm s':>7} {'compiling':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['notebook']:<38} {r['run']:<12} {r['cold_s']:>7.2f} {r['warm_s']:>7.2f} {r['compile_share']:>9.0%}")
    cold_total, warm_total = sum(r["cold_s"] for r in rows), sum(r["warm_s"] for r in rows)
    print(f"\nbatch: cold {cold_total:.1f} s, warm {warm_total:.1f} s ({1 - warm_total / cold_total:.0%} of the cold "
          f"time spent compiling); {entries} cache entries")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--params", type=Path, default=None, help="parameter file (default: params/demo.yml, else fixtures)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="executions of each run")
    parser.add_argument("--compile-cache", action="store_true", help="cold vs warm compilation cache, side by side")
    args = parser.parse_args()
    params = args.params or (DEMO if DEMO.exists() else FIXTURE)
    pf = load_paramfile(params, root=ROOT)
    ensure_kernel()
    if args.compile_cache:
        rows = cold_and_warm(pf)
        out = Path(__file__).with_name("batch-cache.json")
        out.write_text(json.dumps({"benchmark": "batch, cold vs warm compilation cache", "params": str(params.relative_to(ROOT)),
                                   "robustreach": __version__, "machine": platform.platform(), "runs": rows}, indent=2) + "\n")
        print(f"wrote {out}")
        return
    os.environ[ENV_VAR] = "off"  # overhead without the cache (see --compile-cache)
    with tempfile.TemporaryDirectory(prefix="robustreach-bench-") as tmp:
        rows = execute_all(plan_runs(pf, tmp), args.repeats, "runs")

    header = (
        f"{'notebook':<38} {'run':<12} {'wall s':>7} {'ours s':>7} {'kernel+pm s':>11} {'imports s':>9} "
        f"{'compute s':>9} {'overhead':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        overhead = 1 - r["compute_s"] / r["wall_s"]
        print(
            f"{r['notebook']:<38} {r['run']:<12} {r['wall_s']:>7.2f} {r['robustreach_s']:>7.2f} {r['kernel_papermill_s']:>11.2f} "
            f"{r['imports_s']:>9.2f} {r['compute_s']:>9.2f} {overhead:>8.0%}"
        )
    summary = {
        key: statistics.median(r[key] for r in rows)
        for key in ("wall_s", "robustreach_s", "kernel_papermill_s", "imports_s", "compute_s")
    }
    summary["overhead_fraction"] = statistics.median(1 - r["compute_s"] / r["wall_s"] for r in rows)
    print(
        f"\nmedians per run: wall {summary['wall_s']:.2f} s; robustreach {summary['robustreach_s']:.2f} s, "
        f"kernel+papermill {summary['kernel_papermill_s']:.2f} s "
        f"+ imports {summary['imports_s']:.2f} s + compute {summary['compute_s']:.2f} s "
        f"(overhead {summary['overhead_fraction']:.0%})"
    )
    out = Path(__file__).with_suffix(".json")
    out.write_text(
        json.dumps(
            {
                "benchmark": "batch",
                "params": str(params.relative_to(ROOT)),
                "notebooks": "demo" if params == DEMO else "test fixtures (demo notebooks not written yet)",
                "robustreach": __version__,
                "python": sys.version.split()[0],
                "machine": platform.platform(),
                "runs": rows,
                "median": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

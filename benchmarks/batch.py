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

With `--incremental PROJECT`, measures instead what a second `robustreach run demo` costs
when little or nothing changed, in PROJECT (a copy of the project; the demo is run there
first if its results are missing), each command run as users run it, in a subprocess:

- no-op rerun: `robustreach run demo` again (every run skipped, every page up to date),
  split into the batch (`robustreach batch params/demo.yml`) and the site
  (`robustreach site build`); with the nbconvert engine, and with Quarto when on the PATH;
- one changed parameter: the figures page's `limit` changed, which reruns that notebook
  only, and rebuilds its page only.

Prints a table and writes `benchmarks/batch_incremental.json`.

    python benchmarks/batch.py --incremental /tmp/demo-project
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import statistics
import subprocess
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
    parser.add_argument(
        "--incremental", type=Path, default=None, metavar="PROJECT", help="measure reruns of the demo in PROJECT"
    )
    args = parser.parse_args()
    if args.incremental is not None:
        return incremental(args.incremental.resolve())
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


PROJECT_FILES = ("notebooks", "params", "_quarto.yml", "_quarto-demo.yml", "index.qmd", ".gitignore",
                 "lib/robustreach/site_assets/quarto_step.py")  # fmt: skip


def timed(command: list[str], project: Path) -> tuple[float, str]:
    """Run a `robustreach` command in `project`; its wall time and output."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "robustreach", *command], cwd=project, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"robustreach {' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, done.stdout


def built_pages(project: Path) -> int | None:
    state = project / "results/site/.pages.json"
    built = json.loads(state.read_text()).get("built") if state.is_file() else None
    return None if built is None else len(built)


def incremental(project: Path) -> None:
    """Second runs of the demo: nothing changed, or one analysis parameter."""
    if not (project / "results/index.json").is_file():
        for name in PROJECT_FILES:
            target = project / name
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, target, **({"dirs_exist_ok": True} if (ROOT / name).is_dir() else {}))
        print(f"running the demo in {project} first (minutes)", flush=True)
        timed(["run", "demo", "--engine", "nbconvert"], project)
    engines = ["nbconvert"] + (["quarto"] if shutil.which("quarto") else [])
    rows = []
    for engine in engines:
        timed(["site", "build", "--engine", engine, "--profile", "demo"], project)  # this engine's site, up to date
        wall, _ = timed(["run", "demo", "--engine", engine], project)
        rows.append({"case": "no-op rerun", "engine": engine, "step": "robustreach run demo", "wall_s": wall,
                     "pages_built": built_pages(project) if engine == "nbconvert" else 0})  # fmt: skip
        wall, _ = timed(["batch", "params/demo.yml"], project)
        rows.append({"case": "no-op rerun", "engine": engine, "step": "  batch only", "wall_s": wall, "pages_built": None})
        wall, out = timed(["site", "build", "--engine", engine, "--profile", "demo"], project)
        rows.append({"case": "no-op rerun", "engine": engine, "step": "  site only", "wall_s": wall,
                     "pages_built": built_pages(project) if engine == "nbconvert" else 0})  # fmt: skip
    # One changed parameter: the figures page shows fewer figures per type.
    import yaml

    from robustreach.store import ResultsStore

    figures_runs = ResultsStore(project / "results").find("runs", where={"notebook": "notebooks/figures.qmd"})
    used = {r["hyperparameters"].get("limit") for r in figures_runs}
    limit = next(n for n in range(3, 1000) if n not in used)  # a value never run: a real change
    changed = yaml.safe_load((project / "params/demo.yml").read_text())
    changed.setdefault("base", {})["limit"] = limit
    (project / "params/demo-limit.yml").write_text(yaml.safe_dump(changed))
    timed(["site", "build", "--engine", "nbconvert", "--profile", "demo"], project)
    wall_batch, out = timed(["batch", "params/demo-limit.yml"], project)
    wall_site, _ = timed(["site", "build", "--engine", "nbconvert", "--profile", "demo"], project)
    rows.append({"case": f"limit: 6 -> {limit}", "engine": "nbconvert", "step": "  batch (" + out.strip().splitlines()[-1].split(": ", 1)[-1] + ")",
                 "wall_s": wall_batch, "pages_built": None})  # fmt: skip
    rows.append({"case": f"limit: 6 -> {limit}", "engine": "nbconvert", "step": "  site", "wall_s": wall_site,
                 "pages_built": built_pages(project)})  # fmt: skip
    (project / "params/demo-limit.yml").unlink()

    header = f"{'case':<16} {'engine':<10} {'step':<52} {'wall s':>7} {'pages built':>11}"
    print(header)
    print("-" * len(header))
    for r in rows:
        built = "" if r["pages_built"] is None else str(r["pages_built"])
        print(f"{r['case']:<16} {r['engine']:<10} {r['step']:<52} {r['wall_s']:>7.1f} {built:>11}")
    out_path = Path(__file__).with_name("batch_incremental.json")
    out_path.write_text(
        json.dumps(
            {
                "benchmark": "batch --incremental",
                "robustreach": __version__,
                "python": sys.version.split()[0],
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg()[0],
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

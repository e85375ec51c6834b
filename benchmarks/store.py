"""Results store benchmark: query latency and insert rate at 100, 1,000 and 10,000 records.

Each size gets a fresh store pre-filled in one bulk write with model-like records (the full
default hyperparameter set with a few fields varied, plus provenance), then:
- insert: single `insert` calls (each takes the lock, rewrites index.json and the table CSV);
- queries: `find` on a nested equality, `OneOf` + `Range`, `find_one`, `get` by hash prefix,
  `varying`, `dataframe`; "cold" is the first query after a write (parses the index),
  "warm" a repeat (the parsed index is reused while the file is unchanged).

Run: `python benchmarks/store.py [--sizes 100 1000 10000]`; prints a table and writes
`benchmarks/store.json`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustreach.config import load_hyperparameters
from robustreach.provenance import utc_now
from robustreach.store import OneOf, Range, ResultsStore
from tqdm import tqdm

BASE = load_hyperparameters({}).to_dict()


def hyperparameters(i: int) -> dict[str, Any]:
    """The default parameter set with fields varied over a grid (index i -> distinct set)."""
    hp = json.loads(json.dumps(BASE))
    hp["perturbation"]["std"] = [0.0, 0.5, 1.0, 1.5][i % 4]
    hp["train"]["n_batches"] = [500, 1000, 2000][(i // 4) % 3]
    hp["train"]["learning_rate"] = [1e-3, 3e-3, 1e-2][(i // 12) % 3]
    hp["train"]["seed"] = i
    return hp


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_size(n: int, n_inserts: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "results")
        start = time.perf_counter()
        store.insert_many("models", [{"hyperparameters": hyperparameters(i)} for i in range(n)])
        prefill_s = time.perf_counter() - start

        insert_times: list[float] = []
        for k in range(n_inserts):
            t0 = time.perf_counter()
            store.insert("models", {"hyperparameters": hyperparameters(n + k)})
            insert_times.append(time.perf_counter() - t0)

        some = store.find("models", {"train.seed": 0})[0]
        queries: dict[str, Callable[[], Any]] = {
            "find_equal": lambda: store.find("models", {"train": {"seed": n // 2}}),
            "find_oneof_range": lambda: store.find(
                "models", {"perturbation.std": OneOf([0.5, 1.0]), "train.n_batches": Range(600, 2000)}
            ),
            "find_one": lambda: store.find_one("models", {"train.seed": n // 3}),
            "get_prefix": lambda: store.get("models", some["hash"][:8]),
            "varying": lambda: store.varying("models", {"perturbation.std": 0.5}),
            "dataframe": lambda: store.dataframe("models", {"perturbation.std": 0.5}),
        }
        result: dict[str, Any] = {
            "records": n + n_inserts,
            "index_mb": (store.index_path.stat().st_size) / 1e6,
            "prefill_s": prefill_s,
            "insert_ms": 1e3 * statistics.median(insert_times),
            "inserts_per_s": 1.0 / statistics.median(insert_times),
        }
        for name, query in queries.items():
            store.upsert("runs", {"hash": "ab" * 32, "touch": utc_now()})  # a write, so the next read parses
            cold = timed(query, 1)[0]
            warm = statistics.median(timed(query, repeat))
            result[f"{name}_cold_ms"] = 1e3 * cold
            result[f"{name}_warm_ms"] = 1e3 * warm
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()

    rows = []
    for n in tqdm(args.sizes, desc="store sizes"):
        n_inserts = 20 if n <= 1000 else 5
        rows.append({"size": n, **bench_size(n, n_inserts, repeat=5 if n <= 1000 else 3)})

    columns = ["size", "index_mb", "prefill_s", "insert_ms", "inserts_per_s"] + [
        f"{q}_{kind}_ms"
        for q in ("find_equal", "find_oneof_range", "find_one", "get_prefix", "varying", "dataframe")
        for kind in ("cold", "warm")
    ]
    print()
    print("results store benchmark (times in ms unless noted; warm = index unchanged since last read)")
    for row in rows:
        print(
            f"\n  {row['size']:>6} records: index {row['index_mb']:.1f} MB, bulk prefill {row['prefill_s']:.2f} s, "
            f"insert {row['insert_ms']:.1f} ms ({row['inserts_per_s']:.1f}/s)"
        )
        print(f"    {'query':<18}{'cold':>10}{'warm':>10}")
        for q in ("find_equal", "find_oneof_range", "find_one", "get_prefix", "varying", "dataframe"):
            print(f"    {q:<18}{row[f'{q}_cold_ms']:>10.1f}{row[f'{q}_warm_ms']:>10.1f}")
    summary = {
        "benchmark": "store",
        "created": utc_now(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "columns": columns,
        "rows": rows,
    }
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

"""robustreach against feedbax, the field's reference library, measured on this machine.

Both train the same setup (point mass, GRU hidden 50, 100 steps, batches of 250, Adam) as a
single model and as an ensemble of 5, each in its own interpreter (feedbax in the environment
`peer/setup.sh` makes: JAX 0.4.35 and the libraries of its time). For each library and size a
run of 1 batch and a run of 1 + M batches are timed from the call to the trained model; the
first is the time to the first batch (compilation included, cold), their difference over M
the time per batch. Runs alternate between the libraries, round after round, so that load
from other processes hits both alike; the table reports medians over rounds and the ratio
feedbax / robustreach (> 1: robustreach faster).

    bash benchmarks/peer/setup.sh [FEEDBAX_SOURCE]
    python benchmarks/peer.py [--rounds 3] [--batches 100] [--replicates 1 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _common import print_table, write_summary

HERE = Path(__file__).resolve().parent
WORKERS = {
    "feedbax": (HERE / "peer" / ".venv" / "bin" / "python", HERE / "peer" / "feedbax_worker.py"),
    "robustreach": (Path(sys.executable), HERE / "peer" / "robustreach_worker.py"),
}


def timed_run(library: str, replicates: int, batches: int, python: Path | None = None) -> dict:
    """One worker process; its JSON line (seconds from the call to the trained model)."""
    interpreter, script = WORKERS[library]
    result = subprocess.run([str(python or interpreter), str(script), str(replicates), str(batches)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{library} worker failed ({replicates} replicates, {batches} batches):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=100, help="M: batches timed after the first")
    parser.add_argument("--replicates", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--feedbax-python", type=Path, default=None, help="feedbax's interpreter (default: peer/.venv)")
    args = parser.parse_args()
    if args.feedbax_python is None and not WORKERS["feedbax"][0].exists():
        sys.exit("no feedbax environment: run `bash benchmarks/peer/setup.sh [FEEDBAX_SOURCE]` first")

    samples: dict[tuple[str, int], dict[str, list[float]]] = {}
    versions = {}
    for round_index in range(args.rounds):
        for replicates in args.replicates:
            order = ("feedbax", "robustreach") if round_index % 2 == 0 else ("robustreach", "feedbax")
            for library in order:
                python = args.feedbax_python if library == "feedbax" else None
                first = timed_run(library, replicates, 1, python)
                longer = timed_run(library, replicates, 1 + args.batches, python)
                versions[library] = first["jax"]
                entry = samples.setdefault((library, replicates), {"first": [], "per_batch": []})
                entry["first"].append(first["seconds"])
                entry["per_batch"].append((longer["seconds"] - first["seconds"]) / args.batches)
                print(f"round {round_index + 1}: {library} x{replicates}: first batch {first['seconds']:.1f} s, "
                      f"{entry['per_batch'][-1]:.3f} s/batch", flush=True)

    rows = []
    for replicates in args.replicates:
        medians = {lib: {k: statistics.median(v) for k, v in samples[(lib, replicates)].items()} for lib in WORKERS}
        for library in WORKERS:
            rows.append({"library": library, "jax": versions[library], "replicates": replicates,
                         "s_per_batch": medians[library]["per_batch"], "first_batch_s": medians[library]["first"],
                         "feedbax/this": medians["feedbax"]["per_batch"] / medians[library]["per_batch"]})
    print(f"\nmedians over {args.rounds} rounds; per batch from runs of 1 and {1 + args.batches} batches\n")
    print_table(rows)
    write_summary("peer", {"settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                           "samples": {f"{lib} x{r}": s for (lib, r), s in samples.items()}})


if __name__ == "__main__":
    main()

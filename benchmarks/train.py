"""Training-step throughput against the machine's own matmul peak, vmapped vs Python loop.

In one process: the fp32 matmul peak (NumPy, 2048 x 2048), then the training step at the
reference sizes (batch 250, 100 steps, 5 replicates; 1 and 4 conditions at hidden 50, and
part 2's groups of 2 conditions at hidden 100), each by the vmapped step split over the CPU
devices as training runs it ("sharded", `robustreach.devices`; `ROBUSTREACH_CPU_DEVICES=1`
for one device), by the vmapped step on one device, and by the Python loop over conditions x
replicates. Every path is compiled first; then the paths are timed in
interleaved rounds, so that load from other processes hits them alike, and the loop / vmap
ratio is the median of the per-round ratios. The peak is measured before and in every round,
and the best is taken (the machine's rate at a quiet moment). FLOPs count the matrix products
only (forward GRU and readout, backward twice that); the share of peak is those FLOPs per
second at the best time over that peak.

    python benchmarks/train.py [--label after] [--rounds 5] [--sizes 1x50,4x50,2x100]

`--label` keeps one labelled result per library version in `train.json` (run the script
once with an older checkout's `lib` on PYTHONPATH as `--label before`); the file then holds
both, measured on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine, print_table, summary_path, write_summary
from robustreach.config import load_hyperparameters
from robustreach.devices import cpu_device_environment
from robustreach.model import network_input_size
from robustreach.train.trainer import prepare_training

os.environ.update(cpu_device_environment())  # as the command line does, before JAX starts

BATCH, STEPS, REPLICATES = 250, 100, 5


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 matmul rate on n x n matrices (GFLOP/s): NumPy on the CPU, else JAX on the device."""
    if jax.default_backend() != "cpu":
        return device_matmul_peak_gflops(4 * n, repeats)
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def device_matmul_peak_gflops(n: int, repeats: int) -> float:
    """Best full-precision fp32 matmul rate of the default JAX device (GFLOP/s)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    product = jax.jit(lambda x: jnp.matmul(x, x, precision=jax.lax.Precision.HIGHEST))
    jax.block_until_ready(product(a))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(product(a))
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def step_flops(n_conditions: int, hidden: int, n_inputs: int) -> float:
    """Matrix-product FLOPs of one training step: forward GRU (3 gates) and readout, x3 for backward."""
    per_trial_step = 2 * 3 * hidden * (n_inputs + hidden) + 2 * 2 * hidden
    return 3 * per_trial_step * n_conditions * REPLICATES * BATCH * (STEPS - 1)


def conditions_of(n_conditions: int, hidden: int) -> list:
    base = {
        "task": {"n_steps": STEPS},
        "controller": {"hidden_size": hidden},
        "train": {"n_replicates": REPLICATES, "batch_size": BATCH, "n_batches": 1000},
    }
    stds = np.linspace(0.0, 1.0, n_conditions) if n_conditions > 1 else [0.5]
    return [load_hyperparameters({**base, "perturbation": {"type": "curl", "std": float(s)}}) for s in stds]


def compiled_step(path: str, conditions: list) -> tuple | None:
    """(call(batch), compile seconds, compilations): the step of `prepare_training`, compiled;
    path "sharded" (vmapped, split over the CPU devices; None if the group is not split),
    "vmap" (vmapped, on the first device) or "loop"."""
    setup = prepare_training(conditions, "loop" if path == "loop" else "vmap")
    arrays = (setup.params, setup.opt_state, setup.conditions)
    if path == "sharded" and setup.sharding is None:
        return None
    if path == "vmap":
        arrays = jax.device_put(arrays, jax.devices()[0])

    def call(batch: int):
        return setup.run_step(*arrays, jnp.int32(batch), setup.train_key, setup.replicate_ids)

    start = time.perf_counter()
    jax.block_until_ready(call(0))
    first = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(call(1))
    return call, first - (time.perf_counter() - start), len(setup.step_traces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="after", help="name of this library version's result in train.json")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--sizes", default="1x50,4x50,2x100", help="conditions x hidden, comma-separated")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]

    peak = matmul_peak_gflops()
    paths = {}
    for n_conditions, hidden in sizes:
        conditions = conditions_of(n_conditions, hidden)
        for method in ("sharded", "vmap", "loop"):
            compiled = compiled_step(method, conditions)
            if compiled is None:
                continue
            call, compile_s, compilations = compiled
            paths[(n_conditions, hidden, method)] = {"call": call, "compile_s": compile_s, "compilations": compilations,
                                                     "flops": step_flops(n_conditions, hidden, network_input_size(conditions[0])),
                                                     "times": []}
    peaks = [peak]
    for round_index in range(args.rounds):  # interleaved: every path, and the peak, once per round
        for path in paths.values():
            start = time.perf_counter()
            jax.block_until_ready(path["call"](2 + round_index))
            path["times"].append(time.perf_counter() - start)
        peaks.append(matmul_peak_gflops(repeats=3))
    # On a shared machine the peak measured at a quiet moment is the machine's: take the best.
    peak_spread = (min(peaks), max(peaks))
    peak = max(peaks)

    rows = []
    for (n_conditions, hidden, method), path in paths.items():
        best = min(path["times"])
        loop_times = paths[(n_conditions, hidden, "loop")]["times"]
        vmap_times = paths[(n_conditions, hidden, "vmap")]["times"]
        rows.append({
            "conditions": n_conditions, "hidden": hidden, "path": method,
            "s_per_batch": best, "median_s": statistics.median(path["times"]),
            "GFLOP": path["flops"] / 1e9, "GFLOP/s": path["flops"] / best / 1e9,
            "share_of_peak": path["flops"] / best / 1e9 / peak,
            "loop/vmap": statistics.median(l / v for l, v in zip(loop_times, vmap_times)),
            "vmap/path": statistics.median(v / t for v, t in zip(vmap_times, path["times"])),
            "compile_s": path["compile_s"], "compilations": path["compilations"],
        })
    print(f"training step: batch {BATCH}, {STEPS} steps, {REPLICATES} replicates; backend {jax.default_backend()}; "
          f"matmul peak {peak:.0f} GFLOP/s (best of {len(peaks)} measurements, worst {peak_spread[0]:.0f})\n")
    print_table(rows)
    print("\nloop/vmap: median over rounds of the loop's time over the vmapped step's (> 1: vmap faster); "
          f"vmap/path: the vmapped step on one device over this path's (sharded: split over {len(jax.devices())} CPU devices)")

    previous = json.loads(summary_path("train").read_text()) if summary_path("train").exists() else {}
    results = previous.get("results", {}) if previous.get("machine", {}).get("platform") == machine()["platform"] else {}
    results[args.label] = {"cpu_devices": len(jax.devices()), "peak_gflops": peak, "peak_gflops_measured": peaks, "rounds": args.rounds, "rows": rows}
    write_summary("train", {"sizes": {"batch": BATCH, "steps": STEPS, "replicates": REPLICATES, "groups": args.sizes},
                            "results": results})


if __name__ == "__main__":
    main()

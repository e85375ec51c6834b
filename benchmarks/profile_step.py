"""Where the training step spends its time: JAX's profiler, per XLA operation, on one device.

The step of `prepare_training` (vmapped over conditions x replicates, batch 250, 100 steps) is
compiled on one CPU device, timed, then traced with `jax.profiler`; every XLA operation's time
is summed and sorted two ways: by phase (forward rollout, its backward pass, and the rest:
trial draws, loss, optimiser update), read from the operation's metadata in the optimised
HLO, and by kind (matrix products, element-wise fusions, copies / transposes / concatenations,
dynamic slices of the scan's stacked residuals). Beside it, the recurrent product alone in a
scan of the same shapes: the rate these matrix shapes reach on this machine, a ceiling for the
step's share of the peak.

    python benchmarks/profile_step.py [--sizes 2x50,1x100]

The default 2 x 50 is what each of two CPU devices runs of part 1's 4-condition group.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import tempfile
import time
from pathlib import Path

DUMP = tempfile.mkdtemp(prefix="robustreach-hlo-")
os.environ["ROBUSTREACH_CPU_DEVICES"] = "1"  # one device: its operations run one after another
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={DUMP} --xla_dump_hlo_as_text --xla_dump_hlo_pass_re=^$"
).strip()

import jax
import jax.numpy as jnp
from _common import print_table, write_summary
from jax.profiler import ProfileData
from robustreach.model import network_input_size
from train import BATCH, REPLICATES, STEPS, compiled_step, conditions_of, matmul_peak_gflops, step_flops

PHASES = ("forward", "backward", "rest")
KINDS = ("matrix products", "element-wise", "copies, transposes, concatenations", "dynamic slices")
CONTAINERS = ("while", "conditional", "call", "ThunkExecutor")  # events that enclose other events


def hlo_operations(dump: str) -> dict[str, tuple[str, str]]:
    """Operation name -> (phase, kind), from the optimised HLO of the step's module."""
    text = max(Path(dump).glob("*StepFunction*cpu_after_optimizations.txt"), key=lambda p: p.stat().st_size).read_text()
    operations = {}
    for match in re.finditer(r"^\s*%?([\w.\-]+) = (.*)$", text, re.MULTILINE):
        name, rest = match.groups()
        op_name = re.search(r'op_name="([^"]*)"', rest)
        path = op_name.group(1) if op_name else ""
        phase = "backward" if "transpose(jvp(" in path else "forward" if "jvp(" in path else "rest"
        operations[name] = (phase, operation_kind(name, rest))
    return operations


def operation_kind(name: str, hlo: str) -> str:
    if "ynn_fusion" in name or "dot" in name or " dot(" in hlo or "onednn" in name:
        return KINDS[0]
    if "dynamic" in name:
        return KINDS[3]
    if any(word in name for word in ("copy", "transpose", "concatenate", "pad")):
        return KINDS[2]
    return KINDS[1]


def profile(call, batches: int) -> collections.Counter:
    """Seconds per batch of each XLA operation, summed over `batches` traced calls."""
    trace_dir = tempfile.mkdtemp(prefix="robustreach-trace-")
    with jax.profiler.trace(trace_dir):
        for batch in range(batches):
            jax.block_until_ready(call(100 + batch))
    data = ProfileData.from_file(str(next(Path(trace_dir).rglob("*.xplane.pb"))))
    seconds = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            if "XLA" not in line.name:  # the XLA threads, not Python's
                continue
            for event in line.events:
                if event.name.startswith(CONTAINERS) or event.name.startswith("$"):
                    continue
                seconds[event.name] += event.duration_ns / 1e9 / batches
    return seconds


def recurrent_product_rate(models: int, hidden: int) -> float:
    """GFLOP/s of `h @ W_hh^T` alone (models x batch x hidden by 3 hidden), in a scan of the step's length."""
    key = jax.random.PRNGKey(0)
    weights = 0.1 * jax.random.normal(key, (models, 3 * hidden, hidden))
    hidden0 = jax.random.normal(key, (models, BATCH, hidden))

    @jax.jit
    def scan(h, w):
        def step(h, _):
            return jnp.tanh(jnp.einsum("mbh,mgh->mbg", h, w)[..., :hidden]), None

        return jax.lax.scan(step, h, None, length=STEPS)[0]

    jax.block_until_ready(scan(hidden0, weights))
    best = min(_timed(scan, hidden0, weights) for _ in range(5))
    return STEPS * models * BATCH * 3 * hidden * hidden * 2 / best / 1e9


def _timed(function, *args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2x50", help="conditions x hidden, comma-separated")
    parser.add_argument("--batches", type=int, default=2, help="batches traced per size")
    args = parser.parse_args()
    peak = matmul_peak_gflops()
    summaries, rows = {}, []
    for size in args.sizes.split(","):
        n_conditions, hidden = (int(v) for v in size.split("x"))
        conditions = conditions_of(n_conditions, hidden)
        call, compile_s, _ = compiled_step("vmap", conditions)
        step_s = min(_timed(call, 2 + i) for i in range(3))
        seconds = profile(call, args.batches)
        operations = hlo_operations(DUMP)
        by = collections.Counter()
        for name, s in seconds.items():
            phase, kind = operations.get(name, ("rest", operation_kind(name, "")))
            by[phase, kind] += s
        total = sum(by.values())
        flops = step_flops(n_conditions, hidden, network_input_size(conditions[0]))
        product_s = sum(s for (_, kind), s in by.items() if kind == KINDS[0])
        ceiling = recurrent_product_rate(n_conditions * REPLICATES, hidden)
        for phase in PHASES:
            for kind in KINDS:
                if by[phase, kind] > 0:
                    rows.append({"size": size, "phase": phase, "kind": kind, "ms_per_batch": 1e3 * by[phase, kind],
                                 "share": by[phase, kind] / total})
        summaries[size] = {
            "step_s": step_s, "compile_s": compile_s, "operations_s": total, "GFLOP": flops / 1e9,
            "step_share_of_peak": flops / step_s / 1e9 / peak,
            "products_GFLOP_per_s": flops / product_s / 1e9,
            "recurrent_product_alone_GFLOP_per_s": ceiling, "recurrent_product_alone_share_of_peak": ceiling / peak,
            "by_phase_and_kind_s": {f"{p}/{k}": s for (p, k), s in by.items()},
            "slowest_operations_s": dict(seconds.most_common(12)),
        }
    print(f"training step on one CPU device: batch {BATCH}, {STEPS} steps, {REPLICATES} replicates; "
          f"matmul peak {peak:.0f} GFLOP/s\n")
    print_table(rows)
    print()
    print_table([{"size": size, "step s": s["step_s"], "profiled s": s["operations_s"],
                  "step share of peak": s["step_share_of_peak"], "products GFLOP/s": s["products_GFLOP_per_s"],
                  "h@W alone GFLOP/s": s["recurrent_product_alone_GFLOP_per_s"],
                  "h@W alone share of peak": s["recurrent_product_alone_share_of_peak"]} for size, s in summaries.items()])
    print("\nproducts GFLOP/s: the step's matmul FLOPs over the time its matrix products take; "
          "h@W alone: the recurrent product by itself in a scan of the same shapes (a ceiling for those shapes)")
    write_summary("profile_step", {"peak_gflops": peak, "sizes": summaries})


if __name__ == "__main__":
    main()

"""Fixed-point finder on a 100-unit random GRU: throughput, and time to q < 1e-12 in float64.

The GRU (`eqx.nn.GRUCell`, 9 inputs, 100 units, key 0) has its recurrent weights scaled by
3.5 (default 3.5, `--gain`). At Equinox's default scale the network has one fast stable
point (leading |lambda| 0.65); at 3.5 it behaves more like a trained network: two stable points
with 6-9 slow modes each (tau > 10 dt) and a saddle between them. Input: one fixed random
vector; starts: N(0, 0.5^2) per unit, clipped to the GRU's box (-1, 1), which also bounds the
search.

For 1,000 and 10,000 starting states it reports
- throughput: Adam point-steps per second with every point running (compiled, after a
  warm-up), Levenberg-Marquardt point-iterations per second; compared with the ~2.5 million
  point-steps/s reported for the field's JAX finder (2019, hardware unstated);
- first-order only (Adam to q < 1e-12 in float32, capped) versus Adam to q < 1e-3 then
  Levenberg-Marquardt to q < 1e-12: wall time (compiles included), iterations, and how many
  points have q < 1e-12 when re-evaluated in float64 at the float32 point; then a float64
  polish (3 Levenberg-Marquardt iterations) and the count after it.
q = 1/2 ||F(h, u) - h||^2 (sum over units). Points that do not get there are reported as such.

    python benchmarks/fixed_points.py [--sizes 1000 10000] [--first-order-cap 2000] [--gain 3.5]
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _common import print_table, write_summary
from robustreach.fixed_points import (
    CellStep,
    filter_fixed_points,
    find_fixed_points,
    linearise,
    points_table,
    verify_float64,
)

FIELD_RATE = 2.5e6  # point-steps/s, Sussillo's JAX finder: 10,000 points x ~200 Adam steps/s
TOL = 1e-12
BOUNDS = (-1.0, 1.0)


def build(gain: float):
    cell = eqx.nn.GRUCell(9, 100, key=jax.random.PRNGKey(0))
    cell = eqx.tree_at(lambda c: c.weight_hh, cell, cell.weight_hh * gain)
    return CellStep(cell), 0.5 * jax.random.normal(jax.random.PRNGKey(1), (9,))


def starts(n: int):
    return jnp.clip(0.5 * jax.random.normal(jax.random.PRNGKey(2), (n, 100)), *BOUNDS)


def timed(function):
    start = time.perf_counter()
    out = jax.block_until_ready(function())
    return out, time.perf_counter() - start


def percentiles(x) -> str:
    x = np.asarray(x)
    return "-" if x.size == 0 else "/".join(f"{v:.0f}" for v in np.percentile(x, [50, 90, 100]))


def throughput(step, u, h0, n_steps: int = 100) -> tuple[float, float]:
    """Point-steps/s of Adam and point-iterations/s of Levenberg-Marquardt, all points running."""
    adam = lambda: find_fixed_points(step, h0, u, tol_q=1e-30, max_first_order=n_steps, max_newton=0,
                                     chunk_first_order=n_steps, bounds=BOUNDS, progress=False)
    lm = lambda: find_fixed_points(step, h0, u, tol_q=1e-30, newton_from_q=1e3, max_first_order=0,
                                   max_newton=3, chunk_newton=3, max_rejects=100, bounds=BOUNDS, progress=False)
    rates = []
    for run, count in ((adam, "n_first_order"), (lm, "n_newton")):
        run()  # compile
        best = min(timed(run)[1] for _ in range(2))
        rates.append(float(np.sum(getattr(run(), count))) / best)
    return rates[0], rates[1]


def solve(step, u, h0, label: str, **kwargs) -> dict:
    result, seconds = timed(lambda: find_fixed_points(step, h0, u, tol_q=TOL, bounds=BOUNDS, progress=False,
                                                      **kwargs))
    checked, verify_s = timed(lambda: verify_float64(step, result, tol_q=TOL))
    polished, polish_s = timed(lambda: verify_float64(step, result, tol_q=TOL, polish_iters=3, bounds=BOUNDS))
    ok = checked.converged
    n = len(result)
    return {
        "method": label, "n": n, "wall_s": seconds,
        "float32_converged": int(np.sum(np.asarray(result.converged))),
        "verified_f64": int(ok.sum()), "verified_fraction": float(ok.mean()),
        "adam_iters_p50_p90_max": percentiles(np.asarray(result.n_first_order)[ok]),
        "lm_iters_p50_p90_max": percentiles(np.asarray(result.n_newton)[ok]),
        "verify_s": verify_s, "after_f64_polish": int(polished.converged.sum()), "polish_s": polish_s,
        "_result": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--first-order-cap", type=int, default=2000)
    parser.add_argument("--gain", type=float, default=3.5)
    args = parser.parse_args()
    step, u = build(args.gain)

    rate_rows, solve_rows = [], []
    for n in args.sizes:
        h0 = starts(n)
        adam_rate, lm_rate = throughput(step, u, h0)
        rate_rows.append({"n": n, "adam_point_steps_per_s": adam_rate, "lm_point_iters_per_s": lm_rate,
                              "adam_vs_field": adam_rate / FIELD_RATE})
        solve_rows.append(solve(step, u, h0, "first order only", max_newton=0,
                                max_first_order=args.first_order_cap))
        solve_rows.append(solve(step, u, h0, "Adam + Levenberg-Marquardt"))

    print(f"Throughput (GRU 100 units, recurrent gain {args.gain}; field's JAX finder: {FIELD_RATE:.1e}/s)")
    print_table(rate_rows)
    print(f"\nTo q < {TOL:g} (float32 search, checked in float64; first-order cap {args.first_order_cap})")
    print_table([{k: v for k, v in row.items() if not k.startswith("_")} for row in solve_rows])

    # What was found: distinct fixed points of the largest run with polishing, and their labels.
    best = solve_rows[-1]["_result"]
    distinct = filter_fixed_points(best, dedup_tol=1e-3)
    table = points_table(linearise(step, distinct.result.h, distinct.result.u), dt=0.05, q=distinct.result.q)
    table["n_starts"] = distinct.n_merged
    print(f"\nDistinct fixed points ({len(distinct.index)}) from {len(best)} starts:")
    print(table[["q", "stability", "n_unstable", "n_rotational_pairs", "n_slow", "lead_abs", "lead_tau",
                 "n_starts"]].to_string(index=False))

    write_summary("fixed_points", {
        "setup": {"hidden": 100, "inputs": 9, "recurrent_gain": args.gain, "start_std": 0.5, "bounds": list(BOUNDS),
                      "tol_q": TOL, "q_convention": "1/2 ||F(h,u) - h||^2 (sum over units)",
                      "first_order_cap": args.first_order_cap, "field_rate_point_steps_per_s": FIELD_RATE},
        "throughput": rate_rows,
        "solve": [{k: v for k, v in row.items() if not k.startswith("_")} for row in solve_rows],
        "fixed_points": table.assign(stability=table["stability"].astype(str)).to_dict(orient="records"),
    })


if __name__ == "__main__":
    main()

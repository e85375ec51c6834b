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

Continuation (`--parts continuation`): one branch of the same GRU, followed from a stable
fixed point at the input `u` along the straight path to `u + d` (`d` a fixed random vector of
norm `--path-length`), in float64 with `continue_branches`: Newton iterations per unit of
arclength and seconds per branch (compiled; alone and as one of 8 branches vmapped together).
Next to it, re-solving at each of as many inputs as the branch has points (the same `s`
values): the finder (Adam, then Levenberg-Marquardt, to q < 1e-10 in float32) from the branch's
starting point at every input at once, then a float64 polish, and the same from 32 noisy
starts per input, as the goal sweep does; and whether each re-solved point is the branch's.

    python benchmarks/fixed_points.py [--parts finder continuation] [--sizes 1000 10000]
        [--first-order-cap 2000] [--gain 3.5] [--path-length 1.0]
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _common import best_time, print_table, write_summary
from robustreach.fixed_points import (
    CellStep,
    filter_fixed_points,
    find_fixed_points,
    linearise,
    points_table,
    verify_float64,
)
from robustreach.fixed_points.continuation import continue_branches

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


def continuation_rows(step, u, path_length: float) -> list[dict]:
    """Continuing one branch against re-solving at as many sampled inputs (see the docstring)."""
    d = jax.random.normal(jax.random.PRNGKey(3), u.shape)
    u_end = u + path_length * d / jnp.linalg.norm(d)
    found = find_fixed_points(step, starts(64), u, tol_q=1e-10, bounds=BOUNDS, progress=False)
    polished = verify_float64(step, found, tol_q=1e-20, polish_iters=5)
    lin = linearise(step, polished.h, polished.u)
    stable = np.flatnonzero(polished.converged & (np.abs(lin.eigvals[:, 0]) < 1))
    h_start = polished.h[stable[0]]
    knots = np.stack([np.asarray(u, np.float64), np.asarray(u_end, np.float64)])

    run = lambda n: continue_branches(step, np.repeat(h_start[None], n, 0), knots)
    branches = run(1)  # compiles
    one_s = best_time(lambda: run(1).h, repeats=2)
    eight_s = best_time(lambda: run(8).h, repeats=2) / 8
    n_points = int(branches.n_points[0])
    h_branch, s, _ = branches.points(0)
    inputs = (1 - s[:, None]) * knots[0] + s[:, None] * knots[1]
    rows = [{
        "method": "continuation (float64)", "inputs": n_points, "status": str(branches.status[0]),
        "arclength": float(branches.arclength[0]), "newton_iters": int(branches.n_newton[0]),
        "newton_per_arclength": float(branches.n_newton[0] / branches.arclength[0]),
        "s_per_branch": one_s, "s_per_branch_of_8": eight_s, "iters_per_input": branches.n_newton[0] / n_points,
        "on_branch": n_points, "max_q_f64": float(np.nanmax(branches.q)),
    }]
    for label, n_starts, noise in (("re-solve from the branch start", 1, 0.0), ("re-solve, 32 noisy starts", 32, 0.1)):
        h0 = np.repeat(h_start[None], n_points * n_starts, 0).astype(np.float32)
        h0 = np.clip(h0 + noise * np.asarray(jax.random.normal(jax.random.PRNGKey(4), h0.shape)), *BOUNDS)
        u_rows = np.repeat(inputs, n_starts, 0).astype(np.float32)

        def resolve():
            result = find_fixed_points(step, h0, u_rows, tol_q=1e-10, bounds=BOUNDS, progress=False)
            return result, verify_float64(step, result, tol_q=1e-20, polish_iters=3, bounds=BOUNDS)

        resolve()  # compiles
        seconds = best_time(lambda: resolve()[1].h, repeats=2)
        result, checked = resolve()
        distance = np.linalg.norm(checked.h.reshape(n_points, n_starts, -1) - h_branch[:, None], axis=-1).min(axis=1)
        iters = np.asarray(result.n_first_order) + np.asarray(result.n_newton) + 3
        rows.append({
            "method": label, "inputs": n_points, "status": "-", "arclength": float(branches.arclength[0]),
            "newton_iters": int(np.sum(np.asarray(result.n_newton)) + 3 * len(h0)),
            "newton_per_arclength": float((np.sum(np.asarray(result.n_newton)) + 3 * len(h0)) / branches.arclength[0]),
            "s_per_branch": seconds, "s_per_branch_of_8": float("nan"),
            "iters_per_input": float(iters.sum() / n_points),
            "on_branch": int(np.sum(distance < 1e-6)), "max_q_f64": float(np.max(checked.q)),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=["finder", "continuation"], default=["finder", "continuation"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--first-order-cap", type=int, default=2000)
    parser.add_argument("--gain", type=float, default=3.5)
    parser.add_argument("--path-length", type=float, default=1.0)
    args = parser.parse_args()
    step, u = build(args.gain)
    summary = {"setup": {"hidden": 100, "inputs": 9, "recurrent_gain": args.gain, "start_std": 0.5,
                         "bounds": list(BOUNDS), "tol_q": TOL, "q_convention": "1/2 ||F(h,u) - h||^2 (sum over units)",
                         "first_order_cap": args.first_order_cap, "field_rate_point_steps_per_s": FIELD_RATE,
                         "path_length": args.path_length}}
    if "finder" in args.parts:
        summary.update(finder(step, u, args))
    if "continuation" in args.parts:
        rows = continuation_rows(step, u, args.path_length)
        print(f"\nContinuing one branch over an input path of length {args.path_length:g} against re-solving at "
              "as many inputs (iterations: Newton for continuation; Adam + Levenberg-Marquardt + 3 float64 polish "
              "steps per start for re-solving)")
        print_table(rows)
        summary["continuation"] = rows
    # Both parts: fixed_points.json; one part alone keeps the other's summary file intact.
    write_summary("fixed_points" if len(set(args.parts)) == 2 else f"fixed_points_{args.parts[0]}", summary)


def finder(step, u, args) -> dict:
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

    return {
        "throughput": rate_rows,
        "solve": [{k: v for k, v in row.items() if not k.startswith("_")} for row in solve_rows],
        "fixed_points": table.assign(stability=table["stability"].astype(str)).to_dict(orient="records"),
    }


if __name__ == "__main__":
    main()

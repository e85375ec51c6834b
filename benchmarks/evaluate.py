"""Cost of an evaluation and of its analysis at the reference sizes.

An ensemble (default 5 replicates, GRU hidden 50, 100 steps) on 24 centre-out reaches under
curl fields at 5 amplitudes (2 noise realisations): `evaluate` (every condition in one
compiled call, vmapped over conditions) against a Python loop that calls the compiled
single-condition rollout once per condition, then the per-trial measures table and each
figure builder on two such evaluations. Prints a table and writes `benchmarks/evaluate.json`.

    python benchmarks/evaluate.py [--replicates 5] [--hidden 50] [--steps 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import numpy as np
from _common import best_time, print_table, write_summary
from robustreach.config import load_hyperparameters
from robustreach.evaluate import evaluate, load_spec, prepare_evaluation
from robustreach.measures import concat_tables, measures_table
from robustreach.model import build_ensemble, simulate_replicates
from robustreach.plots.distributions import measure_distributions
from robustreach.plots.profiles import profiles
from robustreach.plots.trajectories import aligned_trajectories


def wall(function) -> float:
    start = time.perf_counter()
    jax.block_until_ready(function())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--directions", type=int, default=24)
    parser.add_argument("--realisations", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    hp = load_hyperparameters({"controller": {"hidden_size": args.hidden}, "task": {"n_steps": args.steps},
                               "train": {"n_replicates": args.replicates}})
    model = build_ensemble(hp, jax.random.PRNGKey(0))
    amplitudes = [0.0, 0.5, 1.0, 2.0, 4.0]
    spec = load_spec({"perturbation": "curl", "amplitudes": amplitudes, "n_directions": args.directions,
                      "n_realisations": args.realisations})
    trial_steps = len(amplitudes) * args.replicates * args.realisations * args.directions * (args.steps - 1)

    first_s = wall(lambda: evaluate(model, hp, spec).trajectory.pos)
    evaluate_s = best_time(lambda: evaluate(model, hp, spec).trajectory.pos, repeats=args.repeats)

    # Reference: one compiled single-condition rollout, called in a loop over conditions.
    prepared = prepare_evaluation(model, hp, spec)  # the same trials, noise and keys as `evaluate`
    trials, keys, noisy = prepared.trials, prepared.keys, prepared.model
    one_condition = eqx.filter_jit(
        lambda m, t, k: jax.vmap(lambda key: simulate_replicates(m, t, key), out_axes=1)(k)
    )
    per_condition = [jax.tree_util.tree_map(lambda x, i=i: x[i], trials) for i in range(len(amplitudes))]
    loop_first_s = wall(lambda: [one_condition(noisy, t, keys).pos for t in per_condition])
    loop_s = best_time(lambda: [one_condition(noisy, t, keys).pos for t in per_condition], repeats=args.repeats)

    evaluations = {"a": evaluate(model, hp, spec), "b": evaluate(build_ensemble(hp, jax.random.PRNGKey(1)), hp, spec)}
    table_s = best_time(lambda: concat_tables([measures_table(ev, k) for k, ev in evaluations.items()]), repeats=args.repeats)
    table = concat_tables([measures_table(ev, k) for k, ev in evaluations.items()])
    figures = {
        "aligned_trajectories (2 models)": lambda: aligned_trajectories(evaluations),
        "profiles (2 models, 4 rows)": lambda: profiles(evaluations),
        "measure_distributions (violins)": lambda: measure_distributions(table, "max_lateral_deviation"),
    }
    figure_s = {name: best_time(build, repeats=args.repeats) for name, build in figures.items()}

    rows = [
        {"step": "evaluate, first call (compile + run)", "seconds": first_s, "trial_steps_per_s": trial_steps / first_s},
        {"step": "evaluate (one call, vmap over 5 conditions)", "seconds": evaluate_s, "trial_steps_per_s": trial_steps / evaluate_s},
        {"step": "loop of 5 single-condition calls, first", "seconds": loop_first_s, "trial_steps_per_s": trial_steps / loop_first_s},
        {"step": "loop of 5 single-condition calls", "seconds": loop_s, "trial_steps_per_s": trial_steps / loop_s},
        {"step": f"measures_table x2 ({len(table)} rows)", "seconds": table_s, "trial_steps_per_s": None},
        *({"step": name, "seconds": s, "trial_steps_per_s": None} for name, s in figure_s.items()),
    ]
    print(f"evaluate: {args.replicates} replicates, hidden {args.hidden}, {args.steps} steps, "
          f"{args.directions} directions x {len(amplitudes)} curl amplitudes x {args.realisations} realisations\n")
    print_table(rows)
    print(f"\nvmap over conditions / loop: {loop_s / evaluate_s:.2f}x")
    write_summary("evaluate", {
        "sizes": {"replicates": args.replicates, "hidden": args.hidden, "steps": args.steps, "directions": args.directions,
                  "conditions": len(amplitudes), "realisations": args.realisations},
        "rows": rows, "speedup_vmap_vs_loop": loop_s / evaluate_s,
        "trajectory_bytes": int(sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(evaluations["a"].trajectory))),
    })


if __name__ == "__main__":
    main()

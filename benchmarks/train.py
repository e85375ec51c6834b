"""Training-step throughput: one vmapped step over replicates x conditions vs a Python loop.

Reference sizes: 5 replicates, 3 conditions (curl std 0, 0.5, 1), batch 250, 100 steps,
hidden 50. Both paths run in this one process; the table gives trial-steps per second,
compile time (first call minus a steady-state call) and the ratio.

    python benchmarks/train.py [--replicates 5] [--conditions 3] [--batch 250] [--batches 3]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
from _common import print_table, write_summary
from robustreach.config import load_hyperparameters
from robustreach.train.trainer import prepare_training


def time_path(method: str, conditions, n_batches: int) -> dict:
    setup = prepare_training(conditions, method)
    params, opt_state = setup.params, setup.opt_state

    def one(batch: int):
        return setup.run_step(params, opt_state, setup.conditions, jnp.int32(batch), setup.train_key, setup.replicate_ids)

    start = time.perf_counter()
    jax.block_until_ready(one(0))
    first = time.perf_counter() - start
    times = []
    for batch in range(1, n_batches + 1):
        start = time.perf_counter()
        jax.block_until_ready(one(batch))
        times.append(time.perf_counter() - start)
    per_batch = min(times)
    hp = setup.hyperparameters[0]
    trial_steps = len(conditions) * hp.train.n_replicates * hp.train.batch_size * (hp.task.n_steps - 1)
    return {
        "path": method,
        "s_per_batch": per_batch,
        "trial_steps_per_s": trial_steps / per_batch,
        "compile_s": first - per_batch,
        "compilations": len(setup.step_traces),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--conditions", type=int, default=3)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--batches", type=int, default=3, help="timed batches per path (best is reported)")
    args = parser.parse_args()

    stds = [float(s) for s in jnp.linspace(0.0, 1.0, args.conditions)] if args.conditions > 1 else [0.5]
    base = {
        "task": {"n_steps": args.steps},
        "controller": {"hidden_size": args.hidden},
        "train": {"n_replicates": args.replicates, "batch_size": args.batch, "n_batches": 1000},
    }
    conditions = [load_hyperparameters({**base, "perturbation": {"type": "curl", "std": std}}) for std in stds]
    rows = [time_path("vmap", conditions, args.batches), time_path("loop", conditions, args.batches)]
    ratio = rows[1]["s_per_batch"] / rows[0]["s_per_batch"]
    peer_row = {**time_path("vmap", conditions[-1:], args.batches), "path": "vmap, 1 condition (peer's setup)"}
    print(f"training step: {args.conditions} conditions x {args.replicates} replicates, batch {args.batch}, "
          f"{args.steps} steps, hidden {args.hidden}, backend {jax.default_backend()}\n")
    print_table([*rows, peer_row])
    print(f"\nloop / vmap time per batch: {ratio:.2f}x  (vmapped path {'not slower' if ratio >= 1 else 'SLOWER'})")
    print("peer (feedbax, model spec): 0.44 s per batch for 5 replicates x 1 condition on a 2-core CPU")
    write_summary("train", {"sizes": vars(args), "rows": [*rows, peer_row], "loop_over_vmap": ratio,
                            "peer_s_per_batch_5_replicates": 0.44})


if __name__ == "__main__":
    main()

"""Does training work? A small CPU run of an unperturbed and a curl-trained ensemble.

Trains both conditions in one vmapped run, then measures on a 24-direction centre-out set:
the unperturbed model's mean endpoint error (target: below 0.02 workspace units) and both
models' mean maximum lateral deviation under a curl field of amplitude 2 (the curl-trained
model should deviate less). Prints a table; writes `benchmarks/reaching.json`.

    python benchmarks/reaching.py [--batches 1500] [--hidden 50] [--batch 128]
"""

from __future__ import annotations

import argparse
import time

import jax
from _common import print_table, write_summary
from robustreach.alignment import align
from robustreach.config import load_hyperparameters
from robustreach.measures import endpoint_error, max_lateral_deviation
from robustreach.model import simulate_replicates
from robustreach.tasks import centre_out_trials, with_perturbation
from robustreach.train import train_conditions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=1500)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--curl-std", type=float, default=1.0)
    args = parser.parse_args()

    base = {
        "controller": {"hidden_size": args.hidden},
        "train": {"n_replicates": args.replicates, "batch_size": args.batch, "n_batches": args.batches,
                  "constant_lr_batches": args.batches // 2, "validation_every": 100},
    }
    conditions = {
        "unperturbed": load_hyperparameters({**base, "perturbation": {"type": "curl", "std": 0.0}}),
        f"curl std {args.curl_std:g}": load_hyperparameters({**base, "perturbation": {"type": "curl", "std": args.curl_std}}),
    }
    start = time.perf_counter()
    result = train_conditions(list(conditions.values()))
    train_s = time.perf_counter() - start

    hp = next(iter(conditions.values()))
    trials = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=24)
    rows = []
    for (label, _), trained in zip(conditions.items(), result.conditions):
        row = {"model": label}
        for amplitude in (0.0, 2.0):
            test = with_perturbation(trials, "curl", amplitude)
            trajectory = simulate_replicates(trained.model, test, jax.random.PRNGKey(1))
            aligned = align(trajectory, test.init_pos, test.reach_angle)
            row[f"endpoint_error_curl{amplitude:g}"] = float(endpoint_error(trajectory.pos, test.target_pos).mean())
            row[f"max_lateral_dev_curl{amplitude:g}"] = float(max_lateral_deviation(aligned.pos).mean())
        rows.append(row)
    print(f"\ntrained {args.batches} batches of {args.batch} trials, {args.replicates} replicates x 2 conditions "
          f"in {train_s:.0f} s\n")
    print_table(rows)
    unperturbed, curl = rows
    checks = {
        "unperturbed endpoint error < 0.02": unperturbed["endpoint_error_curl0"] < 0.02,
        "curl-trained deviates less under curl 2": curl["max_lateral_dev_curl2"] < unperturbed["max_lateral_dev_curl2"],
    }
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    write_summary("reaching", {"settings": vars(args), "train_seconds": train_s, "rows": rows, "checks": checks})


if __name__ == "__main__":
    main()

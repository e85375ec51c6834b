"""Does a controller learn each plant? Unperturbed training of the point mass and of the
two-link arm, side by side, each in its own workspace.

The arm (Li & Todorov's parameters, joint torques, hand feedback) reaches in a 30 cm square in
front of the shoulder with a 10 ms step; the point mass in the reference workspace. After
training, both make 24-direction centre-out reaches (a quarter of the workspace's side) and
the table reports the mean endpoint error (goal: below 0.02, in each plant's units: workspace
units for the point mass, metres for the arm), the error relative to the reach length, and
the training time. Prints a table; writes `benchmarks/plants.json`.

    python benchmarks/plants.py [--batches 1000] [--hidden 50] [--batch 64]
"""

from __future__ import annotations

import argparse
import time

import jax
from _common import print_table, write_summary
from robustreach.config import load_hyperparameters
from robustreach.measures import endpoint_error
from robustreach.model import simulate_replicates
from robustreach.tasks import centre_out_trials, default_reach_length
from robustreach.train import train_conditions

PLANTS = {
    "point_mass": {},
    # Hand feedback noise of 1 mm (the point mass's 0.025 workspace units would be 2.5 cm here).
    "two_link_arm": {
        "plant": {"type": "two_link_arm", "dt": 0.01},
        "task": {"workspace": [[-0.15, 0.25], [0.15, 0.55]]},
        "feedback": {"noise_std": 0.001},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--plants", nargs="+", default=list(PLANTS), choices=list(PLANTS))
    args = parser.parse_args()

    train = {"n_replicates": args.replicates, "batch_size": args.batch, "n_batches": args.batches,
             "constant_lr_batches": 0.5, "validation_every": 100}
    rows = []
    for name in args.plants:
        hp = load_hyperparameters({**PLANTS[name], "controller": {"hidden_size": args.hidden}, "train": train})
        start = time.perf_counter()
        trained = train_conditions([hp]).conditions[0]
        train_s = time.perf_counter() - start
        trials = centre_out_trials(hp.task.n_steps, hp.task.workspace, n_directions=24,
                                   n_observed=trained.model.plant.n_observed)
        trajectory = simulate_replicates(trained.model, trials, jax.random.PRNGKey(1))
        error = endpoint_error(trajectory.pos, trials.target_pos)
        rows.append({
            "plant": name,
            "dt_s": hp.plant.dt,
            "reach_length": default_reach_length(hp.task.workspace),
            "endpoint_error": float(error.mean()),
            "endpoint_error_worst_replicate": float(error.mean(axis=tuple(range(1, error.ndim))).max()),
            "relative_error": float(error.mean()) / default_reach_length(hp.task.workspace),
            "train_s": train_s,
        })
    print(f"\ntrained {args.batches} batches of {args.batch} trials, {args.replicates} replicates, hidden {args.hidden}\n")
    print_table(rows)
    checks = {f"{row['plant']} endpoint error < 0.02": row["endpoint_error"] < 0.02 for row in rows}
    for check, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {check}")
    write_summary("plants", {"settings": vars(args), "rows": rows, "checks": checks})


if __name__ == "__main__":
    main()

"""Throughput of the compiled closed-loop rollout against a NumPy implementation.

Reference sizes: batch 250, 100 steps, GRU hidden 50. Reports trial-steps per second for
both, their ratio, and the share of the machine's peak fp32 rate (default 280 GFLOP/s, the
2-core CPU of the model spec; pass --peak-gflops for other machines) that the rollout reaches.

    python benchmarks/rollout.py [--batch 250] [--steps 100] [--hidden 50]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from _common import best_time, print_table, write_summary
from robustreach.config import load_hyperparameters
from robustreach.model import build_model, network_input_size, simulate
from robustreach.tasks import TrialSpec, training_trials


def numpy_rollout(params: dict[str, np.ndarray], trials, hp, rng: np.random.Generator) -> np.ndarray:
    """The model's equations in NumPy, batched over trials, looping over time (delay 0)."""
    n, steps, hidden_size = trials["init_pos"].shape[0], hp.task.n_steps, hp.controller.hidden_size
    pos, vel = trials["init_pos"].copy(), np.zeros((n, 2), np.float32)
    h = np.zeros((n, hidden_size), np.float32)
    fb_std, motor_std, dt, mass = hp.feedback.noise_std, hp.motor.noise_std, hp.plant.dt, hp.plant.mass
    w_ih, w_hh, b, b_n = params["weight_ih"], params["weight_hh"], params["bias"], params["bias_n"]
    positions = [pos]
    for _ in range(steps - 1):
        feedback = np.concatenate([pos, vel], axis=1) + fb_std * rng.standard_normal((n, 4), np.float32)
        x = np.concatenate([trials["target_pos"], np.zeros((n, 2), np.float32), feedback], axis=1)
        igates = x @ w_ih.T + b  # equinox GRUCell equations
        hgates = h @ w_hh.T
        r = 1 / (1 + np.exp(-(igates[:, :hidden_size] + hgates[:, :hidden_size])))
        z = 1 / (1 + np.exp(-(igates[:, hidden_size:2 * hidden_size] + hgates[:, hidden_size:2 * hidden_size])))
        candidate = np.tanh(igates[:, 2 * hidden_size:] + r * (hgates[:, 2 * hidden_size:] + b_n))
        h = (1 - z) * candidate + z * h
        u = h @ params["readout_weight"].T + params["readout_bias"]
        u = u + motor_std * u * rng.standard_normal(u.shape, np.float32) + 1.8 * motor_std * rng.standard_normal(u.shape, np.float32)
        external = trials["curl"][:, None] * np.stack([-vel[:, 1], vel[:, 0]], axis=1)
        pos, vel = pos + dt * vel, vel + dt * (u + external) / mass
        positions.append(pos)
    return np.stack(positions, axis=1)


def flops_per_trial_step(n_inputs: int, hidden: int) -> int:
    """Multiply-adds of the GRU (3 gates, input and recurrent) and the readout, times 2."""
    return 2 * (3 * hidden * (n_inputs + hidden) + 2 * hidden)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--peak-gflops", type=float, default=280.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    hp = load_hyperparameters({"task": {"n_steps": args.steps}, "controller": {"hidden_size": args.hidden}, "perturbation": {"type": "curl", "std": 1.0}})
    model = build_model(hp, jax.random.PRNGKey(0))
    trials = training_trials(TrialSpec.from_hyperparameters(hp), jax.random.PRNGKey(1), args.batch)
    compiled = jax.jit(simulate)
    key = jax.random.PRNGKey(2)
    compile_s = best_time(lambda: compiled(model, trials, key), repeats=1)
    jax_s = best_time(lambda: compiled(model, trials, key).pos, repeats=args.repeats)

    cell, readout = model.controller.cell, model.controller.readout
    params = {name: np.asarray(getattr(cell, name)) for name in ("weight_ih", "weight_hh", "bias", "bias_n")}
    params.update(readout_weight=np.asarray(readout.weight), readout_bias=np.asarray(readout.bias))
    host_trials = {name: np.asarray(getattr(trials, name)) for name in ("init_pos", "target_pos")}
    host_trials["curl"] = np.asarray(trials.perturbations[0].amplitude)
    rng = np.random.default_rng(0)
    numpy_s = best_time(lambda: numpy_rollout(params, host_trials, hp, rng), repeats=args.repeats)

    trial_steps = args.batch * (args.steps - 1)
    flops = flops_per_trial_step(network_input_size(hp), args.hidden) * trial_steps
    rows = [
        {"implementation": "jax (jit, lax.scan + vmap)", "seconds": jax_s, "trial_steps_per_s": trial_steps / jax_s, "gflop_per_s": flops / jax_s / 1e9},
        {"implementation": "numpy (batched, time loop)", "seconds": numpy_s, "trial_steps_per_s": trial_steps / numpy_s, "gflop_per_s": flops / numpy_s / 1e9},
    ]
    print(f"rollout: batch {args.batch}, {args.steps} steps, hidden {args.hidden}; compile {compile_s:.2f} s\n")
    print_table(rows)
    share = flops / jax_s / 1e9 / args.peak_gflops
    print(f"\njax / numpy speed-up: {numpy_s / jax_s:.2f}x;  share of {args.peak_gflops:g} GFLOP/s peak: {100 * share:.1f}%")
    write_summary("rollout", {
        "sizes": {"batch": args.batch, "steps": args.steps, "hidden": args.hidden},
        "compile_s": compile_s, "rows": rows, "speedup_vs_numpy": numpy_s / jax_s,
        "peak_gflops_assumed": args.peak_gflops, "share_of_peak": share,
    })


if __name__ == "__main__":
    main()

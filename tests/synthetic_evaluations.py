"""Hand-made `Evaluation`s with known geometry, for testing alignment, measures and plots.

Every trial reaches straight from its start along its direction `d` with a lateral bump:
`pos_t = start + s_t d + A sin(pi t / (T - 1)) perp(d)`, `s_t = L t / (T - 1)`, where the
bump height `A = 0.1 * amplitude * (replicate + 1) + 0.01 * realisation` is known in closed
form, so that tests compare against it rather than against the code under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
from robustreach.evaluate import Evaluation
from robustreach.model import Trajectory
from robustreach.tasks import centre_out_trials, with_perturbation

DT = 0.05


def bump_height(amplitude: float, replicate: int, realisation: int) -> float:
    return 0.1 * amplitude * (replicate + 1) + 0.01 * realisation


def synthetic_evaluation(
    amplitudes=(0.0, 1.0, 2.0), n_replicates=3, n_realisations=2, n_directions=4, n_steps=21, reach_length=0.5
) -> Evaluation:
    base = centre_out_trials(n_steps, [[-1.0, -1.0], [1.0, 1.0]], n_directions=n_directions, reach_length=reach_length)
    trials = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[with_perturbation(base, "curl", a) for a in amplitudes])
    angles = 2 * np.pi * np.arange(n_directions) / n_directions
    d = np.stack([np.cos(angles), np.sin(angles)], -1)  # (trial, 2)
    perp = np.stack([-np.sin(angles), np.cos(angles)], -1)
    t = np.arange(n_steps)
    s = reach_length * t / (n_steps - 1)
    bump = np.sin(np.pi * t / (n_steps - 1))
    heights = np.array(
        [[[bump_height(a, r, k) for k in range(n_realisations)] for r in range(n_replicates)] for a in amplitudes]
    )  # (cond, rep, real)
    start = np.asarray(base.init_pos)  # (trial, 2)
    pos = (
        start[None, None, None, :, None, :]
        + s[:, None] * d[:, None, :]  # (trial, time, 2)
        + heights[..., None, None, None] * bump[:, None] * perp[:, None, :]
    )
    vel = np.gradient(pos, DT, axis=-2)
    force = np.broadcast_to(2.0 * d[:, None, :] + 0.5 * perp[:, None, :], pos.shape).copy()
    force[..., 0, :] = 0.0
    shape = pos.shape[:-1]
    trajectory = Trajectory(
        pos=jnp.asarray(pos),
        vel=jnp.asarray(vel),
        command=jnp.asarray(force),
        force=jnp.asarray(force),
        external_force=jnp.zeros(pos.shape),
        feedback=jnp.zeros((*shape, 4)),
        network_input=jnp.zeros((*shape, 8)),
        hidden=jnp.zeros((*shape, 3)),
    )
    return Evaluation(
        trajectory=trajectory,
        trials=trials,
        impulse_angle=None,
        conditions=tuple({"amplitude": float(a)} for a in amplitudes),
        replicates=tuple(range(n_replicates)),
        params={"trial_set": "centre_out", "perturbation": "curl", "amplitudes": list(amplitudes), "impulse": None},
        dt=DT,
    )

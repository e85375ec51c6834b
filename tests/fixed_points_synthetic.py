"""A hand-made goal sweep with the tables `goal_sweep` returns, whose aggregates are easy to
work out by hand: 2 replicates, contexts 0 and 1, three goals on a line (the middle one at
the centre), one hold point per (replicate, context, goal), plus one extra saddle."""

import numpy as np
import pandas as pd
from robustreach.fixed_points.sweep import GoalSweep

DT = 0.05
GOALS = np.array([[-0.5, 0.0], [0.0, 0.0], [0.5, 0.0]])
HIDDEN, INPUT = 3, 9


def lead_abs(replicate, context, goal):
    return 0.8 + 0.1 * context + 0.01 * goal + 0.02 * replicate


def synthetic_sweep(*, tangent_error=0.02, missing_goal=False) -> GoalSweep:
    points, conditions, neighbours, spectra, summary = [], [], [], [], []
    for replicate in (0, 1):
        for context in (0.0, 1.0):
            keys = {"replicate": replicate, "context": context}
            for goal, (gx, gy) in enumerate(GOALS):
                extra = replicate == 0 and context == 1.0 and goal == 2
                absent = missing_goal and replicate == 1 and context == 0.0 and goal == 0
                where = {**keys, "goal": goal, "goal_x": gx, "goal_y": gy}
                conditions.append({
                    **where, "n_candidates": 8, "n_converged": 0 if absent else 8, "n_distinct": 0 if absent else 1 + extra,
                    "within_goal_spread": 0.3 if extra else 0.0, "hold_distance": np.nan if absent else 0.01,
                })
                if absent:
                    continue
                a = lead_abs(replicate, context, goal)
                rows = [(True, "stable", 0, a)] + ([(False, "saddle", 1, 1.2)] if extra else [])
                for hold, stability, n_unstable, lead in rows:
                    point = len(points)
                    points.append({
                        **where, "n_starts": 8, "is_hold_point": hold, "distance_to_hold_end": 0.01, "point": point,
                        "q": 1e-12, "stability": stability, "n_unstable": n_unstable,
                        "n_rotational_pairs": 1 if context else 0, "n_slow": int(context),
                        "lead_abs": lead, "lead_real": lead, "lead_imag": 0.0, "lead_tau": -DT / np.log(lead),
                        "input_sv_max": 1.0 + context, "input_rank": 3, "readout_overlap_lead": 0.9,
                    })
                    # Mode 0 has tau > 0.4 only at context 1; mode 1 is always fast.
                    for mode, (value, overlap) in enumerate([(lead, 0.9 if context else 0.5), (0.1, 0.2)]):
                        spectra.append({
                            **keys, "goal": goal, "is_hold_point": hold, "point": point, "mode": mode,
                            "eig_real": value, "eig_imag": 0.0, "abs": value, "angle": 0.0, "tau": -DT / np.log(value),
                            "frequency": 0.0, "unstable": value > 1, "condition": 1.0, "readout_gain": overlap,
                            "readout_overlap": overlap,
                        })
            for goal in range(len(GOALS) - 1):
                for a, b in ((goal, goal + 1), (goal + 1, goal)):
                    neighbours.append({**keys, "goal": a, "neighbour": b, "goal_step": 0.5, "distance": 0.2 + 0.1 * context,
                                       "predicted_distance": 0.2, "tangent_error": tangent_error * (1 + a)})
            summary.append({**keys, "hold_variance_in_2_pcs": 0.99 - 0.01 * replicate})
    points = pd.DataFrame(points)
    n_points = len(points)
    rng = np.random.default_rng(0)
    return GoalSweep(
        points=points, spectra=pd.DataFrame(spectra), conditions=pd.DataFrame(conditions),
        neighbours=pd.DataFrame(neighbours), summary=pd.DataFrame(summary),
        h=rng.normal(size=(n_points, HIDDEN)).astype(np.float32),
        hold_hidden=rng.normal(size=(2, 2, len(GOALS), 6, HIDDEN)).astype(np.float32),
        u=rng.normal(size=(n_points, INPUT)).astype(np.float32),
        input_sv=np.sort(rng.uniform(size=(n_points, HIDDEN)), axis=1)[:, ::-1] + points[["context"]].to_numpy(),
    )

"""Fixed points and Jacobians of small GRUs against SciPy and finite differences on an
independent float64 NumPy implementation of the GRU equations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from robustreach.fixed_points import (
    CellStep,
    filter_fixed_points,
    find_fixed_points,
    jacobians,
    linearisation_error,
    verify_float64,
)

N, HIDDEN, INPUT = 64, 6, 2
U = np.array([0.1, -0.2], np.float32)


def numpy_gru(cell: eqx.nn.GRUCell, h, u):
    """The GRU equations written out in float64 NumPy, independent of Equinox's code."""
    wi, wh = np.asarray(cell.weight_ih, np.float64), np.asarray(cell.weight_hh, np.float64)
    bias, bias_n = np.asarray(cell.bias, np.float64), np.asarray(cell.bias_n, np.float64)
    gi, gh = np.split(wi @ u + bias, 3), np.split(wh @ h, 3)
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
    r, z = sigmoid(gi[0] + gh[0]), sigmoid(gi[1] + gh[1])
    n = np.tanh(gi[2] + r * (gh[2] + bias_n))
    return (1 - z) * n + z * h


def gru(seed, candidate_gain=1.0):
    """A small GRU; a large gain on the candidate block's recurrence gives several fixed points."""
    cell = eqx.nn.GRUCell(INPUT, HIDDEN, key=jax.random.PRNGKey(seed))
    return eqx.tree_at(lambda c: c.weight_hh, cell, cell.weight_hh.at[2 * HIDDEN:].multiply(candidate_gain))


def starts(seed):
    return jnp.clip(0.8 * jax.random.normal(jax.random.PRNGKey(seed), (N, HIDDEN)), -1, 1)


def root64(cell, h_start):
    """SciPy's root of the NumPy GRU from `h_start`, checked by its own float64 residual."""
    residual = lambda h: numpy_gru(cell, h, U.astype(np.float64)) - h
    ref = scipy.optimize.root(residual, h_start, tol=1e-14)
    assert np.linalg.norm(residual(ref.x)) < 1e-12, ref.message
    return ref.x


def test_contracting_gru_agrees_with_scipy_root():
    """At its default scale the GRU has one fixed point; SciPy finds the same one."""
    cell = gru(7)
    res = find_fixed_points(CellStep(cell), starts(8), U, tol_q=1e-12, bounds=(-1.0, 1.0), progress=False)
    ref = root64(cell, np.zeros(HIDDEN))
    assert bool(res.converged.all())
    np.testing.assert_allclose(np.asarray(res.h), np.broadcast_to(ref, (N, HIDDEN)), atol=1e-5)
    # Polished in float64, the points match SciPy's to float64 accuracy.
    polished = verify_float64(CellStep(cell), res, tol_q=1e-26, polish_iters=3)
    assert polished.h.dtype == np.float64 and bool(polished.converged.all())
    np.testing.assert_allclose(polished.h, np.broadcast_to(ref, (N, HIDDEN)), atol=1e-12)


def test_gru_with_several_fixed_points_are_roots():
    """Each distinct point found is a root of the float64 NumPy GRU (SciPy's `root` started
    there moves it by no more than float32 rounding), and there are several."""
    cell = gru(10, candidate_gain=3.0 * np.sqrt(HIDDEN))
    res = find_fixed_points(CellStep(cell), starts(10), U, bounds=(-1.0, 1.0), progress=False)
    assert int(res.converged.sum()) >= N // 2
    distinct = filter_fixed_points(res, dedup_tol=1e-3)
    assert len(distinct.index) >= 3
    h = np.asarray(distinct.result.h, np.float64)
    for point in h:
        np.testing.assert_allclose(root64(cell, point), point, atol=1e-5)
    # Distinct means distinct: pairwise distances well above the merge tolerance.
    gaps = np.linalg.norm(h[:, None] - h[None], axis=-1)[np.triu_indices(len(h), 1)]
    assert gaps.min() > 1e-2


def central_differences(function, x, eps):
    columns = [(function(x + eps * e) - function(x - eps * e)) / (2 * eps) for e in np.eye(len(x))]
    return np.stack(columns, axis=1)


def test_jacobians_match_finite_differences():
    cell = gru(10, candidate_gain=3.0 * np.sqrt(HIDDEN))
    res = find_fixed_points(CellStep(cell), starts(10), U, bounds=(-1.0, 1.0), progress=False)
    points = filter_fixed_points(res).result
    h64, u64 = np.asarray(points.h, np.float64), U.astype(np.float64)
    jac_h, jac_u = jacobians(CellStep(cell), points.h, U)  # float32
    jac_h64, jac_u64 = jacobians(CellStep(cell), h64, u64)  # float64, scoped
    assert jac_h.dtype == np.float32 and jac_h64.dtype == np.float64
    for p in range(len(h64)):
        fd_h = central_differences(lambda h: numpy_gru(cell, h, u64), h64[p], 1e-6)
        fd_u = central_differences(lambda u, h=h64[p]: numpy_gru(cell, h, u), u64, 1e-6)
        np.testing.assert_allclose(jac_h64[p], fd_h, atol=1e-8)
        np.testing.assert_allclose(jac_u64[p], fd_u, atol=1e-8)
        np.testing.assert_allclose(jac_h[p], fd_h, atol=2e-6)
        np.testing.assert_allclose(jac_u[p], fd_u, atol=2e-6)


def test_linearisation_predicts_one_step_with_first_order_error():
    """The relative error of `J dh + B du` is proportional to the perturbation's size."""
    cell = gru(7)
    res = find_fixed_points(CellStep(cell), starts(8), U, tol_q=1e-12, bounds=(-1.0, 1.0), progress=False)
    polished = verify_float64(CellStep(cell), res, tol_q=1e-26, polish_iters=3)
    h64, u64 = polished.h[0], U.astype(np.float64)
    jac_h, jac_u = jacobians(CellStep(cell), h64[None], u64)
    rng = np.random.default_rng(0)
    direction_h, direction_u = rng.normal(size=(8, HIDDEN)), rng.normal(size=(8, INPUT))
    with jax.enable_x64(True):
        step64 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x,
                                        CellStep(cell))
        errors = [linearisation_error(step64, h64, u64, jac_h[0], jac_u[0], s * direction_h, s * direction_u)
                  for s in (1e-2, 1e-3)]
    ratio = errors[0] / errors[1]
    assert np.all(errors[1] < 1e-2)
    np.testing.assert_allclose(ratio, 10.0, rtol=0.2)


def test_a_trained_100_unit_network_has_its_hold_points_found_from_noisy_starts():
    """Replicate 0 of part2-short's curl-1.6 network (hidden 100, binary context), saved as a
    fixture. Its hold points are stable: iterating the noiseless step from the end of a hold
    trial settles on them, which gives the answer independently of the finder. Each goal sweep
    condition (16 starts from the hold trial plus N(0, 0.1^2) per unit) must find exactly that
    point. (With the finder's earlier hand-over to Levenberg-Marquardt at q < 1e-3, Adam never
    got there and no start converged.)"""
    import json
    from pathlib import Path

    from robustreach.fixed_points.sweep import goal_sweep, hold_hidden_states, steady_state_inputs
    from robustreach.model import deserialise_model, select_replicate

    fixture = Path(__file__).parent / "fixtures" / "models"
    with open(fixture / "part2-curl1.6-replicate0.eqx", "rb") as stream:
        model = select_replicate(deserialise_model(stream, json.loads((fixture / "part2-curl1.6-replicate0.json").read_text())), 0)
    goals, contexts = np.array([[0.0, 0.0], [0.5, -0.5]]), np.array([[0.0], [1.0]])
    sweep = goal_sweep(model, key=jax.random.PRNGKey(0), contexts=contexts[:, 0], goals=goals, n_starts=16,
                       noise_std=0.1, progress=False, finder_progress=False)
    assert (sweep.conditions["n_distinct"] == 1).all(), sweep.conditions
    assert (sweep.conditions["n_converged"] >= 14).all(), sweep.conditions

    step = model.controller.step
    inputs = steady_state_inputs(model, goals, contexts)
    hold = hold_hidden_states(model, goals, contexts, n_steps=100, key=jax.random.PRNGKey(1))
    for row in sweep.points.itertuples():
        c = int(np.flatnonzero(contexts[:, 0] == row.context)[0])
        h = hold[c, row.goal, -1]
        for _ in range(1000):
            h = step(h, inputs[c, row.goal])
        found = sweep.h[row.point]
        np.testing.assert_allclose(found, np.asarray(h), atol=1e-4)

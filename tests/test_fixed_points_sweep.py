"""Goal steady-state sweep on small ensembles: a GRU without recurrence, whose fixed point
at each goal is known in closed form, and a random GRU checked by an independent residual."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small_hyperparameters
from robustreach.fixed_points.sweep import goal_sweep, n_context_inputs, steady_state_inputs
from robustreach.model import build_ensemble, select_replicate
from robustreach.plots.fixed_points import eigenvalue_spectra, leading_modes
from test_fixed_points_gru import numpy_gru

CONTEXTS = [0.0, 1.0]
SMALL = {"n_grid": 3, "n_steps": 20, "n_starts": 8, "progress": False}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def context_model(seed=0):
    return build_ensemble(small_hyperparameters(context={"variant": "binary"}), jax.random.PRNGKey(seed))


def closed_form(cell, replicate, u):
    """With W_hh = 0 the GRU's fixed point is its candidate n = tanh(W_n u + b_n + r * b_hn),
    r = sigmoid(W_r u + b_r); also dF/dh = diag(z) and dn/du by the chain rule."""
    w = np.asarray(cell.weight_ih[replicate], np.float64)
    b, b_hn = np.asarray(cell.bias[replicate], np.float64), np.asarray(cell.bias_n[replicate], np.float64)
    h = len(b_hn)
    gi = w @ u + b
    r, z = sigmoid(gi[:h]), sigmoid(gi[h:2 * h])
    n = np.tanh(gi[2 * h:] + r * b_hn)
    dn_du = (1 - n**2)[:, None] * (w[2 * h:] + (b_hn * r * (1 - r))[:, None] * w[:h])
    return n, z, dn_du


def test_without_recurrence_every_goal_has_its_closed_form_point():
    model = context_model()
    model = eqx.tree_at(lambda m: m.controller.cell.weight_hh, model, jnp.zeros_like(model.controller.cell.weight_hh))
    sweep = goal_sweep(model, key=jax.random.PRNGKey(1), contexts=CONTEXTS, **SMALL)
    cell = model.controller.cell
    assert len(sweep.conditions) == 2 * 9 * 2 and (sweep.conditions["n_distinct"] == 1).all()
    assert len(sweep.points) == 36 and sweep.points["is_hold_point"].all()
    assert sweep.h.shape == (36, 8) and sweep.hold_hidden.shape == (2, 2, 9, 20, 8)
    assert sweep.u.shape == (36, 9) and sweep.input_sv.shape == (36, 8)
    for row in sweep.points.itertuples():
        u = np.array([row.context, row.goal_x, row.goal_y, 0, 0, row.goal_x, row.goal_y, 0, 0])
        n, z, dn_du = closed_form(cell, row.replicate, u)
        np.testing.assert_allclose(sweep.h[row.point], n, atol=1e-5)
        assert row.stability == "stable"
        np.testing.assert_allclose(row.lead_abs, z.max(), rtol=1e-5)  # J = diag(z)
        np.testing.assert_allclose(sweep.u[row.point], u, atol=1e-7)
        # At h = n: dF/du = (h - n) dz/du + (1 - z) dn/du = diag(1 - z) dn/du.
        expected_sv = np.linalg.svd((1 - z)[:, None] * dn_du, compute_uv=False)
        np.testing.assert_allclose(sweep.input_sv[row.point], expected_sv, rtol=1e-4, atol=1e-6)
    # Neighbouring goals: distances and first-order predictions from the closed form.
    neighbours = sweep.neighbours
    assert len(neighbours) == 2 * 2 * 24  # replicates x contexts x (12 grid edges, both ways)
    for row in neighbours.sample(10, random_state=0).itertuples():
        goal = sweep.points.set_index(["replicate", "context", "goal"])
        a = goal.loc[(row.replicate, row.context, row.goal)]
        b = goal.loc[(row.replicate, row.context, row.neighbour)]
        ua = np.array([row.context, a.goal_x, a.goal_y, 0, 0, a.goal_x, a.goal_y, 0, 0])
        ub = np.array([row.context, b.goal_x, b.goal_y, 0, 0, b.goal_x, b.goal_y, 0, 0])
        na, _, dn_du = closed_form(cell, row.replicate, ua)
        nb, _, _ = closed_form(cell, row.replicate, ub)
        np.testing.assert_allclose(row.distance, np.linalg.norm(nb - na), rtol=1e-4)
        np.testing.assert_allclose(row.predicted_distance, np.linalg.norm(dn_du @ (ub - ua)), rtol=1e-4)
    # The figure builders take the sweep's tables as they are.
    spectra_fig = eigenvalue_spectra(sweep.spectra, colour_by="context")
    assert [t.name for t in spectra_fig.data[1:]] == ["context 0.0", "context 1.0"]
    assert sum(len(t.x) for t in spectra_fig.data[1:]) == 36 * 8
    centre = sweep.points[sweep.points["goal"] == 4]  # the workspace centre of the 3 x 3 grid
    modes_fig = leading_modes(centre, x="context", colour_by="replicate")
    np.testing.assert_allclose(modes_fig.data[0].y, centre[centre["replicate"] == 0]["lead_abs"])
    summary = sweep.summary
    assert len(summary) == 4 and (summary["max_distinct"] == 1).all() and (summary["hold_points_stable"] == 1).all()
    assert (summary["max_within_goal_spread"] == 0).all()


def test_random_gru_points_are_fixed_points_of_the_model():
    model = context_model(seed=3)
    sweep = goal_sweep(model, key=jax.random.PRNGKey(2), contexts=[-1.0, 1.0], **SMALL)
    cell = model.controller.cell
    assert len(sweep.points) >= 36 and (sweep.conditions["n_converged"] > 0).all()
    one = jax.tree_util.tree_map(lambda x: x[0] if eqx.is_array(x) else x, cell)
    for row in sweep.points[sweep.points["replicate"] == 0].itertuples():
        u = np.array([row.context, row.goal_x, row.goal_y, 0, 0, row.goal_x, row.goal_y, 0, 0])
        h = sweep.h[row.point].astype(np.float64)
        assert 0.5 * np.sum((numpy_gru(one, h, u) - h) ** 2) < 1e-9
    # Each condition's hold point is the distinct point nearest the hold trial's end state.
    end = sweep.hold_hidden[:, :, :, -2:].mean(axis=3)  # n_steps // 10 = 2 last steps
    for (rep, context, goal), rows in sweep.points.groupby(["replicate", "context", "goal"]):
        distances = np.linalg.norm(sweep.h[rows["point"]] - end[rep, int(context > 0), goal], axis=1)
        assert rows["is_hold_point"].to_numpy()[np.argmin(distances)]
        np.testing.assert_allclose(rows["distance_to_hold_end"], distances, rtol=1e-5)


def test_steady_state_inputs_order():
    model = select_replicate(context_model(), 0)
    assert n_context_inputs(model) == 1
    u = steady_state_inputs(model, np.array([[0.5, -0.25], [0.0, 0.0]]), np.array([[2.0], [-1.0]]))
    assert u.shape == (2, 2, 9)
    np.testing.assert_allclose(u[0, 0], [2.0, 0.5, -0.25, 0, 0, 0.5, -0.25, 0, 0])
    np.testing.assert_allclose(u[1, 1], [-1.0, 0, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("kwargs, message", [
    ({"contexts": CONTEXTS, "n_grid": 4}, "odd"),
    ({"contexts": None}, "contexts"),
    ({"contexts": [[0.0, 1.0]]}, "contexts"),
    ({"contexts": CONTEXTS, "goals": np.zeros((3, 3))}, "goals"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        goal_sweep(context_model(), key=jax.random.PRNGKey(0), progress=False, **kwargs)


def test_model_without_context_rejects_contexts():
    model = build_ensemble(small_hyperparameters(), jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="no context"):
        goal_sweep(model, key=jax.random.PRNGKey(0), contexts=[1.0], progress=False)

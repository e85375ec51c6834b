"""Re-linearising a sweep's points and the one-step check, on small ensembles: without
recurrent weights the GRU step is affine in h (so a state perturbation is predicted exactly);
with them the error is a second-order remainder (log-log slope 1)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import small_hyperparameters
from robustreach.fixed_points.cache import sweep_from_arrays, sweep_to_arrays
from robustreach.fixed_points.checks import (
    one_step_check,
    one_step_summary,
    one_step_text,
    replicate_linearisation,
    replicate_model,
)
from robustreach.fixed_points.sweep import goal_sweep
from robustreach.model import build_ensemble
from robustreach.store.evaluations import decode_npz, encode_npz
from test_fixed_points_gru import numpy_gru

SMALL = {"n_grid": 3, "n_steps": 20, "n_starts": 8, "progress": False}


def context_model(seed, recurrent=True):
    model = build_ensemble(small_hyperparameters(context={"variant": "binary"}), jax.random.PRNGKey(seed))
    if not recurrent:
        model = eqx.tree_at(lambda m: m.controller.cell.weight_hh, model, jnp.zeros_like(model.controller.cell.weight_hh))
    return model


@pytest.fixture(scope="module")
def affine():
    model = context_model(0, recurrent=False)
    return model, goal_sweep(model, key=jax.random.PRNGKey(1), contexts=[0.0, 1.0], **SMALL)


@pytest.fixture(scope="module")
def recurrent():
    model = context_model(3)
    return model, goal_sweep(model, key=jax.random.PRNGKey(2), contexts=[-1.0, 1.0], **SMALL)


def one_cell(model, replicate):
    return jax.tree_util.tree_map(lambda x: x[replicate] if eqx.is_array(x) else x, model.controller.cell)


def test_replicate_linearisation_matches_finite_differences(recurrent):
    model, sweep = recurrent
    rows, lin = replicate_linearisation(model, sweep, 1)
    assert (rows["replicate"] == 1).all() and len(lin) == len(rows)
    cell, eps = one_cell(model, 1), 1e-6
    for i, point in enumerate(rows["point"].to_numpy()[:3]):
        h, u = sweep.h[point].astype(np.float64), sweep.u[point].astype(np.float64)
        jac = np.stack([(numpy_gru(cell, h + eps * e, u) - numpy_gru(cell, h - eps * e, u)) / (2 * eps)
                        for e in np.eye(len(h))], axis=1)
        np.testing.assert_allclose(lin.jac_h[i], jac, atol=2e-5)
        np.testing.assert_allclose(np.abs(lin.eigvals[i]), np.sort(np.abs(np.linalg.eigvals(jac)))[::-1], atol=2e-5)
    with pytest.raises(ValueError, match="replicate"):
        replicate_linearisation(model, sweep, 7)


def test_state_steps_are_exact_without_recurrence(affine):
    model, sweep = affine
    check = one_step_check(model, sweep, scales=[1e-3, 1e-1], n_samples=4, key=jax.random.PRNGKey(0))
    # 2 replicates x 2 contexts (centre goal) x 2 kinds x 2 scales x 4 samples.
    assert len(check) == 64 and set(check["goal"]) == {4}
    state, inputs = check[check["kind"] == "state"], check[check["kind"] == "input"]
    assert state["error"].max() < 1e-10  # F is affine in h when W_hh = 0
    assert inputs["error"].min() > 1e-6  # but not in u


def test_errors_grow_like_a_second_order_remainder(recurrent):
    model, sweep = recurrent
    check = one_step_check(model, sweep, scales=[1e-4, 1e-3, 1e-2], n_samples=6, key=jax.random.PRNGKey(1))
    summary = one_step_summary({"random": check})
    assert set(summary["kind"]) == {"state", "input"} and (summary["condition"] == "random").all()
    np.testing.assert_allclose(summary["slope"], 1.0, atol=0.15)
    # Per sample, error / scale is nearly constant over two decades.
    ratio = check.pivot_table(index=["replicate", "context", "kind", "sample"], columns="scale", values="error")
    np.testing.assert_allclose(ratio[1e-4] / 1e-4, ratio[1e-2] / 1e-2, rtol=0.2)
    text = one_step_text(summary)
    assert "state perturbations" in text and "second-order remainder" in text


def test_one_step_summary_slope_by_hand():
    table = pd.DataFrame({"kind": "state", "scale": [0.01, 0.01, 0.1, 0.1, 1.0, 1.0],
                          "error": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]})
    summary = one_step_summary(table)
    np.testing.assert_allclose(summary["median"], [2e-4, 2e-3, 2e-2])
    np.testing.assert_allclose(summary["slope"], 1.0)
    assert "does not scale" in one_step_text(summary.assign(slope=2.0))


def test_real_sweep_round_trips_through_the_cache_format(recurrent):
    _, sweep = recurrent
    back = sweep_from_arrays(decode_npz(encode_npz(sweep_to_arrays(sweep))))
    for name in ("points", "spectra", "conditions", "neighbours", "summary"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(sweep, name), check_dtype=False)
    assert back.points["stability"].tolist() == sweep.points["stability"].tolist()
    np.testing.assert_array_equal(back.u, sweep.u)


def test_bad_arguments(recurrent):
    model, sweep = recurrent
    with pytest.raises(ValueError, match="scales"):
        one_step_check(model, sweep, scales=[0.0], n_samples=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="goal 99"):
        one_step_check(model, sweep, scales=[0.1], n_samples=2, key=jax.random.PRNGKey(0), goal=99)
    with pytest.raises(ValueError, match="0..1"):
        replicate_model(model, 2)

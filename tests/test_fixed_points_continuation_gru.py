"""Continuation on small GRUs, checked against the fixed-point finder solving from scratch at
sampled inputs (an independent method: Adam, then Levenberg-Marquardt, float64 polish), and
the hold-point branches of a small reaching model against its goal sweep."""

from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robustreach.config import load_hyperparameters
from robustreach.experiment import part_defaults
from robustreach.fixed_points import CellStep, find_fixed_points, verify_float64
from robustreach.fixed_points import hold_branches as hb
from robustreach.fixed_points.continuation import continue_branches, points_at
from robustreach.fixed_points.sweep import goal_sweep
from robustreach.model import build_ensemble
from robustreach.store import ResultsStore

HIDDEN, INPUT = 10, 3
U_START, U_END = np.array([-1.0, 0.5, 0.0]), np.array([1.0, -0.5, 0.5])


def ensemble():
    """Two GRUs stacked along a leading replicate axis; a candidate gain of 2.5 gives them
    slow modes and several fixed points at some inputs."""
    def one(key):
        cell = eqx.nn.GRUCell(INPUT, HIDDEN, key=key)
        return eqx.tree_at(lambda c: c.weight_hh, cell, cell.weight_hh.at[2 * HIDDEN:].multiply(2.5))

    return CellStep(eqx.filter_vmap(one)(jax.random.split(jax.random.PRNGKey(3), 2)))


def solve(step, inputs, n=32, seed=0):
    """Fixed points at each input from the same random starts (one batched search), every
    converged candidate polished in float64: `(input index, h)` pairs."""
    h0 = jnp.clip(0.8 * jax.random.normal(jax.random.PRNGKey(seed), (n, HIDDEN)), -1, 1)
    h0 = jnp.tile(h0, (len(inputs), 1))
    u = jnp.asarray(np.repeat(inputs, n, axis=0), jnp.float32)
    found = find_fixed_points(step, h0, u, bounds=(-1.0, 1.0), progress=False)
    polished = verify_float64(step, found, tol_q=1e-24, polish_iters=5)
    return np.repeat(np.arange(len(inputs)), n)[polished.converged], polished.h[polished.converged]


def test_gru_branches_agree_with_solving_at_each_sampled_input():
    steps = ensemble()
    singles = [jax.tree_util.tree_map(lambda x, r=r: x[r] if eqx.is_array(x) else x, steps) for r in (0, 1)]
    samples = np.linspace(0.0, 1.0, 5)
    inputs = (1 - samples[:, None]) * U_START + samples[:, None] * U_END
    references = [solve(single, inputs, seed=r) for r, single in enumerate(singles)]
    starts = np.stack([h[index == 0][0] for index, h in references])
    branches = continue_branches(steps, starts, np.stack([U_START, U_END]), replicate=[0, 1])
    assert set(branches.status) <= {"end", "start"}
    assert np.nanmax(branches.q) < 1e-20  # the float64 corrector's tolerance, everywhere along both branches
    for b, (index, reference) in enumerate(references):
        crossings = points_at(steps, branches, samples, branch=b)[0]
        assert len(crossings) >= len(samples)
        for s, h in crossings:
            here = reference[index == int(np.argmin(np.abs(samples - s)))]
            assert np.min(np.linalg.norm(here - h, axis=1)) < 1e-8


@pytest.fixture(scope="module")
def reaching():
    """An untrained 8-unit reaching ensemble (2 replicates, one context input) and a small sweep."""
    defaults = part_defaults("part2")
    sections = {k: v for k, v in defaults.items() if k != "conditions"}
    sections["controller"] = {**sections["controller"], "hidden_size": 8}
    sections["train"] = {**sections["train"], "n_replicates": 2}
    hp = load_hyperparameters(sections)
    model = build_ensemble(hp, jax.random.PRNGKey(0))
    options = {"contexts": [-1.0, 1.0], "n_grid": 3, "n_starts": 4, "n_steps": 20, "seed": 0}
    sweep = goal_sweep(model, key=jax.random.PRNGKey(0), contexts=options["contexts"], n_grid=3, n_starts=4,
                       n_steps=20, progress=False, finder_progress=False)
    return model, sweep, options


def test_hold_branches_meet_the_sweeps_points_and_are_cached(reaching, tmp_path, monkeypatch):
    model, sweep, sweep_opts = reaching
    calls = []
    real = hb.hold_branches
    monkeypatch.setattr(hb, "hold_branches", lambda *a, **k: calls.append(1) or real(*a, **k))
    store = ResultsStore(tmp_path)
    models = [SimpleNamespace(label="x", model=model, record={"hash": "a" * 64})]
    found = hb.hold_branch_sets(store, models, {"x": sweep}, sweep_opts, {"max_step": 0.1})["x"]
    # 2 replicates x (1 context branch + 2 goal branches, one per context)
    assert len(found.branches) == 6 and list(found.branches["family"]).count("context") == 2
    assert set(found.branches["status"]) == {"end"}
    assert found.along["q"].max() < 1e-20
    assert len(found.h) == len(found.along)
    # At every sampled input the branch passes within float32 accuracy of the sweep's point.
    agreement = found.agreement
    assert (agreement["n_crossings"] >= 1).all()
    assert agreement["distance_to_nearest_point"].max() < 1e-4
    again = hb.hold_branch_sets(store, models, {"x": sweep}, sweep_opts, {"max_step": 0.1})["x"]
    assert len(calls) == 1  # served from the index
    np.testing.assert_array_equal(again.h, found.h)
    assert list(again.branches["status"]) == list(found.branches["status"])


def test_continuation_options_name_the_bad_key():
    assert hb.continuation_options(None) == hb.CONTINUATION_DEFAULTS
    for params, key in (({"lines": "x"}, "lines"), ({"line": "z"}, "line"), ({"max_step": 0}, "max_step"),
                        ({"max_points": 1}, "max_points")):
        with pytest.raises(ValueError, match=f"continuation.{key}"):
            hb.continuation_options(params)

"""Fixed-point figures: the data drawn equals the tables and projections computed independently."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from robustreach.fixed_points import linearise, points_table, spectra_table
from robustreach.plots.fixed_points import (
    eigenvalue_spectra,
    fixed_points_pca,
    leading_modes,
    mode_segments,
    pca_basis,
)
from robustreach.plots.style import colour_map

DT = 0.05


class Affine(eqx.Module):
    w: jax.Array

    def __call__(self, h, u):
        return self.w @ h + 0.0 * u.sum()


def affine_linearisation(w, n_points=2):
    return linearise(Affine(jnp.asarray(w, jnp.float32)), np.zeros((n_points, len(w)), np.float32),
                     np.zeros(1, np.float32))


def test_pca_matches_covariance_eigendecomposition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 25, 6)) @ rng.normal(size=(6, 6)) + 3.0
    pca = pca_basis(x, n_components=3)
    flat = x.reshape(-1, 6)
    evals, evecs = np.linalg.eigh(np.cov(flat.T))
    order = np.argsort(evals)[::-1][:3]
    for k, i in enumerate(order):
        assert abs(abs(pca.components[k] @ evecs[:, i]) - 1) < 1e-8  # same axis up to sign
    np.testing.assert_allclose(pca.explained, evals[order] / evals.sum(), rtol=1e-8)
    np.testing.assert_allclose(pca.project(flat[:5]), (flat[:5] - flat.mean(0)) @ pca.components.T)
    with pytest.raises(ValueError, match="n_components"):
        pca_basis(x, n_components=7)


def test_eigenvalue_spectra_draws_the_table():
    c, s = np.cos(0.4), np.sin(0.4)
    lin = affine_linearisation(np.array([[0.95 * c, -0.95 * s, 0], [0.95 * s, 0.95 * c, 0], [0, 0, 1.1]]))
    keys = pd.DataFrame({"context": [-1.0, 2.0], "replicate": [0, 1]})
    spectra = spectra_table(lin, dt=DT, keys=keys)
    fig = eigenvalue_spectra(spectra, colour_by="context")
    assert isinstance(fig, go.Figure)
    circle = fig.data[0]  # first, so drawn beneath
    np.testing.assert_allclose(np.hypot(circle.x, circle.y), 1.0)
    markers = fig.data[1:]
    assert [t.name for t in markers] == ["context -1.0", "context 2.0"]
    expected_colours = colour_map("context", [-1.0, 2.0])
    for trace, context in zip(markers, (-1.0, 2.0)):
        rows = spectra[spectra["context"] == context]
        np.testing.assert_allclose(trace.x, rows["eig_real"])
        np.testing.assert_allclose(trace.y, rows["eig_imag"])
        assert trace.marker.color == expected_colours[context]
    np.testing.assert_allclose(sorted(np.hypot(markers[0].x, markers[0].y)), [0.95, 0.95, 1.1], rtol=1e-5)
    with pytest.raises(ValueError, match="colour_by"):
        eigenvalue_spectra(spectra, colour_by="goal")


def test_fixed_points_pca_segments_follow_the_modes():
    # Modes: e0 with |lambda| 1.3 (unstable), e1 with 0.99 (slowest stable), e2 with 0.2.
    lin = affine_linearisation(np.diag([1.3, 0.99, 0.2]), n_points=1)
    rng = np.random.default_rng(1)
    trajectories = rng.normal(size=(5, 20, 3)) * np.array([3.0, 2.0, 1.0])
    pca = pca_basis(trajectories, n_components=2)
    point = np.array([[0.5, -0.2, 0.1]])
    segments = mode_segments(pca, point, lin, n_slow=1, length=0.3)
    assert segments["kind"].tolist() == ["unstable", "slow"] and segments["mode"].tolist() == [0, 1]
    centre = pca.project(point)[0]
    for row, axis in zip(segments.itertuples(), np.eye(3)[:2]):
        # The eigenvector is the unit axis up to sign: the ends are centre -+ 0.3 P axis.
        offset = 0.3 * pca.project_direction(axis)
        ends = sorted([(row.start_0, row.start_1), (row.end_0, row.end_1)])
        np.testing.assert_allclose(ends, sorted([tuple(centre - offset), tuple(centre + offset)]), atol=1e-6)
    fig = fixed_points_pca(pca, point, lin, trajectories=trajectories)
    names = [t.name for t in fig.data]
    assert names == ["trajectories", "unstable modes", "slow modes", "saddle"]
    np.testing.assert_allclose([fig.data[-1].x[0], fig.data[-1].y[0]], pca.project(point)[0])
    # Trajectories: 5 paths of 20 points, separated by gaps.
    assert len(fig.data[0].x) == 5 * 21 and np.isnan(np.asarray(fig.data[0].x, float)[20])
    fig3 = fixed_points_pca(pca_basis(trajectories, 3), point, lin)
    assert isinstance(fig3.data[-1], go.Scatter3d)


def test_leading_modes_against_context():
    lin = affine_linearisation(np.diag([0.9, 0.5]), n_points=4)
    keys = pd.DataFrame({"context": [1.0, -1.0, 1.0, -1.0], "replicate": [0, 0, 1, 1]})
    table = points_table(lin, dt=DT, keys=keys)
    fig = leading_modes(table, x="context", colour_by="replicate")
    assert len(fig.data) == 4  # (|lambda|, tau) x 2 replicates
    first = fig.data[0]
    assert first.name == "replicate 0"
    np.testing.assert_array_equal(first.x, [-1.0, 1.0])  # sorted by context
    np.testing.assert_allclose(first.y, [0.9, 0.9], rtol=1e-6)
    np.testing.assert_allclose(fig.data[1].y, -DT / np.log(0.9), rtol=1e-5)
    with pytest.raises(ValueError, match="goal"):
        leading_modes(table, x="goal")


def test_fixed_points_pca_coloured_by_context_with_stability_symbols():
    lin = affine_linearisation(np.diag([0.9, 0.5, 0.2]), n_points=3)
    rng = np.random.default_rng(3)
    points = rng.normal(size=(3, 3))
    pca = pca_basis(rng.normal(size=(4, 10, 3)), n_components=2)
    fig = fixed_points_pca(pca, points, lin, stability=["stable", "saddle", "stable"],
                           colour_values=[-1.0, 1.0, 1.0])
    markers = {t.name: t for t in fig.data if t.mode == "markers"}
    assert set(markers) == {"context -1.0", "context 1.0 (saddle)", "context 1.0"}
    colours = colour_map("context", [-1.0, 1.0])
    assert markers["context -1.0"].marker.color == colours[-1.0] and markers["context 1.0"].marker.color == colours[1.0]
    assert markers["context 1.0 (saddle)"].marker.symbol == "diamond" and markers["context 1.0"].marker.symbol == "circle"
    np.testing.assert_allclose([markers["context 1.0 (saddle)"].x[0], markers["context 1.0 (saddle)"].y[0]],
                               pca.project(points[1]))
    with pytest.raises(ValueError, match="one entry per point"):
        fixed_points_pca(pca, points, colour_values=[0.0, 1.0])


def test_sweep_pca_projects_one_replicate_on_its_own_hold_trials():
    from fixed_points_synthetic import synthetic_sweep
    from robustreach.plots.fixed_points import sweep_pca

    sweep = synthetic_sweep()
    fig = sweep_pca(sweep, 1)
    pca = pca_basis(sweep.hold_hidden[1], n_components=3)  # (context, goal, time, hidden) of replicate 1
    rows = sweep.points[sweep.points["replicate"] == 1]
    drawn = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in drawn] == ["context 0.0", "context 1.0"]
    for trace, context in zip(drawn, (0.0, 1.0)):
        expected = pca.project(sweep.h[rows[rows["context"] == context]["point"]])
        np.testing.assert_allclose(np.stack([trace.x, trace.y, trace.z], axis=1), expected, rtol=1e-5, atol=1e-6)
    # Trajectories: every context and goal of replicate 1 (2 x 3 paths of 6 steps, gaps between).
    assert fig.data[0].name == "trajectories" and len(fig.data[0].x) == 6 * 7
    with pytest.raises(ValueError, match="replicate 4"):
        sweep_pca(sweep, 4)


def test_eigenvalue_spectra_colour_kind_overrides_the_scale():
    lin = affine_linearisation(np.diag([0.9, 0.5]), n_points=3)
    spectra = spectra_table(lin, dt=DT, keys={"goal_distance": [0.0, 0.5, 1.0]})
    fig = eigenvalue_spectra(spectra, colour_by="goal_distance", colour_kind="amplitude")
    expected = colour_map("amplitude", [0.0, 0.5, 1.0])
    assert [t.marker.color for t in fig.data[1:]] == [expected[d] for d in (0.0, 0.5, 1.0)]
    assert [t.name for t in fig.data[1:]] == ["goal distance 0.0", "goal distance 0.5", "goal distance 1.0"]

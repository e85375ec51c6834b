"""Continuation and bifurcations on maps whose branches and bifurcations are known in closed
form: a scalar S-curve with two folds, transcritical and pitchfork normal forms hidden in 50
dimensions by a random rotation, a linear map whose eigenvalues cross +1 and -1 at known
inputs, and a 2-D map with a Neimark-Sacker crossing."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
from robustreach.fixed_points.bifurcations import bialternate_sign, branch_eigenvalues, locate_bifurcations
from robustreach.fixed_points.continuation import InputPath, continue_branches, points_at

DT = 0.1
TOL = 1e-6  # required accuracy of each bifurcation's location


def cubic(h, u):
    """Fixed points on u = h^3/3 - h: folds at (h, u) = (-1, 2/3) and (1, -2/3)."""
    return h + DT * (u[0] + h - h ** 3 / 3)


def test_scalar_map_is_followed_through_both_folds():
    roots = np.roots([1 / 3, 0, -1, 1])  # h^3/3 - h = -1: one real root, on the lower branch
    h0 = roots[np.isreal(roots)].real.min()
    branches = continue_branches(cubic, [[h0]], [[-1.0], [1.0]])
    assert branches.status[0] == "end"  # turned back twice and still reached u = 1
    h, s, u = branches.points(0)
    assert h[-1, 0] == pytest.approx(2.1038034, abs=1e-6)  # the upper branch's root at u = 1
    np.testing.assert_allclose(u[:, 0], h[:, 0] ** 3 / 3 - h[:, 0], atol=1e-8)
    assert np.nanmax(branches.q) < 1e-20
    assert np.sum(np.diff(np.sign(np.diff(s))) != 0) == 2  # s turns back exactly twice

    found = locate_bifurcations(cubic, branches)
    assert list(found.table["kind"]) == ["fold", "fold"]
    np.testing.assert_allclose(found.u[:, 0], [2 / 3, -2 / 3], atol=TOL)
    np.testing.assert_allclose(found.h[:, 0], [-1.0, 1.0], atol=1e-4)  # h is sqrt-sensitive at a fold
    np.testing.assert_allclose(found.table["eig_real"], 1.0, atol=1e-4)
    # The middle branch (|h| < 1) is the unstable one: J = 1 + dt (1 - h^2).
    eig = branch_eigenvalues(cubic, branches)[0, : branches.n_points[0], 0].real
    np.testing.assert_array_equal(eig > 1, np.abs(h[:, 0]) < 1)
    assert list(found.table["n_unstable_after"]) == [1, 0]


def rotation(n, seed=0):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))  # NumPy float64: constants in a traced step keep their precision


Q = rotation(50)


class Embedded(eqx.Module):
    """`F(h, mu) = Q f(Q^T h, mu)` with the normal form `f(x, mu) = x + dt (mu x - a x^2 - b x^3)`
    in the first coordinate and the other 49 contracting by 0.5 (so every eigenvalue but one
    stays inside the unit circle). One class for both forms: one compilation."""

    a: np.ndarray
    b: np.ndarray

    def __call__(self, h, u):
        x = Q.T @ h
        first = x[0] + DT * (u[0] * x[0] - self.a * x[0] ** 2 - self.b * x[0] ** 3)
        return Q @ jnp.concatenate([first[None], 0.5 * x[1:]])


transcritical = Embedded(np.array(1.0), np.array(0.0))
pitchfork = Embedded(np.array(0.0), np.array(1.0))


def test_transcritical_in_50_dimensions_both_branches_cross_at_zero():
    """Branches x = 0 and x = mu cross at mu = 0; both exchange stability there."""
    h0 = np.stack([np.zeros(50), -1.0 * Q[:, 0]])  # x = 0 and x = mu at mu = -1
    branches = continue_branches(transcritical, h0, [[-1.0], [1.0]], max_step=0.1)
    assert list(branches.status) == ["end", "end"]
    for b, slope in ((0, 0.0), (1, 1.0)):
        h, s, u = branches.points(b)
        x = h @ Q
        np.testing.assert_allclose(x[:, 0], slope * u[:, 0], atol=1e-8)  # stayed on its own branch
        np.testing.assert_allclose(x[:, 1:], 0.0, atol=1e-8)
    found = locate_bifurcations(transcritical, branches)
    assert list(found.table["branch"]) == [0, 1] and set(found.table["kind"]) == {"branch_point"}
    np.testing.assert_allclose(found.u[:, 0], 0.0, atol=TOL)
    assert list(found.table["n_unstable_before"]) == [0, 1] and list(found.table["n_unstable_after"]) == [1, 0]


def test_pitchfork_branch_folds_over_the_symmetric_point():
    """x^2 = mu, from (x, mu) = (1, 1) towards mu = -1: it turns at mu = 0 (where it meets
    x = 0 without crossing into it) and returns to mu = 1 at x = -1."""
    branches = continue_branches(pitchfork, Q[:, 0][None], [[-1.0], [1.0]], s0=1.0, direction=-1)
    assert branches.status[0] == "end"
    h, _, u = branches.points(0)
    x = h @ Q
    np.testing.assert_allclose(x[:, 0] ** 2, u[:, 0], atol=1e-8)
    assert x[-1, 0] == pytest.approx(-1.0, abs=1e-8)
    found = locate_bifurcations(pitchfork, branches)
    assert list(found.table["kind"]) == ["fold"]
    assert found.u[0, 0] == pytest.approx(0.0, abs=TOL)


P = np.random.default_rng(1).normal(size=(6, 6)) + 3 * np.eye(6)
C = np.array([0.0, 0.5, -0.2, 0.3, 0.1, -0.4])  # no drive along the first mode


def linear(h, u):
    """`F = A(u) h + P c` with `A(u) = P diag(u, -0.25 - 0.5 u, 0.3, 0.2, -0.1, 0) P^-1`:
    eigenvalues cross +1 at u = 1 and -1 at u = 1.5."""
    d = np.array([0.0, -0.25, 0.3, 0.2, -0.1, 0.0]) + u[0] * np.array([1.0, -0.5, 0, 0, 0, 0])
    return P @ (d * jnp.linalg.solve(P, h)) + P @ C


def test_linear_map_eigenvalues_cross_at_known_inputs():
    u_grid = np.array([0.0, 0.4, 0.8, 1.2, 1.6, 2.0])  # not 1: a line of fixed points there
    d = lambda u: np.array([u, -0.25 - 0.5 * u, 0.3, 0.2, -0.1, 0.0])
    exact = lambda u: P @ np.divide(C, 1 - d(u), out=np.zeros(6), where=C != 0)  # h* = (I - A)^-1 P c
    branches = continue_branches(linear, exact(0.0)[None], [[0.0], [2.0]])
    assert branches.status[0] == "end"
    crossings = points_at(linear, branches, u_grid / 2)[0]
    assert [s for s, _ in crossings] == list(u_grid / 2)
    for s, h in crossings:
        np.testing.assert_allclose(h, exact(2 * s), atol=1e-9)
    found = locate_bifurcations(linear, branches)
    assert list(found.table["kind"]) == ["branch_point", "flip"]
    np.testing.assert_allclose(found.u[:, 0], [1.0, 1.5], atol=TOL)
    np.testing.assert_allclose(found.table["eig_real"], [1.0, -1.0], atol=TOL)


THETA = 0.7


def neimark_sacker(h, u):
    """A 2-D map rotating by THETA about `c(mu) = (mu, mu^2)` with radial gain
    `rho(mu) = 0.8 + mu^2`: the fixed point c(mu) loses stability at mu = sqrt(0.2) through a
    complex pair `rho e^{+-i THETA}`."""
    mu = u[0]
    c = jnp.stack([mu, mu ** 2])
    d = h - c
    rot = np.array([[np.cos(THETA), -np.sin(THETA)], [np.sin(THETA), np.cos(THETA)]])
    return c + (0.8 + mu ** 2) * rot @ d - jnp.sum(d * d) * rot @ d


def test_neimark_sacker_crossing_is_located_with_its_angle():
    branches = continue_branches(neimark_sacker, [[0.0, 0.0]], InputPath.segment(jnp.zeros(1), jnp.ones(1)))
    assert branches.status[0] == "end"
    found = locate_bifurcations(neimark_sacker, branches)
    assert list(found.table["kind"]) == ["neimark_sacker"]
    assert found.u[0, 0] == pytest.approx(np.sqrt(0.2), abs=TOL)
    row = found.table.iloc[0]
    assert row["abs"] == pytest.approx(1.0, abs=1e-6) and row["angle"] == pytest.approx(THETA, abs=1e-6)
    assert (row["n_unstable_before"], row["n_unstable_after"]) == (0, 2)


def test_bialternate_sign_flags_complex_pairs_and_neutral_saddles():
    """Sign of prod_{i<j}(l_i l_j - 1), worked out by hand."""
    pair = lambda r: [r * np.exp(0.5j), r * np.exp(-0.5j)]
    assert bialternate_sign(np.array(pair(0.9))) == -1  # |l|^2 - 1 < 0
    assert bialternate_sign(np.array(pair(1.1))) == 1
    # A pair with 0.5: extra factors (0.5 l - 1)(0.5 conj(l) - 1) = |0.5 l - 1|^2 > 0 keep the sign.
    assert bialternate_sign(np.array([*pair(0.9), 0.5])) == -1
    # Real eigenvalues 2 and 0.4 (product 0.8 < 1) against 2 and 0.6 (product 1.2): a neutral saddle between.
    assert bialternate_sign(np.array([2.0, 0.4])) == -1 and bialternate_sign(np.array([2.0, 0.6])) == 1


def sqrt_branch(h, u):
    return h + DT * (jnp.sqrt(u[0]) - h)  # NaN for u < 0: the branch h = sqrt(u) ends at u = 0


def test_a_branch_that_ends_is_lost_cleanly():
    branches = continue_branches(sqrt_branch, [[1.0]], [[1.0], [-1.0]])
    assert branches.status[0] == "lost"
    h, s, u = branches.points(0)
    assert np.all(np.isfinite(h)) and np.nanmax(branches.q) < 1e-20
    assert 0 <= u[-1, 0] < 1e-3  # it got close to where the branch ends
    np.testing.assert_allclose(h[:, 0], np.sqrt(u[:, 0]), atol=1e-8)


@pytest.mark.parametrize("kwargs, match", [
    ({"path": [[0.0]]}, "at least two knots"),
    ({"path": [[0.0], [0.0]]}, "zero-length"),
    ({"path": [[0.0], [1.0]], "s0": 1.5}, "s0 must lie"),
    ({"path": [[0.0], [1.0]], "direction": 0}, "direction"),
    ({"path": [[0.0], [1.0]], "min_step": 1.0}, "min_step"),
    ({"path": [[0.0], [1.0]], "replicate": [0]}, "ensemble"),
])
def test_bad_arguments_are_refused_before_any_work(kwargs, match):
    with pytest.raises(ValueError, match=match):
        continue_branches(cubic, [[0.0]], **kwargs)

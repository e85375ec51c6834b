"""Fixed-point finder: systems whose fixed points are known in closed form, SciPy's root
finder on a GRU, and the per-point stopping, float64 verification and input checks."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from robustreach.fixed_points import find_fixed_points, q_value, sample_starts, verify_float64

FAST = {"progress": False}
N = 16  # starting states in most tests: one shape, so the compiled loops are reused


class Affine(eqx.Module):
    """F(h, u) = W h + B u + b: unique fixed point (I - W)^-1 (B u + b) when 1 is not an eigenvalue."""

    w: jax.Array
    b_in: jax.Array
    bias: jax.Array

    def __call__(self, h, u):
        return self.w @ h + self.b_in @ u + self.bias


def random_affine(seed, n=6, m=3, radius=0.8):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, n))
    w *= radius / np.max(np.abs(np.linalg.eigvals(w)))
    return Affine(jnp.asarray(w, jnp.float32), jnp.asarray(rng.normal(size=(n, m)), jnp.float32),
                  jnp.asarray(rng.normal(size=n) * 0.3, jnp.float32))


def affine_root(f: Affine, u):
    w, b_in, bias = (np.asarray(x, np.float64) for x in (f.w, f.b_in, f.bias))
    return np.linalg.solve(np.eye(len(w)) - w, (np.atleast_2d(u) @ b_in.T + bias).T).T


@pytest.mark.parametrize("radius", [0.8, 1.3])
def test_affine_map_unique_fixed_point(radius):
    # Unstable (radius 1.3) as well as stable: minimising q does not care about stability.
    f = random_affine(0, radius=radius)
    u = np.array([0.5, -1.0, 0.2], np.float32)
    h0 = jax.random.normal(jax.random.PRNGKey(0), (N, 6))
    res = find_fixed_points(f, h0, u, **FAST)
    assert bool(res.converged.all())
    q = np.asarray(res.q, np.float64)
    assert np.all(q < res.tol_q)
    # q = 1/2 ||(W - I) e||^2 for the error e, so ||e|| <= sqrt(2 q) / sigma_min(I - W) (plus float32 rounding)
    sigma_min = np.linalg.svd(np.eye(6) - np.asarray(f.w, np.float64), compute_uv=False).min()
    error = np.linalg.norm(np.asarray(res.h, np.float64) - affine_root(f, u), axis=1)
    assert np.all(error <= np.sqrt(2 * q) / sigma_min + 1e-5), (error, np.sqrt(2 * q) / sigma_min)
    np.testing.assert_array_equal(np.asarray(res.u), np.broadcast_to(u, (N, 3)))


def test_one_input_per_start():
    f = random_affine(1)
    u = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (N, 3)))
    h0 = jnp.zeros((N, 6))
    res = find_fixed_points(f, h0, u, **FAST)
    np.testing.assert_allclose(np.asarray(res.h), affine_root(f, u), atol=2e-5)


class TanhNoRecurrence(eqx.Module):
    b_in: jax.Array
    bias: jax.Array

    def __call__(self, h, u):
        return jnp.tanh(0.0 * h + self.b_in @ u + self.bias)


def test_tanh_without_recurrence_first_order_only():
    rng = np.random.default_rng(2)
    b_in, bias = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    u = rng.normal(size=(12, 4)).astype(np.float32)
    f = TanhNoRecurrence(jnp.asarray(b_in), jnp.asarray(bias))
    res = find_fixed_points(f, jnp.zeros((12, 5)), u, tol_q=1e-11, max_newton=0, **FAST)
    assert bool(res.converged.all())
    assert np.all(np.asarray(res.n_newton) == 0) and np.all(np.asarray(res.n_first_order) > 0)
    expected = np.tanh(u.astype(np.float64) @ b_in.T + bias)
    # q < 1e-11 bounds each residual component by sqrt(2e-11); the map is a contraction here.
    np.testing.assert_allclose(np.asarray(res.h), expected, atol=1e-5)


def test_points_stop_independently():
    """A start already at the fixed point takes no step and stays exactly where it is,
    while the others keep going; farther starts need more iterations."""
    f = random_affine(3)
    u = np.zeros(3, np.float32)
    root = affine_root(f, u)[0].astype(np.float32)
    offsets = np.repeat([0.0, 0.01, 1.0, 3.0], N // 4)[:, None]
    h0 = (root + offsets).astype(np.float32)
    assert float(q_value(f, jnp.asarray(root), jnp.asarray(u))) < 1e-10  # the start is converged
    res = find_fixed_points(f, h0, u, max_newton=0, **FAST)
    n = np.asarray(res.n_first_order).reshape(4, N // 4)
    assert np.all(n[0] == 0) and np.array_equal(np.asarray(res.h[0]), root)
    assert np.all(n[1] > 0) and n[1].max() < n[2].min() and n[2].max() <= n[3].min()
    assert bool(res.converged.all())


def test_compaction_keeps_every_point_right():
    """Most starts converge at once, so the batch shrinks (1024 -> 64 rows) between chunks;
    the stragglers must still reach their own input's fixed point."""
    f = random_affine(4)
    rng = np.random.default_rng(4)
    u = rng.normal(size=(1024, 3)).astype(np.float32)
    root = affine_root(f, u).astype(np.float32)
    h0 = root.copy()
    far = rng.choice(1024, size=40, replace=False)
    h0[far] += rng.normal(size=(40, 6)).astype(np.float32)
    res = find_fixed_points(f, h0, u, max_newton=0, chunk_first_order=5, **FAST)
    assert bool(res.converged.all())
    np.testing.assert_allclose(np.asarray(res.h), root, atol=3e-5)
    still = np.setdiff1d(np.arange(1024), far)
    assert np.all(np.asarray(res.n_first_order)[still] == 0)
    assert np.all(np.asarray(res.n_first_order)[far] > 5)  # they ran past the first chunk


class Bistable(eqx.Module):
    """h0 -> tanh(2 h0 + u0): roots 0 and +-a with a = tanh(2a); (h1, h2) rotate and shrink by 0.9."""

    theta: float = 0.3

    def __call__(self, h, u):
        c, s = np.cos(self.theta), np.sin(self.theta)
        rot = 0.9 * jnp.array([[c, -s], [s, c]])
        return jnp.concatenate([jnp.tanh(2.0 * h[:1] + u), rot @ h[1:]])


def test_bistable_system_all_three_points():
    a = scipy.optimize.brentq(lambda x: np.tanh(2 * x) - x, 0.5, 1.0)
    rng = np.random.default_rng(5)
    h0 = np.concatenate([np.linspace(-1.5, 1.5, 31)[:, None], rng.normal(size=(31, 2))], 1)
    res = find_fixed_points(Bistable(), h0.astype(np.float32), np.zeros(1, np.float32), **FAST)
    assert bool(res.converged.all())
    found = np.unique(np.round(np.asarray(res.h), 4), axis=0)
    np.testing.assert_allclose(found, [[-a, 0, 0], [0, 0, 0], [a, 0, 0]], atol=2e-4)


def test_slow_point_is_reported_not_converged():
    """F(h) = h + h^2 + 0.01 has no fixed point; q has a minimum 0.5e-4 at h = 0.
    The polish gives up once its steps stop cutting q (near the minimum) instead of running
    to the cap."""
    step = lambda h, u: h + h**2 + 0.01 + 0 * u
    res = find_fixed_points(step, jnp.array([[0.7], [-0.4]]), jnp.zeros(1), max_newton=100, **FAST)
    assert not bool(res.converged.any())
    np.testing.assert_allclose(np.asarray(res.q), 0.5e-4, rtol=5e-2)
    np.testing.assert_allclose(np.asarray(res.h)[:, 0], 0.0, atol=0.05)
    assert np.all(np.asarray(res.n_newton) < 100)
    # First order only, Adam likewise moves on once its best q stops falling (patience).
    res = find_fixed_points(step, jnp.array([[0.7], [-0.4]]), jnp.zeros(1), max_newton=0, max_first_order=5000,
                            patience=200, **FAST)
    assert not bool(res.converged.any())
    assert np.all(np.asarray(res.n_first_order) < 5000)
    np.testing.assert_allclose(np.asarray(res.q), 0.5e-4, rtol=5e-2)


class LineAttractor(eqx.Module):
    """F(h) = h - 0.5 (I - d d^T)(h - c): every point of the line c + t d is fixed; J - I is singular."""

    d: jax.Array
    c: jax.Array

    def __call__(self, h, u):
        x = h - self.c
        return h - 0.5 * (x - self.d * (self.d @ x))


def test_continuum_of_fixed_points_levenberg_marquardt():
    rng = np.random.default_rng(6)
    d = rng.normal(size=5)
    d /= np.linalg.norm(d)
    c = rng.normal(size=5)
    f = LineAttractor(jnp.asarray(d, jnp.float32), jnp.asarray(c, jnp.float32))
    h0 = rng.normal(size=(8, 5)).astype(np.float32)
    # Levenberg-Marquardt from the first iteration (newton_from_q large).
    res = find_fixed_points(f, h0, np.zeros(1, np.float32), newton_from_q=1e3, **FAST)
    assert bool(res.converged.all())
    assert np.all(np.asarray(res.n_first_order) == 0)
    offset = np.asarray(res.h, np.float64) - c
    off_line = offset - np.outer(offset @ d, d)
    np.testing.assert_allclose(off_line, 0.0, atol=2e-5)


def test_bounds_keep_points_in_the_box():
    f = random_affine(11)
    h0 = 5.0 * jax.random.normal(jax.random.PRNGKey(11), (N, 6))
    res = find_fixed_points(f, h0, np.zeros(3, np.float32), bounds=(-0.05, 0.05), max_first_order=50,
                            max_newton=5, **FAST)
    assert np.all(np.abs(np.asarray(res.h)) <= 0.05)
    root = affine_root(f, np.zeros(3))[0]
    assert np.all(np.asarray(res.converged) == bool(np.all(np.abs(root) <= 0.05)))


def test_verify_float64_is_scoped_and_measures_q():
    f = random_affine(12)
    u = np.array([1.0, 0.0, -1.0], np.float32)
    res = find_fixed_points(f, jnp.zeros((N, 6)), u, **FAST)
    before = jax.config.jax_enable_x64
    checked = verify_float64(f, res, tol_q=1e-30)
    assert jax.config.jax_enable_x64 == before
    assert jnp.zeros(1).dtype == jnp.float32  # the global default is untouched
    # Not polished: q is the float64 residual at the float32 points themselves.
    w, b_in, bias = (np.asarray(x, np.float64) for x in (f.w, f.b_in, f.bias))
    h = np.asarray(res.h, np.float64)
    r = h @ w.T + u.astype(np.float64) @ b_in.T + bias - h
    np.testing.assert_allclose(checked.q, 0.5 * np.sum(r**2, 1), rtol=1e-9)
    assert not checked.converged.any()  # float32 points are never within 1e-30
    polished = verify_float64(f, res, tol_q=1e-24, polish_iters=2)
    np.testing.assert_allclose(polished.h, np.broadcast_to(affine_root(f, u), (N, 6)), atol=1e-12)
    assert np.all(polished.n_newton >= np.asarray(res.n_newton) + 1)


def test_sample_starts():
    states = jnp.array([[0.0, 0.0], [10.0, 10.0]])
    starts = sample_starts(jax.random.PRNGKey(0), states, 400, 0.1)
    assert starts.shape == (400, 2)
    near = np.min(np.linalg.norm(np.asarray(starts)[:, None] - np.asarray(states)[None], axis=-1), axis=1)
    assert near.max() < 0.6 and 0.05 < near.mean() < 0.2  # chi(2) * 0.1 has mean 0.125
    assert np.array_equal(starts, sample_starts(jax.random.PRNGKey(0), states, 400, 0.1))
    assert 0.3 < float(np.mean(np.asarray(starts)[:, 0] > 5)) < 0.7  # both rows drawn


@pytest.mark.parametrize(
    "h0, u, kwargs, message",
    [
        (np.zeros(6), np.zeros(3), {}, "h0 must have shape"),
        (np.zeros((4, 6)), np.zeros((3, 3)), {}, "u must have shape"),
        (np.zeros((4, 6)), np.zeros(2), {}, "step\\(h, u\\) failed"),
        (np.zeros((4, 6), int), np.zeros(3), {}, "floating point"),
        (np.zeros((4, 6)), np.zeros(3), {"tol_q": -1.0}, "tol_q"),
        (np.zeros((4, 6)), np.zeros(3), {"max_newton": 2.5}, "max_newton"),
        (np.zeros((4, 6)), np.zeros(3), {"newton_from_q": 1e-14}, "newton_from_q"),
        (np.zeros((4, 6)), np.zeros(3), {"bounds": (1.0, -1.0)}, "bounds"),
        (np.zeros((4, 6)), np.zeros(3), {"patience": 0}, "patience"),
    ],
)
def test_bad_input_is_rejected(h0, u, kwargs, message):
    with pytest.raises(ValueError, match=message):
        find_fixed_points(random_affine(0), h0, u, **FAST, **kwargs)


def test_step_with_wrong_output_shape_is_rejected():
    with pytest.raises(ValueError, match="must return shape"):
        find_fixed_points(lambda h, u: h[:2], np.zeros((3, 4), np.float32), np.zeros(1, np.float32), **FAST)

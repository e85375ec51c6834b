"""Jacobians, eigendecomposition and labels at fixed points, against closed forms and NumPy."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.optimize
from robustreach.fixed_points import (
    eigendecompose,
    linearisation_error,
    linearise,
    points_table,
    readout_gain,
    spectra_table,
    time_constants,
)

DT = 0.05


class Affine(eqx.Module):
    w: jax.Array
    b_in: jax.Array

    def __call__(self, h, u):
        return self.w @ h + self.b_in @ u


def known_spectrum_matrix(seed=0):
    """S D S^-1 with D = blocks [1.2], 0.9 R(0.3), [-0.5], [0.3]: a non-normal matrix whose
    eigenvalues are known exactly."""
    c, s = np.cos(0.3), np.sin(0.3)
    d = np.zeros((5, 5))
    d[0, 0], d[3, 3], d[4, 4] = 1.2, -0.5, 0.3
    d[1:3, 1:3] = 0.9 * np.array([[c, -s], [s, c]])
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(5, 5)) + 3 * np.eye(5)
    return m @ d @ np.linalg.inv(m)


EXPECTED = np.array([1.2, 0.9 * np.exp(0.3j), 0.9 * np.exp(-0.3j), -0.5, 0.3])


@pytest.mark.parametrize("method", ["jax", "scipy"])
def test_eigendecompose_conventions(method):
    jac = np.stack([known_spectrum_matrix(0), known_spectrum_matrix(1)])
    w, right, left = eigendecompose(jac, method=method)
    for p in range(2):
        np.testing.assert_allclose(w[p], EXPECTED, atol=1e-10)  # sorted, + imaginary first
        np.testing.assert_allclose(jac[p] @ right[p], right[p] * w[p], atol=1e-10)
        np.testing.assert_allclose(left[p].conj().T @ jac[p], w[p][:, None] * left[p].conj().T, atol=1e-10)
        np.testing.assert_allclose(left[p].conj().T @ right[p], np.eye(5), atol=1e-10)  # dual bases
        np.testing.assert_allclose(np.linalg.norm(right[p], axis=0), 1.0)


def test_jax_and_scipy_give_the_same_modes():
    """Eigenvectors are defined up to a phase; the spectral projectors v w^H are not."""
    jac = np.random.default_rng(2).normal(size=(3, 7, 7)).astype(np.float32)
    a, b = eigendecompose(jac, method="jax"), eigendecompose(jac, method="scipy")
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    proj = lambda r, l: np.einsum("pni,pmi->pinm", r, l.conj())
    np.testing.assert_allclose(proj(a[1], a[2]), proj(b[1], b[2]), atol=1e-3)


def test_affine_jacobians_and_input_singular_values():
    rng = np.random.default_rng(3)
    w, b_in = rng.normal(size=(6, 6)).astype(np.float32) * 0.3, rng.normal(size=(6, 2)).astype(np.float32)
    lin = linearise(Affine(jnp.asarray(w), jnp.asarray(b_in)), rng.normal(size=(4, 6)).astype(np.float32),
                    np.zeros(2, np.float32))
    np.testing.assert_allclose(lin.jac_h, np.broadcast_to(w, (4, 6, 6)), atol=1e-6)
    np.testing.assert_allclose(lin.jac_u, np.broadcast_to(b_in, (4, 6, 2)), atol=1e-6)
    ref = np.linalg.eigvals(w.astype(np.float64))
    np.testing.assert_allclose(np.sort(np.abs(lin.eigvals[0]))[::-1], np.sort(np.abs(ref))[::-1], atol=1e-5)
    np.testing.assert_allclose(lin.input_sv[0], np.linalg.svd(b_in, compute_uv=False), rtol=1e-5)


def test_time_constants():
    lam = np.array([0.9, -0.5, 1.0, 2.0, 0.0, 0.9j])
    expected = [-DT / np.log(0.9), -DT / np.log(0.5), np.inf, -DT / np.log(2.0), 0.0, -DT / np.log(0.9)]
    np.testing.assert_allclose(time_constants(lam, DT), expected)
    with pytest.raises(ValueError, match="dt"):
        time_constants(lam, 0.0)


def test_readout_gain_and_overlap():
    lin = linearise(Affine(jnp.diag(jnp.array([0.9, 0.5, 0.1])), jnp.zeros((3, 1))), np.zeros((1, 3), np.float32),
                    np.zeros(1, np.float32))
    readout = np.array([[3.0, 0, 0], [0, 4.0, 0]])  # ||W||_2 = 4
    np.testing.assert_allclose(readout_gain(readout, lin.right)[0], [3, 4, 0], atol=1e-6)
    spectra = spectra_table(lin, dt=DT, readout=readout)
    np.testing.assert_allclose(spectra["readout_overlap"], [0.75, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(spectra["condition"], 1.0, atol=1e-6)  # a normal matrix
    points = points_table(lin, dt=DT, readout=readout)
    np.testing.assert_allclose(points["readout_overlap_lead"], [0.75], atol=1e-6)
    with pytest.raises(ValueError, match="readout"):
        readout_gain(np.ones((2, 4)), lin.right)


class Bistable(eqx.Module):
    """h0 -> tanh(2 h0); (h1, h2) rotate by 0.3 rad and shrink by 0.9."""

    def __call__(self, h, u):
        c, s = np.cos(0.3), np.sin(0.3)
        return jnp.concatenate([jnp.tanh(2.0 * h[:1] + u), 0.9 * jnp.array([[c, -s], [s, c]]) @ h[1:]])


def test_labels_of_a_bistable_system():
    a = scipy.optimize.brentq(lambda x: np.tanh(2 * x) - x, 0.5, 1.0)
    h = np.array([[-a, 0, 0], [0, 0, 0], [a, 0, 0]], np.float32)
    keys = pd.DataFrame({"context": [1.0, 1.0, 2.0], "goal": ["left", "middle", "right"]})
    lin = linearise(Bistable(), h, np.zeros(1, np.float32))
    table = points_table(lin, dt=DT, q=[1e-14, 2e-14, 3e-14], keys=keys, slow_tau=0.4)
    assert table["stability"].tolist() == ["stable", "saddle", "stable"]
    assert table["n_unstable"].tolist() == [0, 1, 0]
    assert table["n_rotational_pairs"].tolist() == [1, 1, 1]
    assert table["n_slow"].tolist() == [2, 2, 2]  # tau of |lambda| = 0.9 is 0.475 > 0.4
    # d/dx tanh(2x) = 2 (1 - tanh^2(2x)) = 2 (1 - x^2) at a root x.
    np.testing.assert_allclose(table["lead_abs"], [0.9, 2.0, 0.9], rtol=1e-5)
    np.testing.assert_allclose(table["lead_tau"], [-DT / np.log(0.9), -DT / np.log(2.0), -DT / np.log(0.9)],
                               rtol=1e-5)
    assert table["context"].tolist() == [1.0, 1.0, 2.0] and table["q"].tolist() == [1e-14, 2e-14, 3e-14]
    spectra = spectra_table(lin, dt=DT, keys=keys)
    assert len(spectra) == 9 and spectra["goal"].tolist() == ["left"] * 3 + ["middle"] * 3 + ["right"] * 3
    saddle = spectra[spectra["point"] == 1]
    np.testing.assert_allclose(saddle["abs"], [2.0, 0.9, 0.9], rtol=1e-5)
    assert saddle["unstable"].tolist() == [True, False, False]
    np.testing.assert_allclose(saddle["frequency"], [0, 0.3 / (2 * np.pi * DT), 0.3 / (2 * np.pi * DT)], atol=1e-4)
    stable_modes = spectra[spectra["point"] == 0]["abs"].to_numpy()
    np.testing.assert_allclose(stable_modes, [0.9, 0.9, 2 * (1 - a**2)], rtol=1e-5)


def test_unstable_label_when_every_mode_grows():
    lin = linearise(Affine(jnp.diag(jnp.array([1.5, -1.1])), jnp.zeros((2, 1))), np.zeros((1, 2), np.float32),
                    np.zeros(1, np.float32))
    assert points_table(lin, dt=DT)["stability"].tolist() == ["unstable"]


def test_affine_linearisation_is_exact():
    rng = np.random.default_rng(4)
    w, b_in = rng.normal(size=(4, 4)).astype(np.float32) * 0.3, rng.normal(size=(4, 2)).astype(np.float32)
    f = Affine(jnp.asarray(w), jnp.asarray(b_in))
    err = linearisation_error(f, np.zeros(4, np.float32), np.zeros(2, np.float32), w, b_in,
                              rng.normal(size=(5, 4)), rng.normal(size=(5, 2)))
    assert np.all(err < 1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="jac"):
        eigendecompose(np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="method"):
        eigendecompose(np.zeros((1, 2, 2)), method="torch")
    lin = linearise(Affine(jnp.eye(2) * 0.5, jnp.zeros((2, 1))), np.zeros((2, 2), np.float32), np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="keys"):
        points_table(lin, dt=DT, keys={"context": [1.0, 2.0, 3.0]})

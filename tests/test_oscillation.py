"""Oscillation measures against signals whose answers are known in closed form."""

import numpy as np
import pytest

from robustreach.oscillation import path_length_ratio, second_order_fit, velocity_reversals

DT = 0.01
T = np.arange(400) * DT


def damped(zeta: float, natural_hz: float, phase: float = 0.3, offset: float = 0.7):
    """x(t) = offset + exp(-zeta w t) cos(w_d t + phase), with its velocity and w_d."""
    w = 2 * np.pi * natural_hz
    a, wd = zeta * w, w * np.sqrt(1 - zeta**2)
    x = offset + np.exp(-a * T) * np.cos(wd * T + phase)
    v = -np.exp(-a * T) * (a * np.cos(wd * T + phase) + wd * np.sin(wd * T + phase))
    return x, v, a, wd


@pytest.mark.parametrize("zeta, natural_hz", [(0.05, 2.0), (0.2, 1.5), (0.6, 0.8)])
def test_fit_recovers_damped_sinusoid(zeta, natural_hz):
    x, _, _, wd = damped(zeta, natural_hz)
    fitted_zeta, fitted_hz = second_order_fit(x, DT)
    assert fitted_zeta == pytest.approx(zeta, rel=1e-6)
    assert fitted_hz == pytest.approx(wd / (2 * np.pi), rel=1e-6)


def test_fit_overdamped_two_exponentials():
    zeta, w = 2.0, 2 * np.pi * 1.0
    s1, s2 = -w * (zeta - np.sqrt(zeta**2 - 1)), -w * (zeta + np.sqrt(zeta**2 - 1))
    x = 1 - (s2 * np.exp(s1 * T) - s1 * np.exp(s2 * T)) / (s2 - s1)  # step response, monotone
    assert np.all(np.diff(x) >= 0)
    fitted_zeta, fitted_hz = second_order_fit(x, DT)
    assert fitted_zeta == pytest.approx(zeta, rel=1e-5)
    assert fitted_hz == 0.0
    assert velocity_reversals(np.gradient(x, DT)) == 0


def test_first_order_approach_has_no_oscillation():
    x = 1 - np.exp(-T / 0.3)
    zeta, hz = second_order_fit(x, DT)
    assert hz == 0.0 and np.isnan(zeta)  # first order: no frequency, damping ratio undefined
    assert velocity_reversals(np.gradient(x, DT)) == 0


def test_flat_signal_gives_nan():
    zeta, hz = second_order_fit(np.full(50, 0.25), DT)
    assert np.isnan(zeta) and np.isnan(hz)


def test_reversals_match_zeros_of_the_analytic_velocity():
    x, v, a, wd = damped(0.1, 1.2)
    # v ~ cos(wd t + phase - atan2(wd, a) ... ): zeros where wd t + phase + atan2(a, wd) = k pi.
    phase = 0.3 + np.arctan2(a, wd)
    k = np.arange(0, 100)
    zeros = (k * np.pi - phase) / wd
    expected = np.sum((zeros > T[0]) & (zeros < T[-1]))
    assert velocity_reversals(v, fraction=0.0) == expected
    # With hysteresis, only reversals whose swing exceeds 5 % of the peak count: fewer, not more.
    assert 0 < velocity_reversals(v) <= expected


def test_reversals_ignore_noise_below_the_threshold():
    rng = np.random.default_rng(0)
    v = np.concatenate([np.sin(np.linspace(0, np.pi, 50)), 1e-3 * rng.standard_normal(200)])
    assert velocity_reversals(v) == 0
    assert velocity_reversals(v, fraction=0.0) > 10  # without hysteresis the noise counts


def test_batched_shapes():
    signals = np.stack([damped(z, 1.0)[0] for z in (0.1, 0.3)])
    zeta, hz = second_order_fit(signals[None], DT)
    assert zeta.shape == (1, 2)
    np.testing.assert_allclose(zeta[0], [0.1, 0.3], rtol=1e-6)


def test_path_length_ratio_closed_forms():
    theta = np.linspace(np.pi, 0, 2001)
    semicircle = np.stack([np.cos(theta), np.sin(theta)], axis=-1)  # from (-1, 0) to (1, 0)
    line = np.linspace([0.0, 0.0], [0.3, 0.4], 50)
    ratios = path_length_ratio(semicircle, [-1, 0], [1, 0])
    assert ratios == pytest.approx(np.pi / 2, rel=1e-6)
    assert path_length_ratio(line, [0, 0], [0.3, 0.4]) == pytest.approx(1.0)
    assert np.isnan(path_length_ratio(line, [0.1, 0.1], [0.1, 0.1]))


def test_fit_window_starts_per_series():
    """Samples before `start` (here a different transient per series) do not enter the fit."""
    x, _, _, wd = damped(0.15, 1.0)
    rng = np.random.default_rng(1)
    signals = np.stack([x, x])
    signals[0, :30] = rng.standard_normal(30)
    signals[1, :80] = 5.0
    zeta, hz = second_order_fit(signals, DT, start=np.array([30, 80]))
    np.testing.assert_allclose(zeta, 0.15, rtol=1e-6)
    np.testing.assert_allclose(hz, wd / (2 * np.pi), rtol=1e-6)
    assert np.isnan(second_order_fit(x, DT, start=len(x) - 3)[0])  # too few samples left

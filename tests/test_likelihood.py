"""Tests of lce_plugins.likelihood against a slow reference, the model's own laws and bad input."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from likelihood_reference import (
    log_pe_pmf,
    log_pe_pmf_direct,
    reference_log_likelihood,
    reference_saturated,
)
from scipy import integrate, special

from lce_plugins import LivePMTs
from lce_plugins.likelihood import (
    calibrated_chi2,
    deviance,
    expected_deviance,
    log_likelihood,
    log_likelihood_derivatives,
    saturated_log_likelihood,
)
from lce_plugins.likelihood._block import block_log_likelihood
from lce_plugins.likelihood._cache import CACHE_ENV, cache_file, load_arrays, store_arrays
from lce_plugins.likelihood._fastmath import exp_in_place, fast_exp, log_in_place
from lce_plugins.likelihood._saddle import SADDLE_MIN_PHOTONS, saddle_log_likelihood
from lce_plugins.likelihood._single import pmt_log_likelihood

P_DPE, SIGMA0 = 0.2, 0.05
RTOL = 1e-8


def assert_close_to_reference(area, mu, sigma, tolerance=RTOL):
    """Values and both derivatives within ``tolerance`` of the reference.

    Tolerances are relative to each quantity's scale, so that near a zero only rounding
    is left: |ln L| (at least 1) for the value; |d1| + 1 for d1 = (1 - p) r1 + p r2 - 1,
    a difference of ratios r_j of order |d1| + 1; and |d2| + d1^2 + 1 for
    d2 = L''/L - d1^2, which the reference forms from two terms of size d1^2 (for
    mu = 1e-3 and an area of 2e4 PE, d1^2 = 6e13 against d2 = -8e9: the reference's own
    rounding is then 1e-7 of d2, while kernel and saddle point agree to 1e-11).
    """
    value, first, second = log_likelihood_derivatives(area, mu, sigma)
    ref_value, ref_first, ref_second = reference_log_likelihood(area, mu, sigma)
    where = f"(area={area}, mu={mu}, sigma={sigma})"
    assert abs(value - ref_value) <= tolerance * max(1.0, abs(ref_value)), where
    assert abs(first - ref_first) <= tolerance * (abs(ref_first) + 1.0), where
    scale = abs(ref_second) + ref_first**2 + 1.0
    assert abs(second - ref_second) <= tolerance * scale, where


# --- the reference itself -------------------------------------------------------------


@pytest.mark.parametrize("mu", [0.05, 1.7, 23.0])
def test_reference_pmf_recursion_equals_the_definition(mu):
    # the reference runs a recursion; it must reproduce the double sum it stands for
    recursion = log_pe_pmf(40, mu, P_DPE)
    for n in (0, 1, 2, 7, 25, 40):
        assert recursion[n] == pytest.approx(log_pe_pmf_direct(n, mu, P_DPE), rel=1e-12)


# --- agreement with the reference over the required range ----------------------------


@pytest.mark.parametrize("sigma", [0.2, 0.45, 0.8])
@pytest.mark.parametrize("mu", [1e-3, 0.3, 2.0, 11.0, 70.0, 400.0, 3000.0, 1e4])
def test_log_likelihood_and_derivatives_match_the_reference_on_a_grid(mu, sigma):
    mean = mu * (1 + P_DPE)
    spread = math.sqrt(mu * 1.6 + 1.0)
    for area in {-1.0, 0.0, 0.7, mean, mean + 3 * spread, max(mean - 3 * spread, -1.0), 2e4}:
        assert_close_to_reference(area, mu, sigma)


def test_log_likelihood_matches_the_reference_at_random_points():
    rng = np.random.default_rng(11)
    for _ in range(60):
        mu = 10 ** rng.uniform(-3, 4)
        sigma = rng.uniform(0.2, 0.8)
        if rng.uniform() < 0.5:
            area = rng.uniform(-1, 20)
        else:
            area = min(mu * 1.2 + rng.normal() * math.sqrt(mu * 1.7 + 1) * 4, 2e4)
        assert_close_to_reference(max(area, -1.0), mu, sigma)


def test_batched_terms_equal_the_one_by_one_path():
    # the block kernel (vectorised exponentials) and the scalar dispatcher are both exact
    rng = np.random.default_rng(3)
    mu = 10 ** rng.uniform(-1, 2.5, 500)
    area = np.clip(rng.poisson(mu * 1.2) + rng.normal(0, 0.4, 500), -1, None)
    sigma = rng.uniform(0.2, 0.8, 500)
    value, first, second = (np.empty(500) for _ in range(3))
    block_log_likelihood(area, mu, sigma, np.log(sigma), P_DPE, SIGMA0, 2, value, first, second)
    single = np.array(
        [pmt_log_likelihood(*x, P_DPE, SIGMA0) for x in zip(area, mu, sigma, strict=True)]
    )
    np.testing.assert_allclose(value, single[:, 0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(first, single[:, 1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(second, single[:, 2], rtol=1e-8, atol=1e-9)


# --- laws of the model ------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("mu", [0.3, 3.0, 30.0, 300.0, 3000.0])
def test_likelihood_integrates_to_one_over_the_area(mu, sigma):
    mean, spread = mu * (1 + P_DPE), math.sqrt(mu * 1.6 * (1 + sigma**2) + 1)
    # the 1-PE Gaussian reaches below zero; 500 points per PE resolve the 0.05 PE baseline
    fine = np.linspace(-8.0, 20.0, 28 * 500 + 1)
    total = integrate.simpson(np.exp(log_likelihood(fine, mu, sigma)), x=fine)
    if mean + 12 * spread > 20.0:
        coarse = np.linspace(20.0, mean + 12 * spread, 40_001)
        total += integrate.simpson(np.exp(log_likelihood(coarse, mu, sigma)), x=coarse)
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("mu", [0.5, 3.0, 40.0, 400.0])
def test_without_resolution_and_double_pe_the_likelihood_is_poisson(mu):
    # sigma -> 0, p_dpe -> 0: L(k | mu) -> Poisson(k; mu) times the Gaussian peak height
    sigma, sigma0 = 1e-3, 1e-3
    counts = np.array([0, 1, 2, int(mu), int(mu * 1.1) + 1])
    value = log_likelihood(counts, mu, sigma, p_dpe=0.0, sigma0=sigma0)
    width = np.where(counts > 0, sigma * np.sqrt(np.maximum(counts, 1)), sigma0)
    poisson = counts * math.log(mu) - mu - special.gammaln(counts + 1)
    np.testing.assert_allclose(
        value + np.log(width * math.sqrt(2 * math.pi)), poisson, rtol=1e-10, atol=1e-10
    )


def test_saddle_point_switch_leaves_no_step_in_value_or_derivatives():
    # along the area at mu = 200 the tilted photon count crosses the switch at 150
    mu, sigma = 200.0, 0.5
    low, high = 100.0, 239.0  # exact below, saddle point above
    for _ in range(60):
        middle = 0.5 * (low + high)
        if saddle_log_likelihood(middle, mu, sigma, P_DPE, SIGMA0)[0]:
            high = middle
        else:
            low = middle
    assert SADDLE_MIN_PHOTONS == 150.0 and high - low < 1e-9
    below = np.array(log_likelihood_derivatives(low, mu, sigma))
    above = np.array(log_likelihood_derivatives(high, mu, sigma))
    assert np.all(np.abs(above - below) <= 1e-8 * (np.abs(below) + 1.0))
    # and no kink along the area either: one-sided slopes agree
    h = 1e-3
    slope_below = (log_likelihood(low, mu, sigma) - log_likelihood(low - h, mu, sigma)) / h
    slope_above = (log_likelihood(high + h, mu, sigma) - log_likelihood(high, mu, sigma)) / h
    assert slope_above == pytest.approx(slope_below, abs=1e-4)
    assert_close_to_reference(low, mu, sigma)
    assert_close_to_reference(high, mu, sigma)


def test_derivatives_equal_finite_differences_of_the_value():
    for area, mu, sigma in [
        (0.3, 0.2, 0.4),
        (5.0, 3.0, 0.3),
        (130.0, 120.0, 0.6),
        (700.0, 900, 0.5),
    ]:
        _, first, second = log_likelihood_derivatives(area, mu, sigma)
        h = 1e-4 * mu
        up, down = log_likelihood(area, mu + h, sigma), log_likelihood(area, mu - h, sigma)
        centre = log_likelihood(area, mu, sigma)
        assert first == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-8)
        assert second == pytest.approx((up - 2 * centre + down) / h**2, rel=1e-3, abs=1e-6)


# --- saturated reference, deviance and its expectation --------------------------------


@pytest.mark.parametrize(
    ("area", "sigma", "tolerance"),
    [
        (-0.4, 0.4, 1e-4),
        (0.0, 0.3, 1e-9),
        (0.25, 0.5, 1e-4),
        (1.5, 0.2, 1e-5),
        (3.3, 0.4, 1e-5),
        (27.0, 0.6, 1e-6),
        (900.0, 0.35, 1e-6),
    ],
)
def test_saturated_table_matches_a_direct_maximisation(area, sigma, tolerance):
    # tolerances as documented in lce_plugins.likelihood.saturated
    assert saturated_log_likelihood(area, sigma) == pytest.approx(
        reference_saturated(area, sigma), abs=tolerance
    )


def test_deviance_is_zero_when_mu_is_the_best_fit_of_every_pmt():
    # mu = 0 is the saturated fit of an area of 0 (the baseline wins)
    area = np.zeros((3, 5))
    assert np.all(deviance(area, np.zeros((3, 5)), 0.4) == pytest.approx(0.0, abs=1e-12))


def _simulated_events(truth_response, n_photons, n_events, seed):
    """Areas drawn at the true mu of events spread over the TPC (the exact PMT model)."""
    from lce_plugins.simulation import default_detector
    from lce_plugins.simulation.kr83m import _pmt_response

    rng = np.random.default_rng(seed)
    radius, angle = 60.0 * np.sqrt(rng.uniform(size=n_events)), rng.uniform(0, 2 * np.pi, n_events)
    mu = n_photons * truth_response.lce(radius * np.cos(angle), radius * np.sin(angle))
    detector = default_detector()
    sigma = detector.spe_resolution[:253]
    area, _ = _pmt_response(rng, mu, sigma, P_DPE, SIGMA0)
    return area, mu, sigma, detector.live_pmts


@pytest.mark.parametrize("n_photons", [150.0, 5000.0])
def test_mean_deviance_of_simulated_events_equals_the_expected_deviance(n_photons, truth_response):
    area, mu, sigma, live = _simulated_events(truth_response, n_photons, 600, int(n_photons))
    observed = deviance(area, mu, sigma, live=live).mean()
    expected = expected_deviance(mu, sigma, live=live).mean()
    assert observed == pytest.approx(expected, rel=0.02)
    # at low light the plain deviance per live PMT is not 1, the calibrated ratio is
    assert calibrated_chi2(area, mu, sigma, live=live).mean() == pytest.approx(1.0, abs=0.02)


def test_expected_deviance_vanishes_without_light_and_tends_to_one_per_pmt_with_much():
    # Wilks: one free mean per PMT, chi^2 with one degree of freedom at high counts
    per_pmt = expected_deviance(np.array([[0.0], [1e4], [1e6]]), 0.4)
    assert per_pmt[0] < 0.01
    np.testing.assert_allclose(per_pmt[1:], 1.0, atol=1e-3)


def test_parallel_and_serial_deviance_are_identical(truth_response):
    area, mu, sigma, live = _simulated_events(truth_response, 2000.0, 200, seed=5)
    parallel = deviance(area, mu, sigma, live=live, parallel=True)
    serial = deviance(area, mu, sigma, live=live, parallel=False)
    np.testing.assert_array_equal(parallel, serial)


def test_deviance_from_several_threads_at_once_is_correct(truth_response):
    area, mu, sigma, live = _simulated_events(truth_response, 2000.0, 300, seed=6)
    expected = deviance(area, mu, sigma, live=live, parallel=False)
    results = [None] * 4

    def work(slot):
        results[slot] = deviance(area, mu, sigma, live=live, parallel=True)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_array_equal(result, expected)


# --- edge cases -------------------------------------------------------------------------


@pytest.mark.parametrize("p_dpe", [0.0, P_DPE])
def test_zero_mu_gives_the_baseline_likelihood_even_far_above_the_noise(p_dpe):
    value, first, second = log_likelihood_derivatives([0.01, 3.0, 50.0], 0.0, 0.4, p_dpe)
    baseline = -0.5 * (np.array([0.01, 3.0, 50.0]) / SIGMA0) ** 2 - math.log(
        SIGMA0 * math.sqrt(2 * math.pi)
    )
    np.testing.assert_allclose(value, baseline, rtol=1e-12)
    assert first[0] < 0  # near zero area, light would only hurt
    assert first[2] == np.inf and second[2] == -np.inf  # overflow, never NaN


def test_dead_pmts_are_ignored_even_when_they_hold_nan(truth_response):
    area, mu, sigma, live = _simulated_events(truth_response, 3000.0, 20, seed=8)
    reference = deviance(area, mu, sigma, live=live)
    area[:, ~live.mask], mu[:, ~live.mask] = np.nan, -1.0
    np.testing.assert_array_equal(deviance(area, mu, sigma, live=live), reference)
    np.testing.assert_array_equal(deviance(area, mu, sigma, live=live.mask), reference)


def test_all_zero_events_and_events_without_live_pmts_are_defined():
    area, mu = np.zeros((2, 4)), np.full((2, 4), 2.0)
    live = np.array([[True] * 4, [False] * 4])
    result = deviance(area, mu, 0.5, live=live)
    assert np.isfinite(result[0]) and result[0] > 0 and result[1] == 0.0
    with pytest.warns(UserWarning, match="no live PMT"):
        chi2 = calibrated_chi2(area, mu, 0.5, live=live)
    assert np.isfinite(chi2[0]) and np.isnan(chi2[1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    area=st.floats(-5.0, 3e4),
    mu=st.one_of(st.just(0.0), st.floats(1e-300, 1e-3), st.floats(1e-3, 1.2e4)),
    sigma=st.floats(0.1, 1.0),
)
def test_odd_inputs_give_finite_likelihoods_below_the_saturated_one(area, mu, sigma):
    value, first, second = log_likelihood_derivatives(area, mu, sigma)
    assert np.isfinite(value)
    assert not np.isnan(first) and not np.isnan(second)
    assert value <= saturated_log_likelihood(area, sigma) + 1e-4


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(area=[1.0, np.nan], mu=1.0, sigma=0.4), "area must be finite"),
        (dict(area=[1.0, np.inf], mu=1.0, sigma=0.4), "area must be finite"),
        (dict(area=1.0, mu=[1.0, -0.5], sigma=0.4), "mu .* must be >= 0"),
        (dict(area=1.0, mu=np.nan, sigma=0.4), "mu must be finite"),
        (dict(area=1.0, mu=1.0, sigma=0.0), "sigma .* must be > 0"),
        (dict(area=[1.0, 2.0], mu=[1.0, 2.0, 3.0], sigma=0.4), "must broadcast together"),
        (dict(area=1.0, mu=1.0, sigma=0.4, p_dpe=1.0), "p_dpe .* must lie in"),
        (dict(area=1.0, mu=1.0, sigma=0.4, sigma0=-1.0), "sigma0 .* must be > 0"),
    ],
)
def test_bad_input_to_log_likelihood_raises_a_clear_error(arguments, message):
    with pytest.raises(ValueError, match=message):
        log_likelihood(**arguments)


def test_non_numeric_input_raises_a_type_error():
    with pytest.raises(TypeError, match="area must be numeric"):
        log_likelihood("many", 1.0, 0.4)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (dict(area=np.ones(5), mu=np.ones(5)), ValueError, "shape \\(n_events, n_pmts\\)"),
        (
            dict(area=np.ones((2, 5)), mu=np.ones((2, 4))),
            ValueError,
            "shape \\(n_events, n_pmts\\)",
        ),
        (dict(live=np.ones(4, bool)), ValueError, "live must have shape"),
        (dict(live=np.ones(5)), TypeError, "live must be boolean"),
        (dict(live=LivePMTs.all_live()), ValueError, "LivePMTs mask describes the 253"),
        (dict(sigma=0.05), ValueError, "sigma must lie in \\[0.1, 1.0\\]"),
        (dict(mu=-np.ones((2, 5))), ValueError, "mu .* must be >= 0"),
    ],
)
def test_bad_input_to_deviance_raises_a_clear_error(arguments, error, message):
    call = dict(area=np.ones((2, 5)), mu=np.ones((2, 5)), sigma=0.4) | arguments
    with pytest.raises(error, match=message):
        deviance(**call)


def test_bad_input_to_the_saturated_and_expected_deviance_raises():
    with pytest.raises(ValueError, match="sigma must lie in"):
        saturated_log_likelihood(1.0, 1.5)
    with pytest.raises(ValueError, match="area and sigma must broadcast"):
        saturated_log_likelihood([1.0, 2.0], [0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match="area must be finite"):
        saturated_log_likelihood(np.nan, 0.4)
    with pytest.raises(ValueError, match="mu .* must be >= 0"):
        expected_deviance(-np.ones((1, 3)), 0.4)


# --- table cache and numerical building blocks ----------------------------------------------


def test_table_cache_round_trips_and_ignores_broken_files(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path = cache_file("saturated", ("a key",))
    store_arrays(path, {"values": np.arange(3.0)})
    np.testing.assert_array_equal(load_arrays(path, ("values",))["values"], np.arange(3.0))
    for broken in (b"not a table", path.read_bytes()[:40]):  # garbage, truncated zip
        path.write_bytes(broken)
        with caplog.at_level("WARNING"):
            assert load_arrays(path, ("values",)) is None
        assert "unreadable" in caplog.text
    monkeypatch.setenv(CACHE_ENV, "")
    assert cache_file("saturated", ("a key",)) is None


def test_fast_exponentials_and_logarithms_are_accurate_to_a_few_ulp():
    arguments = np.linspace(-699.9, 700.0, 200_001)
    values = arguments.copy()
    exp_in_place(values, values.size, np.empty_like(values))
    np.testing.assert_allclose(values, np.exp(arguments), rtol=1e-15)
    small = np.linspace(-288.0, 16.0, 3001)
    np.testing.assert_allclose([fast_exp(y) for y in small], np.exp(small), rtol=1e-15)
    positives = np.exp(np.linspace(-700, 700, 200_001))
    logs = positives.copy()
    log_in_place(logs, logs.size, np.empty_like(logs))
    np.testing.assert_allclose(logs, np.log(positives), rtol=1e-15, atol=1e-15)
    below = np.array([-700.0, -800.0])
    exp_in_place(below, 2, np.empty(2))
    assert np.all(below == 0.0)

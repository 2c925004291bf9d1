import numpy as np
import pytest
from conftest import CLEAN_DETECTOR
from scipy import stats

from lce_plugins import geometry, pmt_response
from lce_plugins.pattern_fit import fit_positions_pattern
from lce_plugins.simulation import (
    DetectorConfig,
    Kr83mSource,
    build_detector,
    default_detector,
    simulate_kr83m,
    simulate_slice,
    truth_map,
)
from lce_plugins.simulation.initial import initial_positions
from lce_plugins.simulation.kr83m import _clip_saturated, _pmt_response
from lce_plugins.simulation.response import bottom_array_lce

TOP = geometry.N_TOP_PMTS


def _pe_count_pmf(mu, p_dpe, n_max):
    """P(n) of n = N1 + 2 N2, N1 ~ Poisson(mu (1 - p)), N2 ~ Poisson(mu p)."""
    singles = stats.poisson.pmf(np.arange(n_max + 1), mu * (1 - p_dpe))
    doubles = stats.poisson.pmf(np.arange(n_max // 2 + 1), mu * p_dpe)
    pmf = np.zeros(n_max + 1)
    for k, weight in enumerate(doubles):
        pmf[2 * k :] += weight * singles[: n_max + 1 - 2 * k]
    return pmf


def _area_cdf(area, mu, sigma, p_dpe, noise):
    """CDF of one channel's area under Poisson x double-PE x Gaussian."""
    pmf = _pe_count_pmf(mu, p_dpe, 80)
    n = np.arange(1, 81)
    gaussians = stats.norm.cdf((area[:, None] - n) / (sigma * np.sqrt(n)))
    return pmf[0] * stats.norm.cdf(area / noise) + gaussians @ pmf[1:]


@pytest.mark.parametrize("p_dpe_model", [0.2, 0.0])
def test_one_channel_area_distribution_is_poisson_times_dpe_times_gaussian(p_dpe_model):
    mu, sigma, noise = 2.5, 0.4, 0.05
    rng = np.random.default_rng(3)
    area, _ = _pmt_response(rng, np.full(100_000, mu), sigma, 0.2, noise)
    pvalue = stats.kstest(area, lambda a: _area_cdf(a, mu, sigma, p_dpe_model, noise)).pvalue
    if p_dpe_model == 0.2:
        assert pvalue > 1e-3
    else:  # the same test rejects a model without double-PE emission
        assert pvalue < 1e-10


def _per_pmt_pulls(peaks, truth, mean_pe_per_photon):
    """(observed - expected) / error of each live top PMT's summed area."""
    detector = build_detector(CLEAN_DETECTOR)
    p_dpe, sigma = detector.config.p_dpe, detector.spe_resolution[:TOP]
    mu = truth["n_photons_truth"][:, None] * truth_map(detector).lce(
        truth["x_truth"], truth["y_truth"]
    )
    observed = peaks["area_per_channel"][:, :TOP].sum(axis=0, dtype=np.float64)
    expected = mean_pe_per_photon * mu.sum(axis=0)
    second_moment = 1 + 3 * p_dpe + sigma**2 * (1 + p_dpe)  # E[area**2] per photon
    error = np.sqrt(second_moment * mu.sum(axis=0))
    return ((observed - expected) / error)[detector.live_pmts.mask]


def test_mean_area_per_pmt_is_truth_response_times_photons_times_one_plus_p_dpe(clean_run):
    pulls = _per_pmt_pulls(*clean_run, pmt_response.mean_pe_per_photon(0.2))
    assert np.mean(pulls**2) == pytest.approx(1.0, abs=0.3)
    assert np.max(np.abs(pulls)) < 4.5


def test_mean_area_per_pmt_test_would_notice_a_missing_double_pe_factor(clean_run):
    pulls = _per_pmt_pulls(*clean_run, 1.0)
    assert np.mean(pulls**2) > 100


def test_bottom_array_sees_its_share_of_the_light(clean_run):
    peaks, truth = clean_run
    detector = build_detector(CLEAN_DETECTOR)
    mu = truth["n_photons_truth"].sum() * bottom_array_lce(CLEAN_DETECTOR)
    observed = peaks["area_per_channel"][:, TOP:].sum(axis=0, dtype=np.float64)
    sigma = detector.spe_resolution[TOP:]
    error = np.sqrt((1 + 3 * 0.2 + sigma**2 * 1.2) * mu)
    pulls = (observed - 1.2 * mu) / error
    assert np.mean(pulls**2) == pytest.approx(1.0, abs=0.3)
    assert np.max(np.abs(pulls)) < 4.5
    assert 0.6 < np.median(peaks["area_fraction_top"]) < 0.8


def test_positions_are_uniform_in_r_squared(small_run):
    _, truth = small_run
    r2 = (truth["x_truth"] ** 2 + truth["y_truth"] ** 2) / geometry.TPC_RADIUS_CM**2
    assert r2.max() <= 1.0
    assert stats.kstest(r2, "uniform").pvalue > 1e-3


def test_a_non_uniform_density_can_be_chosen():
    def central(x, y):
        return np.exp(-(x**2 + y**2) / (2 * 30.0**2))

    _, truth = simulate_kr83m(1000, seed=4, density=central)
    r2 = (truth["x_truth"] ** 2 + truth["y_truth"] ** 2) / geometry.TPC_RADIUS_CM**2
    assert stats.kstest(r2, "uniform").pvalue < 1e-6


def test_dead_pmts_read_zero(small_run):
    peaks, _ = small_run
    dead = list(default_detector().live_pmts.dead_channels)
    assert len(dead) == 7
    assert np.all(peaks["area_per_channel"][:, dead] == 0)
    assert np.all(
        peaks["area_per_channel"][:, :TOP].sum(axis=0)[default_detector().live_pmts.mask] > 0
    )


def test_about_one_to_two_percent_of_peaks_merge_a_second_s2(small_run):
    _, truth = small_run
    outliers = truth["is_outlier"]
    assert 0.005 < outliers.mean() < 0.03
    assert np.all(np.isfinite(truth["x_secondary_truth"][outliers]))
    assert np.all(np.isnan(truth["x_secondary_truth"][~outliers]))


def test_a_few_peaks_have_saturated_channels_that_are_flagged(small_run):
    peaks, _ = small_run
    flagged = peaks["saturated_channel"].astype(bool)
    assert np.array_equal(peaks["n_saturated_channels"], flagged.sum(axis=1))
    assert 0.005 < (peaks["n_saturated_channels"] > 0).mean() < 0.1
    # saturation hits the brightest channels of a peak
    brightest = np.argmax(peaks["area_per_channel"], axis=1)
    with_saturation = peaks["n_saturated_channels"] > 0
    assert np.mean(flagged[with_saturation, brightest[with_saturation]]) > 0.9


def test_clipping_keeps_the_integral_of_the_clipped_gaussian_pulse():
    area, sigma_ns, level = np.array([[50.0, 900.0]]), np.array([300.0]), 1.0
    clipped, saturated = _clip_saturated(area, sigma_ns, level)
    t = np.linspace(-3000, 3000, 600_001)
    pulse = 900.0 * stats.norm.pdf(t, scale=300.0)
    assert clipped[0, 0] == 50.0 and not saturated[0, 0]
    assert saturated[0, 1]
    assert clipped[0, 1] == pytest.approx(np.trapezoid(np.minimum(pulse, level), t), rel=1e-6)


def test_the_top_array_sees_several_thousand_pe(small_run):
    peaks, _ = small_run
    assert 3_000 < np.median(peaks["area_per_channel"][:, :TOP].sum(axis=1)) < 10_000


def test_peaks_are_time_ordered_s2s_with_consistent_fields(small_run):
    peaks, truth = small_run
    assert peaks.dtype["area_per_channel"].shape == (geometry.N_TPC_PMTS,)
    assert np.all(peaks["type"] == 2)
    endtime = peaks["time"] + peaks["length"] * peaks["dt"]
    assert np.all(endtime[:-1] < peaks["time"][1:])
    np.testing.assert_array_equal(truth["endtime"], endtime)
    np.testing.assert_allclose(peaks["area"], peaks["area_per_channel"].sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(peaks["data"].sum(axis=1), peaks["area"], rtol=1e-4)
    assert np.all(peaks["length"] <= 200) and np.all(peaks["width"][:, 5] > 0)


def _assert_records_equal(actual, desired):
    assert actual.dtype == desired.dtype
    for name in desired.dtype.names:  # field by field: NaN equals NaN
        np.testing.assert_array_equal(actual[name], desired[name])


def test_the_same_seed_gives_the_same_run_and_slices_match_the_run():
    peaks, truth = simulate_kr83m(1200, seed=21)
    again, _ = simulate_kr83m(1200, seed=21)
    part, part_truth = simulate_slice(21, 700, 1100, n_events=1200)
    _assert_records_equal(peaks, again)
    _assert_records_equal(part, peaks[700:1100])
    _assert_records_equal(part_truth, truth[700:1100])
    other, _ = simulate_kr83m(1200, seed=22)
    assert not np.array_equal(other["area_per_channel"], peaks["area_per_channel"])


def test_nominal_map_positions_are_compressed_against_truth(small_run):
    peaks, truth = small_run
    r_true = np.hypot(truth["x_truth"], truth["y_truth"])
    near_wall = (r_true > 55) & (r_true < 64) & ~truth["is_outlier"]
    peaks, r_true = peaks[near_wall], r_true[near_wall]
    detector = default_detector()
    area, saturated = peaks["area_per_channel"], peaks["saturated_channel"]
    fits = {
        "nominal": initial_positions(area, saturated_channel=saturated),
        "truth": fit_positions_pattern(
            area, truth_map(), saturated_channel=saturated,
            spe_resolution=detector.spe_resolution[:TOP],
        ),
    }  # fmt: skip
    shifts = {}
    for name, fit in fits.items():
        shift = np.hypot(fit["x"], fit["y"]) - r_true
        shifts[name] = (np.median(shift), 1.25 * np.std(shift) / np.sqrt(shift.size))
    median, error = shifts["nominal"]
    assert median < -0.1 and median + 5 * error < 0  # pulled inwards by more than 1 mm
    median, error = shifts["truth"]
    assert abs(median) < 4 * error + 0.01  # the true response gives unbiased positions


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: simulate_kr83m(-1), ValueError, "n_events must be >= 0; got -1"),
        (lambda: simulate_kr83m(1.5), TypeError, "n_events must be an integer; got float"),
        (lambda: simulate_kr83m(10, seed=-3), ValueError, "seed must be a non-negative integer"),
        (lambda: simulate_kr83m(10, density="blob"), ValueError, "density must be 'uniform'"),
        (lambda: DetectorConfig(p_dpe=1.5), ValueError, r"out of range: p_dpe=1.5"),
        (lambda: Kr83mSource(rate_hz=0), ValueError, r"out of range: rate_hz=0"),
        (lambda: build_detector("default"), TypeError, "Expected a DetectorConfig; got str"),
        (lambda: truth_map(42), TypeError, "Expected a Detector, a DetectorConfig or None"),
    ],
)
def test_bad_simulation_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_an_empty_run_has_no_peaks():
    peaks, truth = simulate_kr83m(0)
    assert len(peaks) == len(truth) == 0

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import optimize
from strategies import area_per_channel

from lce_plugins import LCEMap
from lce_plugins.likelihood import deviance, expected_deviance, log_likelihood
from lce_plugins.reconstruction import FitStatus, reconstruct_positions, reconstruction_dtype

#: Events this far inside the wall: the fits there are free of the wall's clipping.
BULK_RADIUS_CM = 55.0


@pytest.fixture(scope="module")
def clean_fit(clean_run, truth_response):
    """Cold-start fits of the clean run with the true map."""
    peaks, _ = clean_run
    return reconstruct_positions(peaks["area_per_channel"], truth_response)


@pytest.fixture(scope="module")
def bulk(clean_run):
    """Indices of the clean run's events in the bulk."""
    _, truth = clean_run
    return np.flatnonzero(np.hypot(truth["x_truth"], truth["y_truth"]) < BULK_RADIUS_CM)


def _top_area(peaks, events):
    return peaks["area_per_channel"][events, :253].astype(np.float64)


def _assert_same_optimum(fit, reference):
    """Fits converge to within about a hundredth of their uncertainty (a few per cent for
    the odd event)."""
    for name in ("x", "y"):
        difference = np.abs(fit[name] - reference[name]) / reference[f"{name}_err"]
        assert np.quantile(difference, 0.98) < 0.03
        assert difference.max() < 0.1


def test_positions_with_the_true_map_are_unbiased_with_unit_width_pulls(clean_run, clean_fit):
    _, truth = clean_run
    assert np.all(clean_fit["status"] == FitStatus.OK)
    inner = np.hypot(truth["x_truth"], truth["y_truth"]) < 60.0
    fit, truth = clean_fit[inner], truth[inner]
    radial_bias = np.hypot(fit["x"], fit["y"]) - np.hypot(truth["x_truth"], truth["y_truth"])
    assert abs(np.median(radial_bias)) < 0.05 * np.median(fit["x_err"])
    for axis in ("x", "y"):
        pulls = (fit[axis] - truth[f"{axis}_truth"]) / fit[f"{axis}_err"]
        assert 0.93 < np.std(pulls) < 1.07, axis
        assert abs(np.mean(pulls)) < 0.08, axis
    light_pulls = (fit["n_photons"] - truth["n_photons_truth"]) / fit["n_photons_err"]
    assert 0.93 < np.std(light_pulls) < 1.07
    assert abs(np.mean(light_pulls)) < 0.08


def test_mean_deviance_matches_its_expectation_less_three_fitted_parameters(
    clean_fit, truth_response
):
    mu = clean_fit["n_photons"][:, None] * truth_response.lce(clean_fit["x"], clean_fit["y"])
    expected = expected_deviance(
        mu, truth_response.spe_resolution, truth_response.p_dpe, live=truth_response.live_pmts
    )
    ratio = clean_fit["deviance"].mean() / expected.mean()
    # fitting (x, y, N) lowers the deviance by about 3 on average
    assert ratio == pytest.approx(1.0 - 3.0 / expected.mean(), abs=0.01)


def _reference_fit(area, lce_map, start):
    """Nelder-Mead on the public ln L: slow, independent of the package's fit."""
    live = lce_map.live_pmts.mask

    def negative_log_likelihood(parameters):
        x, y, log_light = parameters
        mu = np.exp(log_light) * lce_map.lce(x, y, parallel=False)[0]
        values = log_likelihood(area[live], mu[live], lce_map.spe_resolution[live],
                                lce_map.p_dpe, parallel=False)  # fmt: skip
        return -values.sum()

    simplex = start + np.array([[0, 0, 0], [0.3, 0, 0], [0, 0.3, 0], [0, 0, 0.03]])
    options = dict(initial_simplex=simplex, xatol=1e-7, fatol=1e-10, maxiter=5000)
    return optimize.minimize(negative_log_likelihood, start, method="Nelder-Mead",
                             options=options).x  # fmt: skip


def test_the_optimum_agrees_with_a_scipy_maximisation_of_the_public_likelihood(
    clean_run, clean_fit, bulk, truth_response
):
    peaks, truth = clean_run
    events = bulk[:4]
    for event in events:
        start = np.array([truth["x_truth"][event], truth["y_truth"][event],
                          np.log(truth["n_photons_truth"][event])], dtype=float)  # fmt: skip
        x, y, log_light = _reference_fit(_top_area(peaks, event), truth_response, start)
        fit = clean_fit[event]
        # converged to within a few hundredths of the uncertainties
        assert fit["x"] == pytest.approx(x, abs=0.05 * float(fit["x_err"]))
        assert fit["y"] == pytest.approx(y, abs=0.05 * float(fit["y_err"]))
        assert fit["n_photons"] == pytest.approx(
            np.exp(log_light), abs=0.05 * float(fit["n_photons_err"])
        )


def test_the_deviance_is_the_likelihood_modules_deviance_at_the_fitted_mu(
    clean_run, clean_fit, bulk, truth_response
):
    # ln L at the end of the last step is its quadratic model's: off by up to about 1e-3
    # for bulk single S2s, against a statistical spread of the deviance of about 22
    peaks, _ = clean_run
    # on the map itself: the tabulated fits' deviance is the table's (tests/test_lce_grid.py)
    fit = reconstruct_positions(_top_area(peaks, bulk[:50]), truth_response, tabulated=False)
    mu = fit["n_photons"][:, None] * truth_response.lce(fit["x"], fit["y"])
    reference = deviance(_top_area(peaks, bulk[:50]), mu, truth_response.spe_resolution,
                         truth_response.p_dpe, live=truth_response.live_pmts)  # fmt: skip
    np.testing.assert_allclose(fit["deviance"], reference, rtol=0, atol=3e-3)
    assert np.all(fit["ndf"] == truth_response.live_pmts.n_live - 3)


def test_a_warm_start_from_the_fit_returns_it_in_one_iteration(
    clean_run, clean_fit, bulk, truth_response
):
    peaks, _ = clean_run
    cold = clean_fit[bulk[:300]]
    warm = reconstruct_positions(peaks["area_per_channel"][bulk[:300]], truth_response,
                                 start=cold)  # fmt: skip
    assert np.all(warm["status"] == FitStatus.OK)
    assert np.median(warm["n_iterations"]) == 1
    _assert_same_optimum(warm, cold)
    np.testing.assert_allclose(warm["n_photons"], cold["n_photons"], rtol=1e-5)


def test_a_warm_start_from_the_true_positions_reaches_the_cold_start_optimum(
    clean_run, clean_fit, bulk, truth_response
):
    peaks, truth = clean_run
    events = bulk[:300]
    start = (truth["x_truth"][events], truth["y_truth"][events])
    warm = reconstruct_positions(peaks["area_per_channel"][events], truth_response, start=start)
    assert np.all(warm["status"] == FitStatus.OK)
    _assert_same_optimum(warm, clean_fit[events])


def test_events_with_a_nan_start_are_seeded_as_usual(clean_run, clean_fit, truth_response):
    peaks, _ = clean_run
    start = np.full(3, np.nan), np.full(3, np.nan), np.full(3, np.nan)
    fit = reconstruct_positions(peaks["area_per_channel"][:3], truth_response, start=start)
    np.testing.assert_array_equal(fit, clean_fit[:3])


def test_saturated_channels_are_left_out(clean_run, bulk, truth_response):
    peaks, _ = clean_run
    area = _top_area(peaks, bulk[:1])
    brightest = np.argmax(area[0])
    saturated = np.zeros(area.shape, dtype=np.int8)
    saturated[0, brightest] = 1
    spoiled = area.copy()
    spoiled[0, brightest] *= 0.3  # a clipped pulse
    free = reconstruct_positions(area, truth_response)
    flagged = reconstruct_positions(area, truth_response, saturated_channel=saturated)
    clipped = reconstruct_positions(spoiled, truth_response, saturated_channel=saturated)
    np.testing.assert_array_equal(clipped, flagged)
    assert flagged["ndf"][0] == free["ndf"][0] - 1
    assert flagged["x"][0] == pytest.approx(free["x"][0], abs=float(free["x_err"][0]))


def test_bad_events_get_a_status_and_nan_numbers_not_an_error(clean_run, truth_response):
    peaks, _ = clean_run
    good = _top_area(peaks, [0])[0]
    live = truth_response.live_pmts.mask
    dead = np.flatnonzero(~live)[0]
    brightest = np.argmax(good)
    area = np.tile(good, (7, 1))
    area[0, brightest] = np.nan  # NaN on a used PMT
    area[1] = 0.0  # no light
    area[2] = 0.0
    area[2, brightest] = 500.0  # one lit PMT
    area[4, dead] = np.nan  # NaN on a dead PMT does not matter
    other_live = np.flatnonzero(live & (np.arange(live.size) != brightest))[0]
    area[6, other_live] = -50.0  # far below baseline noise: a broken reading
    saturated = np.zeros(area.shape, dtype=bool)
    saturated[3] = good > 0.5  # every lit PMT saturated
    fit = reconstruct_positions(area, truth_response, saturated_channel=saturated)
    ok, invalid, too_few = FitStatus.OK, FitStatus.INVALID_INPUT, FitStatus.TOO_FEW_PMTS
    expected = [invalid, FitStatus.NO_LIGHT, too_few, too_few, ok, ok, invalid]
    assert list(fit["status"]) == expected
    for field in ("x", "y", "x_err", "n_photons", "deviance"):
        assert np.isnan(fit[field][:4]).all(), field
    assert fit["x"][4] == fit["x"][5]


def test_empty_input_gives_an_empty_result(truth_response):
    fit = reconstruct_positions(np.zeros((0, 494)), truth_response)
    assert fit.shape == (0,)
    assert fit.dtype == reconstruction_dtype()


@settings(max_examples=30, deadline=None)
@given(area=area_per_channel())
def test_fits_of_odd_areas_never_raise_and_report_finite_numbers_inside_the_tpc(
    truth_response, area
):
    fit = reconstruct_positions(area, truth_response, parallel=False)
    assert len(fit) == len(area)
    ok = fit["status"] == FitStatus.OK
    assert np.all(np.hypot(fit["x"][ok], fit["y"][ok]) < truth_response.radius_cm)
    for field in ("x", "y", "n_photons", "deviance"):
        assert np.isfinite(fit[field][ok]).all(), field


def test_serial_and_parallel_fits_are_identical(small_run, truth_response):
    peaks, _ = small_run
    events = slice(0, 100)  # above the parallel threshold
    arguments = (peaks["area_per_channel"][events], truth_response)
    saturated = peaks["saturated_channel"][events]
    serial = reconstruct_positions(*arguments, saturated_channel=saturated, parallel=False)
    parallel = reconstruct_positions(*arguments, saturated_channel=saturated, parallel=True)
    np.testing.assert_array_equal(parallel, serial)


def test_parallel_fits_from_several_threads_at_once_agree(small_run, truth_response):
    # Numba's default threading layer must not be entered twice: one call runs serially
    peaks, _ = small_run
    area = peaks["area_per_channel"][100:200]
    reference = reconstruct_positions(area, truth_response, parallel=False)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: reconstruct_positions(area, truth_response), range(3)))
    for result in results:
        np.testing.assert_array_equal(result, reference)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(area_per_channel=np.zeros((3, 100))), ValueError, r"\(n_events, 253\) or"),
        (dict(area_per_channel=np.zeros(253)), ValueError, r"got \(253,\)"),
        (dict(area_per_channel=np.full((3, 494), "a")), TypeError, "must be numeric"),
        (dict(saturated_channel=np.zeros((2, 494))), ValueError, "has 2 rows; area_per_channel"),
        (dict(lce_map="truth"), TypeError, "must be an LCEMap .*; got str"),
        (dict(start=(np.zeros(3),)), ValueError, r"start must be \(x, y\)"),
        (dict(start=(np.zeros(2), np.zeros(2))), ValueError, r"shape \(3,\), one value per event"),
        (dict(start=(np.zeros(3), np.array(list("abc")))), TypeError, "start y must be real"),
        (dict(start=np.zeros(3, dtype=[("r", float)])), ValueError, "fields 'x' and 'y'"),
        (dict(sigma0=-1.0), ValueError, "sigma0 .* must be > 0 PE; got -1.0"),
    ],
)
def test_bad_inputs_raise_clear_errors(truth_response, kwargs, error, match):
    arguments = dict(area_per_channel=np.ones((3, 494)), lce_map=truth_response) | kwargs
    area, lce_map = arguments.pop("area_per_channel"), arguments.pop("lce_map")
    with pytest.raises(error, match=match):
        reconstruct_positions(area, lce_map, **arguments)


def test_a_map_whose_resolutions_leave_the_likelihood_tables_is_refused(truth_response):
    lce_map = LCEMap(truth_response, spe_resolution=np.full(253, 1.5), p_dpe=0.2)
    with pytest.raises(ValueError, match=r"must lie in \[0.1, 1.0\] PE .*got 1.5 to 1.5 PE"):
        reconstruct_positions(np.ones((1, 253)), lce_map)

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import area_per_channel

from lce_plugins.pattern_fit import FitStatus, fit_positions_pattern

MEAN_PE_PER_PHOTON = 1.2


def _expected_areas(response, x, y, n_photons=60_000.0):
    return n_photons * MEAN_PE_PER_PHOTON * response.lce(x, y)


def test_fit_of_noise_free_patterns_recovers_the_position(truth_response, rng):
    r = np.concatenate([[0.0, 30.0, 60.0, 65.0, 66.0], rng.uniform(0, 66, 15)])
    phi = rng.uniform(0, 2 * np.pi, r.size)
    x, y = r * np.cos(phi), r * np.sin(phi)
    fit = fit_positions_pattern(_expected_areas(truth_response, x, y), truth_response)
    assert np.all(fit["status"] == FitStatus.OK)
    np.testing.assert_allclose(fit["x"], x, atol=2e-3)
    np.testing.assert_allclose(fit["y"], y, atol=2e-3)


def test_uncertainties_match_the_scatter_of_simulated_positions(small_run, truth_response):
    peaks, truth = small_run
    selected = ~truth["is_outlier"] & (np.hypot(truth["x_truth"], truth["y_truth"]) < 55)
    peaks, truth = peaks[selected][:800], truth[selected][:800]
    fit = fit_positions_pattern(
        peaks["area_per_channel"], truth_response, saturated_channel=peaks["saturated_channel"]
    )
    pulls = (fit["x"] - truth["x_truth"]) / fit["x_err"]
    assert np.std(pulls) == pytest.approx(1.0, abs=0.1)
    assert abs(np.mean(pulls)) < 0.15


def test_saturated_channels_are_left_out(truth_response):
    area = _expected_areas(truth_response, [20.0], [-10.0])
    spoiled = area.copy()
    spoiled[0, 100] *= 50
    saturated = np.zeros(area.shape, dtype=np.int8)
    saturated[0, 100] = 1
    reference = fit_positions_pattern(area, truth_response)
    fit = fit_positions_pattern(spoiled, truth_response, saturated_channel=saturated)
    assert fit["x"][0] == pytest.approx(reference["x"][0], abs=1e-3)
    assert fit["y"][0] == pytest.approx(reference["y"][0], abs=1e-3)


def test_events_without_light_or_with_nan_get_a_status_not_an_error(truth_response):
    area = np.zeros((3, 253))
    area[1, 5] = np.nan
    area[2] = _expected_areas(truth_response, [5.0], [5.0])[0]
    fit = fit_positions_pattern(area, truth_response)
    assert list(fit["status"]) == [FitStatus.NO_LIGHT, FitStatus.INVALID_INPUT, FitStatus.OK]
    assert np.isnan(fit["x"][:2]).all()


@settings(max_examples=30, deadline=None)
@given(area=area_per_channel())
def test_fit_never_raises_on_odd_areas(truth_response, area):
    fit = fit_positions_pattern(area, truth_response, parallel=False)
    assert len(fit) == len(area)
    ok = fit["status"] == FitStatus.OK
    assert np.all(np.hypot(fit["x"][ok], fit["y"][ok]) <= truth_response.radius_cm + 1e-3)


def test_serial_and_parallel_fits_agree(small_run, truth_response):
    peaks, _ = small_run
    area = peaks["area_per_channel"][:50]
    serial = fit_positions_pattern(area, truth_response, parallel=False)
    parallel = fit_positions_pattern(area, truth_response, parallel=True)
    np.testing.assert_array_equal(serial["x"], parallel["x"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(area_per_channel=np.zeros((3, 100))), ValueError, r"\(n_events, 253\) or"),
        (dict(area_per_channel=np.zeros(253)), ValueError, r"got \(253,\)"),
        (
            dict(saturated_channel=np.zeros((2, 494))),
            ValueError,
            "has 2 rows; area_per_channel has 3",
        ),
        (dict(response="truth"), TypeError, "must be a LightResponse; got str"),
        (dict(area_per_channel=np.full((3, 494), "a")), TypeError, "must be numeric"),
    ],
)
def test_bad_fit_inputs_raise_clear_errors(truth_response, kwargs, error, match):
    arguments = dict(area_per_channel=np.ones((3, 494)), response=truth_response) | kwargs
    area, response = arguments.pop("area_per_channel"), arguments.pop("response")
    with pytest.raises(error, match=match):
        fit_positions_pattern(area, response, **arguments)

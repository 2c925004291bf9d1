"""The goodness-of-fit figures and the outlier cut of the training."""

import numpy as np
import pytest

from lce_plugins.likelihood import deviance, expected_deviance
from lce_plugins.training.evaluation import deviance_at, goodness_of_fit, outlier_selection


def test_outliers_far_above_the_typical_deviance_are_rejected(rng):
    expected = rng.uniform(200, 300, 1000)
    observed = (expected - 3) * rng.normal(1.0, 0.05, 1000)
    observed[:10] *= 3.0  # merged double S2s
    observed[10] = np.nan  # a failed fit
    kept, threshold = outlier_selection(observed, expected, np.ones(1000, bool), sigmas=5)
    assert not kept[:11].any()
    assert kept[11:].mean() > 0.999
    assert threshold == pytest.approx(1.25, abs=0.03)


def test_the_cut_is_set_by_the_reference_events_only(rng):
    expected = np.full(400, 250.0)
    observed = np.concatenate([rng.normal(247, 10, 200), rng.normal(600, 10, 200)])
    reference = np.arange(400) < 200
    kept, _ = outlier_selection(observed, expected, reference, sigmas=5)
    assert kept[:200].all() and not kept[200:].any()


def test_goodness_of_fit_sums_over_the_selected_events():
    observed = np.array([100.0, 110.0, 5000.0])
    expected = np.array([103.0, 113.0, 103.0])
    ndf = np.array([97, 97, 97])
    result = goodness_of_fit(observed, expected, ndf, np.array([True, True, False]))
    assert result["reduced_chi2"] == pytest.approx(210 / 194)
    assert result["reduced_chi2_calibrated"] == pytest.approx(210 / 210)
    assert result["n_events"] == 2


def test_goodness_of_fit_refuses_an_empty_selection():
    with pytest.raises(ValueError, match="selected events with finite deviances"):
        goodness_of_fit(np.ones(2), np.ones(2), np.ones(2), np.zeros(2, bool))


def test_deviance_at_positions_is_the_likelihood_modules_deviance(clean_run, truth_response):
    peaks, truth = clean_run[0][:40], clean_run[1][:40]
    area = peaks["area_per_channel"][:, :253].astype(float)
    used = np.broadcast_to(truth_response.live_pmts.mask, area.shape)
    x, y = truth["x_truth"].astype(float), truth["y_truth"].astype(float)
    n_photons = truth["n_photons_truth"].astype(float)
    n_photons[0] = np.nan
    observed, expected = deviance_at(truth_response, area, used, x, y, n_photons, sigma0=0.05)
    mu = n_photons[1:, None] * truth_response.lce(x[1:], y[1:])
    arguments = (truth_response.spe_resolution, truth_response.p_dpe, used[1:])
    np.testing.assert_allclose(observed[1:], deviance(area[1:], mu, *arguments))
    np.testing.assert_allclose(expected[1:], expected_deviance(mu, *arguments))
    assert np.isnan(observed[0]) and np.isnan(expected[0])

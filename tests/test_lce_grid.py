"""The tabulated map of the position fits: agreement with the map, exact at the wall."""

import numba
import numpy as np
import pytest

from lce_plugins.lce_grid import EMPTY_GRID, fit_model, lce_into
from lce_plugins.reconstruction import FitStatus, reconstruct_positions


@numba.njit(cache=True)
def _evaluate(x, y, model, lce, dlce_dx, dlce_dy):
    for i in range(x.size):
        lce_into(x[i], y[i], model, lce[i], dlce_dx[i], dlce_dy[i])


def _tabulated(model, x, y):
    lce, dlce_dx, dlce_dy = (np.empty((x.size, 253)) for _ in range(3))
    _evaluate(x, y, model, lce, dlce_dx, dlce_dy)
    return lce, dlce_dx, dlce_dy


@pytest.fixture(scope="module")
def positions():
    rng = np.random.default_rng(8)
    radius = 66.39 * np.sqrt(rng.uniform(0, 1, 3000))
    angle = rng.uniform(0, 2 * np.pi, radius.size)
    return radius * np.cos(angle), radius * np.sin(angle), radius


def test_the_table_agrees_with_the_map_in_the_bulk(truth_response, positions):
    x, y, radius = positions
    lce, dlce_dx, _ = _tabulated(fit_model(truth_response), x, y)
    exact, exact_dx, _ = truth_response.lce_and_gradient(x, y)
    bulk = radius < 60
    error = np.abs(lce[bulk] / exact[bulk] - 1)
    # the map's wall-reflection term has kinks where the shortest path changes branch,
    # which a smooth table rounds off: a few far PMTs per event, where the LCE is small
    assert np.median(error) < 1e-6
    assert np.quantile(error, 0.99) < 1e-3
    assert error.max() < 0.05
    scale = np.abs(exact_dx[bulk]).max(axis=1, keepdims=True)
    assert np.quantile(np.abs(dlce_dx[bulk] - exact_dx[bulk]) / scale, 0.99) < 1e-3


def test_points_in_the_last_centimetre_are_evaluated_on_the_map(truth_response, positions):
    x, y, radius = positions
    wall = radius > radius.max() - 0.3
    lce, dlce_dx, dlce_dy = _tabulated(fit_model(truth_response), x[wall], y[wall])
    exact = truth_response.lce_and_gradient(x[wall], y[wall])
    for tabulated, reference in zip((lce, dlce_dx, dlce_dy), exact, strict=True):
        np.testing.assert_array_equal(tabulated, reference)


def test_without_a_table_the_map_is_evaluated(truth_response, positions):
    x, y, _ = positions
    lce, _, _ = _tabulated((truth_response.kernel_arguments, EMPTY_GRID), x[:50], y[:50])
    np.testing.assert_array_equal(lce, truth_response.lce(x[:50], y[:50]))


def test_tabulated_fits_agree_with_fits_on_the_map(small_run, truth_response):
    peaks, _ = small_run
    area, saturated = peaks["area_per_channel"][:800], peaks["saturated_channel"][:800]
    fast = reconstruct_positions(area, truth_response, saturated_channel=saturated)
    slow = reconstruct_positions(area, truth_response, saturated_channel=saturated, tabulated=False)
    ok = (fast["status"] == FitStatus.OK) & (slow["status"] == FitStatus.OK)
    assert ok.mean() > 0.97
    distance = np.hypot(fast["x"] - slow["x"], fast["y"] - slow["y"])[ok]
    assert np.median(distance) < 1e-3
    assert np.quantile(distance, 0.98) < 0.02
    # the deviance comes from the table: a hundredth of its statistical spread at most
    difference = np.abs(fast["deviance"] - slow["deviance"])[ok]
    assert np.median(difference) < 0.01
    assert np.quantile(difference, 0.98) < 0.3

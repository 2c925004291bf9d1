"""Figures of merit of the training report, and the training plots."""

import json

import numpy as np
import pytest

from lce_plugins.geometry import TPC_RADIUS_CM
from lce_plugins.optics import LightResponse
from lce_plugins.pattern_fit import fit_positions_pattern
from lce_plugins.simulation import DetectorConfig, Kr83mSource, simulate_kr83m
from lce_plugins.training import plots
from lce_plugins.training.metrics import (
    cramer_rao_bound,
    homogeneity,
    lce_relative_rms,
    position_errors,
    radial_displacement_profile,
    summarise_cramer_rao,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _uniform_disk(rng, n, radius_cm=TPC_RADIUS_CM):
    r = radius_cm * np.sqrt(rng.uniform(size=n))
    phi = rng.uniform(0, 2 * np.pi, n)
    return r * np.cos(phi), r * np.sin(phi)


def _scaled(response, factor):
    """The same response times a constant: efficiencies and floor both scaled."""
    return LightResponse(
        direct=response.direct, reflection=response.reflection, shadow=response.shadow,
        efficiency=factor * response.efficiency, floor=factor * response.floor,
        live_pmts=response.live_pmts,
    )  # fmt: skip


def _bound_of_run(response, peaks, truth):
    return cramer_rao_bound(
        response, peaks["area_per_channel"], truth["x_truth"], truth["y_truth"],
        truth["n_photons_truth"], spe_resolution=response.spe_resolution, p_dpe=response.p_dpe,
    )  # fmt: skip


def _assert_png(path):
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE


# --- homogeneity -------------------------------------------------------------------------


def test_uniform_positions_look_homogeneous(rng):
    result = homogeneity(*_uniform_disk(rng, 4000))
    assert result["ks_pvalue"] > 1e-3
    assert 0.7 < result["histogram_chi2_ndf"] < 1.4
    assert result["histogram_ndf"] == 10 * 12 - 1
    assert result["n_events"] == 4000
    json.dumps(result)


def test_radially_compressed_positions_fail_the_homogeneity_test(rng):
    x, y = _uniform_disk(rng, 4000)
    result = homogeneity(0.97 * x, 0.97 * y)
    assert result["ks_pvalue"] < 1e-6
    assert result["histogram_chi2_ndf"] > 1.5


def test_homogeneity_drops_nan_positions_and_counts_those_beyond_the_wall(rng):
    x, y = _uniform_disk(rng, 1000)
    x[:5] = np.nan
    x[5:8], y[5:8] = 70.0, 0.0
    result = homogeneity(x, y)
    assert result["n_dropped"] == 5
    assert result["n_events"] == 995
    assert result["n_outside"] == 3


def test_homogeneity_rejects_coordinates_of_different_shapes():
    with pytest.raises(ValueError, match=r"x, y must have the same shape; got x \(3,\), y \(4,\)"):
        homogeneity(np.zeros(3), np.zeros(4))


def test_homogeneity_needs_finite_positions():
    with pytest.raises(ValueError, match="at least 2 finite positions; got 1"):
        homogeneity([1.0, np.nan], [1.0, 2.0])


# --- lce_relative_rms --------------------------------------------------------------------


def test_a_map_compared_with_itself_has_no_lce_error(truth_response):
    result = lce_relative_rms(truth_response, truth_response, n_points=2000)
    assert result["bulk"] == pytest.approx(0.0, abs=1e-12)
    assert result["wall"] == pytest.approx(0.0, abs=1e-12)
    assert result["scale"] == pytest.approx(1.0)
    json.dumps(result)


def test_a_global_scale_of_the_map_is_absorbed_by_the_fitted_scale(truth_response):
    result = lce_relative_rms(_scaled(truth_response, 1.7), truth_response, n_points=2000)
    assert result["scale"] == pytest.approx(1.7)
    assert result["bulk"] == pytest.approx(0.0, abs=1e-9)
    assert result["wall"] == pytest.approx(0.0, abs=1e-9)


def test_the_nominal_map_misses_the_truth_by_more_at_the_wall_than_in_the_bulk(
    truth_response, nominal_response
):
    # efficiencies (10 % spread) and wire shadowing differ everywhere, the wall
    # reflectivity (0.5 instead of 0.15) adds to that near the wall
    result = lce_relative_rms(nominal_response, truth_response)
    assert result["bulk"] > 0.05
    assert result["wall"] > result["bulk"]


def test_lce_relative_rms_refuses_maps_of_different_tpcs(truth_response):
    other = LightResponse(
        direct=truth_response.direct, reflection=truth_response.reflection,
        shadow=truth_response.shadow, efficiency=truth_response.efficiency,
        floor=truth_response.floor, live_pmts=truth_response.live_pmts, radius_cm=70.0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="different TPC radii: learned 70.0 cm, truth 66.4 cm"):
        lce_relative_rms(other, truth_response)


# --- position_errors ---------------------------------------------------------------------


def test_radial_bias_is_the_median_radial_displacement(rng):
    x_true, y_true = _uniform_disk(rng, 4000)
    r_true = np.hypot(x_true, y_true)
    shift_cm = np.where(r_true < 60, -0.3, -1.2)  # pulled inwards, more at the wall
    stretch = (r_true + shift_cm) / r_true
    result = position_errors(stretch * x_true, stretch * y_true, x_true, y_true)
    assert result["bulk"]["radial_bias_cm"] == pytest.approx(-0.3)
    assert result["wall"]["radial_bias_cm"] == pytest.approx(-1.2)
    assert result["bulk"]["n_events"] + result["wall"]["n_events"] == 4000


def test_resolution_ignores_a_common_shift_and_measures_the_spread(rng):
    x_true, y_true = _uniform_disk(rng, 6000)
    x = x_true + 0.4 + rng.normal(0, 0.2, x_true.size)
    y = y_true - 0.1 + rng.normal(0, 0.2, x_true.size)
    x[:30] = np.nan  # failed fits
    result = position_errors(x, y, x_true, y_true)
    assert result["bulk"]["resolution_cm"] == pytest.approx(0.2, rel=0.05)
    assert result["wall"]["resolution_cm"] == pytest.approx(0.2, rel=0.1)
    assert result["n_failed"] == 30
    json.dumps(result)


def test_an_empty_region_reports_none():
    result = position_errors([1.0, 2.0], [0.0, 0.0], [1.1, 2.1], [0.0, 0.0])
    assert result["wall"] == {"radial_bias_cm": None, "resolution_cm": None, "n_events": 0}
    assert result["bulk"]["radial_bias_cm"] == pytest.approx(-0.1)


def test_position_errors_need_the_truth_of_every_event():
    with pytest.raises(ValueError, match="x_true and y_true must be finite"):
        position_errors([1.0], [1.0], [np.nan], [1.0])


# --- Cramér-Rao bound --------------------------------------------------------------------


def test_cramer_rao_bound_is_a_few_millimetres_in_the_bulk(clean_run, truth_response):
    peaks, truth = clean_run
    bound = _bound_of_run(truth_response, peaks, truth)
    assert bound.shape == (len(truth), 2)
    summary = summarise_cramer_rao(bound, truth["x_truth"], truth["y_truth"])
    assert 0.1 < summary["bulk"]["resolution_bound_cm"] < 0.3
    # fewer PMTs share the light near the wall: the bound is worse there
    assert summary["wall"]["resolution_bound_cm"] > summary["bulk"]["resolution_bound_cm"]
    assert summary["n_undefined"] == 0
    json.dumps(summary)


def test_cramer_rao_bound_falls_as_one_over_the_square_root_of_the_light(truth_response):
    # same seed: same positions and electrons; four times the photons per electron
    runs = [
        simulate_kr83m(600, seed=5, detector=DetectorConfig(saturation_pe_per_ns=1e12),
                       source=Kr83mSource(outlier_fraction=0.0, photons_per_electron=gain))
        for gain in (205.0, 4 * 205.0)
    ]  # fmt: skip
    dim, bright = (_bound_of_run(truth_response, *run) for run in runs)
    ratio = np.sqrt(np.mean(dim**2) / np.mean(bright**2))
    assert ratio == pytest.approx(2.0, rel=0.03)


def test_pattern_fit_pulls_against_the_bound_have_unit_spread(clean_run, truth_response):
    # an efficient fit scatters as the bound says; a bound too small or too large fails
    peaks, truth = clean_run
    bulk = np.flatnonzero(np.hypot(truth["x_truth"], truth["y_truth"]) < 55)[:1000]
    peaks, truth = peaks[bulk], truth[bulk]
    bound = _bound_of_run(truth_response, peaks, truth)
    fit = fit_positions_pattern(peaks["area_per_channel"], truth_response)
    pulls = np.concatenate([(fit["x"] - truth["x_truth"]) / bound[:, 0],
                            (fit["y"] - truth["y_truth"]) / bound[:, 1]])  # fmt: skip
    assert 0.95 < np.std(pulls) < 1.1


def test_cramer_rao_bound_refuses_positions_outside_the_tpc(truth_response):
    with pytest.raises(ValueError, match="1 true position.* outside the TPC radius 66.4 cm"):
        cramer_rao_bound(truth_response, np.ones((2, 253)), [0.0, 70.0], [0.0, 0.0],
                         [1e4, 1e4], spe_resolution=0.4, p_dpe=0.2)  # fmt: skip


def test_cramer_rao_bound_refuses_areas_of_the_wrong_shape(truth_response):
    with pytest.raises(ValueError, match=r"shape \(n_events, 253\) or \(n_events, 494\); got"):
        cramer_rao_bound(truth_response, np.ones((2, 100)), [0.0, 1.0], [0.0, 0.0],
                         [1e4, 1e4], spe_resolution=0.4, p_dpe=0.2)  # fmt: skip


# --- profiles and plots ------------------------------------------------------------------


def test_radial_displacement_profile_gives_median_and_central_68_percent(rng):
    r = TPC_RADIUS_CM * np.sqrt(rng.uniform(size=20_000))
    r_moved = r - 0.5 + rng.normal(0, 0.2, r.size)
    r_moved[:10] = np.nan
    profile = radial_displacement_profile(r, r_moved, r, n_bins=5)
    np.testing.assert_allclose(profile["median_cm"], -0.5, atol=0.03)
    np.testing.assert_allclose(profile["quantile_84_cm"] - profile["quantile_16_cm"], 0.4, rtol=0.1)
    assert profile["n_events"].sum() == 20_000 - 10


def test_radial_displacement_profile_puts_radii_beyond_the_wall_in_the_last_bin():
    profile = radial_displacement_profile([10.0, 70.0], [10.0, 71.0], [10.0, 70.0], n_bins=4)
    assert list(profile["n_events"]) == [1, 0, 0, 1]
    assert profile["median_cm"][-1] == pytest.approx(1.0)
    assert np.isnan(profile["median_cm"][1])


def test_history_plot_is_written(tmp_path):
    history = [dict(round=k, train_loss=5.0 - k, heldout_deviance_per_ndf=1.4 - 0.1 * k,
                    heldout_calibrated_chi2=1.2 - 0.05 * k, n_rejected=3 + k)
               for k in range(4)]  # fmt: skip
    _assert_png(plots.plot_history(history, tmp_path / "history.png", synthetic=True))


def test_history_plot_names_a_missing_key(tmp_path):
    with pytest.raises(ValueError, match=r"history\[1\] lacks \['train_loss'\]"):
        plots.plot_history(
            [dict(round=0, train_loss=1.0, heldout_deviance_per_ndf=1.0),
             dict(round=1, heldout_deviance_per_ndf=1.0)], tmp_path / "history.png",
        )  # fmt: skip


def test_lce_map_plot_with_a_reference_is_written(tmp_path, truth_response, nominal_response):
    path = plots.plot_lce_maps(nominal_response, [0, 120], tmp_path / "maps" / "lce.png",
                               reference=truth_response, synthetic=True, n_grid=41)  # fmt: skip
    _assert_png(path)


def test_lce_map_plot_refuses_bottom_array_channels(tmp_path, truth_response):
    with pytest.raises(ValueError, match=r"channels in 0..252; got \[3, 300\]"):
        plots.plot_lce_maps(truth_response, [3, 300], tmp_path / "lce.png")


def test_residual_map_plot_is_written(tmp_path, clean_run, truth_response):
    peaks, truth = clean_run[0][:500], clean_run[1][:500]
    lce = truth_response.lce(truth["x_truth"], truth["y_truth"])
    expected_pe = truth["n_photons_truth"][:, None] * lce * (1 + truth_response.p_dpe)
    path = plots.plot_residual_maps(peaks["area_per_channel"], expected_pe, truth["x_truth"],
                                    truth["y_truth"], [10, 150], tmp_path / "residuals.png",
                                    synthetic=True)  # fmt: skip
    _assert_png(path)


def test_density_plot_is_written(tmp_path, rng):
    x, y = _uniform_disk(rng, 2000)
    x[0] = np.nan
    _assert_png(plots.plot_density(0.97 * x, 0.97 * y, x, y, tmp_path / "density.png"))


def test_radial_displacement_plot_with_truth_is_written(tmp_path, rng):
    r_truth = TPC_RADIUS_CM * np.sqrt(rng.uniform(size=2000))
    r_initial = 0.97 * r_truth + rng.normal(0, 0.2, r_truth.size)
    r_final = r_truth + rng.normal(0, 0.2, r_truth.size)
    path = plots.plot_radial_displacement(r_initial, r_final, tmp_path / "radial.png",
                                          r_truth=r_truth, synthetic=True)  # fmt: skip
    _assert_png(path)

import numpy as np
import pytest

from lce_plugins import geometry
from lce_plugins.optics import CubicTable, LightResponse
from lce_plugins.simulation.response import (
    photocathode_solid_angle,
    truth_map,
    wire_transmission_table,
)
from lce_plugins.wall_reflection import (
    _event_wall_state,
    _reflection_point,
    shortest_reflection,
)

RADIUS = geometry.TPC_RADIUS_CM


def _random_disk(rng, n, near_wall_fraction=0.5):
    """Positions in the TPC, half of them within a few cm of the wall."""
    r = RADIUS * np.sqrt(rng.uniform(size=n))
    near = rng.uniform(size=n) < near_wall_fraction
    r[near] = RADIUS - rng.exponential(2.0, size=near.sum())
    r = np.clip(r, 0, RADIUS)
    phi = rng.uniform(0, 2 * np.pi, n)
    return r * np.cos(phi), r * np.sin(phi)


def test_solid_angle_on_the_axis_equals_the_closed_form():
    height, radius = 7.05, geometry.PHOTOCATHODE_RADIUS_CM
    expected = 2 * np.pi * (1 - height / np.hypot(height, radius))
    assert photocathode_solid_angle([0.0], height)[0] == pytest.approx(expected, rel=1e-12)


def test_solid_angle_far_away_approaches_area_times_cosine_over_distance_squared():
    height, distance = 7.05, 200.0
    area = np.pi * geometry.PHOTOCATHODE_RADIUS_CM**2
    expected = area * height / (height**2 + distance**2) ** 1.5
    assert photocathode_solid_angle([distance], height)[0] == pytest.approx(expected, rel=1e-3)


def test_cubic_table_interpolates_a_smooth_function_and_continues_flat():
    step = 0.05
    grid = np.arange(0, 3 + step / 2, step)
    table = CubicTable.from_samples(np.cos(grid), step)
    x = np.linspace(0, 3, 1001)
    np.testing.assert_allclose(table(x), np.cos(x), atol=1e-6)
    assert table(10.0) == pytest.approx(np.cos(3.0), abs=1e-9)


@pytest.mark.parametrize(
    ("step", "coefficients", "match"),
    [
        (0.1, np.zeros((3, 3)), r"shape \(n_intervals, 4\); got \(3, 3\)"),
        (-1.0, np.zeros((3, 4)), "step must be positive"),
        (0.1, np.full((3, 4), np.nan), "must be finite"),
    ],
)
def test_cubic_table_rejects_bad_tables(step, coefficients, match):
    with pytest.raises(ValueError, match=match):
        CubicTable(step, coefficients)


def test_wire_transmission_is_highest_for_rays_along_the_wires():
    shadow = wire_transmission_table()
    opacity = geometry.ANODE_WIRE_DIAMETER_CM / geometry.ANODE_WIRE_PITCH_CM
    assert shadow(0.0) == pytest.approx(1 - opacity, rel=1e-9)
    assert shadow(2.0) == pytest.approx(1 - opacity * np.sqrt(5), rel=1e-6)
    assert shadow(100.0) == pytest.approx(0.0, abs=1e-12)


def test_reflection_point_gives_the_shortest_path_via_the_wall(truth_response, rng):
    wall_xy, pmt_wall = truth_response.kernel_arguments[13:15]
    angles = np.linspace(0, 2 * np.pi, 2**17, endpoint=False)
    dense_wall = RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x, y = _random_disk(rng, 200)
    for ex, ey, j in zip(x, y, rng.integers(0, 253, 200), strict=True):
        px, py = truth_response.pmt_xy[j]
        event_wall = np.hypot(ex - wall_xy[:, 0], ey - wall_xy[:, 1])
        wx, wy, _ = _reflection_point(ex, ey, px, py, wall_xy, event_wall, pmt_wall, j, 0, 63)
        path = np.hypot(ex - wx, ey - wy) + np.hypot(px - wx, py - wy)
        shortest = np.min(
            np.hypot(*(dense_wall - (ex, ey)).T) + np.hypot(*(dense_wall - (px, py)).T)
        )
        assert np.hypot(wx, wy) == pytest.approx(RADIUS, rel=1e-12)
        # the dense scan samples the wall every 3e-3 cm
        assert path == pytest.approx(shortest, rel=2e-3, abs=1e-6)
        assert path <= shortest + 1e-9


def test_tabulated_start_finds_the_shortest_reflection_too(truth_response, rng):
    wall_xy, pmt_wall, pmt_position, start_grid, grid_step = truth_response.kernel_arguments[13:]
    angles = np.linspace(0, 2 * np.pi, 2**16, endpoint=False)
    dense_wall = RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x, y = _random_disk(rng, 60)
    for ex, ey in zip(0.9999 * x, 0.9999 * y, strict=True):
        event_wall = np.empty(len(wall_xy))
        state = _event_wall_state(ex, ey, wall_xy, event_wall, RADIUS, grid_step, len(start_grid))
        to_event = np.hypot(*(dense_wall - (ex, ey)).T)
        for j in range(0, 253, 7):
            px, py = truth_response.pmt_xy[j]
            wx, wy, _ = shortest_reflection(
                ex, ey, px, py, j, state, wall_xy, event_wall, pmt_wall, pmt_position, start_grid
            )
            path = np.hypot(ex - wx, ey - wy) + np.hypot(px - wx, py - wy)
            shortest = np.min(to_event + np.hypot(*(dense_wall - (px, py)).T))
            assert path == pytest.approx(shortest, rel=1e-4)
            assert path <= shortest + 1e-9


def test_lce_gradient_equals_finite_differences(truth_response, rng):
    x, y = _random_disk(rng, 40)
    x, y = 0.999 * x, 0.999 * y
    _, dlce_dx, dlce_dy = truth_response.lce_and_gradient(x, y)
    step = 1e-5
    numeric_x = (truth_response.lce(x + step, y) - truth_response.lce(x - step, y)) / (2 * step)
    numeric_y = (truth_response.lce(x, y + step) - truth_response.lce(x, y - step)) / (2 * step)
    scale = np.abs(dlce_dx).max(axis=1, keepdims=True)
    # The reflection solver stops once its estimated angle error is 1e-15 rad; within a
    # millimetre of the wall the estimate is loose and up to ~1e-5 of the gradient remains.
    assert np.max(np.abs(numeric_x - dlce_dx) / scale) < 3e-5
    assert np.max(np.abs(numeric_y - dlce_dy) / scale) < 3e-5


def test_lce_outside_the_tpc_is_nan(truth_response):
    lce = truth_response.lce([0.0, 67.0, np.nan], [0.0, 0.0, 1.0])
    assert np.all(np.isfinite(lce[0]))
    assert np.all(np.isnan(lce[1:]))


def test_pattern_sums_to_one_over_live_pmts_and_is_zero_for_dead_ones(truth_response, rng):
    pattern = truth_response.pattern(*_random_disk(rng, 20))
    np.testing.assert_allclose(pattern.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(pattern[:, ~truth_response.live_pmts.mask] == 0)


def test_the_pmt_above_an_event_collects_the_most_light(truth_response):
    channel = 126
    x, y = truth_response.pmt_xy[channel]
    lce = truth_response.lce(x, y)[0] / truth_response.efficiency
    assert np.argmax(lce) == channel


def test_light_is_shadowed_more_across_the_wires_than_along_them(truth_response):
    centre = truth_response.pmt_xy[126]
    along, across = geometry.wire_direction(), geometry.wire_normal()
    eff = truth_response.efficiency[126]
    lce_along = truth_response.lce(*(centre + 15 * along))[0, 126] / eff
    lce_across = truth_response.lce(*(centre + 15 * across))[0, 126] / eff
    assert lce_across < 0.97 * lce_along


def test_wall_reflection_adds_light_near_the_wall():
    response = truth_map()
    without = LightResponse(
        direct=response.direct, reflection=CubicTable.constant(0.0), shadow=response.shadow,
        efficiency=response.efficiency, floor=response.floor, live_pmts=response.live_pmts,
    )  # fmt: skip
    near_wall = response.lce(65.0, 0.0)[0] / without.lce(65.0, 0.0)[0]
    centre = response.lce(0.0, 0.0)[0] / without.lce(0.0, 0.0)[0]
    nearest = np.argmin(np.hypot(*(response.pmt_xy - (65.0, 0.0)).T))
    assert near_wall[nearest] > 1.05
    assert np.max(centre) < near_wall[nearest]


def test_serial_and_parallel_kernels_agree(truth_response, rng):
    x, y = _random_disk(rng, 50)
    np.testing.assert_array_equal(
        truth_response.lce(x, y, parallel=True), truth_response.lce(x, y, parallel=False)
    )


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        (dict(efficiency=np.ones(10)), ValueError, r"shape \(253,\); got \(10,\)"),
        (dict(efficiency=-np.ones(253)), ValueError, "finite and non-negative"),
        (dict(floor=-1.0), ValueError, "floor must be finite and >= 0; got -1.0"),
        (dict(live_pmts=np.ones(253, bool)), TypeError, "must be a LivePMTs; got ndarray"),
    ],
)
def test_light_response_rejects_bad_parts(truth_response, changes, error, match):
    parts = dict(
        direct=truth_response.direct, reflection=truth_response.reflection,
        shadow=truth_response.shadow, efficiency=truth_response.efficiency,
        floor=truth_response.floor, live_pmts=truth_response.live_pmts,
    )  # fmt: skip
    with pytest.raises(error, match=match):
        LightResponse(**{**parts, **changes})


def test_positions_that_do_not_broadcast_are_rejected(truth_response):
    with pytest.raises(ValueError, match="must broadcast to one shape"):
        truth_response.lce(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="real numbers in cm"):
        truth_response.lce(np.array(["a"]), np.array([1.0]))

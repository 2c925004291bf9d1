"""The profiled Gauss-Newton step of the map: its derivatives, its penalty, and that one
step undoes a known error of the efficiencies and the wall reflection."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from lce_plugins import LCEMap  # noqa: E402
from lce_plugins.model import build_lce_model, model_to_response, structural_layer  # noqa: E402
from lce_plugins.reconstruction import FitStatus, reconstruct_positions  # noqa: E402
from lce_plugins.training import gauss_newton  # noqa: E402
from lce_plugins.training.gauss_newton import apply_step, profiled_gauss_newton_step  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spline_values():
    rng = np.random.default_rng(3)
    return np.exp(-np.cumsum(rng.uniform(0.01, 0.2, 30)))


@pytest.mark.parametrize("x", [0.0, 0.3, 1.1, 3.7, 7.25, 14.4, 14.5, 20.0])
def test_knot_derivatives_match_the_network_spline_and_finite_differences(spline_values, x):
    from lce_plugins.model import HermiteSpline

    spline = HermiteSpline(14.5, 0.5, "positive")
    spline.build()
    spline.set_knot_values(spline_values)
    index, weight = np.zeros(4, np.int64), np.zeros(4)
    value = gauss_newton._knot_derivatives(spline_values, 0.5, x, index, weight)
    assert value == pytest.approx(float(spline(np.array([x], "float32"))[0]), rel=1e-6)

    def spline_at_x(values):
        return gauss_newton._knot_derivatives(values, 0.5, x, np.zeros(4, np.int64), np.zeros(4))

    for knot in range(spline_values.size):
        nudge = np.zeros_like(spline_values)
        nudge[knot] = 1e-7
        numeric = (spline_at_x(spline_values + nudge) - spline_at_x(spline_values - nudge)) / 2e-7
        analytic = weight[index == knot].sum() if knot in index else 0.0
        assert analytic == pytest.approx(numeric, abs=1e-6)


def test_the_roughness_penalty_gradient_is_that_of_the_networks_roughness(truth_response):
    model = build_lce_model(
        truth_response.live_pmts, initial=truth_response, max_initial_transmission=0.97
    )
    layer = structural_layer(model)
    state = gauss_newton._layer_state(layer)
    size = gauss_newton._offsets(state)[-1]
    curvature, gradient = np.zeros((size, size)), np.zeros(size)
    gauss_newton._add_roughness(state, 2.0, curvature, gradient)

    # TensorFlow's gradient of the network's roughness in W's weights (ln of the knot
    # values), carried to the knot values: d/dv = (1 / v) d/d ln v
    import tensorflow as tf

    with tf.GradientTape() as tape:
        penalty = 2.0 * layer.roughness()
    weight_gradient = tape.gradient(penalty, layer.reflection.raw).numpy()
    expected = -weight_gradient / state["values"]["reflection"]
    offsets = gauss_newton._offsets(state)
    np.testing.assert_allclose(
        gradient[offsets[1] : offsets[2]], expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max()
    )


def _current_map(model, truth_response):
    return LCEMap(
        model_to_response(model),
        spe_resolution=truth_response.spe_resolution,
        p_dpe=truth_response.p_dpe,
    )


def test_one_step_undoes_wrong_efficiencies_and_too_much_wall_reflection(clean_run, truth_response):
    # the network set to the truth, then efficiencies off by 3 % and W 50 % too high
    model = build_lce_model(
        truth_response.live_pmts, initial=truth_response, max_initial_transmission=0.97
    )
    layer = structural_layer(model)
    live = truth_response.live_pmts.mask
    true_efficiency = np.asarray(layer.efficiency())
    error = np.random.default_rng(5).normal(0.0, 0.03, 253)
    layer.efficiency_raw.assign(layer.efficiency_raw.numpy() + error.astype("float32"))
    true_reflection = np.asarray(layer.reflection.knot_values())
    layer.reflection.set_knot_values(1.5 * true_reflection)

    peaks, truth = clean_run
    area, saturated = peaks["area_per_channel"][:, :253], peaks["saturated_channel"][:, :253]
    wrong = _current_map(model, truth_response)
    fit = reconstruct_positions(
        area,
        wrong,
        saturated_channel=saturated,
        start=(truth["x_truth"], truth["y_truth"]),
        warn=False,
    )
    ok = fit["status"] == FitStatus.OK
    used = live[None, :] & (saturated[ok] == 0)
    step = profiled_gauss_newton_step(
        layer,
        wrong,
        area[ok].astype(float),
        used,
        fit["x"][ok].astype(float),
        fit["y"][ok].astype(float),
        fit["n_photons"][ok],
        sigma0=0.05,
    )
    apply_step(layer, step)
    assert step.expected_gain > 0

    def efficiency_error():
        ratio = np.asarray(layer.efficiency())[live] / true_efficiency[live]
        return np.std(np.log(ratio))

    assert np.std(error[live]) > 0.025
    assert efficiency_error() < 0.3 * np.std(error[live])  # 4000 events: 0.5 % statistics
    # W, where the data see it: paths of 10-60 cm
    path = slice(10, 60)
    reflection_ratio = np.asarray(layer.reflection.knot_values())[path] / true_reflection[path]
    assert np.median(reflection_ratio) == pytest.approx(1.0, abs=0.1)


def test_a_step_keeps_the_wire_transmission_inside_its_range(truth_response):
    model = build_lce_model(truth_response.live_pmts, initial=truth_response)
    layer = structural_layer(model)
    state = gauss_newton._layer_state(layer)
    offsets = gauss_newton._offsets(state)
    delta = np.zeros(offsets[-1])
    delta[offsets[0] : offsets[1]] = 5.0  # far past S = 1
    delta[offsets[1] : offsets[2]] = -1.0  # W far below 0
    blocks = {
        name: delta[offsets[i] : offsets[i + 1]] for i, name in enumerate(gauss_newton.BLOCKS)
    }
    apply_step(layer, gauss_newton.MapStep(delta=blocks, expected_gain=0.0, n_events=1))
    shadow, reflection = (
        np.asarray(spline.knot_values()) for spline in (layer.shadow, layer.reflection)
    )
    assert np.all((shadow > 0) & (shadow < 1)) and np.all(reflection > 0)
    np.testing.assert_allclose(reflection, 0.1 * state["values"]["reflection"], rtol=1e-5)

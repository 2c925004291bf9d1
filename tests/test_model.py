"""The LCE network: its constraints, its fit to the simulation's truth, its export."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from lce_plugins import LCEMap  # noqa: E402
from lce_plugins.features import network_inputs  # noqa: E402
from lce_plugins.model import (  # noqa: E402
    HermiteSpline,
    build_lce_model,
    first_guess_response,
    fit_to_response,
    model_to_response,
    structural_layer,
)

pytestmark = pytest.mark.slow
RADIUS = 66.4


def _disk(rng, n_uniform, n_near_wall):
    r = np.concatenate([RADIUS * np.sqrt(rng.uniform(size=n_uniform)),
                        rng.uniform(55.0, RADIUS, n_near_wall)])  # fmt: skip
    phi = rng.uniform(0, 2 * np.pi, r.size)
    return r * np.cos(phi), r * np.sin(phi)


@pytest.fixture(scope="module")
def fitted(truth_response):
    """The network fitted to the truth's LCE on 1300 positions, from a geometric guess."""
    rng = np.random.default_rng(5)
    x, y = _disk(rng, 900, 400)
    model = build_lce_model(truth_response.live_pmts, initial=first_guess_response(
        truth_response.live_pmts))  # fmt: skip
    features = network_inputs(truth_response, x, y)
    result = fit_to_response(model, features, truth_response.lce(x, y), max_iterations=700)
    return model, result


@pytest.fixture(scope="module")
def test_positions():
    rng = np.random.default_rng(6)
    x, y = _disk(rng, 3000, 0)
    angle = rng.uniform(0, 2 * np.pi, 500)
    return np.concatenate([x, 66.0 * np.cos(angle)]), np.concatenate([y, 66.0 * np.sin(angle)])


def test_network_fitted_to_the_truth_reaches_percent_accuracy(fitted, truth_response,
                                                             test_positions):  # fmt: skip
    model, result = fitted
    x, y = test_positions
    learned = model_to_response(model).lce(x, y)
    relative = (learned / truth_response.lce(x, y) - 1)[:, truth_response.live_pmts.mask]
    r = np.hypot(x, y)
    bulk = np.sqrt(np.mean(relative[r < 60] ** 2))
    wall = np.sqrt(np.mean(relative[r >= 60] ** 2))
    assert bulk < 0.01, f"relative RMS for r < 60 cm: {bulk:.4f}"
    assert wall < 0.03, f"relative RMS for r >= 60 cm: {wall:.4f}"


def test_constraints_hold_after_training(fitted, truth_response):
    layer = structural_layer(fitted[0])
    response = model_to_response(fitted[0])
    distance = np.linspace(0, 140, 20001)
    assert np.all(np.diff(response.direct(distance)) <= 1e-12 * response.direct(0.0))
    efficiency = keras.ops.convert_to_numpy(layer.efficiency())
    assert efficiency[truth_response.live_pmts.mask].mean() == pytest.approx(1.0, abs=1e-6)
    slopes = np.linspace(0, 40, 4001)
    assert np.all((response.shadow(slopes) > 0) & (response.shadow(slopes) <= 1))
    assert np.all(response.reflection(np.linspace(0, 270, 2701)) > 0)


def test_keras_and_numba_agree_everywhere_inside_the_tpc(fitted, truth_response, test_positions):
    model = fitted[0]
    x, y = test_positions
    keras_lce = model.predict(network_inputs(truth_response, x, y), verbose=0)
    numba_lce = model_to_response(model).lce(x, y)
    assert np.max(np.abs(numba_lce / keras_lce - 1)) < 1e-5


def test_keras_file_round_trip_gives_identical_outputs(fitted, truth_response, tmp_path):
    model = fitted[0]
    path = tmp_path / "lce_model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    features = network_inputs(truth_response, [0.0, 30.0, -60.0], [0.0, 10.0, 20.0])
    np.testing.assert_array_equal(loaded.predict(features, verbose=0),
                                  model.predict(features, verbose=0))  # fmt: skip


def test_learned_map_saves_and_loads_without_change(fitted, truth_response, tmp_path):
    response = model_to_response(fitted[0], name="fitted to truth")
    lce_map = LCEMap(response, spe_resolution=truth_response.spe_resolution, p_dpe=0.2,
                     provenance=dict(synthetic=True, fitted_to="truth"))  # fmt: skip
    loaded = LCEMap.load(lce_map.save(tmp_path / "learned.npz"))
    np.testing.assert_array_equal(loaded.lce([5.0, 60.0], [1.0, -30.0]),
                                  lce_map.lce([5.0, 60.0], [1.0, -30.0]))  # fmt: skip


def test_network_is_small_and_starts_the_same_every_time(truth_response):
    first = build_lce_model(truth_response.live_pmts, initial=truth_response)
    second = build_lce_model(truth_response.live_pmts, initial=truth_response)
    assert first.count_params() < 50_000
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fitting_is_deterministic(truth_response):
    x, y = _disk(np.random.default_rng(8), 100, 50)
    features = network_inputs(truth_response, x, y)
    weights = []
    for _ in range(2):
        model = build_lce_model(truth_response.live_pmts, initial=first_guess_response(
            truth_response.live_pmts))  # fmt: skip
        fit_to_response(model, features, truth_response.lce(x, y), max_iterations=30)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_initialised_from_a_response_the_network_reproduces_it(truth_response, test_positions):
    x, y = test_positions
    model = build_lce_model(truth_response.live_pmts, initial=truth_response)
    lce = model_to_response(model).lce(x, y)
    relative = (lce / truth_response.lce(x, y) - 1)[:, truth_response.live_pmts.mask]
    assert np.sqrt(np.mean(relative**2)) < 1e-4


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ((10.0, 1.0, "wiggly"), "shape must be one of"),
        ((10.0, 3.0, "positive"), "must be at least two steps"),
    ],
)
def test_spline_rejects_bad_settings(arguments, match):
    with pytest.raises(ValueError, match=match):
        HermiteSpline(*arguments)


def test_fit_rejects_targets_of_the_wrong_shape(truth_response):
    model = build_lce_model(truth_response.live_pmts)
    features = network_inputs(truth_response, [0.0], [0.0])
    with pytest.raises(ValueError, match=r"positive with shape \(1, 253\)"):
        fit_to_response(model, features, np.ones((2, 253)))

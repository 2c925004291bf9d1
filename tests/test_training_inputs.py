"""Training options and the input file of ``lce-train --input`` (no TensorFlow)."""

import numpy as np
import pytest

from lce_plugins import TrainingOptions, save_training_input
from lce_plugins.training.inputs import load_training_input
from lce_plugins.training.options import options_with


def test_a_lower_max_rounds_alone_lowers_the_minimum():
    assert TrainingOptions().min_rounds == 3
    assert TrainingOptions(max_rounds=2).min_rounds == 2
    assert options_with(TrainingOptions(), {"max_rounds": 1}).min_rounds == 1
    assert options_with(None, {"max_rounds": 6}).min_rounds == 3


def test_a_minimum_above_the_maximum_is_refused():
    with pytest.raises(ValueError, match="need 1 <= min_rounds <= max_rounds, got 4, 2"):
        TrainingOptions(max_rounds=2, min_rounds=4)


def test_unknown_training_options_are_refused():
    with pytest.raises(TypeError, match=r"Unknown training option\(s\) \['rounds'\]"):
        options_with(None, {"rounds": 3})


def test_a_saved_training_input_loads_as_it_was_written(tmp_path):
    rng = np.random.default_rng(3)
    area = rng.exponential(20.0, (40, 494))
    saturated = np.zeros(area.shape, bool)
    saturated[5, 17] = True
    x, y = rng.uniform(-50, 50, 40), rng.uniform(-50, 50, 40)
    resolution = np.full(253, 0.4)
    path = save_training_input(
        tmp_path / "kr83m_s2s",
        area,
        x=x,
        y=y,
        dead_pmts=[12, 87],
        saturated_channel=saturated,
        spe_resolution=resolution,
    )
    assert path.name == "kr83m_s2s.npz"

    loaded = load_training_input({"input": str(path)})
    np.testing.assert_allclose(loaded["area_per_channel"], area[:, :253], rtol=1e-6)
    np.testing.assert_allclose(loaded["x"], x, rtol=1e-6)
    np.testing.assert_allclose(loaded["y"], y, rtol=1e-6)
    assert loaded["dead_pmts"] == [12, 87]
    assert loaded["saturated_channel"][5, 17] and loaded["saturated_channel"].sum() == 1
    np.testing.assert_array_equal(loaded["spe_resolution"], resolution)


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(area_per_channel=np.zeros((3, 100))), ValueError, r"shape \(n_events, 253\)"),
        (dict(area_per_channel=np.zeros((3, 253)), x=np.zeros(3)), ValueError, "both"),
        (
            dict(area_per_channel=np.zeros((3, 253)), x=np.zeros(2), y=np.zeros(2)),
            ValueError,
            r"shape \(3,\)",
        ),
        (
            dict(area_per_channel=np.zeros((3, 253)), spe_resolution=np.ones(5)),
            ValueError,
            r"spe_resolution must have shape \(253,\)",
        ),
        (dict(area_per_channel=np.full((3, 253), "a")), TypeError, "must be numeric"),
    ],
)
def test_bad_training_inputs_are_refused_before_writing(tmp_path, arguments, error, message):
    with pytest.raises(error, match=message):
        save_training_input(tmp_path / "bad.npz", **arguments)
    assert not (tmp_path / "bad.npz").exists()

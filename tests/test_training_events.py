"""Checks of the training input: shapes, bad events, initial positions, the split."""

import numpy as np
import pytest

from lce_plugins.geometry import LivePMTs
from lce_plugins.training.events import prepare_events, split_events


@pytest.fixture
def area(rng):
    return rng.poisson(3.0, size=(50, 494)).astype(float)


def test_only_the_top_array_is_kept_and_saturated_channels_are_not_used(area):
    saturated = np.zeros(area.shape, bool)
    saturated[3, 10] = True
    events = prepare_events(area, dead_pmts=[5], saturated_channel=saturated)
    assert events.area.shape == (50, 253)
    assert not events.used[3, 10] and events.used[4, 10]
    assert not events.used[:, 5].any()
    assert events.live_pmts == LivePMTs.from_dead_channels([5])


def test_events_with_nan_on_a_used_channel_or_without_light_are_dropped_and_counted(area):
    area[0, 20] = np.nan
    area[1, :] = 0.0
    area[2, 7] = np.inf  # a dead channel: does not matter
    events = prepare_events(area, dead_pmts=[7])
    assert len(events) == 48
    assert events.n_dropped == 2


def test_initial_positions_beyond_the_wall_are_pulled_inside(area):
    x = np.zeros(50)
    x[0] = 70.0
    events = prepare_events(area, x=x, y=np.zeros(50))
    assert events.x[0] == pytest.approx(66.39)
    assert np.all(np.isnan(prepare_events(area).x))


def test_the_fingerprint_changes_with_the_data(area):
    first = prepare_events(area).fingerprint()
    area[10, 10] += 1.0
    assert prepare_events(area).fingerprint() != first


def test_the_split_is_seeded_and_covers_every_event_once():
    train, heldout = split_events(1000, 0.2, seed=3)
    assert len(heldout) == 200
    np.testing.assert_array_equal(np.sort(np.concatenate([train, heldout])), np.arange(1000))
    np.testing.assert_array_equal(split_events(1000, 0.2, seed=3)[1], heldout)
    assert not np.array_equal(split_events(1000, 0.2, seed=4)[1], heldout)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(area_per_channel=np.ones((5, 100))), ValueError, r"\(n_events, 253\) or"),
        (dict(area_per_channel=np.full((20, 253), "a")), TypeError, "must be numeric"),
        (dict(x=np.zeros(50)), ValueError, "both initial x and y"),
        (dict(x=np.zeros(3), y=np.zeros(3)), ValueError, r"shape \(50,\), one value per event"),
        (dict(live_pmts=np.ones(253, bool), dead_pmts=[1]), ValueError, "not both"),
        (dict(saturated_channel=np.zeros((4, 253))), ValueError, "has 4 rows"),
        (dict(truth=np.zeros(50, [("x_truth", float)])), ValueError, "lacks"),
        (dict(area_per_channel=np.zeros((50, 253))), ValueError, "Only 0 usable events"),
    ],
)
def test_bad_training_input_raises_clear_errors(area, kwargs, error, match):
    arguments = dict(area_per_channel=area) | kwargs
    with pytest.raises(error, match=match):
        prepare_events(arguments.pop("area_per_channel"), **arguments)


def test_a_held_out_fraction_that_leaves_no_events_is_refused():
    with pytest.raises(ValueError, match="leaves no training or no held-out events"):
        split_events(10, 0.01, seed=0)

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import lce_plugins
from lce_plugins import geometry
from lce_plugins.geometry import LivePMTs

SHARED_FILE = Path(__file__).parents[2] / "shared" / "data" / "pmt_positions_xenonnt.csv"
# SHA-256 of the shared data/pmt_positions_xenonnt.csv (the file straxen downloads),
# so that the shipped copy is checked where the shared folder is absent (CI).
SHARED_FILE_SHA256 = "1f95b800f96b44bf5983f102e866428e8ea7f7cd04c8d2e91dd4ba6fee88a2e5"


def _read_csv(text):
    rows = [line.split(",") for line in text.strip().splitlines()[1:]]
    return [(int(r[0]), r[1], float(r[2]), float(r[3])) for r in rows]


def test_shipped_pmt_file_is_the_shared_file_byte_for_byte():
    shipped = resources.files("lce_plugins").joinpath("data", "pmt_positions_xenonnt.csv")
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == SHARED_FILE_SHA256


@pytest.mark.skipif(not SHARED_FILE.exists(), reason="the shared data folder is not mounted")
def test_pmt_positions_equal_the_top_rows_of_the_shared_file():
    rows = _read_csv(SHARED_FILE.read_text())
    top = [(x, y) for channel, array, x, y in rows if array == "top"]
    assert [channel for channel, array, _, _ in rows if array == "top"] == list(range(253))
    np.testing.assert_array_equal(lce_plugins.pmt_positions(), np.array(top))


def test_pmt_positions_are_253_top_pmts_inside_the_tpc_on_an_8_cm_grid():
    positions = lce_plugins.pmt_positions()
    assert positions.shape == (geometry.N_TOP_PMTS, 2)
    assert np.hypot(*positions.T).max() < geometry.TPC_RADIUS_CM
    distance = np.hypot(*(positions[:, None] - positions[None]).transpose(2, 0, 1))
    np.fill_diagonal(distance, np.inf)
    assert np.median(distance.min(axis=1)) == pytest.approx(geometry.PMT_PITCH_CM, abs=0.1)


def test_pmt_positions_returns_a_copy_that_callers_may_change():
    positions = lce_plugins.pmt_positions()
    positions[:] = 0
    assert lce_plugins.pmt_positions().any()


def test_bottom_positions_complete_the_494_channels():
    assert geometry.bottom_pmt_positions().shape == (geometry.N_BOTTOM_PMTS, 2)
    assert geometry.N_TOP_PMTS + geometry.N_BOTTOM_PMTS == geometry.N_TPC_PMTS == 494


def test_wire_normal_is_a_unit_vector_perpendicular_to_the_wires():
    along, across = geometry.wire_direction(), geometry.wire_normal()
    assert np.dot(along, across) == pytest.approx(0, abs=1e-15)
    assert np.linalg.norm(across) == pytest.approx(1)
    assert np.degrees(np.arctan2(along[1], along[0])) == pytest.approx(-60)


def test_emission_lies_below_the_pmt_windows_by_the_anode_distance_plus_half_the_gap():
    assert geometry.EMISSION_TO_PMT_WINDOW_CM == pytest.approx(6.9 + 0.15)


def test_live_pmts_from_dead_channels_round_trips():
    live = LivePMTs.from_dead_channels([17, 3, 3])
    assert live.dead_channels == (3, 17)
    assert live.n_live == 251
    assert not live.mask[3] and live.mask[4]
    assert live == LivePMTs(live.mask) and hash(live) == hash(LivePMTs(live.mask))
    assert np.asarray(live).dtype == bool


def test_live_pmt_mask_is_read_only():
    with pytest.raises(ValueError, match="read-only"):
        LivePMTs.all_live().mask[0] = False


@pytest.mark.parametrize(
    ("mask", "error", "match"),
    [
        (np.ones(494, bool), ValueError, r"shape \(253,\); got shape \(494,\)"),
        (np.ones(253), TypeError, "must be boolean; got dtype float64"),
        (np.zeros(253, bool), ValueError, "no live PMT"),
    ],
)
def test_live_pmts_rejects_bad_masks(mask, error, match):
    with pytest.raises(error, match=match):
        LivePMTs(mask)


def test_live_pmts_rejects_bottom_array_channels():
    with pytest.raises(ValueError, match=r"must lie in 0..252; got \[300\]"):
        LivePMTs.from_dead_channels([1, 300])

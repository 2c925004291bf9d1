"""The strax plugins of the LCE map in the offline context: positions, LCE quantities,
lineage, chunking, event level, odd peaks, registration into another context."""

import numpy as np
import pytest
import strax
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import area_per_channel

import lce_plugins
from lce_plugins.plugins import NOT_RECONSTRUCTED, EventPositionsLCE, PeakPositionsLCE
from lce_plugins.reconstruction import FitStatus
from lce_plugins.straxen_protocol import load_lce_map, pin_map_content

N_EVENTS = 1500
RUN = "000004"


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return tmp_path_factory.mktemp("strax_lce")


@pytest.fixture(scope="module")
def context(storage):
    return lce_plugins.demo_context(storage / "chunks_500", n_events=N_EVENTS, events_per_chunk=500)


@pytest.fixture(scope="module")
def positions(context):
    return context.get_df(
        RUN, ["peaks", "peak_truth", "peak_positions_lce", "peak_lce"], progress_bar=False
    )


def test_every_s2_gets_an_lce_position_that_agrees_with_the_truth(positions):
    assert len(positions) == N_EVENTS
    clean = ~positions["is_outlier"].astype(bool)
    fitted = positions["lce_fit_status"] == FitStatus.OK
    assert fitted[clean].mean() > 0.995
    chosen = clean & fitted
    dx = positions["x_lce"][chosen] - positions["x_truth"][chosen]
    dy = positions["y_lce"][chosen] - positions["y_truth"][chosen]
    # the demo map is the true response: errors are the resolution (about 0.16 cm)
    pull_x, pull_y = dx / positions["x_err_lce"][chosen], dy / positions["y_err_lce"][chosen]
    assert np.std(pull_x) == pytest.approx(1.0, abs=0.1)
    assert np.std(pull_y) == pytest.approx(1.0, abs=0.1)
    assert abs(np.median(dx)) < 0.02 and abs(np.median(dy)) < 0.02


def test_lce_quantities_of_a_perfect_map_are_calibrated(positions):
    clean = ~positions["is_outlier"].astype(bool) & (positions["lce_fit_status"] == 0)
    chi2 = positions["lce_chi2_calibrated"][clean]
    assert np.median(chi2) == pytest.approx(1.0, abs=0.03)
    assert positions["lce_relative"][clean].mean() == pytest.approx(1.0, abs=0.02)
    # merged double S2s stand out
    assert np.median(positions["lce_chi2_calibrated"][positions["is_outlier"]]) > 2


def test_peak_positions_takes_x_y_from_the_lce_algorithm(context):
    merged = context.get_df(RUN, "peak_positions", progress_bar=False)
    np.testing.assert_array_equal(merged["x"], merged["x_lce"])
    assert {"x_nominal", "y_nominal", "x_lce", "y_lce"} <= set(merged.columns)


def test_results_do_not_depend_on_the_chunking(storage, positions):
    other = lce_plugins.demo_context(
        storage / "chunks_170", n_events=N_EVENTS, events_per_chunk=170
    )
    again = other.get_df(RUN, ["peak_positions_lce", "peak_lce"], progress_bar=False)
    for field in ("x_lce", "y_lce", "lce_2llh", "lce_fit_status", "lce_relative"):
        np.testing.assert_array_equal(again[field], positions[field])


def test_another_map_gives_another_lineage(storage, context, nominal_response, tmp_path):
    path = nominal_response.save(tmp_path / "nominal.npz")
    other = lce_plugins.demo_context(
        storage / "chunks_500", n_events=N_EVENTS, events_per_chunk=500, lce_map=path
    )
    assert str(other.key_for(RUN, "peak_positions_lce")) != str(
        context.key_for(RUN, "peak_positions_lce")
    )
    assert str(other.key_for(RUN, "peaks")) == str(context.key_for(RUN, "peaks"))


def test_a_registered_name_is_pinned_to_the_maps_content(
    nominal_response, truth_response, tmp_path, monkeypatch
):
    monkeypatch.setenv("LCE_PLUGINS_MAP_REGISTRY", str(tmp_path / "registry"))
    lce_plugins.register_map(nominal_response.save(tmp_path / "a.npz"), "demo")
    pinned = pin_map_content("lce://demo", name="lce_map")
    assert pinned == f"lce://demo?content_hash={nominal_response.content_hash}"
    assert pin_map_content("lce://demo", name="other_option") == "lce://demo"
    assert load_lce_map("demo", nominal_response.content_hash).content_hash == (
        nominal_response.content_hash
    )
    lce_plugins.register_map(truth_response.save(tmp_path / "b.npz"), "demo", overwrite=True)
    with pytest.raises(lce_plugins.MapFileError, match="register the map under a new name"):
        load_lce_map("demo", nominal_response.content_hash)


def _plugin(context, name="peak_positions_lce"):
    return context.get_single_plugin(RUN, name)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    area=area_per_channel(max_events=6), saturated=st.booleans(), peak_type=st.sampled_from([1, 2])
)
def test_compute_never_raises_on_odd_peaks(context, area, saturated, peak_type):
    plugin = _plugin(context)
    peaks = np.zeros(len(area), dtype=strax.peak_dtype(n_channels=494))
    peaks["time"], peaks["length"], peaks["dt"] = np.arange(len(area)) * 1000, 10, 10
    with np.errstate(invalid="ignore", over="ignore"):
        peaks["area_per_channel"], peaks["area"] = area, np.nansum(area, axis=1)
    peaks["type"], peaks["saturated_channel"] = peak_type, saturated
    result = plugin.compute(peaks)
    assert len(result) == len(area)
    bad = ~np.isfinite(result["x_lce"])
    assert np.all(result["lce_fit_status"][bad] != FitStatus.OK)
    finite = ~bad
    assert np.all(np.hypot(result["x_lce"][finite], result["y_lce"][finite]) < 66.4)
    if peak_type != 2:
        assert np.all(result["lce_fit_status"] == NOT_RECONSTRUCTED)


def test_an_empty_chunk_gives_an_empty_result(context):
    peaks = np.zeros(0, dtype=strax.peak_dtype(n_channels=494))
    assert len(_plugin(context).compute(peaks)) == 0


def test_a_context_without_a_map_says_how_to_set_one(storage):
    st = lce_plugins.demo_context(storage / "no_map", n_events=100)
    st.set_config(dict(lce_map=None))
    with pytest.raises(ValueError, match="needs an LCE map"):
        st.get_array(RUN, "peak_positions_lce", progress_bar=False)


def test_a_context_with_another_pmt_count_is_refused(storage):
    st = lce_plugins.demo_context(storage / "pmts", n_events=100)
    st.set_config(dict(n_top_pmts=250))
    with pytest.raises(ValueError, match="n_top_pmts = 250"):
        st.get_array(RUN, "peak_positions_lce", progress_bar=False)


class SimulatedEventBasics(strax.Plugin):
    """Events of two consecutive simulated S2s: the brighter is the main S2."""

    __version__ = "0.0.1"
    provides = "event_basics"
    depends_on = "peaks"
    data_kind = "events"
    dtype = strax.time_fields + [("s2_index", np.int32), ("alt_s2_index", np.int32)]

    def compute(self, peaks, start, end):
        pairs = len(peaks) // 2
        events = np.zeros(pairs, dtype=self.dtype)
        first, second = peaks[0 : 2 * pairs : 2], peaks[1 : 2 * pairs : 2]
        events["time"], events["endtime"] = first["time"], strax.endtime(second)
        brighter = (second["area"] > first["area"]).astype(np.int32)
        events["s2_index"], events["alt_s2_index"] = brighter, 1 - brighter
        return self.chunk(start=start, end=end, data=events)


def test_event_positions_are_those_of_the_main_and_alternate_s2(context, positions):
    st = context.new_context()
    st.register(SimulatedEventBasics)
    events = st.get_array(RUN, ["event_basics", "event_positions_lce"], progress_bar=False)
    assert len(events) > 0
    by_time = {t: i for i, t in enumerate(positions["time"])}
    for event in events[:50]:
        start = by_time[event["time"]]
        main, alternate = start + event["s2_index"], start + event["alt_s2_index"]
        assert event["s2_x_lce"] == positions["x_lce"][main]
        assert event["alt_s2_y_lce"] == positions["y_lce"][alternate]
        assert event["s2_lce_2llh"] == positions["lce_2llh"][main]


def test_register_adds_lce_to_a_contexts_own_algorithms(tmp_path):
    import straxen

    class PeakPositionsOther(strax.Plugin):
        provides, depends_on, __version__ = "peak_positions_other", "peaks", "0.0.1"
        dtype = strax.time_fields + [("x_other", np.float32), ("y_other", np.float32)]

    st = lce_plugins.demo_context(tmp_path, n_events=100)
    st.register(
        [
            PeakPositionsOther,
            type(
                "PeakPositions", (straxen.PeakPositions,), {"depends_on": ("peak_positions_other",)}
            ),
        ]
    )
    lce_plugins.register(st, default_algorithm="lce")
    assert set(st._plugin_class_registry["peak_positions"].depends_on) == {
        "peak_positions_other",
        "peak_positions_lce",
    }
    assert st._plugin_class_registry["peak_positions_lce"] is PeakPositionsLCE
    assert st._plugin_class_registry["event_positions_lce"] is EventPositionsLCE


def test_register_refuses_what_is_not_a_context():
    with pytest.raises(TypeError, match="strax.Context"):
        lce_plugins.register("not a context")


def test_processing_with_the_plugins_never_imports_tensorflow(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys, lce_plugins\n"
        f"st = lce_plugins.demo_context({str(tmp_path)!r}, n_events=300)\n"
        "st.get_array('000001', ['peak_positions_lce', 'peak_lce'], progress_bar=False)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)

import numpy as np
import pytest

import lce_plugins
from lce_plugins.simulation import seed_for_run, simulate_kr83m

N_EVENTS, PER_CHUNK = 1200, 250


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return lce_plugins.demo_context(
        tmp_path_factory.mktemp("strax_data"), n_events=N_EVENTS, events_per_chunk=PER_CHUNK
    )


def test_get_df_returns_every_s2_across_chunks_in_time_order(context):
    peaks = context.get_df("000001", "peaks", progress_bar=False)
    assert len(peaks) == N_EVENTS
    assert peaks["time"].is_monotonic_increasing
    assert set(peaks["type"]) == {2}
    chunks = context.get_metadata("000001", "peaks")["chunks"]
    assert len(chunks) == int(np.ceil(N_EVENTS / PER_CHUNK))
    assert [c["n"] for c in chunks] == [250, 250, 250, 250, 200]
    for before, after in zip(chunks[:-1], chunks[1:], strict=True):
        assert before["end"] == after["start"]


def test_peak_truth_comes_with_the_peaks(context):
    df = context.get_df("000001", ["peaks", "peak_truth"], progress_bar=False)
    assert len(df) == N_EVENTS
    for field in ("x_truth", "y_truth", "n_photons_truth", "is_outlier"):
        assert field in df.columns
    assert "x" not in df.columns
    assert np.hypot(df["x_truth"], df["y_truth"]).max() <= 66.4


def test_a_run_is_the_simulation_seeded_by_its_run_id(context):
    peaks = context.get_array("000002", "peaks", progress_bar=False)
    expected, _ = simulate_kr83m(N_EVENTS, seed=seed_for_run("000002"))
    np.testing.assert_array_equal(peaks["area_per_channel"], expected["area_per_channel"])
    np.testing.assert_array_equal(peaks["time"], expected["time"])
    other = context.get_array("000001", "peaks", progress_bar=False)
    assert not np.array_equal(other["area_per_channel"], peaks["area_per_channel"])


def test_chunk_size_does_not_change_the_data(context, tmp_path):
    coarse = lce_plugins.demo_context(tmp_path, n_events=N_EVENTS, events_per_chunk=700)
    np.testing.assert_array_equal(
        coarse.get_array("000003", "peaks", progress_bar=False)["area_per_channel"],
        context.get_array("000003", "peaks", progress_bar=False)["area_per_channel"],
    )


def test_nominal_positions_are_provided_for_every_peak(tmp_path):
    st = lce_plugins.demo_context(tmp_path, n_events=300, events_per_chunk=120)
    df = st.get_df("000004", ["peak_positions_nominal", "peak_truth"], progress_bar=False)
    assert len(df) == 300
    ok = df["nominal_fit_status"] == 0
    assert ok.mean() > 0.95
    distance = np.hypot(df["x_nominal"] - df["x_truth"], df["y_nominal"] - df["y_truth"])
    assert np.median(distance[ok & ~df["is_outlier"]]) < 1.0


def test_a_context_with_no_events_is_refused(tmp_path):
    st = lce_plugins.demo_context(tmp_path, n_events=0)
    with pytest.raises(
        Exception, match="lce_sim_n_events and lce_sim_events_per_chunk must be positive"
    ):
        st.get_array("000001", "peaks", progress_bar=False)


def test_seed_for_run_is_stable_and_rejects_non_strings():
    assert seed_for_run("000001") == seed_for_run("000001") != seed_for_run("000002")
    with pytest.raises(TypeError, match="non-empty string"):
        seed_for_run(1)

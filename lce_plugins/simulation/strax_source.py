"""strax source plugin: simulated Kr83m S2 peaks and their truth, chunk by chunk.

Use it for offline development and tests: a context with this plugin (see
:func:`lce_plugins.demo_context`) answers ``st.get_df(run_id, 'peaks')`` with S2s of a
detector whose true light response is known, and ``'peak_truth'`` with that truth. The
run id seeds the simulation; the chunk size only splits the data, never changes it.
"""

from __future__ import annotations

import numpy as np
import strax
from immutabledict import immutabledict

from lce_plugins.simulation.detector import DetectorConfig
from lce_plugins.simulation.kr83m import RUN_START_NS, Kr83mSource, truth_dtype
from lce_plugins.simulation.peaks import peak_dtype
from lce_plugins.simulation.runs import (
    _min_separation_ns,
    event_times,
    seed_for_run,
    simulate_slice,
)

__all__ = ["SimulatedKr83mPeaks"]


class SimulatedKr83mPeaks(strax.Plugin):
    """Kr83m S2 peaks (494 channels) and per-peak truth from the detector simulation."""

    __version__ = "0.1.0"
    provides = ("peaks", "peak_truth")
    data_kind = immutabledict(peaks="peaks", peak_truth="peaks")
    depends_on: tuple = ()
    parallel = False
    rechunk_on_save = False
    compressor = "zstd"

    lce_sim_n_events = strax.Config(
        default=10_000, type=int, help="Number of S2 peaks in a simulated run"
    )
    lce_sim_events_per_chunk = strax.Config(
        default=2_000,
        type=int,
        track=False,
        help="Peaks per chunk of a simulated run (only splits the data, never changes it)",
    )
    lce_sim_detector_seed = strax.Config(
        default=DetectorConfig().seed,
        type=int,
        help="Seed of the simulated detector (PMT efficiencies, resolutions, dead PMTs)",
    )
    lce_sim_outlier_fraction = strax.Config(
        default=Kr83mSource().outlier_fraction,
        type=float,
        help="Fraction of peaks that merge a second S2 from elsewhere",
    )

    def infer_dtype(self):
        return dict(peaks=peak_dtype(), peak_truth=truth_dtype())

    def setup(self):
        if self.lce_sim_n_events < 1 or self.lce_sim_events_per_chunk < 1:
            raise ValueError(
                "lce_sim_n_events and lce_sim_events_per_chunk must be positive; got "
                f"{self.lce_sim_n_events} and {self.lce_sim_events_per_chunk}."
            )
        self.seed = seed_for_run(self.run_id)
        self.detector = DetectorConfig(seed=self.lce_sim_detector_seed)
        self.source = Kr83mSource(outlier_fraction=self.lce_sim_outlier_fraction)
        centres = event_times(
            self.lce_sim_n_events, self.seed, self.source.rate_hz, _min_separation_ns(self.source)
        )
        # Chunks end halfway between the centres of consecutive S2s; the minimum
        # separation of events keeps every peak clear of these boundaries.
        first_events = np.arange(0, self.lce_sim_n_events, self.lce_sim_events_per_chunk)
        boundaries = (centres[first_events[1:] - 1] + centres[first_events[1:]]) // 2
        self.first_events = first_events
        self.chunk_edges = np.concatenate(
            [[RUN_START_NS], boundaries, [centres[-1] + _min_separation_ns(self.source)]]
        )

    def source_finished(self):
        return True

    def is_ready(self, chunk_i):
        return chunk_i < len(self.first_events)

    def compute(self, chunk_i):
        first = int(self.first_events[chunk_i])
        stop = min(first + self.lce_sim_events_per_chunk, self.lce_sim_n_events)
        peaks, truth = simulate_slice(
            self.seed, first, stop, n_events=self.lce_sim_n_events, detector=self.detector,
            source=self.source,
        )  # fmt: skip
        start, end = int(self.chunk_edges[chunk_i]), int(self.chunk_edges[chunk_i + 1])
        return dict(
            peaks=self.chunk(start=start, end=end, data=peaks, data_type="peaks"),
            peak_truth=self.chunk(start=start, end=end, data=truth, data_type="peak_truth"),
        )

"""Offline strax contexts on simulated Kr83m runs."""

from __future__ import annotations

import logging
import os

import strax

from lce_plugins.simulation.nominal_positions import PeakPositionsNominal
from lce_plugins.simulation.strax_source import SimulatedKr83mPeaks

__all__ = ["demo_context"]

log = logging.getLogger(__name__)

DEFAULT_STORAGE_DIR = "./strax_data_lce_demo"


def demo_context(
    storage_dir: str | os.PathLike = DEFAULT_STORAGE_DIR,
    *,
    n_events: int = 10_000,
    events_per_chunk: int = 2_000,
    **config,
) -> strax.Context:
    """A plain strax context whose runs are simulated Kr83m calibration runs.

    No network and no database: any run id works and seeds the simulation.

    Parameters
    ----------
    storage_dir : path
        Where strax stores processed data.
    n_events : int
        S2 peaks per run.
    events_per_chunk : int
        Peaks per chunk.
    **config
        Further options, e.g. ``lce_sim_detector_seed``.

    Returns
    -------
    strax.Context
        Provides ``peaks``, ``peak_truth`` and ``peak_positions_nominal``.

    Examples
    --------
    >>> st = demo_context("/tmp/lce_demo", n_events=1000)      # doctest: +SKIP
    >>> st.get_df("000001", ["peaks", "peak_truth"])           # doctest: +SKIP
    """
    st = strax.Context(
        storage=[strax.DataDirectory(str(storage_dir), provide_run_metadata=False)],
        register=[SimulatedKr83mPeaks, PeakPositionsNominal],
        config=dict(lce_sim_n_events=n_events, lce_sim_events_per_chunk=events_per_chunk, **config),
        use_per_run_defaults=False,
    )
    log.debug("Demo context storing data in %s", storage_dir)
    return st

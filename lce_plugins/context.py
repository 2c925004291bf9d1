"""Offline strax contexts on simulated Kr83m runs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import strax

from lce_plugins.simulation.detector import DetectorConfig
from lce_plugins.simulation.nominal_positions import PeakPositionsNominal
from lce_plugins.simulation.strax_source import SimulatedKr83mPeaks

__all__ = ["demo_context"]

log = logging.getLogger(__name__)

DEFAULT_STORAGE_DIR = "./strax_data_lce_demo"


def _truth_map_file(storage_dir: Path, detector_seed: int) -> Path:
    """The simulated detector's true response as a map file in the storage folder."""
    from lce_plugins.simulation import truth_map

    path = storage_dir / "lce_maps" / f"truth_response_detector_{detector_seed}.npz"
    if not path.exists():
        truth_map(DetectorConfig(seed=detector_seed)).save(path)
    return path


def demo_context(
    storage_dir: str | os.PathLike = DEFAULT_STORAGE_DIR,
    *,
    n_events: int = 10_000,
    events_per_chunk: int = 2_000,
    lce_map: str | os.PathLike | None = None,
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
    lce_map : str or path, optional
        The map of the LCE plugins (``lce://NAME`` or a file). Default: the simulated
        detector's true response (synthetic; what a perfect training would give),
        written to ``storage_dir/lce_maps/``.
    **config
        Further options, e.g. ``lce_sim_detector_seed``.

    Returns
    -------
    strax.Context
        Provides ``peaks``, ``peak_truth``, ``peak_positions_nominal`` (positions from
        the Monte-Carlo-style nominal map), ``peak_positions_lce``, ``peak_lce`` and
        ``peak_positions`` (``x``, ``y`` from the LCE map; ``x_nominal``, ``x_lce``, ...).

    Examples
    --------
    >>> st = demo_context("/tmp/lce_demo", n_events=1000)      # doctest: +SKIP
    >>> st.get_df("000001", ["peaks", "peak_truth", "peak_positions_lce"])  # doctest: +SKIP
    """
    from lce_plugins.plugins import register
    from lce_plugins.plugins.peak_positions import with_algorithms

    storage_dir = Path(storage_dir)
    st = strax.Context(
        storage=[strax.DataDirectory(str(storage_dir), provide_run_metadata=False)],
        register=[SimulatedKr83mPeaks, PeakPositionsNominal],
        config=dict(lce_sim_n_events=n_events, lce_sim_events_per_chunk=events_per_chunk, **config),
        use_per_run_defaults=False,
    )
    if lce_map is None:
        detector_seed = config.get("lce_sim_detector_seed", DetectorConfig().seed)
        lce_map = _truth_map_file(storage_dir, detector_seed)
    register(st, lce_map=lce_map, default_algorithm="lce")
    st.register(with_algorithms(("peak_positions_nominal",)))
    log.debug("Demo context storing data in %s", storage_dir)
    return st

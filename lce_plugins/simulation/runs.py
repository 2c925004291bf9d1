"""Simulated Kr83m runs: :func:`simulate_kr83m` and the seeds of strax run ids."""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import numba
import numpy as np
from tqdm.auto import tqdm

from lce_plugins.optics import LightResponse
from lce_plugins.simulation.detector import Detector, DetectorConfig
from lce_plugins.simulation.kr83m import (
    EVENTS_PER_BLOCK,
    Density,
    Kr83mSource,
    event_times,
    simulate_events,
    truth_dtype,
)
from lce_plugins.simulation.peaks import WINDOW_SIGMAS, build_peaks, peak_dtype

__all__ = ["seed_for_run", "simulate_kr83m", "simulate_slice"]

log = logging.getLogger(__name__)


def seed_for_run(run_id: str) -> int:
    """A stable 63-bit seed from a run id (the same on every machine and Python)."""
    if not isinstance(run_id, str) or not run_id:
        raise TypeError(f"A run id must be a non-empty string; got {run_id!r}.")
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "little") >> 1


def _min_separation_ns(source: Kr83mSource) -> int:
    # widest possible peak: two pulses 3 widths apart plus the window on either side
    widest = float(np.hypot(source.s2_sigma_ns, source.diffusion_sigma_ns_at_max_drift))
    return int(np.ceil((2 * WINDOW_SIGMAS + 3.0) * widest)) + 1_000


def simulate_slice(
    seed: int,
    first: int,
    stop: int,
    *,
    n_events: int,
    detector: Detector | DetectorConfig | None = None,
    source: Kr83mSource | None = None,
    density: Density = "uniform",
    response: LightResponse | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks and truth of events ``first .. stop - 1`` of a run of ``n_events`` events.

    The same events, bit for bit, as the corresponding slice of
    ``simulate_kr83m(n_events, seed)``. Blocks of events are simulated side by side on
    Numba's thread count (their kernels and NumPy's generators release the GIL) and
    written into the result in place.
    """
    source = Kr83mSource() if source is None else source
    times = event_times(n_events, seed, source.rate_hz, _min_separation_ns(source))
    if stop <= first:
        return build_peaks(simulate_events(seed, first, first, detector=detector), times[:0])

    peaks, truth = np.empty(stop - first, dtype=peak_dtype()), np.empty(stop - first, truth_dtype())

    def one_block(block_first: int) -> int:
        block_stop = min((block_first // EVENTS_PER_BLOCK + 1) * EVENTS_PER_BLOCK, stop)
        events = simulate_events(
            seed, block_first, block_stop, detector=detector, source=source, density=density,
            response=response, n_threads=1,
        )  # fmt: skip
        part = slice(block_first - first, block_stop - first)
        peaks[part], truth[part] = build_peaks(events, times[block_first:block_stop])
        return block_stop - block_first

    starts = [first, *range((first // EVENTS_PER_BLOCK + 1) * EVENTS_PER_BLOCK, stop,
                            EVENTS_PER_BLOCK)]  # fmt: skip
    with ThreadPoolExecutor(numba.get_num_threads()) as pool:
        futures = [pool.submit(one_block, start) for start in starts]
        bar = tqdm(total=stop - first, desc="Simulating Kr83m", unit="event", disable=not progress)
        with bar:
            for future in as_completed(futures):
                bar.update(future.result())  # raises what the block raised
    return peaks, truth


def simulate_kr83m(
    n_events: int,
    seed: int = 0,
    *,
    detector: Detector | DetectorConfig | None = None,
    source: Kr83mSource | None = None,
    density: Density = "uniform",
    response: LightResponse | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a Kr83m calibration run: S2 peaks and their truth.

    Parameters
    ----------
    n_events : int
        Number of S2 peaks.
    seed : int
        Seeds everything; the same seed gives the same run.
    detector : Detector or DetectorConfig, optional
        Defaults to :func:`~lce_plugins.simulation.default_detector`.
    source : Kr83mSource, optional
        Event rates, light and outlier fraction.
    density : "uniform" or callable
        ``"uniform"`` in the disk r < 66.4 cm, or ``acceptance(x_cm, y_cm)`` in [0, 1]
        thinning the uniform disk.
    response : LightResponse, optional
        A top-array response to simulate instead of the detector's truth (e.g. one of
        another family, to test a training); the PMT response stays the detector's.
    progress : bool
        Show a progress bar.

    Returns
    -------
    peaks : numpy.ndarray
        strax peaks with 494 channels (``area_per_channel`` in PE), type 2, time-ordered.
    truth : numpy.ndarray
        Per peak: ``time``, ``endtime``, ``x_truth``, ``y_truth`` [cm],
        ``n_photons_truth`` [photons], ``is_outlier`` and details of outliers.

    Examples
    --------
    >>> from lce_plugins.simulation import simulate_kr83m
    >>> peaks, truth = simulate_kr83m(10, seed=1)
    >>> peaks["area_per_channel"].shape, bool(truth["is_outlier"].any())
    ((10, 494), False)
    """
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)):
        raise TypeError(f"n_events must be an integer; got {type(n_events).__name__}.")
    if n_events < 0:
        raise ValueError(f"n_events must be >= 0; got {n_events}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}.")

    started = time.perf_counter()
    peaks, truth = simulate_slice(
        seed, 0, n_events, n_events=n_events, detector=detector, source=source,
        density=density, response=response, progress=progress,
    )  # fmt: skip
    log.debug("Simulated %d Kr83m peaks in %.1f s", n_events, time.perf_counter() - started)
    return peaks, truth

"""Turn simulated events into strax peaks (494 channels) and their truth records."""

from __future__ import annotations

import math

import numba
import numpy as np

from lce_plugins import geometry
from lce_plugins.peak_types import PEAK_TYPE_S2
from lce_plugins.simulation.kr83m import truth_dtype

__all__ = ["build_peaks", "peak_dtype"]

#: Samples stored per peak waveform (strax's default peak dtype).
N_WAVEFORM_SAMPLES = 200
#: Digitiser sampling time [ns]; peak sample widths are multiples of it.
DIGITIZER_DT_NS = 10
#: Peaks extend this many pulse widths either side of their S2 pulses.
WINDOW_SIGMAS = 4.0


def peak_dtype() -> np.dtype:
    """strax's peak dtype for the 494 TPC channels."""
    import strax

    return np.dtype(strax.peak_dtype(n_channels=geometry.N_TPC_PMTS))


@numba.njit(cache=True, nogil=True)
def _pulse_cdf(t_ns, centres_ns, sigma_ns, weights):
    """Fraction of the pulse (a weighted sum of Gaussians) before ``t_ns``."""
    scale = 1.0 / (sigma_ns * math.sqrt(2.0))
    cdf = 0.0
    for c in range(centres_ns.size):
        if weights[c] > 0.0:
            cdf += 0.5 * weights[c] * (1.0 + math.erf((t_ns - centres_ns[c]) * scale))
    return cdf


@numba.njit(cache=True, nogil=True)
def _sample_pulse(start_ns, step_ns, centres_ns, sigma_ns, weights, out):
    """Pulse mass in consecutive samples (differences of the CDF at the sample edges, one
    evaluation per edge); returns the sum."""
    before = _pulse_cdf(start_ns, centres_ns, sigma_ns, weights)
    first = before
    for k in range(out.size):
        after = _pulse_cdf(start_ns + (k + 1) * step_ns, centres_ns, sigma_ns, weights)
        out[k] = after - before
        before = after
    return before - first


@numba.njit(cache=True, nogil=True)
def _fill_waveforms(start_ns, dt_ns, length, centres_ns, sigma_ns, weights, data, data_start):
    """Unit-area waveforms: ``data`` gets ``length`` samples of ``dt_ns`` normalised to
    sum to 1; ``data_start`` the first samples at the digitiser's 10 ns, same scale."""
    for i in range(start_ns.size):
        n_samples = length[i]
        total = _sample_pulse(
            start_ns[i], dt_ns[i], centres_ns[i], sigma_ns[i], weights[i], data[i, :n_samples]
        )
        _sample_pulse(
            start_ns[i], DIGITIZER_DT_NS, centres_ns[i], sigma_ns[i], weights[i], data_start[i]
        )
        if total > 0.0:
            data[i, :n_samples] /= total
            data_start[i] /= total


def _pulse_layout(events: dict, centre_times_ns: np.ndarray):
    """Pulse centres [ns] and light shares of the (up to two) S2s of each peak, and the
    peak's start [ns], sample width [ns] and number of samples."""
    sigma = events["sigma_ns"]
    centres = np.stack(
        [centre_times_ns.astype(np.float64), centre_times_ns + events["offset_2_sigma"] * sigma],
        axis=1,
    )
    light = np.stack([events["n_photons"], events["n_photons_2"]], axis=1)
    weights = light / np.maximum(light.sum(axis=1), 1e-9)[:, None]

    first = np.where(weights > 0, centres, np.inf).min(axis=1) - WINDOW_SIGMAS * sigma
    last = np.where(weights > 0, centres, -np.inf).max(axis=1) + WINDOW_SIGMAS * sigma
    start = np.floor(first).astype(np.int64)
    span = np.ceil(last).astype(np.int64) - start
    dt = DIGITIZER_DT_NS * np.ceil(span / (N_WAVEFORM_SAMPLES * DIGITIZER_DT_NS)).astype(np.int64)
    return centres, weights, start, dt, np.ceil(span / dt).astype(np.int64)


def build_peaks(events: dict, centre_times_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strax peaks and truth for simulated events.

    Parameters
    ----------
    events : dict
        Output of :func:`lce_plugins.simulation.kr83m.simulate_events`.
    centre_times_ns : numpy.ndarray
        Shape (n,), int64: centre time of each main S2 [ns since the unix epoch].

    Returns
    -------
    peaks : numpy.ndarray
        strax peaks (494 channels), type 2, time-ordered. ``n_hits`` and
        ``tight_coincidence`` count the channels that saw a photoelectron.
    truth : numpy.ndarray
        Same length, :func:`~lce_plugins.simulation.kr83m.truth_dtype`.
    """
    import strax

    n = len(centre_times_ns)
    centres, weights, start, dt, length = _pulse_layout(events, centre_times_ns)

    # 1. channel contents
    peaks = np.zeros(n, dtype=peak_dtype())
    peaks["time"], peaks["dt"], peaks["length"] = start, dt, length
    peaks["channel"], peaks["type"] = -1, PEAK_TYPE_S2
    area = events["area"].astype(np.float32)
    peaks["area_per_channel"], peaks["area"] = area, area.sum(axis=1)
    peaks["saturated_channel"] = events["saturated"]
    peaks["n_saturated_channels"] = events["saturated"].sum(axis=1)
    peaks["n_hits"] = peaks["tight_coincidence"] = (events["n_pe"] > 0).sum(axis=1)

    # 2. waveforms of unit area, scaled to the peak's total and top area
    shape, shape_start = np.zeros((n, N_WAVEFORM_SAMPLES)), np.zeros((n, N_WAVEFORM_SAMPLES))
    sigma = events["sigma_ns"].astype(np.float64)
    _fill_waveforms(start, dt, length, centres, sigma, weights, shape, shape_start)
    peaks["data"] = shape * peaks["area"][:, None]
    peaks["data_top"] = shape * area[:, : geometry.N_TOP_PMTS].sum(axis=1)[:, None]
    peaks["data_start"] = shape_start * peaks["area"][:, None]
    strax.compute_properties(peaks, n_top_channels=geometry.N_TOP_PMTS)

    truth = np.zeros(n, dtype=truth_dtype())
    truth["time"], truth["endtime"] = start, strax.endtime(peaks)
    for field, key in (("x_truth", "x"), ("y_truth", "y"), ("n_photons_truth", "n_photons"),
                       ("is_outlier", "is_outlier"), ("x_secondary_truth", "x2"),
                       ("y_secondary_truth", "y2"), ("n_photons_secondary_truth", "n_photons_2"),
                       ("drift_time_truth", "drift_ns")):  # fmt: skip
        truth[field] = events[key]
    return peaks, truth

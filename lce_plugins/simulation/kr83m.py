"""Kr83m S2 events: positions, light, PMT response, as strax peaks with their truth.

One event is one S2 peak of the 41.5 keV Kr83m decay (the two transitions merged):

1. position uniform in the disk r < 66.4 cm, or from a chosen density;
2. drift time uniform over the drift length; electrons extracted = a Gaussian-smeared
   number at zero drift, thinned by the electron lifetime;
3. ``n_photons_truth`` = electrons x photons per electron: the mean number of S2
   photons (so the photons detected by each PMT are independent Poisson variables);
4. per channel: Poisson photons with mean ``n_photons * LCE_j``; each photon gives a
   second PE with probability ``p_dpe``; the area is Gaussian around the PE count with
   variance ``spe_resolution_j**2 * n_pe``, or baseline noise if no PE (the exact model
   of :mod:`lce_plugins.likelihood`); dead PMTs read 0;
5. a small fraction of events merge a second S2 from elsewhere into the same peak
   (``is_outlier``), and channels whose pulse exceeds the saturation amplitude are
   clipped and flagged in ``saturated_channel``.

Randomness comes in blocks of :data:`EVENTS_PER_BLOCK` events, each seeded from
``(seed, block)``, and event times from their own stream, so any slice of a run is
reproducible on its own; this is what lets the strax source emit chunks independently.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
from scipy import special

from lce_plugins import geometry
from lce_plugins.optics import LightResponse
from lce_plugins.simulation.detector import Detector, DetectorConfig
from lce_plugins.simulation.response import _detector_for, bottom_array_lce, truth_map

__all__ = [
    "EVENTS_PER_BLOCK",
    "Kr83mSource",
    "simulate_events",
    "truth_dtype",
]

log = logging.getLogger(__name__)

EVENTS_PER_BLOCK = 500
#: Start of every simulated run, 2026-01-01 00:00 UTC [ns since the unix epoch].
RUN_START_NS = 1_767_225_600_000_000_000

#: A density is ``"uniform"`` or a function ``acceptance(x_cm, y_cm) -> [0, 1]`` that
#: thins the uniform disk (rejection sampling).
Density = str | Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Kr83mSource:
    """Parameters of the simulated Kr83m S2s (stand-in values unless a source is named).

    Attributes
    ----------
    n_electrons : float
        Mean electrons extracted for an event at zero drift time.
    electron_spread : float
        Relative Gaussian spread of that number (recombination fluctuations).
    photons_per_electron : float
        S2 photons emitted per extracted electron; with the default detector the top
        array sees about 7000 PE per event at zero drift time.
    electron_lifetime_us, max_drift_time_us : float
        Electron lifetime and the drift time of events at the cathode [us].
    rate_hz : float
        Event rate; event times follow a Poisson process [Hz].
    s2_sigma_ns : float
        Gaussian width of the S2 pulse of an event at the top of the TPC [ns].
    diffusion_sigma_ns_at_max_drift : float
        Extra width added in quadrature at the cathode (longitudinal diffusion) [ns].
    outlier_fraction : float
        Fraction of peaks that merge a second S2 from elsewhere (model-breaking events).
    """

    n_electrons: float = 330.0
    electron_spread: float = 0.05
    photons_per_electron: float = 205.0
    electron_lifetime_us: float = 10_000.0
    max_drift_time_us: float = 2_200.0
    rate_hz: float = 50.0
    s2_sigma_ns: float = 300.0
    diffusion_sigma_ns_at_max_drift: float = 1_200.0
    outlier_fraction: float = 0.015

    def __post_init__(self):
        positive = ("n_electrons", "photons_per_electron", "electron_lifetime_us",
                    "max_drift_time_us", "rate_hz", "s2_sigma_ns")  # fmt: skip
        bad = [name for name in positive if not getattr(self, name) > 0]
        if not 0 <= self.outlier_fraction < 0.5:
            bad.append("outlier_fraction")
        if not 0 <= self.electron_spread < 0.5:
            bad.append("electron_spread")
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(f"Kr83mSource out of range: {values}. See its docstring.")


def truth_dtype() -> np.dtype:
    """Dtype of the per-peak truth (strax conventions: titles carry units)."""
    return np.dtype(
        [
            (("Start time of the peak since unix epoch [ns]", "time"), np.int64),
            (("Exclusive end time of the peak since unix epoch [ns]", "endtime"), np.int64),
            (("True x of the (main) S2 [cm]", "x_truth"), np.float32),
            (("True y of the (main) S2 [cm]", "y_truth"), np.float32),
            (("Mean number of S2 photons of the (main) S2 [photons]", "n_photons_truth"),
             np.float32),
            (("Peak merges a second S2 from elsewhere", "is_outlier"), np.bool_),
            (("True x of the merged second S2, NaN if none [cm]", "x_secondary_truth"),
             np.float32),
            (("True y of the merged second S2, NaN if none [cm]", "y_secondary_truth"),
             np.float32),
            (("Mean photons of the merged second S2, 0 if none [photons]",
              "n_photons_secondary_truth"), np.float32),
            (("Drift time of the (main) S2 [ns]", "drift_time_truth"), np.float32),
        ]
    )  # fmt: skip


def event_times(n_events: int, seed: int, rate_hz: float, min_separation_ns: int) -> np.ndarray:
    """Centre times of the S2s of a run [ns since the unix epoch], shape (n_events,).

    A Poisson process of ``rate_hz``, with at least ``min_separation_ns`` between
    events so that peaks never overlap.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    gaps = rng.exponential(1e9 / rate_hz, size=n_events) + min_separation_ns
    return RUN_START_NS + np.cumsum(gaps).astype(np.int64)


def _sample_positions(rng: np.random.Generator, n: int, density: Density):
    """Positions uniform in the TPC disk, thinned by ``density`` if it is a function."""
    x, y = np.empty(0), np.empty(0)
    while x.size < n:
        size = max(2 * (n - x.size), 64)
        r = geometry.TPC_RADIUS_CM * np.sqrt(rng.uniform(size=size))
        phi = rng.uniform(0.0, 2.0 * np.pi, size=size)
        new_x, new_y = r * np.cos(phi), r * np.sin(phi)
        if callable(density):
            accept = rng.uniform(size=size) < np.asarray(density(new_x, new_y), dtype=float)
            new_x, new_y = new_x[accept], new_y[accept]
        x, y = np.concatenate([x, new_x]), np.concatenate([y, new_y])
    return x[:n], y[:n]


#: Poisson means below this are drawn by inverting the CDF; larger ones by NumPy.
_INVERSION_MAX_MEAN = 30.0
_MAX_INVERSION_COUNT = 200
#: 1 / k, so that the inversion loop multiplies instead of dividing
_INVERSE_COUNTS = 1.0 / np.maximum(np.arange(_MAX_INVERSION_COUNT + 1), 1)


@numba.njit(cache=True, nogil=True)
def _poisson_inverse(uniform, mean, inverse_counts):
    """The Poisson(mean) count whose CDF first exceeds ``uniform``; -1 if mean is large.

    Costs about ``mean`` multiply-adds, instead of one uniform per unit of mean as
    NumPy's multiplication method for small means does.
    """
    if mean >= _INVERSION_MAX_MEAN:
        return -1
    probability = math.exp(-mean)
    cumulative, count = probability, 0
    while uniform > cumulative and count < _MAX_INVERSION_COUNT:
        count += 1
        probability *= mean * inverse_counts[count]
        cumulative += probability
    return count


@numba.njit(cache=True, nogil=True)
def _draw_pe_counts(expected, p_dpe, uniforms, inverse_counts, singles, doubles):
    """Single- and double-PE photon counts by inversion; -1 where NumPy must draw."""
    for i in range(expected.shape[0]):
        for j in range(expected.shape[1]):
            mu = expected[i, j]
            singles[i, j] = _poisson_inverse(uniforms[i, j, 0], mu * (1.0 - p_dpe), inverse_counts)
            doubles[i, j] = _poisson_inverse(uniforms[i, j, 1], mu * p_dpe, inverse_counts)


@numba.njit(cache=True, nogil=True)
def _areas_from_counts(n_pe, gauss, spe_resolution, noise_pe, area):
    """Gaussian PE areas around the PE counts; baseline noise where there is none."""
    for i in range(n_pe.shape[0]):
        for j in range(n_pe.shape[1]):
            count = n_pe[i, j]
            spread = spe_resolution[j] * math.sqrt(count) if count > 0 else noise_pe
            area[i, j] = count + spread * gauss[i, j]


def _pmt_response(rng, expected_photons, spe_resolution, p_dpe, noise_pe):
    """Areas [PE] for expected photons per channel: Poisson x DPE x Gaussian.

    The PE count of Poisson(mu) photons with double-PE emission is N1 + 2 N2 with
    independent N1 ~ Poisson(mu (1 - p_dpe)) and N2 ~ Poisson(mu p_dpe).

    Parameters
    ----------
    rng : numpy.random.Generator
    expected_photons : array_like
        Shape (n, n_channels) or (n,) [photons].
    spe_resolution : float or array_like
        Scalar or one value per channel [PE].

    Returns
    -------
    area, n_pe : numpy.ndarray
        The shape of ``expected_photons``: float64 areas [PE] and int64 PE counts.
    """
    shape = np.shape(expected_photons)
    expected = np.atleast_2d(np.asarray(expected_photons, dtype=np.float64))
    resolution = np.ascontiguousarray(
        np.broadcast_to(np.asarray(spe_resolution, dtype=np.float64), expected.shape[-1:])
    )
    singles = np.empty(expected.shape, dtype=np.int64)
    doubles = np.empty(expected.shape, dtype=np.int64)
    _draw_pe_counts(
        expected, p_dpe, rng.random((*expected.shape, 2)), _INVERSE_COUNTS, singles, doubles
    )
    for counts, share in ((singles, 1.0 - p_dpe), (doubles, p_dpe)):
        large = counts < 0
        counts[large] = rng.poisson(expected[large] * share)
    n_pe = singles + 2 * doubles

    area = np.empty(expected.shape)
    _areas_from_counts(n_pe, rng.standard_normal(expected.shape), resolution, noise_pe, area)
    return area.reshape(shape), n_pe.reshape(shape)


def _clip_saturated(area, sigma_ns, saturation_pe_per_ns):
    """Clip pulses whose Gaussian peak amplitude exceeds the saturation level.

    A Gaussian pulse of area A and width s, cut at amplitude c, keeps
    A erfc(t_c / (s sqrt 2)) + 2 c t_c with t_c = s sqrt(2 ln(A / (s sqrt(2 pi) c))).
    Returns the clipped areas and the saturation flags.
    """
    sigma = np.broadcast_to(np.asarray(sigma_ns, dtype=np.float64)[:, None], area.shape)
    saturated = area > saturation_pe_per_ns * sigma * np.sqrt(2.0 * np.pi)
    # only the few saturated channels need the special functions
    area_hit, sigma_hit = area[saturated], sigma[saturated]
    t_cut = sigma_hit * np.sqrt(
        2.0 * np.log(area_hit / (sigma_hit * np.sqrt(2.0 * np.pi) * saturation_pe_per_ns))
    )
    clipped = area.copy()
    clipped[saturated] = (
        area_hit * special.erfc(t_cut / (sigma_hit * np.sqrt(2.0)))
        + 2.0 * saturation_pe_per_ns * t_cut
    )
    return clipped, saturated


def _sample_main_s2s(rng, n_events, source: Kr83mSource, density):
    """Positions [cm], drift times [us] and mean photon numbers of the main S2s."""
    x, y = _sample_positions(rng, n_events, density)
    drift_us = rng.uniform(0.0, source.max_drift_time_us, size=n_events)
    spread = 1.0 + source.electron_spread * rng.standard_normal(n_events)
    electrons_at_top = np.clip(source.n_electrons * spread, 1, None)
    survival = np.exp(-drift_us / source.electron_lifetime_us)
    electrons = rng.binomial(np.round(electrons_at_top).astype(np.int64), survival)
    return x, y, drift_us, electrons * source.photons_per_electron


def _sample_merged_s2s(rng, n_photons, source: Kr83mSource):
    """Second S2s from elsewhere merged into a fraction of the peaks (model breakers).

    Returns the outlier flags, positions (NaN without), mean photons (0 without) and
    time offsets in pulse widths.
    """
    n_events = n_photons.size
    is_outlier = rng.uniform(size=n_events) < source.outlier_fraction
    n_outliers = int(is_outlier.sum())
    x2, y2 = np.full(n_events, np.nan), np.full(n_events, np.nan)
    x2[is_outlier], y2[is_outlier] = _sample_positions(rng, n_outliers, "uniform")
    n_photons_2 = np.zeros(n_events)
    n_photons_2[is_outlier] = n_photons[is_outlier] * rng.uniform(0.1, 1.0, size=n_outliers)
    offset_2 = np.where(is_outlier, rng.uniform(-1.5, 1.5, size=n_events), 0.0)
    return is_outlier, x2, y2, n_photons_2, offset_2


def _expected_photons(detector: Detector, response, x, y, n_photons, x2, y2, n_photons_2):
    """Mean detected photons per channel, (n, 494): top from the true response (the
    detector's, unless ``response`` replaces it; both S2s of merged peaks), bottom from
    the broad bottom-array pattern."""
    top = geometry.N_TOP_PMTS
    expected = np.empty((x.size, geometry.N_TPC_PMTS))
    response = truth_map(detector) if response is None else response
    expected[:, :top] = n_photons[:, None] * response.lce(x, y, parallel=False)
    merged = n_photons_2 > 0
    if merged.any():
        lce_2 = response.lce(x2[merged], y2[merged], parallel=False)
        expected[merged, :top] += n_photons_2[merged, None] * lce_2
    expected[:, top:] = (n_photons + n_photons_2)[:, None] * bottom_array_lce(detector)
    return expected


def _simulate_block(
    seed, block, n_events, detector: Detector, source: Kr83mSource, density, response=None
):
    """Truth, expected light and observed areas of one block of events.

    Runs on one thread (Numba kernels and NumPy's generators release the GIL), so that
    blocks can be simulated side by side.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, block)))
    config = detector.config

    x, y, drift_us, n_photons = _sample_main_s2s(rng, n_events, source, density)
    is_outlier, x2, y2, n_photons_2, offset_2 = _sample_merged_s2s(rng, n_photons, source)
    expected = _expected_photons(detector, response, x, y, n_photons, x2, y2, n_photons_2)

    area, n_pe = _pmt_response(
        rng, expected, detector.spe_resolution, config.p_dpe, config.baseline_noise_pe
    )
    dead = np.flatnonzero(~detector.live_pmts.mask)
    area[:, dead], n_pe[:, dead] = 0.0, 0
    diffusion_ns = source.diffusion_sigma_ns_at_max_drift * np.sqrt(
        drift_us / source.max_drift_time_us
    )
    sigma_ns = np.hypot(source.s2_sigma_ns, diffusion_ns)
    area, saturated = _clip_saturated(area, sigma_ns, config.saturation_pe_per_ns)

    return dict(
        x=x, y=y, n_photons=n_photons, drift_ns=drift_us * 1e3, is_outlier=is_outlier,
        x2=x2, y2=y2, n_photons_2=n_photons_2, offset_2_sigma=offset_2, sigma_ns=sigma_ns,
        area=area, n_pe=n_pe, saturated=saturated,
    )  # fmt: skip


def simulate_events(
    seed: int,
    first: int,
    stop: int,
    *,
    detector: Detector | DetectorConfig | None = None,
    source: Kr83mSource | None = None,
    density: Density = "uniform",
    response: LightResponse | None = None,
    n_threads: int | None = None,
) -> dict:
    """Simulate events ``first .. stop - 1`` of the run seeded by ``seed``.

    Any slice of a run gives the same events as the whole run, sliced. Blocks of events
    are simulated on ``n_threads`` threads (default: Numba's thread count). ``response``
    replaces the detector's true top-array response (e.g. to test that a training
    learns a light response of another family); the bottom array is unchanged.

    Returns
    -------
    dict
        Arrays of length ``stop - first``: ``x``, ``y`` [cm], ``n_photons``,
        ``drift_ns``, ``is_outlier``, ``x2``, ``y2``, ``n_photons_2`` (merged second S2),
        ``offset_2_sigma`` (its time offset in pulse widths), ``sigma_ns`` (pulse width),
        ``area`` (n, 494) [PE], ``n_pe`` (n, 494), ``saturated`` (n, 494).
    """
    detector = _detector_for(detector)
    source = Kr83mSource() if source is None else source
    if not (density == "uniform" or callable(density)):
        raise ValueError(f"density must be 'uniform' or a function of (x, y); got {density!r}.")
    if not 0 <= first <= stop:
        raise ValueError(f"Need 0 <= first <= stop; got first={first}, stop={stop}.")
    if response is not None and not isinstance(response, LightResponse):
        raise TypeError(f"response must be a LightResponse; got {type(response).__name__}.")

    def one_block(block, size=EVENTS_PER_BLOCK):
        return _simulate_block(seed, block, size, detector, source, density, response)

    if stop == first:
        return one_block(0, 0)
    first_block, last_block = first // EVENTS_PER_BLOCK, (stop - 1) // EVENTS_PER_BLOCK
    with ThreadPoolExecutor(n_threads or numba.get_num_threads()) as pool:
        blocks = list(pool.map(one_block, range(first_block, last_block + 1)))
    start_in_block = first - first_block * EVENTS_PER_BLOCK
    return {
        key: np.concatenate([b[key] for b in blocks])[
            start_in_block : start_in_block + stop - first
        ]
        for key in blocks[0]
    }

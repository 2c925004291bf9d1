"""Figures of merit of a learned LCE map and of the positions fitted with it.

The numbers of the training report (``report.json``): all functions but
:func:`cramer_rao_bound` and :func:`radial_displacement_profile` return dicts of plain
floats, ints and None, ready for :func:`json.dumps`. :func:`homogeneity` needs no truth
(Kr83m fills the TPC uniformly); :func:`lce_relative_rms`, :func:`position_errors` and
the Cramér-Rao bound that the resolution is compared with need the simulation's truth.
"Bulk" is a true radius below ``bulk_radius_cm`` (60 cm), "wall" the ring from there to
the wall at 66.4 cm, where the light reflected by the PTFE wall matters.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import stats

from lce_plugins.geometry import N_TOP_PMTS, N_TPC_PMTS, TPC_RADIUS_CM, LivePMTs
from lce_plugins.likelihood import log_likelihood_derivatives
from lce_plugins.optics import LightResponse

__all__ = [
    "BULK_RADIUS_CM",
    "cramer_rao_bound",
    "homogeneity",
    "lce_relative_rms",
    "position_errors",
    "radial_displacement_profile",
    "summarise_cramer_rao",
]

log = logging.getLogger(__name__)

#: Events at a true radius below this are "bulk", the others "wall" [cm].
BULK_RADIUS_CM = 60.0
#: 1.4826 times the median absolute deviation is the standard deviation of a Gaussian.
MAD_TO_SIGMA = 1.4826
#: Events per block in :func:`cramer_rao_bound` (bounds the (n, 253, 3) Jacobian's memory).
_EVENTS_PER_BLOCK = 10_000
#: Smallest eigenvalue of a usable information matrix scaled to unit diagonal.
_MIN_EIGENVALUE = 1e-12


def _coordinates(**named) -> list[np.ndarray]:
    """Named coordinate arrays of one shape as flat float64 arrays (values may be NaN)."""
    arrays = [np.asarray(values) for values in named.values()]
    for name, values in zip(named, arrays, strict=True):
        if values.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers; got dtype {values.dtype}.")
    if len({values.shape for values in arrays}) > 1:
        listed = ", ".join(f"{name} {np.shape(values)}" for name, values in named.items())
        raise ValueError(f"{', '.join(named)} must have the same shape; got {listed}.")
    return [values.astype(np.float64).ravel() for values in arrays]


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _check_bulk_radius(bulk_radius_cm: float, radius_cm: float) -> float:
    if not 0.0 < bulk_radius_cm < radius_cm:
        raise ValueError(f"bulk_radius_cm must lie in (0, {radius_cm}) cm; got {bulk_radius_cm}.")
    return float(bulk_radius_cm)


def _regions(r_true: np.ndarray, bulk_radius_cm: float) -> dict[str, np.ndarray]:
    """Boolean selections of the bulk (r < bulk radius) and the wall ring (r >= it)."""
    bulk = r_true < bulk_radius_cm
    return {"bulk": bulk, "wall": ~bulk}


def homogeneity(
    x, y, radius_cm: float = TPC_RADIUS_CM, n_r2_bins: int = 10, n_phi_bins: int = 12
) -> dict:
    """How uniform fitted positions are in the disk, as Kr83m events must be.

    For events uniform in a disk of radius R, u = r^2 / R^2 and the azimuth phi are
    uniform. Two tests: Kolmogorov-Smirnov of u against uniform on [0, 1] (radial
    compression or stretching, the typical bias of a Monte-Carlo map), and the Pearson
    chi2 of the counts in ``n_r2_bins x n_phi_bins`` equal-area cells (equal steps in u
    and phi) against the flat expectation, ndf = n_cells - 1 (clumps anywhere).

    Events fitted beyond the wall (u > 1) stay in both tests, in the KS test at the end
    of the distribution and in the chi2 in the outermost ring, so a map that pushes
    events out is penalised, not rewarded; they are also counted as ``n_outside``.
    Events with a NaN coordinate (failed fits) are dropped and counted as ``n_dropped``.

    Parameters
    ----------
    x, y : array_like
        Fitted positions [cm], same shape.
    radius_cm : float
        TPC radius R [cm].
    n_r2_bins, n_phi_bins : int
        Cells of the chi2 test in u and in phi; each should expect five events or more.

    Returns
    -------
    dict
        ``ks_statistic``, ``ks_pvalue``, ``histogram_chi2``, ``histogram_ndf``,
        ``histogram_chi2_ndf``, ``histogram_pvalue``, ``n_events`` (used), ``n_dropped``,
        ``n_outside``, ``radius_cm``.
    """
    x, y = _coordinates(x=x, y=y)
    n_r2_bins = _check_count("n_r2_bins", n_r2_bins, 2)
    n_phi_bins = _check_count("n_phi_bins", n_phi_bins, 1)
    n_cells = n_r2_bins * n_phi_bins
    if not radius_cm > 0:
        raise ValueError(f"radius_cm must be positive; got {radius_cm}.")

    finite = np.isfinite(x) & np.isfinite(y)
    n_dropped = int((~finite).sum())
    if n_dropped:
        log.warning("homogeneity: %d of %d positions are NaN and dropped", n_dropped, x.size)
    x, y = x[finite], y[finite]
    if x.size < 2:
        raise ValueError(f"homogeneity needs at least 2 finite positions; got {x.size}.")
    if x.size < 5 * n_cells:
        log.warning("homogeneity: %d events in %d cells; the chi2 is unreliable", x.size, n_cells)

    r2_fraction = (x**2 + y**2) / radius_cm**2
    ks = stats.kstest(r2_fraction, "uniform")

    # equal-area cells: equal steps in r^2 and in phi; beyond the wall -> last ring
    r2_bin = np.minimum((r2_fraction * n_r2_bins).astype(np.int64), n_r2_bins - 1)
    phi_fraction = (np.arctan2(y, x) + np.pi) / (2.0 * np.pi)
    phi_bin = np.minimum((phi_fraction * n_phi_bins).astype(np.int64), n_phi_bins - 1)
    counts = np.bincount(r2_bin * n_phi_bins + phi_bin, minlength=n_cells)
    expected = x.size / n_cells
    chi2 = float(np.sum((counts - expected) ** 2) / expected)
    ndf = n_cells - 1

    return dict(
        ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue),
        histogram_chi2=chi2, histogram_ndf=ndf, histogram_chi2_ndf=chi2 / ndf,
        histogram_pvalue=float(stats.chi2.sf(chi2, ndf)), n_events=int(x.size),
        n_dropped=n_dropped, n_outside=int((r2_fraction > 1.0).sum()), radius_cm=float(radius_cm),
    )  # fmt: skip


def _uniform_in_ring(rng: np.random.Generator, inner_cm: float, outer_cm: float, n: int):
    """n positions uniform in the ring inner <= r < outer [cm] (uniform in r^2 and phi)."""
    # a hair inside the outer radius, so rounding in cos/sin never lands on the wall
    r = np.sqrt(rng.uniform(inner_cm**2, outer_cm**2 * (1.0 - 1e-9), size=n))
    phi = rng.uniform(0.0, 2.0 * np.pi, size=n)
    return r * np.cos(phi), r * np.sin(phi)


def _log_lce_ratio(learned: LightResponse, truth: LightResponse, x, y, live) -> np.ndarray:
    """ln(LCE_learned / LCE_true) at the live PMTs, shape (n, n_live)."""
    learned_lce, true_lce = learned.lce(x, y)[:, live], truth.lce(x, y)[:, live]
    for name, lce in (("learned", learned_lce), ("truth", true_lce)):
        if not (np.all(np.isfinite(lce)) and np.all(lce > 0)):
            raise ValueError(
                f"The {name} map gives non-positive or non-finite LCE values inside the TPC; "
                "a relative error needs LCE > 0 at every live PMT."
            )
    return np.log(learned_lce / true_lce)


def lce_relative_rms(learned: LightResponse, truth: LightResponse, *, n_points: int = 20_000,
                     seed: int = 0, bulk_radius_cm: float = BULK_RADIUS_CM) -> dict:  # fmt: skip
    """Relative RMS difference of a learned LCE map from the true one, bulk and wall.

    The absolute scale of a learned LCE is not identifiable (each event's light N absorbs
    it: the data see N LCE), so the maps are compared after one global scale s, the
    least-squares fit in log: ln s = mean of ln(LCE_learned / LCE_true) over the disk.
    The reported numbers are the RMS of LCE_learned / (s LCE_true) - 1 over the PMTs live
    in both maps (each counting equally, also the far ones that see a few PE) and over
    positions uniform in each region. Half of the points lie in the bulk disk, half in
    the wall ring (far more than its share of the area, to measure it as well); ``scale``
    and ``disk`` weight the regions by their areas, as for positions uniform in the disk.

    Parameters
    ----------
    learned, truth : LightResponse
        The two maps, for the same TPC radius.
    n_points : int
        Positions sampled in all (half per region).
    seed : int
        Seed of the positions; the result is deterministic.
    bulk_radius_cm : float
        Border between bulk and wall [cm].

    Returns
    -------
    dict
        ``bulk``, ``wall``, ``disk`` (relative RMS, dimensionless), ``scale`` (s),
        ``n_points``, ``n_live_pmts``, ``bulk_radius_cm``.
    """
    for name, response in (("learned", learned), ("truth", truth)):
        if not isinstance(response, LightResponse):
            raise TypeError(f"{name} must be a LightResponse; got {type(response).__name__}.")
    if learned.radius_cm != truth.radius_cm:
        raise ValueError(f"The maps are for different TPC radii: learned {learned.radius_cm} cm, "
                         f"truth {truth.radius_cm} cm; compare maps of one TPC.")  # fmt: skip
    radius_cm = truth.radius_cm
    bulk_radius_cm = _check_bulk_radius(bulk_radius_cm, radius_cm)
    n_points = _check_count("n_points", n_points, 2)
    live = learned.live_pmts.mask & truth.live_pmts.mask
    if not live.any():
        raise ValueError("No PMT is live in both maps; there is nothing to compare.")

    rng = np.random.default_rng(seed)
    rings = {"bulk": (0.0, bulk_radius_cm, n_points // 2),
             "wall": (bulk_radius_cm, radius_cm, n_points - n_points // 2)}  # fmt: skip
    log_ratio = {
        region: _log_lce_ratio(learned, truth, *_uniform_in_ring(rng, *ring), live)
        for region, ring in rings.items()
    }

    bulk_area = (bulk_radius_cm / radius_cm) ** 2
    log_scale = bulk_area * log_ratio["bulk"].mean() + (1.0 - bulk_area) * log_ratio["wall"].mean()
    rms = {
        region: float(np.sqrt(np.mean(np.expm1(values - log_scale) ** 2)))
        for region, values in log_ratio.items()
    }
    disk = np.sqrt(bulk_area * rms["bulk"] ** 2 + (1.0 - bulk_area) * rms["wall"] ** 2)
    return dict(
        bulk=rms["bulk"], wall=rms["wall"], disk=float(disk), scale=float(np.exp(log_scale)),
        n_points=n_points, n_live_pmts=int(live.sum()), bulk_radius_cm=bulk_radius_cm,
    )  # fmt: skip


def _displacement_summary(dx: np.ndarray, dy: np.ndarray, dr: np.ndarray) -> dict:
    """Median radial displacement and robust per-coordinate spread [cm]; None if empty."""
    if dx.size == 0:
        return dict(radial_bias_cm=None, resolution_cm=None, n_events=0)
    centred = np.concatenate([dx - np.median(dx), dy - np.median(dy)])
    mad = np.median(np.abs(centred - np.median(centred)))
    return dict(radial_bias_cm=float(np.median(dr)), resolution_cm=float(MAD_TO_SIGMA * mad),
                n_events=int(dx.size))  # fmt: skip


def position_errors(x, y, x_true, y_true, *, bulk_radius_cm: float = BULK_RADIUS_CM) -> dict:
    """Radial bias and resolution of fitted positions, in the bulk and at the wall.

    Events are split by their true radius. Per region: ``radial_bias_cm``, the median of
    r_fit - r_true (negative: pulled inwards); ``resolution_cm``, the robust spread of one
    coordinate: the medians of dx and dy are removed (a common shift is no resolution),
    the two are pooled, and 1.4826 times their median absolute deviation is taken (the
    standard deviation for Gaussian errors, unmoved by a few wild fits; a displacement
    that depends on the direction, e.g. a radial bias, widens it); ``n_events``. Compare
    the resolution with :func:`summarise_cramer_rao`. An empty region gets None; NaN
    fitted positions (failed fits) are left out and counted as ``n_failed``.

    Parameters
    ----------
    x, y : array_like
        Fitted positions [cm], shape (n,).
    x_true, y_true : array_like
        True positions [cm], shape (n,); must be finite.
    bulk_radius_cm : float
        Border between bulk and wall [cm].

    Returns
    -------
    dict
        ``bulk`` and ``wall`` (dicts as above), ``n_failed``, ``bulk_radius_cm``.
    """
    x, y, x_true, y_true = _coordinates(x=x, y=y, x_true=x_true, y_true=y_true)
    if not (np.all(np.isfinite(x_true)) and np.all(np.isfinite(y_true))):
        raise ValueError("x_true and y_true must be finite: the truth of every event is needed.")
    bulk_radius_cm = _check_bulk_radius(bulk_radius_cm, TPC_RADIUS_CM)

    fitted = np.isfinite(x) & np.isfinite(y)
    n_failed = int((~fitted).sum())
    if n_failed:
        log.warning("position_errors: %d of %d fitted positions are NaN", n_failed, x.size)
    r_true = np.hypot(x_true, y_true)
    dx, dy, dr = x - x_true, y - y_true, np.hypot(x, y) - r_true

    result = {}
    for region, chosen in _regions(r_true, bulk_radius_cm).items():
        chosen = chosen & fitted
        result[region] = _displacement_summary(dx[chosen], dy[chosen], dr[chosen])
    return dict(result, n_failed=n_failed, bulk_radius_cm=bulk_radius_cm)


def _top_array(values, name: str, n_events: int) -> np.ndarray:
    """A per-channel array of shape (n, 253) or (n, 494) as its top-array part, float64."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] not in (N_TOP_PMTS, N_TPC_PMTS):
        raise ValueError(f"{name} must have shape (n_events, {N_TOP_PMTS}) or (n_events, "
                         f"{N_TPC_PMTS}); got {values.shape}.")  # fmt: skip
    if len(values) != n_events:
        raise ValueError(f"{name} has {len(values)} rows; the positions have {n_events}.")
    return values[:, :N_TOP_PMTS].astype(np.float64)


def _used_channels(live, response: LightResponse, n_events: int) -> np.ndarray:
    """The (n, 253) boolean mask of PMT readings that enter the likelihood."""
    if live is None:
        live = response.live_pmts
    mask = np.asarray(live.mask if isinstance(live, LivePMTs) else live)
    if mask.dtype != bool or mask.shape not in ((N_TOP_PMTS,), (n_events, N_TOP_PMTS)):
        raise ValueError(
            f"live must be a LivePMTs or a boolean array of shape ({N_TOP_PMTS},) or "
            f"({n_events}, {N_TOP_PMTS}); got dtype {mask.dtype}, shape {mask.shape}."
        )
    return np.broadcast_to(mask, (n_events, N_TOP_PMTS))


def _top_spe_resolution(spe_resolution) -> np.ndarray:
    """Single-PE resolutions [PE] as a scalar or the (253,) top-array values."""
    resolution = np.asarray(spe_resolution, dtype=np.float64)
    if resolution.shape not in ((), (N_TOP_PMTS,), (N_TPC_PMTS,)):
        raise ValueError(
            f"spe_resolution must be a scalar or have shape ({N_TOP_PMTS},) or "
            f"({N_TPC_PMTS},) [PE]; got shape {resolution.shape}."
        )
    return resolution[:N_TOP_PMTS] if resolution.ndim else resolution


def _fisher_information(response, area, x, y, n_photons, sigma, p_dpe, used) -> np.ndarray:
    """Per-event information matrices of (x, y, N), shape (n, 3, 3), from the curvature
    of ln L in mu at the true expected light, weighted by d mu / d(x, y, N)."""
    lce, dlce_dx, dlce_dy = response.lce_and_gradient(x, y)
    expected = n_photons[:, None] * lce
    # readings that do not enter (dead, saturated) may hold anything: give them a valid area
    area = np.where(used, area, 0.0)
    _, _, curvature = log_likelihood_derivatives(area, expected, sigma, p_dpe)
    information = np.where(used, -curvature, 0.0)
    jacobian = np.stack(
        [n_photons[:, None] * dlce_dx, n_photons[:, None] * dlce_dy, lce], axis=-1
    )  # (n, 253, 3): d mu_j / d(x, y, N)
    return np.einsum("nj,nja,njb->nab", information, jacobian, jacobian)


def _position_bound(fisher: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sigma_x, sigma_y [cm] from (n, 3, 3) information matrices; NaN where singular.

    The matrix is scaled to unit diagonal before the eigenvalue test and the inversion:
    its entries span many orders of magnitude (photons^2 against 1/cm^2).
    """
    diagonal = np.einsum("naa->na", fisher)
    usable = np.all(np.isfinite(fisher), axis=(1, 2)) & np.all(diagonal > 0, axis=1)
    scale = 1.0 / np.sqrt(np.where(usable[:, None], diagonal, 1.0))
    scaled = fisher * scale[:, :, None] * scale[:, None, :]
    scaled[~usable] = np.eye(3)
    usable &= np.linalg.eigvalsh(scaled)[:, 0] > _MIN_EIGENVALUE

    bound = np.full((len(fisher), 2), np.nan)
    inverse = np.linalg.inv(scaled[usable]) * scale[usable, :, None] * scale[usable, None, :]
    bound[usable] = np.sqrt(np.stack([inverse[:, 0, 0], inverse[:, 1, 1]], axis=-1))
    return bound, usable


def cramer_rao_bound(response: LightResponse, area_per_channel, x_true, y_true, n_photons_true,
                     *, spe_resolution, p_dpe: float, live=None) -> np.ndarray:  # fmt: skip
    """Per-event Cramér-Rao bound of the (x, y) resolution under the exact PMT likelihood.

    The parameters of an event are theta = (x, y, N); PMT j expects mu_j = N LCE_j(x, y)
    detected photons. The Fisher information is

    .. math:: I_{ab} = \\sum_j E\\left[-\\frac{\\partial^2 \\ln L_j}{\\partial \\mu_j^2}\\right]
              \\frac{\\partial \\mu_j}{\\partial \\theta_a}
              \\frac{\\partial \\mu_j}{\\partial \\theta_b}

    over the used PMTs (the term with second derivatives of mu has mean zero, as the
    score has), and the bound of x is sqrt((I^-1)_xx), N fitted too (Cramér 1946, Rao
    1945). The expectation over the data is not computed: each event's own areas stand
    in for it (the observed curvature at the truth). Averaged over events this is the
    Fisher information, so the RMS over many events (:func:`summarise_cramer_rao`) is
    the bound, while one event's value fluctuates around its own. Events whose matrix
    is not positive definite get NaN (logged).

    Parameters
    ----------
    response : LightResponse
        The true response (the map that generated the areas).
    area_per_channel : array_like
        Shape (n, 253) or (n, 494), observed areas [PE]; only the top array is used.
    x_true, y_true : array_like
        True positions [cm], shape (n,), inside the TPC.
    n_photons_true : array_like
        Mean S2 photons of each event, shape (n,) [photons]; PMT j expects
        ``n_photons_true * LCE_j`` (``n_photons_truth`` of the simulation).
    spe_resolution : float or array_like
        Single-PE resolution [PE]: a scalar or shape (253,) or (494,).
    p_dpe : float
        Double-photoelectron emission probability.
    live : LivePMTs or array_like of bool, optional
        Readings that enter, shape (253,) or (n, 253), e.g. live PMTs without saturated
        channels; defaults to ``response.live_pmts``.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64: sigma_x and sigma_y of each event [cm].
    """
    if not isinstance(response, LightResponse):
        raise TypeError(f"response must be a LightResponse; got {type(response).__name__}.")
    x, y, n_photons = _coordinates(x_true=x_true, y_true=y_true, n_photons_true=n_photons_true)
    area = _top_array(area_per_channel, "area_per_channel", x.size)
    used = _used_channels(live, response, x.size)
    sigma = _top_spe_resolution(spe_resolution)
    outside = ~(np.hypot(x, y) < response.radius_cm)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} true position(s) are NaN or outside the TPC radius "
            f"{response.radius_cm} cm (first: x={x[outside][0]}, y={y[outside][0]})."
        )
    if not np.all(n_photons > 0) or not np.all(np.isfinite(n_photons)):
        raise ValueError("n_photons_true must be positive and finite [photons].")

    bound, usable = np.empty((x.size, 2)), np.empty(x.size, dtype=bool)
    for start in range(0, x.size, _EVENTS_PER_BLOCK):
        block = slice(start, start + _EVENTS_PER_BLOCK)
        fisher = _fisher_information(response, area[block], x[block], y[block],
                                     n_photons[block], sigma, p_dpe, used[block])  # fmt: skip
        bound[block], usable[block] = _position_bound(fisher)
    if not usable.all():
        log.warning("cramer_rao_bound: %d of %d events have a singular information matrix",
                    int((~usable).sum()), x.size)  # fmt: skip
    return bound


def summarise_cramer_rao(bound, x_true, y_true, bulk_radius_cm: float = BULK_RADIUS_CM) -> dict:
    """The bound per region: RMS of the per-event, per-coordinate bound.

    ``resolution_bound_cm`` = sqrt(mean(sigma^2)) over the region's events and both
    coordinates, to compare with ``resolution_cm`` of :func:`position_errors`. Events
    with a NaN bound are left out, counted as ``n_undefined``; an empty region gets None.

    Parameters
    ----------
    bound : array_like
        Shape (n, 2), sigma_x and sigma_y [cm] from :func:`cramer_rao_bound`.
    x_true, y_true : array_like
        True positions [cm], shape (n,).
    bulk_radius_cm : float
        Border between bulk and wall [cm].

    Returns
    -------
    dict
        ``bulk`` and ``wall`` (each ``resolution_bound_cm``, ``n_events``),
        ``n_undefined``, ``bulk_radius_cm``.
    """
    x, y = _coordinates(x_true=x_true, y_true=y_true)
    bound = np.asarray(bound, dtype=np.float64)
    if bound.shape != (x.size, 2):
        raise ValueError(f"bound must have shape ({x.size}, 2) [cm]; got {bound.shape}.")
    bulk_radius_cm = _check_bulk_radius(bulk_radius_cm, TPC_RADIUS_CM)
    defined = np.all(np.isfinite(bound), axis=1)

    result = {}
    for region, chosen in _regions(np.hypot(x, y), bulk_radius_cm).items():
        values = bound[chosen & defined]
        rms = float(np.sqrt(np.mean(values**2))) if values.size else None
        result[region] = dict(resolution_bound_cm=rms, n_events=len(values))
    return dict(result, n_undefined=int((~defined).sum()), bulk_radius_cm=bulk_radius_cm)


def radial_displacement_profile(r_from, r_to, r_reference, n_bins: int = 20,
                                radius_cm: float = TPC_RADIUS_CM) -> dict:  # fmt: skip
    """Quantiles of the radial displacement r_to - r_from in bins of r_reference.

    Bins divide [0, radius_cm] evenly; events beyond the wall count in the last bin,
    events with a NaN radius are left out, empty bins hold NaN. For plots, not for JSON.

    Parameters
    ----------
    r_from, r_to, r_reference : array_like
        Radii [cm], same shape (n,): e.g. initial and final fitted radii binned in the
        initial radius, or true and fitted radii binned in the true one.
    n_bins : int
        Number of bins.
    radius_cm : float
        End of the last bin [cm].

    Returns
    -------
    dict of numpy.ndarray
        ``r_edges_cm`` (n_bins + 1,), and of shape (n_bins,): ``r_centre_cm``,
        ``median_cm``, ``quantile_16_cm``, ``quantile_84_cm``, ``n_events``.
    """
    r_from, r_to, r_reference = _coordinates(r_from=r_from, r_to=r_to, r_reference=r_reference)
    n_bins = _check_count("n_bins", n_bins, 1)
    if not radius_cm > 0:
        raise ValueError(f"radius_cm must be positive; got {radius_cm}.")
    finite = np.isfinite(r_from) & np.isfinite(r_to) & np.isfinite(r_reference)
    displacement = (r_to - r_from)[finite]
    edges = np.linspace(0.0, radius_cm, n_bins + 1)
    index = np.clip(np.digitize(r_reference[finite], edges) - 1, 0, n_bins - 1)

    quantiles = np.full((n_bins, 3), np.nan)
    counts = np.bincount(index, minlength=n_bins)
    for k in np.flatnonzero(counts):
        quantiles[k] = np.quantile(displacement[index == k], [0.16, 0.5, 0.84])
    return dict(
        r_edges_cm=edges, r_centre_cm=0.5 * (edges[1:] + edges[:-1]), median_cm=quantiles[:, 1],
        quantile_16_cm=quantiles[:, 0], quantile_84_cm=quantiles[:, 2], n_events=counts,
    )  # fmt: skip

"""Maximum-likelihood S2 positions from the hit pattern alone (multinomial likelihood).

Given a light response, each event's top-array areas are fitted with the pattern
:math:`p_j(x, y) = \\mathrm{LCE}_j / \\sum_k \\mathrm{LCE}_k` (sums over used PMTs) by
maximising :math:`\\ell = \\sum_j a_j \\ln p_j(x, y)`. This is the Poisson likelihood of
the areas with the event's light profiled out, so the fit needs no PMT-response model and
its maximum does not depend on the area scale (PE per photon). Fisher scoring with a
backtracking line search, inside the TPC; seeded by the centre of gravity of the
brightest PMT and its neighbours.

Uncertainties are the sandwich estimate for areas that are compound-Poisson sums of
photon areas X: the covariance is ``F / I`` with the Fisher information ``I`` of the
multinomial in PE and the dispersion ``F = E[X**2] / E[X]``, with
``E[X] = 1 + p_dpe`` and ``E[X**2] = 1 + 3 p_dpe + sigma**2 (1 + p_dpe)``.

Use it for quick positions with any map, e.g. the Monte-Carlo-style initial positions of
the simulation. The exact-likelihood fit of the package (per-PMT PE statistics, light
fitted) is the reference for physics.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numba
import numpy as np

from lce_plugins import geometry, pmt_response
from lce_plugins.lce_grid import EMPTY_GRID, lce_into
from lce_plugins.optics import LightResponse

__all__ = ["FitStatus", "fit_positions_pattern", "pattern_fit_dtype"]

_MAX_ITERATIONS = 60
_TOLERANCE_CM = 1e-4
_MAX_HALVINGS = 12
#: PMTs closer than this to the brightest one are its ring of neighbours [cm].
_NEIGHBOUR_DISTANCE_CM = 1.5 * geometry.PMT_PITCH_CM


class FitStatus(IntEnum):
    """Outcome of a per-event fit."""

    OK = 0
    #: The iteration limit was reached; the position is the last iterate.
    NOT_CONVERGED = 1
    #: No positive area on the used PMTs.
    NO_LIGHT = 2
    #: NaN or infinite areas.
    INVALID_INPUT = 3
    #: Fewer than four used PMTs with light (e.g. the lit ones all saturated): too few
    #: for a fit of position and light.
    TOO_FEW_PMTS = 4


#: The position fields that every fit result starts with.
POSITION_FIELDS = [
    (("Fitted x [cm]", "x"), np.float32),
    (("Fitted y [cm]", "y"), np.float32),
    (("Uncertainty of x [cm]", "x_err"), np.float32),
    (("Uncertainty of y [cm]", "y_err"), np.float32),
    (("Correlation of the x and y uncertainties", "xy_correlation"), np.float32),
]


def pattern_fit_dtype() -> np.dtype:
    """Result of :func:`fit_positions_pattern`."""
    return np.dtype(
        POSITION_FIELDS + [
            (("Multinomial deviance of the pattern, areas as counts", "pattern_deviance"),
             np.float32),
            (("Fit iterations", "n_iterations"), np.int16),
            (("Fit status, see lce_plugins.pattern_fit.FitStatus", "status"), np.int8),
        ]
    )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _pattern_terms(weights, use, lce, dlce_dx, dlce_dy, with_derivatives):
    """Log-likelihood, gradient and Fisher information of the pattern, from the LCE and
    its gradient at the current position.

    One pass over the PMTs: with T = sum LCE_j, W = sum a_j and p_j = LCE_j / T,
    ln L = sum a_j ln LCE_j - W ln T, its gradient sum a_j LCE_j' / LCE_j - W T' / T and
    the information W sum p_j' p_j'^T / p_j = (W / T) (sum LCE_j' LCE_j'^T / LCE_j -
    T' T'^T / T).
    """
    total = total_dx = total_dy = n_areas = weighted_log = 0.0
    grad_x = grad_y = info_xx = info_xy = info_yy = 0.0
    for j in range(lce.size):
        if not use[j]:
            continue
        total += lce[j]
        total_dx += dlce_dx[j]
        total_dy += dlce_dy[j]
        n_areas += weights[j]
        if weights[j] > 0.0:
            weighted_log += weights[j] * math.log(lce[j])
        if with_derivatives:
            inverse = 1.0 / lce[j]
            grad_x += weights[j] * dlce_dx[j] * inverse
            grad_y += weights[j] * dlce_dy[j] * inverse
            info_xx += dlce_dx[j] * dlce_dx[j] * inverse
            info_xy += dlce_dx[j] * dlce_dy[j] * inverse
            info_yy += dlce_dy[j] * dlce_dy[j] * inverse

    loglik = weighted_log - n_areas * math.log(total)
    if with_derivatives:
        grad_x -= n_areas * total_dx / total
        grad_y -= n_areas * total_dy / total
        scale = n_areas / total
        info_xx = scale * (info_xx - total_dx * total_dx / total)
        info_xy = scale * (info_xy - total_dx * total_dy / total)
        info_yy = scale * (info_yy - total_dy * total_dy / total)
    return loglik, grad_x, grad_y, info_xx, info_xy, info_yy


@numba.njit(cache=True, nogil=True)
def _start_position(weights, use, model, lce, dlce_dx, dlce_dy):
    """The centre of gravity of the brightest PMT and its neighbours, inside the TPC.

    The light of PMTs far from the event pulls the centre of gravity of the whole array
    inwards; that of the brightest PMT's ring of neighbours lies 1.5 cm from the fitted
    position (median; 3 cm for 90 % of simulated S2s) and picks the brighter S2 of a
    merged pair. Returns (x, y, whether the LCE arrays hold the values at (x, y)).
    """
    pmt_xy, radius = model[0][0], model[0][12]
    brightest = 0
    for j in range(weights.size):
        if weights[j] > weights[brightest]:
            brightest = j
    bx, by = pmt_xy[brightest, 0], pmt_xy[brightest, 1]
    total, cog_x, cog_y = 0.0, 0.0, 0.0
    for j in range(weights.size):
        dx, dy = pmt_xy[j, 0] - bx, pmt_xy[j, 1] - by
        if dx * dx + dy * dy < _NEIGHBOUR_DISTANCE_CM**2:
            total += weights[j]
            cog_x += weights[j] * pmt_xy[j, 0]
            cog_y += weights[j] * pmt_xy[j, 1]
    x, y = cog_x / total, cog_y / total
    r = math.sqrt(x * x + y * y)
    if r > 0.99 * radius:
        x, y = x * 0.99 * radius / r, y * 0.99 * radius / r
    return x, y, False


@numba.njit(cache=True, nogil=True)
def _line_search(x, y, step_x, step_y, loglik, limit, weights, use, model, lce, dlce_dx, dlce_dy):
    """Backtrack along the step until the likelihood does not fall, inside the TPC.

    Returns the new position and whether one was found; if so, the LCE arrays hold
    its values.
    """
    scale = 1.0
    for _ in range(_MAX_HALVINGS):
        new_x, new_y = x + scale * step_x, y + scale * step_y
        r = math.sqrt(new_x * new_x + new_y * new_y)
        if r > limit:
            new_x, new_y = new_x * limit / r, new_y * limit / r
        lce_into(new_x, new_y, model, lce, dlce_dx, dlce_dy)
        if _pattern_terms(weights, use, lce, dlce_dx, dlce_dy, False)[0] >= loglik:
            return new_x, new_y, True
        scale *= 0.5
    return x, y, False


@numba.njit(cache=True, nogil=True)
def _fit_one(area, use, model, dispersion, out):
    """Fit one event; ``out`` is (x, y, var_x, cov_xy, var_y, deviance, iterations, status)."""
    out[:] = np.nan
    out[6] = 0.0
    weights = np.zeros(area.size)
    for j in range(area.size):
        if not np.isfinite(area[j]):
            out[7] = 3.0
            return
        if use[j] and area[j] > 0.0:
            weights[j] = area[j]
    if weights.sum() <= 0.0:
        out[7] = 2.0
        return
    lce, dlce_dx, dlce_dy = np.empty(area.size), np.empty(area.size), np.empty(area.size)
    radius = model[0][12]
    limit = radius * (1.0 - 1e-9)

    x, y, current = _start_position(weights, use, model, lce, dlce_dx, dlce_dy)
    if not current:
        lce_into(x, y, model, lce, dlce_dx, dlce_dy)
    status, current = 1.0, True  # current: the LCE arrays belong to (x, y)
    for iteration in range(_MAX_ITERATIONS):
        loglik, gx, gy, ixx, ixy, iyy = _pattern_terms(weights, use, lce, dlce_dx, dlce_dy, True)
        det = ixx * iyy - ixy * ixy
        if not det > 0.0:
            break
        step_x, step_y = (iyy * gx - ixy * gy) / det, (ixx * gy - ixy * gx) / det
        new_x, new_y, current = _line_search(
            x, y, step_x, step_y, loglik, limit, weights, use, model, lce, dlce_dx, dlce_dy
        )
        out[6] = iteration + 1
        if not current:
            status = 0.0  # no ascent direction left: at the maximum within precision
            break
        shift = math.sqrt((new_x - x) ** 2 + (new_y - y) ** 2)
        x, y = new_x, new_y
        if shift < _TOLERANCE_CM:
            status = 0.0
            break

    if not current:
        lce_into(x, y, model, lce, dlce_dx, dlce_dy)
    loglik, gx, gy, ixx, ixy, iyy = _pattern_terms(weights, use, lce, dlce_dx, dlce_dy, True)
    det = ixx * iyy - ixy * ixy
    out[0], out[1] = x, y
    if det > 0.0:
        out[2], out[3], out[4] = (
            dispersion * iyy / det,
            -dispersion * ixy / det,
            dispersion * ixx / det,
        )
    total_weight = weights.sum()
    saturated_loglik = 0.0
    for j in range(area.size):
        if weights[j] > 0.0:
            saturated_loglik += weights[j] * math.log(weights[j] / total_weight)
    out[5] = 2.0 * (saturated_loglik - loglik)
    out[7] = status


@numba.njit(cache=True, nogil=True)
def _fit_serial(area, use, response, grid, dispersion, out):
    for i in range(area.shape[0]):
        _fit_one(area[i], use[i], (response, grid), dispersion, out[i])


@numba.njit(cache=True, parallel=True)
def _fit_parallel(area, use, response, grid, dispersion, out):
    for i in numba.prange(area.shape[0]):
        _fit_one(area[i], use[i], (response, grid), dispersion, out[i])


def _top_array(values, name: str, n_events: int | None = None) -> np.ndarray:
    """Check a per-channel array (n, 253) or (n, 494) and return its top-array part."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] not in (geometry.N_TOP_PMTS, geometry.N_TPC_PMTS):
        raise ValueError(
            f"{name} must have shape (n_events, {geometry.N_TOP_PMTS}) or "
            f"(n_events, {geometry.N_TPC_PMTS}); got {values.shape}."
        )
    if n_events is not None and len(values) != n_events:
        raise ValueError(f"{name} has {len(values)} rows; area_per_channel has {n_events}.")
    return values[:, : geometry.N_TOP_PMTS]


def fit_positions_pattern(
    area_per_channel,
    response: LightResponse,
    *,
    saturated_channel=None,
    p_dpe: float = pmt_response.DEFAULT_P_DPE,
    spe_resolution=0.45,
    parallel: bool = True,
) -> np.ndarray:
    """Fit each event's (x, y) to its top-array hit pattern.

    Parameters
    ----------
    area_per_channel : array_like
        Shape (n, 253) or (n, 494), float: areas [PE]; only the top array is used.
    response : LightResponse
        The map; its live PMTs are used.
    saturated_channel : array_like, optional
        Same shape, nonzero where a channel saturated; those channels are left out.
    p_dpe : float
        Double-PE probability, for the uncertainties only.
    spe_resolution : float or array_like of shape (253,)
        Single-PE resolution [PE], for the uncertainties only.
    parallel : bool
        Use all Numba threads; pass False inside threads that strax manages.

    Returns
    -------
    numpy.ndarray
        Shape (n,), :func:`pattern_fit_dtype`. Events without light or with NaN areas
        get NaN positions and a :class:`FitStatus` saying why.
    """
    if not isinstance(response, LightResponse):
        raise TypeError(f"response must be a LightResponse; got {type(response).__name__}.")
    area = _top_array(area_per_channel, "area_per_channel")
    if not np.issubdtype(area.dtype, np.number):
        raise TypeError(f"area_per_channel must be numeric; got dtype {area.dtype}.")
    use = np.broadcast_to(response.live_pmts.mask, area.shape).copy()
    if saturated_channel is not None:
        use &= _top_array(saturated_channel, "saturated_channel", len(area)) == 0

    resolution = np.broadcast_to(np.asarray(spe_resolution, dtype=float), (geometry.N_TOP_PMTS,))
    mean_variance = float(np.mean(resolution[response.live_pmts.mask] ** 2))
    dispersion = (1.0 + 3.0 * p_dpe + mean_variance * (1.0 + p_dpe)) / (1.0 + p_dpe)

    raw = np.empty((len(area), 8))
    kernel = _fit_parallel if parallel else _fit_serial
    area = np.ascontiguousarray(area, dtype=np.float64)
    kernel(area, use, response.kernel_arguments, EMPTY_GRID, dispersion, raw)

    result = np.zeros(len(area), dtype=pattern_fit_dtype())
    result["x"], result["y"] = raw[:, 0], raw[:, 1]
    with np.errstate(invalid="ignore"):
        result["x_err"], result["y_err"] = np.sqrt(raw[:, 2]), np.sqrt(raw[:, 4])
        result["xy_correlation"] = raw[:, 3] / np.sqrt(raw[:, 2] * raw[:, 4])
    result["pattern_deviance"] = raw[:, 5]
    result["n_iterations"], result["status"] = raw[:, 6], raw[:, 7]
    return result

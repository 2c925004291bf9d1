"""Maximum-likelihood S2 position and light with an LCE map and the exact PMT likelihood.

Event k has three parameters, its position (x, y) and its detected-light scale N
[photons]; top PMT j expects :math:`\\mu_j = N \\, \\mathrm{LCE}_j(x, y)` detected photons.
The fit maximises :math:`\\sum_j \\ln L(a_j \\mid \\mu_j)` over the used PMTs (live in the
map, not saturated) with the exact compound-Poisson likelihood of
:mod:`lce_plugins.likelihood` (Poisson photons, double-PE emission, Gaussian PE areas
with each PMT's resolution), so PMTs far from the event that see a few PE count with
their true weight. With the map of the true response, N estimates the event's mean
number of photons (``n_photons_truth`` of the simulation).

Algorithm, per event (Numba, one thread per event):

1. Seed (cold start): the centre of gravity of the brightest PMT and its neighbours
   (:func:`lce_plugins.pattern_fit._start_position`), then Fisher scoring on the cheap
   multinomial ln L of the pattern (light profiled out) to within
   :data:`SEED_TOLERANCE_CM`, inside the disk that the map's table covers (the last
   1.5 cm at the wall are left to the polish: there the map itself is evaluated, ten
   times slower).
2. Polish: Gauss-Newton in (x, y, ln N) on the exact ln L with a backtracking line
   search (:mod:`lce_plugins._exact_fit`). The curvature matrix is
   :math:`A_{ab} = \\sum_j w_j \\, \\partial_a\\mu_j \\, \\partial_b\\mu_j` with
   :math:`w_j = -\\partial^2 \\ln L / \\partial\\mu_j^2`, clamped below at 0.01 / (1 + mu_j)
   during the iterations (the compound-Poisson ln L is not concave in mu at a few PE).
   N starts at the summed area over ((1 + p_dpe) times the summed LCE). Positions stay
   :data:`WALL_CLEARANCE_CM` inside the TPC: steps are clipped radially, and on that
   circle an outward step moves along it only. Converged when the next step s = A^-1 g
   has s . g < 1e-4 (it would move the parameters by about a hundredth of their
   uncertainties), or moves the position by less than 1e-4 cm and N by less than 1e-7
   (relatively), or when no step increases ln L any more. A step with s . g < 0.03 (a
   fifth of the uncertainties or less) is the last: Gauss-Newton shrinks the distance
   to the optimum about tenfold per step, so its end point is taken as the optimum
   without evaluating it; ln L there is the quadratic model's, and the curvature at the
   step's start gives the uncertainties. From the seed (0.03 of the uncertainty from
   the optimum in x and y, 0.05 in N, median) 91 % of the events take one evaluation
   of the exact ln L. On 20 000 simulated single S2s the positions differ from fits
   iterated to 1e-4 cm by 0.002 (median), 0.016 (99 %) and 0.06 (99.9 %) of their
   uncertainties, by -0.5 um radially beyond r = 60 cm (median).

Both stages read the map from its table (:mod:`lce_plugins.lce_grid`, ``tabulated=True``):
ten times faster evaluations, and the deviance and uncertainties come from the table
too. On 20 000 simulated S2s (true map, 4 000 of them also fitted on the map itself)
the deviance differs from that of fits on the map by 7e-4 (median) and 0.1 (99 %; at
most 0.4 for single S2s, a sixtieth of its statistical spread), the positions by 7e-5
cm (median) and 0.017 cm (99 %).

A warm start (``start``, e.g. the previous round's positions during training) skips
step 1. From an event's own converged fit the polish stops after one iteration; from
the pattern fit's position (:mod:`lce_plugins.pattern_fit`) it takes as many as from
the seed of a cold start.

Uncertainties come from the observed information at the optimum, the inverse of A
with the unclamped w_j (NaN where it is not positive definite). A drops the term
:math:`-\\sum_j g_j \\, \\partial_a\\partial_b\\mu_j` (g_j = d ln L / d mu_j) of the Hessian:
in (x, y, ln N) its parts with ln N are components of the gradient of ln L, which
vanish at the optimum, and the position part has expectation zero, as E[g_j] = 0.
The goodness of fit is the deviance
:math:`D = -2 \\sum_j \\ln(L(a_j \\mid \\mu_j) / L_{sat}(a_j))` over the used PMTs,
as :func:`lce_plugins.likelihood.deviance` computes it, with ln L at the optimum from
the last step's quadratic model where that step was not evaluated: against the
deviance at the reported parameters it differs by 2e-4 (90 %) and 1.2e-3 (99 %) on
4 000 simulated S2s, at most 0.3. Compare it with
:func:`lce_plugins.likelihood.expected_deviance`, not with ``ndf``.
"""

from __future__ import annotations

import logging
import math

import numba
import numpy as np

from lce_plugins._exact_fit import (
    LCE,
    N_ROWS,
    covariance,
    exact_fit,
    gather,
    inside,
)
from lce_plugins.lce_grid import fit_model, lce_into, table_radius
from lce_plugins.lce_map import LCEMap
from lce_plugins.likelihood._checks import check_model_parameters
from lce_plugins.likelihood._kernels import _sigma_parts
from lce_plugins.likelihood.api import PARALLEL_MIN_EVENTS, _dispatch
from lce_plugins.likelihood.saturated import SIGMA_RANGE_PE, saturated_block, saturated_table
from lce_plugins.optics import per_event_values
from lce_plugins.pattern_fit import (
    POSITION_FIELDS,
    FitStatus,
    _line_search,
    _pattern_terms,
    _start_position,
    _top_array,
)
from lce_plugins.pmt_response import DEFAULT_BASELINE_NOISE_PE

__all__ = ["FitStatus", "reconstruct_positions", "reconstruction_dtype"]

log = logging.getLogger(__name__)

#: An area below minus this on a used channel is not baseline noise (a few hundredths of
#: a PE per sample) but a broken reading: the event gets INVALID_INPUT [PE].
NEGATIVE_AREA_LIMIT_PE = 5.0
#: A PMT counts as lit from this area on [PE]; fits need :data:`MIN_LIT_PMTS` of them.
LIT_AREA_PE = 0.5
MIN_LIT_PMTS = 4
#: The multinomial seeding stops once its step is below this [cm] (a sixteenth of the
#: resolution): its optimum differs from the exact likelihood's by about that, and the
#: polish ends after one exact evaluation from there for nine events in ten.
SEED_TOLERANCE_CM = 0.01
_SEED_ITERATIONS = 30
#: Fitted positions stay this far inside the TPC wall [cm]. Closer to the wall the LCE's
#: reflection term changes on scales below 1e-3 cm (the first leg of the reflected ray
#: vanishes) and its gradient stops being a usable guide; 0.01 cm is far below the
#: position resolution.
WALL_CLEARANCE_CM = 0.01

_OK, _NOT_CONVERGED = int(FitStatus.OK), int(FitStatus.NOT_CONVERGED)
_NO_LIGHT, _INVALID_INPUT = int(FitStatus.NO_LIGHT), int(FitStatus.INVALID_INPUT)
_TOO_FEW_PMTS = int(FitStatus.TOO_FEW_PMTS)
#: Rows of the scratch array: LCE and gradient of all PMTs (0-2), seed weights (3),
#: saturated ln L (4), scratch of the saturated lookup (5-6).
_FULL, _WEIGHTS, _REFERENCE, _SATURATED_SCRATCH = 0, 3, 4, 5
#: Columns of the kernel's output.
_N_OUTPUTS = 11


def reconstruction_dtype() -> np.dtype:
    """Result of :func:`reconstruct_positions`.

    ``n_photons`` and ``deviance`` are float64, so that sums over many events (training
    losses) and comparisons with :func:`lce_plugins.likelihood.deviance` keep full
    precision; the rest is float32.
    """
    return np.dtype(
        POSITION_FIELDS + [
            (("Fitted detected-light scale N, mu_j = N LCE_j [photons]", "n_photons"),
             np.float64),
            (("Uncertainty of n_photons [photons]", "n_photons_err"), np.float32),
            (("Deviance -2 sum ln(L / L_saturated) over the used PMTs", "deviance"),
             np.float64),
            (("Used PMTs (live, not saturated) minus 3", "ndf"), np.int16),
            (("Newton iterations on the exact likelihood", "n_iterations"), np.int16),
            (("Fit status, see lce_plugins.pattern_fit.FitStatus", "status"), np.int8),
        ]
    )  # fmt: skip


# --- per-event kernels ------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _prepare_event(area, use, live, pmt_model, fixed, pmt, weights):
    """Gather the used PMTs of one event; returns (number used, status).

    ``fixed`` rows get area [PE], sigma [PE] and ln sigma of the used PMTs in the order
    of ``pmt`` (their channels); ``weights`` the positive areas of used PMTs, 0 elsewhere.
    """
    sigma, log_sigma = pmt_model[0], pmt_model[1]
    n_used, n_lit, finite, light, saturated_light = 0, 0, True, 0.0, False
    for j in range(area.size):
        weights[j] = 0.0
        if not use[j]:
            saturated_light |= live[j] and area[j] > 0.0
            continue
        finite &= math.isfinite(area[j]) and area[j] > -NEGATIVE_AREA_LIMIT_PE
        fixed[0, n_used], fixed[1, n_used], fixed[2, n_used] = area[j], sigma[j], log_sigma[j]
        pmt[n_used] = j
        n_used += 1
        if area[j] > 0.0:
            weights[j] = area[j]
            light += area[j]
        if area[j] >= LIT_AREA_PE:
            n_lit += 1

    if not finite:
        return n_used, _INVALID_INPUT
    if light <= 0.0 and not saturated_light:
        return n_used, _NO_LIGHT
    if n_lit < MIN_LIT_PMTS:
        return n_used, _TOO_FEW_PMTS
    return n_used, _OK


@numba.njit(cache=True, nogil=True)
def _scoring_step(terms):
    """Fisher-scoring step (dx, dy) [cm] of the multinomial from :func:`_pattern_terms`'
    (ln L, gradient, information); NaN if the information is not positive definite."""
    _, grad_x, grad_y, info_xx, info_xy, info_yy = terms
    determinant = info_xx * info_yy - info_xy * info_xy
    if not (determinant > 0.0 and info_xx > 0.0):
        return np.nan, np.nan
    return ((info_yy * grad_x - info_xy * grad_y) / determinant,
            (info_xx * grad_y - info_xy * grad_x) / determinant)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _seed(weights, use, model, scratch, limit):
    """Cold-start position [cm]: the best candidate, then Fisher scoring on the multinomial.

    On return the LCE rows of ``scratch`` hold the values at that position.
    """
    lce, dlce_dx, dlce_dy = scratch[_FULL], scratch[_FULL + 1], scratch[_FULL + 2]
    # the seed stays where the table covers the map: an evaluation of the map itself costs
    # ten times more, and the polish gets to the wall from there
    limit = min(limit, table_radius(model[1], model[0][12]))
    x, y, _ = _start_position(weights, use, model, lce, dlce_dx, dlce_dy)
    x, y = inside(x, y, limit)
    lce_into(x, y, model, lce, dlce_dx, dlce_dy)

    for _ in range(_SEED_ITERATIONS):
        terms = _pattern_terms(weights, use, lce, dlce_dx, dlce_dy, True)
        step_x, step_y = _scoring_step(terms)
        if not math.sqrt(step_x * step_x + step_y * step_y) >= SEED_TOLERANCE_CM:
            break  # converged, or a singular information matrix (NaN step)
        new_x, new_y, moved = _line_search(x, y, step_x, step_y, terms[0], limit, weights, use,
                                           model, lce, dlce_dx, dlce_dy)  # fmt: skip
        if not moved:
            # the rows hold the last rejected trial
            lce_into(x, y, model, lce, dlce_dx, dlce_dy)
            break
        shift = math.hypot(new_x - x, new_y - y)
        x, y = new_x, new_y
        if shift < SEED_TOLERANCE_CM:
            break  # e.g. held at the edge of the table
    return x, y


@numba.njit(cache=True, nogil=True)
def _finish(n_photons, loglik, work, n_used, state, pmt_model, out):
    """Covariance (out[3:7]) and deviance (out[7]) at the optimum held in ``state``."""
    fixed, pmt, _, scratch = work
    covariance(state, n_used, n_photons, out[3:7])
    nodes, sigma_weights, values, node_counts = pmt_model[4:]
    reference = scratch[_REFERENCE, :n_used]
    saturated_block(
        fixed[0, :n_used], fixed[1, :n_used], pmt[:n_used], nodes, sigma_weights, values,
        node_counts, pmt_model[2], pmt_model[3], reference,
        scratch[_SATURATED_SCRATCH : _SATURATED_SCRATCH + 2],
    )  # fmt: skip
    out[7] = 2.0 * (reference.sum() - loglik)


@numba.njit(cache=True, nogil=True)
def _fit_event(area, use, live, start, model, pmt_model, limit, work, out):
    """Fit one event; ``out``: x, y [cm], N, var x, cov xy, var y [cm^2], var N, deviance,
    ndf, iterations, status."""
    fixed, pmt, states, scratch = work
    out[:] = np.nan
    n_used, status = _prepare_event(area, use, live, pmt_model, fixed, pmt, scratch[_WEIGHTS])
    out[8], out[9], out[10] = n_used - 3, 0, status
    if status != _OK:
        return

    x, y, n_photons = start[0], start[1], start[2]
    full = scratch[_FULL : _FULL + 3]
    if math.isfinite(x) and math.isfinite(y):
        x, y = inside(x, y, limit)
        lce_into(x, y, model, full[0], full[1], full[2])
    else:
        x, y = _seed(scratch[_WEIGHTS], use, model, scratch, limit)
    gather(pmt, n_used, full, states[0])
    if not (0.0 < n_photons < np.inf):
        collected = states[0, LCE, :n_used].sum() * (1.0 + pmt_model[2])
        n_photons = scratch[_WEIGHTS].sum() / collected

    x, y, n_photons, loglik, current, iterations, status = exact_fit(
        x, y, n_photons, fixed, pmt, n_used, full, states, model, pmt_model[2], pmt_model[3],
        limit,
    )  # fmt: skip
    out[0], out[1], out[2] = x, y, n_photons
    _finish(n_photons, loglik, work, n_used, states[current], pmt_model, out)
    if not (math.isfinite(n_photons) and math.isfinite(out[7])):
        status = _NOT_CONVERGED
    out[9], out[10] = iterations, status


@numba.njit(cache=True, nogil=True)
def _fit_rows(first, stop, area, use, live, start, response, grid, pmt_model, limit, out):
    """Fit events first..stop-1 with one set of work arrays."""
    # (map, table) are joined here: Numba's parallel loops take no nested tuples
    model = (response, grid)
    n_pmts = area.shape[1]
    work = (
        np.empty((3, n_pmts)),
        np.empty(n_pmts, np.int64),
        np.empty((2, N_ROWS, n_pmts)),
        np.empty((7, n_pmts)),
    )
    for i in range(first, stop):
        _fit_event(area[i], use[i], live, start[i], model, pmt_model, limit, work, out[i])


@numba.njit(cache=True, nogil=True)
def _fit_serial(area, use, live, start, response, grid, pmt_model, limit, out):
    """All events on the calling thread (safe in threads that strax manages)."""
    _fit_rows(0, area.shape[0], area, use, live, start, response, grid, pmt_model, limit, out)


@numba.njit(cache=True, parallel=True)
def _fit_parallel(area, use, live, start, response, grid, pmt_model, limit, out, n_chunks):
    """Events spread over Numba's threads in ``n_chunks`` ranges."""
    n_events = area.shape[0]
    n_chunks = max(min(n_events, n_chunks), 1)
    for chunk in numba.prange(n_chunks):
        first, stop = chunk * n_events // n_chunks, (chunk + 1) * n_events // n_chunks
        _fit_rows(first, stop, area, use, live, start, response, grid, pmt_model, limit, out)


# --- Python boundary --------------------------------------------------------------------


def _start_values(start, n_events: int) -> np.ndarray:
    """``start`` as a (n_events, 3) float64 array of x [cm], y [cm], N (NaN: not given)."""
    values = np.full((n_events, 3), np.nan)
    if start is None:
        return values
    names = getattr(getattr(start, "dtype", None), "names", None)
    if names is not None:
        if not {"x", "y"} <= set(names):
            raise ValueError(f"A structured start needs fields 'x' and 'y'; got {names}.")
        columns = [start["x"], start["y"]] + ([start["n_photons"]] if "n_photons" in names else [])
    elif isinstance(start, (tuple, list, np.ndarray)) and len(start) in (2, 3):
        columns = list(start)
    else:
        raise ValueError(
            "start must be (x, y) or (x, y, n_photons), arrays of one value per event, or a "
            f"structured array with fields x and y; got {type(start).__name__}."
        )
    for index, column in enumerate(columns):
        name = ("x", "y", "n_photons")[index]
        values[:, index] = per_event_values(f"start {name}", column, n_events)
    return values


def _pmt_model(lce_map: LCEMap, sigma0: float) -> tuple:
    """The likelihood's per-PMT parameters and saturated table as the kernels take them."""
    p_dpe, sigma0 = check_model_parameters(lce_map.p_dpe, sigma0)
    live = lce_map.live_pmts.mask
    low, high = SIGMA_RANGE_PE
    resolution = lce_map.spe_resolution[live]
    if not np.all((resolution >= low) & (resolution <= high)):
        raise ValueError(
            f"The map's spe_resolution of live PMTs must lie in [{low}, {high}] PE (the range "
            f"of the likelihood's tables); got {resolution.min():g} to {resolution.max():g} PE."
        )
    # dead PMTs never enter; any resolution inside the tables keeps the lookups valid
    sigma = np.where(live, lce_map.spe_resolution, high)
    saturated = saturated_table(p_dpe, sigma0).kernel_arguments()[:5]
    nodes, sigma_weights = _sigma_parts(sigma, saturated)
    return (sigma, np.log(sigma), p_dpe, sigma0, nodes, sigma_weights, *saturated[3:5])


def _to_result(raw: np.ndarray) -> np.ndarray:
    """The kernel's (n, 11) output as a :func:`reconstruction_dtype` array."""
    result = np.zeros(len(raw), dtype=reconstruction_dtype())
    result["x"], result["y"], result["n_photons"] = raw[:, 0], raw[:, 1], raw[:, 2]
    with np.errstate(invalid="ignore"):
        result["x_err"], result["y_err"] = np.sqrt(raw[:, 3]), np.sqrt(raw[:, 5])
        result["xy_correlation"] = raw[:, 4] / np.sqrt(raw[:, 3] * raw[:, 5])
        result["n_photons_err"] = np.sqrt(raw[:, 6])
    result["deviance"], result["ndf"] = raw[:, 7], raw[:, 8]
    result["n_iterations"], result["status"] = raw[:, 9], raw[:, 10]
    return result


def _log_failures(status: np.ndarray) -> None:
    """One warning that counts the events without a converged fit, by status."""
    failed = status[status != FitStatus.OK]
    if failed.size:
        values, counts = np.unique(failed, return_counts=True)
        summary = ", ".join(
            f"{FitStatus(value).name}: {count}" for value, count in zip(values, counts, strict=True)
        )
        log.warning("%d of %d events not fitted or not converged (%s)", failed.size, status.size,
                    summary)  # fmt: skip


def reconstruct_positions(
    area_per_channel,
    lce_map: LCEMap,
    *,
    saturated_channel=None,
    start=None,
    parallel: bool = True,
    sigma0: float = DEFAULT_BASELINE_NOISE_PE,
    warn: bool = True,
    tabulated: bool = True,
) -> np.ndarray:
    """Fit each event's position and light to its top-array areas (see the module docstring).

    Parameters
    ----------
    area_per_channel : array_like
        Shape (n, 253) or (n, 494), float: areas [PE]; only the first 253 columns (the
        top array) are used.
    lce_map : LCEMap
        The map: LCE, live PMTs, per-PMT ``spe_resolution`` [PE] and ``p_dpe``.
    saturated_channel : array_like, optional
        Same shape as the areas, nonzero where a channel saturated; those are left out.
    start : optional
        Warm start, skipping the seeding: ``(x, y)`` or ``(x, y, n_photons)``, each of
        shape (n,) [cm, cm, photons], or a structured array with fields ``x``, ``y`` and
        optionally ``n_photons`` (e.g. an earlier result). Events whose x or y is NaN
        are seeded as usual; a missing or NaN N starts from the summed area.
    parallel : bool
        Spread events over Numba's threads (for 64 events or more). A call that finds
        another thread inside a parallel kernel runs serially, so calls from threads
        are safe.
    sigma0 : float
        Baseline noise of a channel without PE [PE].
    warn : bool
        Log a warning that counts the events not fitted or not converged (callers that
        report failures themselves, such as the training, switch it off).
    tabulated : bool
        Evaluate the map from its table (:mod:`lce_plugins.lce_grid`; built on the first
        call for a map, about 2 s), ten times faster than evaluating the map itself;
        False for maps used only once (the training's ever-changing map).

    Returns
    -------
    numpy.ndarray
        Shape (n,), :func:`reconstruction_dtype`. Status (:class:`FitStatus`): OK;
        NOT_CONVERGED (the last iterate, with its uncertainties and deviance);
        INVALID_INPUT (NaN/inf area on a used PMT, or one below
        -:data:`NEGATIVE_AREA_LIMIT_PE`), NO_LIGHT (no positive area on a
        live PMT) and TOO_FEW_PMTS (fewer than 4 used PMTs with at least 0.5 PE) with
        NaN numbers. ``ndf`` is the number of used PMTs minus 3 for every event.

    Raises
    ------
    TypeError
        If ``lce_map`` is not an LCEMap, or areas or start values are not numbers.
    ValueError
        If shapes do not fit, or the map's resolutions lie outside the likelihood's tables.
    """
    if not isinstance(lce_map, LCEMap):
        raise TypeError(
            f"lce_map must be an LCEMap (it carries the PMT resolutions); got "
            f"{type(lce_map).__name__}. Wrap a LightResponse with LCEMap(response, ...)."
        )
    area = _top_array(area_per_channel, "area_per_channel")
    if not np.issubdtype(area.dtype, np.number):
        raise TypeError(f"area_per_channel must be numeric; got dtype {area.dtype}.")
    live = lce_map.live_pmts.mask
    use = np.broadcast_to(live, area.shape).copy()
    if saturated_channel is not None:
        use &= _top_array(saturated_channel, "saturated_channel", len(area)) == 0
    start_values = _start_values(start, len(area))
    pmt_model = _pmt_model(lce_map, sigma0)
    if len(area) == 0:
        return np.zeros(0, dtype=reconstruction_dtype())

    raw = np.empty((len(area), _N_OUTPUTS))
    limit = lce_map.radius_cm - WALL_CLEARANCE_CM
    area = np.ascontiguousarray(area, dtype=np.float64)
    response, grid = fit_model(lce_map, tabulated=tabulated)
    use_threads = parallel and len(area) >= PARALLEL_MIN_EVENTS
    arguments = (area, use, live, start_values, response, grid, pmt_model, limit, raw)
    _dispatch(_fit_serial, _fit_parallel, use_threads, *arguments)
    result = _to_result(raw)
    if warn:
        _log_failures(result["status"])
    return result

"""The saturated reference ln L_sat(area, sigma), tabulated once for all PMTs.

The deviance compares each PMT's likelihood with the best any mu could give the same
area (:mod:`._maximum`). That maximum depends on (area, sigma) only, so one table over
both serves every PMT; it is built in a few seconds (in parallel, by Newton's method
at every node), kept in memory and, when possible, on disk
(:func:`~._cache.cache_directory`), keyed by (p_dpe, sigma0) and the table layout.

Layout (:class:`SaturatedTable`):

* sigma: ln sigma uniform over :data:`SIGMA_RANGE_PE`, cubic Lagrange interpolation;
* area: between the birth areas a_- < 0 < a_+ (themselves tabulated in ln sigma) the
  baseline term is exact and analytic; beyond them, the distance t = a - a_+ (or
  a_- - a) is mapped to u = ln(1 + t / T0) on a uniform grid, with the first node at
  t = 0, where the second derivative of ln L_sat jumps. Cubic Lagrange in u.
* Areas beyond the table (t above :data:`POSITIVE_SPAN_PE` or
  :data:`NEGATIVE_SPAN_PE`) are computed directly, which is slow but exact.

Measured interpolation errors in ln L_sat (tests check them against a direct
maximisation), for sigma in [0.3, 0.8] PE: below 1e-7 above 50 PE, 1e-6 from 5 to
50 PE, 1e-5 from 0.5 to 5 PE, and up to 1e-4 within a few tenths of a PE of the birth
areas, where the steep baseline Gaussian of width sigma0 meets the interior branch
(the birth-area value itself, ln phi_0(a_+(sigma)), is exact). For sigma from 0.2 to
0.3 PE these grow to 2e-5 (0.5 to 5 PE) and 3e-4 (near the birth areas), below
0.2 PE to about 1e-3. They shift the deviance of one PMT by that much, against
statistical fluctuations of order 1, and never touch ln L or its derivatives.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import numba
import numpy as np

from lce_plugins.likelihood._cache import cache_file, load_arrays, store_arrays
from lce_plugins.likelihood._fastmath import log_in_place
from lce_plugins.likelihood._interpolation import lagrange_weights, stencil
from lce_plugins.likelihood._maximum import (
    baseline_log_likelihood,
    birth_area,
    interior_maximum,
    saturated_direct,
)

__all__ = [
    "SIGMA_RANGE_PE",
    "SaturatedTable",
    "area_part",
    "saturated_block",
    "saturated_lookup",
    "saturated_table",
    "sigma_part",
]

log = logging.getLogger(__name__)

#: Single-PE resolutions the table covers [PE].
SIGMA_RANGE_PE = (0.1, 1.0)
N_SIGMA_NODES = 47
#: Area scale of the u = ln(1 + t / T0) map [PE], and the u step.
T0_PE = 0.002
U_STEP = 0.01
#: Distances beyond the birth areas covered by the table [PE].
POSITIVE_SPAN_PE = 1e5
NEGATIVE_SPAN_PE = 30.0
#: Bump when the layout or the likelihood changes: old cache files are then ignored.
TABLE_VERSION = 1
_LOG_T0 = float(np.log(T0_PE))


@dataclass(frozen=True)
class SaturatedTable:
    """ln L_sat over (area, sigma) for one (p_dpe, sigma0); see the module docstring.

    Attributes
    ----------
    p_dpe, sigma0 : float
        The model parameters the table was built for.
    log_sigma_nodes : ndarray, shape (n_sigma,)
        ln sigma at the nodes (uniform).
    birth_areas : ndarray, shape (2, n_sigma)
        a_+ and |a_-| at the nodes [PE].
    values : ndarray, shape (2, n_u, n_sigma)
        ln L_sat at t = T0 (exp(u) - 1) beyond a_+ (row 0) and a_- (row 1).
    """

    p_dpe: float
    sigma0: float
    log_sigma_nodes: np.ndarray
    birth_areas: np.ndarray
    values: np.ndarray

    def kernel_arguments(self) -> tuple:
        """The arrays and numbers :func:`saturated_lookup` takes after (area, log_sigma)."""
        node_counts = np.isfinite(self.values[:, :, 0]).sum(axis=1)
        return (
            self.log_sigma_nodes[0],
            self.log_sigma_nodes[1] - self.log_sigma_nodes[0],
            self.birth_areas,
            self.values,
            node_counts,
            self.p_dpe,
            self.sigma0,
        )


def _u_nodes(span_pe: float) -> np.ndarray:
    return np.arange(int(np.ceil(np.log1p(span_pe / T0_PE) / U_STEP)) + 4) * U_STEP


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _fill(log_sigma_nodes, u_positive, u_negative, p_dpe, sigma0, birth, values):
    for j in numba.prange(log_sigma_nodes.size):
        sigma = np.exp(log_sigma_nodes[j])
        for side in range(2):
            sign = 1.0 if side == 0 else -1.0
            edge = birth_area(sigma, p_dpe, sigma0, sign)
            birth[side, j] = abs(edge)
            u_nodes = u_positive if side == 0 else u_negative
            for i in range(u_nodes.size):
                area = edge + sign * T0_PE * np.expm1(u_nodes[i])
                if i == 0 and edge != 0.0:
                    value = baseline_log_likelihood(area, sigma0)
                else:
                    value = interior_maximum(area, sigma, p_dpe, sigma0)[0]
                values[side, i, j] = value


def _build(p_dpe: float, sigma0: float) -> SaturatedTable:
    log_sigma = np.linspace(np.log(SIGMA_RANGE_PE[0]), np.log(SIGMA_RANGE_PE[1]), N_SIGMA_NODES)
    u_positive, u_negative = _u_nodes(POSITIVE_SPAN_PE), _u_nodes(NEGATIVE_SPAN_PE)
    values = np.full((2, u_positive.size, N_SIGMA_NODES), np.nan)
    birth = np.empty((2, N_SIGMA_NODES))
    _fill(log_sigma, u_positive, u_negative, p_dpe, sigma0, birth, values)
    return SaturatedTable(p_dpe, sigma0, log_sigma, birth, values)


_ARRAY_NAMES = ("log_sigma", "birth", "values")


@functools.lru_cache(maxsize=8)
def saturated_table(p_dpe: float, sigma0: float) -> SaturatedTable:
    """The table for (p_dpe, sigma0): from memory, else the disk cache, else built."""
    key = (
        TABLE_VERSION,
        p_dpe,
        sigma0,
        SIGMA_RANGE_PE,
        N_SIGMA_NODES,
        T0_PE,
        U_STEP,
        POSITIVE_SPAN_PE,
        NEGATIVE_SPAN_PE,
    )
    path = cache_file("saturated", key)
    stored = load_arrays(path, _ARRAY_NAMES)
    if stored is not None:
        return SaturatedTable(p_dpe, sigma0, *(stored[name] for name in _ARRAY_NAMES))
    started = time.perf_counter()
    table = _build(p_dpe, sigma0)
    log.info(
        "Built the saturated-likelihood table (p_dpe=%s, sigma0=%s PE) in %.1f s",
        p_dpe,
        sigma0,
        time.perf_counter() - started,
    )
    arrays = (table.log_sigma_nodes, table.birth_areas, table.values)
    store_arrays(path, dict(zip(_ARRAY_NAMES, arrays, strict=True)))
    return table


@numba.njit(cache=True, nogil=True, error_model="numpy")
def sigma_part(log_sigma, log_sigma_0, log_sigma_step, birth):
    """What the lookup needs from sigma alone: (node, 4 weights, a_+, |a_-|).

    Computed once per PMT by the deviance kernel; ``log_sigma`` must lie within the
    table's range (callers check).
    """
    j, x = stencil((log_sigma - log_sigma_0) / log_sigma_step, birth.shape[1])
    w = lagrange_weights(x)
    plus = w[0] * birth[0, j] + w[1] * birth[0, j + 1] + w[2] * birth[0, j + 2]
    plus += w[3] * birth[0, j + 3]
    minus = w[0] * birth[1, j] + w[1] * birth[1, j + 1] + w[2] * birth[1, j + 2]
    minus += w[3] * birth[1, j + 3]
    return j, w[0], w[1], w[2], w[3], plus, minus


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def area_part(area, sigma, part, values, node_counts, p_dpe, sigma0, log_norm_0):
    """ln L_sat(area, sigma) given ``part`` = :func:`sigma_part` of this sigma.

    ``log_norm_0`` = ln(sigma0 sqrt(2 pi)), the baseline Gaussian's normalisation.
    """
    j, w0, w1, w2, w3, plus, minus = part
    if -minus <= area <= plus:
        return -0.5 * (area / sigma0) ** 2 - log_norm_0
    side = 0 if area > plus else 1
    distance = area - plus if side == 0 else -minus - area
    # ln(1 + t / T0) as a difference of logs: log1p costs twice as much here
    position = (np.log(T0_PE + distance) - _LOG_T0) / U_STEP
    if position > node_counts[side] - 3:
        return saturated_direct(area, sigma, p_dpe, sigma0)
    i, y = stencil(position, node_counts[side])
    v = lagrange_weights(y)
    total = 0.0
    for r in range(4):
        row = values[side, i + r]
        total += v[r] * (w0 * row[j] + w1 * row[j + 1] + w2 * row[j + 2] + w3 * row[j + 3])
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def saturated_block(
    area, sigma, pmt, nodes, sigma_weights, values, node_counts, p_dpe, sigma0, out, scratch
):
    """out[k] = ln L_sat(area[k]) of PMT pmt[k] for a block of terms (the logs vectorised).

    ``nodes`` (n_pmts,) and ``sigma_weights`` (n_pmts, 6): :func:`sigma_part` of every
    PMT (node; four weights, a_+ and |a_-|). ``scratch``: float64, shape (2, >= k).
    """
    count = area.size
    argument, distance = scratch[0], scratch[1]
    for k in range(count):  # branch-free: vectorised
        j = pmt[k]
        beyond = max(area[k] - sigma_weights[j, 4], -sigma_weights[j, 5] - area[k])
        distance[k] = beyond
        argument[k] = T0_PE + max(beyond, 0.0)
    log_in_place(argument, count, out)
    log_norm_0 = np.log(sigma0) + 0.5 * np.log(2.0 * np.pi)
    for k in range(count):
        j = pmt[k]
        if distance[k] <= 0.0:
            out[k] = -0.5 * (area[k] / sigma0) ** 2 - log_norm_0
            continue
        side = 0 if area[k] > sigma_weights[j, 4] else 1
        position = (argument[k] - _LOG_T0) / U_STEP
        if position > node_counts[side] - 3:
            out[k] = saturated_direct(area[k], sigma[k], p_dpe, sigma0)
            continue
        i, y = stencil(position, node_counts[side])
        v = lagrange_weights(y)
        w0, w1, w2, w3 = (
            sigma_weights[j, 0],
            sigma_weights[j, 1],
            sigma_weights[j, 2],
            sigma_weights[j, 3],
        )
        node = nodes[j]
        total = 0.0
        for r in range(4):
            row = values[side, i + r]
            total += v[r] * (
                w0 * row[node] + w1 * row[node + 1] + w2 * row[node + 2] + w3 * row[node + 3]
            )
        out[k] = total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def saturated_lookup(
    area, log_sigma, log_sigma_0, log_sigma_step, birth, values, node_counts, p_dpe, sigma0
):
    """ln L_sat(area, sigma) from the table (direct maximisation outside it)."""
    part = sigma_part(log_sigma, log_sigma_0, log_sigma_step, birth)
    log_norm_0 = np.log(sigma0) + 0.5 * np.log(2.0 * np.pi)
    return area_part(area, np.exp(log_sigma), part, values, node_counts, p_dpe, sigma0, log_norm_0)

"""What the deviance averages to when the data follow the model: E[D](mu, sigma) per PMT.

The deviance of one PMT, d(a) = 2 (ln L_sat(a) - ln L(a | mu)), does not average to 1
at low counts (Wilks' chi^2_1 limit holds only for large mu), so the plain
deviance / ndf of an event is not 1 for a perfect model. Dividing by the expected
deviance, sum_j E[d](mu_j, sigma_j) over live PMTs, calibrates it: D / E[D] averages 1
exactly when the model is right.

E[d](mu, sigma) = sum_n P(n | mu) E[d(a) | n] is computed

* for small mu, with Gauss-Hermite quadrature of each PE count's Gaussian
  (a | n ~ Normal(n, sigma^2 n), or Normal(0, sigma0^2) for n = 0);
* for large mu (where the area density no longer shows 1-PE ripple), with
  Gauss-Hermite quadrature against a Gaussian of the same mean and variance, each
  node weighted by the exact density over that Gaussian (self-normalised),

on a grid in (ln mu, ln sigma), once per (p_dpe, sigma0), and cached like the
saturated table. It is interpolated cubically; between mu = 0 and the first node
linearly, and above the last node (1e5 photons, where E[d] is 1 + O(1/mu)) it is
held constant.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass

import numba
import numpy as np

from lce_plugins.likelihood._cache import cache_file, load_arrays, store_arrays
from lce_plugins.likelihood._interpolation import lagrange_weights, stencil
from lce_plugins.likelihood._single import pmt_log_likelihood
from lce_plugins.likelihood.saturated import SIGMA_RANGE_PE, saturated_lookup, saturated_table

__all__ = ["ExpectedDevianceTable", "expected_deviance_table", "expected_lookup"]

log = logging.getLogger(__name__)

LOG_MU_RANGE = (math.log(1e-3), math.log(1e5))
LOG_MU_STEP = 0.1
N_SIGMA_NODES = 24
N_HERMITE = 24
#: PE-count terms below this fraction of the largest are left out of the sum.
PMF_CUTOFF = 1e-15
#: mu (1 - |chi|) above which the area density is smooth (ripple below e^-14).
SMOOTH_EXPONENT = 14.0
#: ... but never switch below this many photons.
SMOOTH_MU_MIN = 20.0
TABLE_VERSION = 1
_SQRT_PI = math.sqrt(math.pi)


@dataclass(frozen=True)
class ExpectedDevianceTable:
    """E[d] per PMT on a (ln mu, ln sigma) grid, for one (p_dpe, sigma0).

    Attributes
    ----------
    log_mu_nodes, log_sigma_nodes : ndarray
        Uniform grids [ln photons], [ln PE].
    values : ndarray, shape (n_mu, n_sigma)
        E[d] at the nodes.
    at_zero : ndarray, shape (n_sigma,)
        E[d] at mu = 0.
    """

    p_dpe: float
    sigma0: float
    log_mu_nodes: np.ndarray
    log_sigma_nodes: np.ndarray
    values: np.ndarray
    at_zero: np.ndarray

    def kernel_arguments(self) -> tuple:
        """What :func:`expected_lookup` takes after (mu, log_sigma)."""
        return (
            self.log_mu_nodes[0],
            self.log_mu_nodes[1] - self.log_mu_nodes[0],
            self.log_sigma_nodes[0],
            self.log_sigma_nodes[1] - self.log_sigma_nodes[0],
            self.values,
            self.at_zero,
        )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pmt_deviance(area, mu, sigma, p_dpe, sigma0, saturated):
    log_sigma_0, step, birth, values, node_counts = saturated
    reference = saturated_lookup(
        area, math.log(sigma), log_sigma_0, step, birth, values, node_counts, p_dpe, sigma0
    )
    return 2.0 * (reference - pmt_log_likelihood(area, mu, sigma, p_dpe, sigma0)[0])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _expected_by_counts(mu, sigma, p_dpe, sigma0, saturated, nodes, weights):
    """sum_n P(n) E[d | n], each Gaussian by Gauss-Hermite (mu <= ~100: P(0) representable)."""
    a1, a2 = mu * (1.0 - p_dpe), mu * p_dpe
    mean = mu * (1.0 + p_dpe)
    n_max = int(mean + 15.0 * math.sqrt(mean * 2.0 + 1.0) + 20.0)
    pmf_prev, pmf = 0.0, math.exp(-mu)
    total = 0.0
    for n in range(n_max + 1):
        if pmf > PMF_CUTOFF:
            spread = math.sqrt(2.0) * (sigma0 if n == 0 else sigma * math.sqrt(n))
            inner = 0.0
            for q in range(nodes.size):
                area = n + spread * nodes[q]
                inner += weights[q] * _pmt_deviance(area, mu, sigma, p_dpe, sigma0, saturated)
            total += pmf * inner / _SQRT_PI
        pmf, pmf_prev = (a1 * pmf + 2.0 * a2 * pmf_prev) / (n + 1), pmf
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _expected_smooth(mu, sigma, p_dpe, sigma0, saturated, nodes, weights):
    """E[d] against a Gaussian of the area's mean and variance, reweighted to the exact density."""
    mean = mu * (1.0 + p_dpe)
    variance = mu * ((1.0 - p_dpe) * (1.0 + sigma * sigma) + p_dpe * (4.0 + 2.0 * sigma * sigma))
    spread = math.sqrt(2.0 * variance)
    norm, total = 0.0, 0.0
    for q in range(nodes.size):
        area = mean + spread * nodes[q]
        log_density = pmt_log_likelihood(area, mu, sigma, p_dpe, sigma0)[0]
        log_gauss = -(nodes[q] ** 2) - 0.5 * math.log(2.0 * math.pi * variance)
        weight = weights[q] * math.exp(log_density - log_gauss)
        norm += weight
        total += weight * _pmt_deviance(area, mu, sigma, p_dpe, sigma0, saturated)
    return total / norm


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _expected_node(mu, sigma, p_dpe, sigma0, saturated, nodes, weights):
    two_pi_sq_var = 2.0 * math.pi * math.pi * sigma * sigma
    chi = (1.0 - p_dpe) * math.exp(-two_pi_sq_var) + p_dpe * math.exp(-4.0 * two_pi_sq_var)
    if mu >= SMOOTH_MU_MIN and mu * (1.0 - chi) >= SMOOTH_EXPONENT:
        return _expected_smooth(mu, sigma, p_dpe, sigma0, saturated, nodes, weights)
    return _expected_by_counts(mu, sigma, p_dpe, sigma0, saturated, nodes, weights)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _fill(log_mu, log_sigma, p_dpe, sigma0, saturated, nodes, weights, values, at_zero):
    for j in numba.prange(log_sigma.size):
        sigma = math.exp(log_sigma[j])
        at_zero[j] = _expected_by_counts(0.0, sigma, p_dpe, sigma0, saturated, nodes, weights)
        for i in range(log_mu.size):
            values[i, j] = _expected_node(
                math.exp(log_mu[i]), sigma, p_dpe, sigma0, saturated, nodes, weights
            )


def _build(p_dpe: float, sigma0: float) -> ExpectedDevianceTable:
    log_mu = np.arange(LOG_MU_RANGE[0], LOG_MU_RANGE[1] + LOG_MU_STEP / 2, LOG_MU_STEP)
    log_sigma = np.linspace(np.log(SIGMA_RANGE_PE[0]), np.log(SIGMA_RANGE_PE[1]), N_SIGMA_NODES)
    nodes, weights = np.polynomial.hermite.hermgauss(N_HERMITE)
    saturated = saturated_table(p_dpe, sigma0).kernel_arguments()[:5]
    values = np.empty((log_mu.size, log_sigma.size))
    at_zero = np.empty(log_sigma.size)
    _fill(log_mu, log_sigma, p_dpe, sigma0, saturated, nodes, weights, values, at_zero)
    return ExpectedDevianceTable(p_dpe, sigma0, log_mu, log_sigma, values, at_zero)


_ARRAY_NAMES = ("log_mu", "log_sigma", "values", "at_zero")


@functools.lru_cache(maxsize=8)
def expected_deviance_table(p_dpe: float, sigma0: float) -> ExpectedDevianceTable:
    """The table for (p_dpe, sigma0): from memory, else the disk cache, else built."""
    key = (
        TABLE_VERSION,
        p_dpe,
        sigma0,
        LOG_MU_RANGE,
        LOG_MU_STEP,
        N_SIGMA_NODES,
        N_HERMITE,
        SIGMA_RANGE_PE,
    )
    path = cache_file("expected", key)
    stored = load_arrays(path, _ARRAY_NAMES)
    if stored is not None:
        return ExpectedDevianceTable(p_dpe, sigma0, *(stored[name] for name in _ARRAY_NAMES))
    started = time.perf_counter()
    table = _build(p_dpe, sigma0)
    log.info(
        "Built the expected-deviance table (p_dpe=%s, sigma0=%s PE) in %.1f s",
        p_dpe,
        sigma0,
        time.perf_counter() - started,
    )
    arrays = (table.log_mu_nodes, table.log_sigma_nodes, table.values, table.at_zero)
    store_arrays(path, dict(zip(_ARRAY_NAMES, arrays, strict=True)))
    return table


@numba.njit(cache=True, nogil=True, error_model="numpy")
def expected_lookup(
    mu, log_sigma, log_mu_0, log_mu_step, log_sigma_0, log_sigma_step, values, at_zero
):
    """E[d](mu, sigma) from the table (``log_sigma`` within the table's range)."""
    j, x = stencil((log_sigma - log_sigma_0) / log_sigma_step, values.shape[1])
    w = lagrange_weights(x)
    if mu <= 0.0 or math.log(mu) <= log_mu_0:
        first = w[0] * values[0, j] + w[1] * values[0, j + 1] + w[2] * values[0, j + 2]
        first += w[3] * values[0, j + 3]
        zero = w[0] * at_zero[j] + w[1] * at_zero[j + 1] + w[2] * at_zero[j + 2]
        zero += w[3] * at_zero[j + 3]
        fraction = mu / math.exp(log_mu_0)
        return zero + fraction * (first - zero)
    position = min((math.log(mu) - log_mu_0) / log_mu_step, values.shape[0] - 1.0)
    i, y = stencil(position, values.shape[0])
    v = lagrange_weights(y)
    total = 0.0
    for r in range(4):
        row = values[i + r]
        total += v[r] * (w[0] * row[j] + w[1] * row[j + 1] + w[2] * row[j + 2] + w[3] * row[j + 3])
    return total

"""Array kernels: elementwise ln L and per-event deviance, serial and parallel (Numba).

Each computation is written once as a function of a range of rows (or blocks), which
the serial kernels (``nogil``: safe to call from several threads at once) run over
everything and the parallel ones split over Numba's threads. Inputs are validated by
:mod:`lce_plugins.likelihood.api` before they get here.
"""

from __future__ import annotations

import numba
import numpy as np

from lce_plugins.likelihood._block import block_log_likelihood
from lce_plugins.likelihood.expected import expected_lookup
from lce_plugins.likelihood.saturated import saturated_block, saturated_lookup, sigma_part

__all__ = [
    "deviance_parallel",
    "deviance_serial",
    "elementwise_parallel",
    "elementwise_serial",
    "expected_serial",
    "saturated_elementwise",
]

#: Elements per block of the elementwise kernels.
BLOCK_SIZE = 256
#: Row ranges per thread in the parallel kernels (load balance against overhead).
CHUNKS_PER_THREAD = 8


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _elementwise_blocks(first, stop, area, mu, sigma, p_dpe, sigma0, order, value, d1, d2):
    for block in range(first, stop):
        start = block * BLOCK_SIZE
        end = min(start + BLOCK_SIZE, area.size)
        block_log_likelihood(
            area[start:end],
            mu[start:end],
            sigma[start:end],
            np.log(sigma[start:end]),
            p_dpe,
            sigma0,
            order,
            value[start:end],
            d1[start:end],
            d2[start:end],
        )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def elementwise_serial(area, mu, sigma, p_dpe, sigma0, order, value, d1, d2):
    """ln L (and derivatives for ``order`` > 0) of flat arrays, one thread."""
    n_blocks = (area.size + BLOCK_SIZE - 1) // BLOCK_SIZE
    _elementwise_blocks(0, n_blocks, area, mu, sigma, p_dpe, sigma0, order, value, d1, d2)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def elementwise_parallel(area, mu, sigma, p_dpe, sigma0, order, value, d1, d2, n_chunks):
    """As :func:`elementwise_serial`, blocks spread over Numba's threads in ``n_chunks``.

    (The thread count is passed in: asking Numba for it inside would make the kernel
    uncacheable.)
    """
    n_blocks = (area.size + BLOCK_SIZE - 1) // BLOCK_SIZE
    n_chunks = max(min(n_blocks, n_chunks), 1)
    for chunk in numba.prange(n_chunks):
        first = chunk * n_blocks // n_chunks
        stop = (chunk + 1) * n_blocks // n_chunks
        _elementwise_blocks(first, stop, area, mu, sigma, p_dpe, sigma0, order, value, d1, d2)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sigma_parts(sigma, saturated):
    """:func:`~.saturated.sigma_part` of every PMT, as arrays (node, weights and edges)."""
    log_sigma_0, log_sigma_step, birth, _, _ = saturated
    nodes = np.empty(sigma.size, np.int64)
    weights = np.empty((sigma.size, 6))
    for j in range(sigma.size):
        nodes[j], w0, w1, w2, w3, plus, minus = sigma_part(
            np.log(sigma[j]), log_sigma_0, log_sigma_step, birth
        )
        weights[j, 0], weights[j, 1], weights[j, 2], weights[j, 3] = w0, w1, w2, w3
        weights[j, 4], weights[j, 5] = plus, minus
    return nodes, weights


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gather_live(i, area, mu, sigma, log_sigma, live, terms, pmt):
    """Event i's live terms to the front of ``terms`` (rows: area, mu, sigma, ln sigma)."""
    n_live = 0
    for j in range(area.shape[1]):
        if live[i, j]:
            terms[0, n_live], terms[1, n_live] = area[i, j], mu[i, j]
            terms[2, n_live], terms[3, n_live] = sigma[j], log_sigma[j]
            pmt[n_live] = j
            n_live += 1
    return n_live


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _deviance_rows(first, stop, area, mu, sigma, live, p_dpe, sigma0, saturated, out):
    """out[i] = 2 sum_j live (ln L_sat - ln L) for events first..stop-1."""
    values, node_counts = saturated[3], saturated[4]
    nodes, sigma_weights = _sigma_parts(sigma, saturated)
    n_pmts = area.shape[1]
    log_sigma = np.log(sigma)
    terms, pmt = np.empty((4, n_pmts)), np.empty(n_pmts, np.int64)
    value, reference, scratch = np.empty(n_pmts), np.empty(n_pmts), np.empty((2, n_pmts))
    for i in range(first, stop):
        n = _gather_live(i, area, mu, sigma, log_sigma, live, terms, pmt)
        a, m, s, ls = terms[0, :n], terms[1, :n], terms[2, :n], terms[3, :n]
        block_log_likelihood(a, m, s, ls, p_dpe, sigma0, 0, value, scratch[0], scratch[1])
        saturated_block(
            a,
            s,
            pmt[:n],
            nodes,
            sigma_weights,
            values,
            node_counts,
            p_dpe,
            sigma0,
            reference,
            scratch,
        )
        total = 0.0
        for k in range(n):
            total += reference[k] - value[k]
        out[i] = 2.0 * total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def deviance_serial(area, mu, sigma, live, p_dpe, sigma0, saturated, out):
    """Per-event deviance, one thread. area, mu, live: (n_events, n_pmts); sigma: (n_pmts,)."""
    _deviance_rows(0, area.shape[0], area, mu, sigma, live, p_dpe, sigma0, saturated, out)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def deviance_parallel(area, mu, sigma, live, p_dpe, sigma0, saturated, out, n_chunks):
    """As :func:`deviance_serial`, events spread over Numba's threads in ``n_chunks``."""
    n_events = area.shape[0]
    n_chunks = max(min(n_events, n_chunks), 1)
    for chunk in numba.prange(n_chunks):
        first = chunk * n_events // n_chunks
        stop = (chunk + 1) * n_events // n_chunks
        _deviance_rows(first, stop, area, mu, sigma, live, p_dpe, sigma0, saturated, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def saturated_elementwise(area, log_sigma, table, out):
    """out = ln L_sat(area, sigma) for flat arrays; ``table``: SaturatedTable.kernel_arguments()."""
    log_sigma_0, step, birth, values, node_counts, p_dpe, sigma0 = table
    for k in range(area.size):
        out[k] = saturated_lookup(
            area[k], log_sigma[k], log_sigma_0, step, birth, values, node_counts, p_dpe, sigma0
        )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def expected_serial(mu, log_sigma, live, table, out):
    """out[i] = sum_j live E[d](mu_ij, sigma_j); ``table``: ExpectedDevianceTable args."""
    log_mu_0, log_mu_step, log_sigma_0, log_sigma_step, values, at_zero = table
    for i in range(mu.shape[0]):
        total = 0.0
        for j in range(mu.shape[1]):
            if live[i, j]:
                total += expected_lookup(
                    mu[i, j],
                    log_sigma[j],
                    log_mu_0,
                    log_mu_step,
                    log_sigma_0,
                    log_sigma_step,
                    values,
                    at_zero,
                )
        out[i] = total

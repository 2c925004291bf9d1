"""Many PMT terms at once: the exact sum with its exponentials batched (Numba kernels).

The exact sum of :mod:`._exact` spends most of its time in one exponential per PE
count. For the common small signals this module evaluates a whole block of terms
(e.g. the live PMTs of one event) in vectorisable passes over the terms, so that the
exponentials run in one long branch-free loop:

1. per term, a window [n_lo, n_hi] of PE counts outside which every term is below
   e^-25 of the largest (closed-form bounds, :func:`_upper_edge` and
   :func:`~._exact.lower_edge`), and ln mu, 1 / (2 sigma^2), ... ;
2. per term and count, the log of everything that has a closed form:
   ln phi_n(area) + ln sigma + n ln c - ln n!, with c = mu (1 - p_dpe);
3. all exponentials at once (:func:`~._fastmath.exp_in_place`);
4. per term, the remaining factor Q(n) = P(n) e^mu n! / c^n by its recursion
   Q(n + 1) = Q(n) + beta n Q(n - 1), beta = 2 p mu / c^2, the sums, and their logs.

No rescaling is needed: n ln c - ln n! <= c <= 120 and 1 <= Q(n) <= e^300 (checked
per term with :func:`_log_q_bound`), so no term overflows; a term whose sum comes out below
e^-350 (only far out in the tails, where a log-term below e^-700 may have been
dropped) is redone one by one. So are terms with mu < p / (1 - p)^2 (where
c = mu (1 - p) is not the larger scale), mu = 0, and large signals
(:func:`~._single.pmt_log_likelihood`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from lce_plugins.likelihood._exact import (
    HALF_LOG_2PI,
    LOW_EDGE_MIN,
    derivatives_from_sums,
    lower_edge,
)
from lce_plugins.likelihood._fastmath import exp_in_place, log_in_place
from lce_plugins.likelihood._single import pmt_log_likelihood

__all__ = ["BLOCK_DEPTH", "block_log_likelihood"]

#: ln of the ratio to the largest term below which terms are left out: e^-25 = 1.4e-11.
BLOCK_DEPTH = 25.0
#: Terms beyond these go to the one-by-one path [photons, PE].
BLOCK_MU_MAX = 150.0
BLOCK_AREA_MAX = 180.0
#: Largest ln Q(n) allowed in a block (keeps Q and the sums far from overflow).
BLOCK_LOG_Q_MAX = 300.0
#: Sums below this (e^-350) may have lost terms below e^-700: redone one by one.
SMALLEST_SUM = math.exp(-350.0)
#: Finite inputs only reach these loops, so NaN/inf semantics can be relaxed.
_LOOP_FASTMATH = {"contract", "nnan", "ninf", "nsz"}
#: Bound on the variance-to-mean ratio of the PE count used for the tails (2 PE max).
PE_DISPERSION_BOUND = 2.0
N_TABLE = 1024
_INV = np.concatenate([[0.0], 1.0 / np.arange(1, N_TABLE)])
#: ln(n) / 2 + ln n!: the Gaussian norm and the factorial of term n together.
_LOG_NORM = np.concatenate([[0.0], 0.5 * np.log(np.arange(1, N_TABLE))]) + special.gammaln(
    np.arange(N_TABLE) + 1.0
)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _upper_edge(area, mean_pe, inv_two_var, depth):
    """Last PE count whose term can matter (float): beyond it all terms are < e^-depth of the peak.

    Above high = max(|area|, mean_pe) both factors of a term fall with n, so the peak
    is at least the term at ``high``. From ``high`` up to n = high + d the Gaussian
    factor falls by d (1 - area^2 / (n high)) / (2 sigma^2) and the pmf by at least
    d (1 - mean_pe^2 / (n high)) / (2 D), D = :data:`PE_DISPERSION_BOUND`; setting the
    sum equal to ``depth`` gives a quadratic in d.
    """
    high = max(abs(area), mean_pe, 1.0)
    curvature = inv_two_var + 0.5 / PE_DISPERSION_BOUND
    offset = (area * area * inv_two_var + 0.5 * mean_pe * mean_pe / PE_DISPERSION_BOUND) / high
    b = curvature * high - offset - depth
    return high + (-b + math.sqrt(b * b + 4.0 * curvature * depth * high)) / (2.0 * curvature)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _log_q_bound(n, beta):
    """Upper bound on ln Q(n).

    The ratio r_n = Q(n + 1) / Q(n) obeys r_n = 1 + beta n / r_(n-1) <= 1 + sqrt(beta n),
    so ln Q(n) <= n ln(1 + sqrt(beta n)); cheaper n^2 beta / 2 bounds it when small.
    """
    quadratic = 0.5 * n * n * beta
    if quadratic <= BLOCK_LOG_Q_MAX:
        return quadratic
    return n * math.log1p(math.sqrt(beta * n))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _plan(area, mu, sigma, log_sigma, p_dpe, sigma0, work, n_lo, n_hi, offsets):
    """Windows of the terms that go into the block (n_hi = -1 for the others).

    ``work`` rows on return: 0 = 1 / (2 sigma^2), 1 = beta, 2 = ln phi_0 + ln sigma,
    3 = ln c (4 is scratch). Returns the number of (term, PE count) entries;
    ``offsets`` gets each term's first entry.
    """
    count = area.size
    inv_two_var, top, log_gauss_0, log_c = work[0], work[1], work[2], work[3]
    log_sigma0 = math.log(sigma0)
    for k in range(count):  # branch-free: vectorised
        inv_two_var[k] = 0.5 / (sigma[k] * sigma[k])
        top[k] = _upper_edge(area[k], mu[k] * (1.0 + p_dpe), inv_two_var[k], BLOCK_DEPTH)
        log_gauss_0[k] = -0.5 * (area[k] / sigma0) ** 2 - log_sigma0 + log_sigma[k]
        log_c[k] = mu[k] if mu[k] > 0.0 else 1.0
    total = 0
    ratio = p_dpe / (1.0 - p_dpe) ** 2
    for k in range(count):
        offsets[k] = total
        n_hi[k] = -1
        m = mu[k]
        if not (0.0 < m and ratio <= m <= BLOCK_MU_MAX and abs(area[k]) <= BLOCK_AREA_MAX):
            continue
        end = int(top[k]) + 1
        if end >= N_TABLE - 1 or _log_q_bound(end, 2.0 * ratio / m) > BLOCK_LOG_Q_MAX:
            continue
        if min(abs(area[k]), m * (1.0 + p_dpe)) >= LOW_EDGE_MIN:
            n_lo[k] = lower_edge(area[k], m * (1.0 + p_dpe), sigma[k], BLOCK_DEPTH)
        n_hi[k] = end
        total += end - n_lo[k] + 1
    offsets[count] = total

    log_in_place(log_c, count, work[4])
    beta = top
    log_1mp = math.log(1.0 - p_dpe)
    for k in range(count):
        log_c[k] += log_1mp
        beta[k] = 2.0 * ratio / mu[k]
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_LOOP_FASTMATH)
def _fill_log_terms(area, inv_two_var, log_c, log_gauss_0, n_lo, n_hi, offsets, out):
    """Step 2: out[offsets[k] + n - n_lo[k]] = log term n of term k."""
    for k in range(area.size):
        if n_hi[k] < 0:
            continue
        a, scale, log_scale = area[k], inv_two_var[k], log_c[k]
        shift = offsets[k] - n_lo[k]
        first = max(n_lo[k], 1)
        count_f = float(first)  # a float counter: AVX2 cannot convert int64 lanes
        for n in range(first, n_hi[k] + 1):
            d = a - count_f
            out[n + shift] = -d * d * scale * _INV[n] + count_f * log_scale - _LOG_NORM[n]
            count_f += 1.0
        if n_lo[k] == 0:
            out[offsets[k]] = log_gauss_0[k]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _value_sum(beta, n_lo, n_hi, weights, start):
    """S_0 = sum_n Q(n) w_n.

    Two counts per step, (Q(n + 2), Q(n + 3)) from (Q(n), Q(n + 1)), halve the chain of
    dependent multiply-adds that limits the plain recursion.
    """
    q0, q1 = 1.0, 1.0  # Q(0), Q(1)
    n = 0
    while n + 1 < n_lo:
        q0, q1 = q1 + beta * (n + 1) * q0, q1 * (1.0 + beta * (n + 2)) + beta * (n + 1) * q0
        n += 2
    even = odd = 0.0
    shift = start - n_lo
    while n + 1 <= n_hi:
        if n >= n_lo:
            even += q0 * weights[n + shift]
        odd += q1 * weights[n + 1 + shift]
        q0, q1 = q1 + beta * (n + 1) * q0, q1 * (1.0 + beta * (n + 2)) + beta * (n + 1) * q0
        n += 2
    if n == n_hi:
        even += q0 * weights[n + shift]
    return even + odd


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _q_at(beta, n):
    """(Q(n), Q(n - 1)) by running the recursion from Q(0) = Q(1) = 1."""
    q, q_prev = 1.0, 0.0
    count = 0.0
    for _ in range(n):
        q, q_prev = q + beta * count * q_prev, q
        count += 1.0
    return q, q_prev


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _value_sums_pair(beta_a, lo_a, hi_a, start_a, beta_b, lo_b, hi_b, start_b, weights):
    """S_0 of two terms at once: two independent recursion chains keep the FPU busy."""
    qa, qa_prev = _q_at(beta_a, lo_a)
    qb, qb_prev = _q_at(beta_b, lo_b)
    na, nb = float(lo_a), float(lo_b)
    sa = sb = 0.0
    common = min(hi_a - lo_a, hi_b - lo_b) + 1
    for i in range(common):
        sa += qa * weights[start_a + i]
        sb += qb * weights[start_b + i]
        qa, qa_prev = qa + beta_a * na * qa_prev, qa
        qb, qb_prev = qb + beta_b * nb * qb_prev, qb
        na += 1.0
        nb += 1.0
    for i in range(common, hi_a - lo_a + 1):
        sa += qa * weights[start_a + i]
        qa, qa_prev = qa + beta_a * na * qa_prev, qa
        na += 1.0
    for i in range(common, hi_b - lo_b + 1):
        sb += qb * weights[start_b + i]
        qb, qb_prev = qb + beta_b * nb * qb_prev, qb
        nb += 1.0
    return sa, sb


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _value_sums(beta, n_lo, n_hi, offsets, weights, sums):
    """sums[k] = S_0 of every block term (1 for the others), two terms at a time."""
    pending = -1
    for k in range(n_lo.size):
        sums[k] = 1.0
        if n_hi[k] < 0:
            continue
        if pending < 0:
            pending = k
            continue
        sums[pending], sums[k] = _value_sums_pair(
            beta[pending],
            n_lo[pending],
            n_hi[pending],
            offsets[pending],
            beta[k],
            n_lo[k],
            n_hi[k],
            offsets[k],
            weights,
        )
        pending = -1
    if pending >= 0:
        sums[pending] = _value_sum(
            beta[pending], n_lo[pending], n_hi[pending], weights, offsets[pending]
        )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _shifted_sums(beta, n_lo, n_hi, weights, start):
    """S_j = sum_n n!/(n-j)! Q(n - j) w_n for j = 0..4 (P(n - j) in the scale of term n).

    The recursion runs alone up to n_lo, then with the sums and without a branch; the
    count is a float so that no integer conversion sits in the loop.
    """
    q, h1, h2, h3, h4 = 1.0, 0.0, 0.0, 0.0, 0.0  # Q(n), Q(n - 1), ..., Q(n - 4)
    count = 0.0
    for _ in range(n_lo):
        q, h1, h2, h3, h4 = q + beta * count * h1, q, h1, h2, h3
        count += 1.0
    s0 = s1 = s2 = s3 = s4 = 0.0
    for index in range(start, start + n_hi - n_lo + 1):
        w = weights[index]
        f1 = count * w
        f2 = f1 * (count - 1.0)
        f3 = f2 * (count - 2.0)
        s0 += q * w
        s1 += h1 * f1
        s2 += h2 * f2
        s3 += h3 * f3
        s4 += h4 * f3 * (count - 3.0)
        q, h1, h2, h3, h4 = q + beta * count * h1, q, h1, h2, h3
        count += 1.0
    return s0, s1, s2, s3, s4


@numba.njit(cache=True, nogil=True, error_model="numpy")
def block_log_likelihood(area, mu, sigma, log_sigma, p_dpe, sigma0, order, value, first, second):
    """ln L and (for ``order`` >= 1) its mu-derivatives for a block of PMT terms.

    Parameters
    ----------
    area, mu, sigma, log_sigma : ndarray, shape (k,)
        Observed areas [PE, finite], expected photons [>= 0], single-PE resolutions
        [PE, > 0] and their logs, per term (not checked here).
    p_dpe, sigma0 : float
        Double-PE probability and baseline noise [PE].
    order : int
        0: ln L only; 1 or 2: also d ln L / dmu and d^2 ln L / dmu^2.
    value, first, second : ndarray, shape (k,)
        Outputs; ``first`` and ``second`` are left untouched for ``order`` 0.
    """
    count = area.size
    work = np.empty((5, count))
    n_lo = np.zeros(count, np.int64)
    n_hi = np.empty(count, np.int64)
    offsets = np.empty(count + 1, np.int64)
    total = _plan(area, mu, sigma, log_sigma, p_dpe, sigma0, work, n_lo, n_hi, offsets)
    inv_two_var, beta, log_gauss_0, log_c, sums = work[0], work[1], work[2], work[3], work[4]

    weights = np.empty(total + 1)
    _fill_log_terms(area, inv_two_var, log_c, log_gauss_0, n_lo, n_hi, offsets, weights)
    exp_in_place(weights, total, np.empty(total))

    if order == 0:
        _value_sums(beta, n_lo, n_hi, offsets, weights, sums)
    else:
        for k in range(count):
            sums[k] = 1.0
            if n_hi[k] >= 0:
                shifted = _shifted_sums(beta[k], n_lo[k], n_hi[k], weights, offsets[k])
                sums[k] = shifted[0]
                first[k], second[k] = derivatives_from_sums(shifted, mu[k] * (1.0 - p_dpe), p_dpe)
    for k in range(count):
        if n_hi[k] >= 0 and not sums[k] >= SMALLEST_SUM:
            n_hi[k] = -1  # far tail: a dropped term below e^-700 might matter
            sums[k] = 1.0
    log_in_place(sums, count, beta)

    for k in range(count):
        if n_hi[k] >= 0:
            value[k] = -mu[k] + sums[k] - log_sigma[k] - HALF_LOG_2PI
        else:
            value[k], d1, d2 = pmt_log_likelihood(area[k], mu[k], sigma[k], p_dpe, sigma0)
            if order > 0:
                first[k], second[k] = d1, d2

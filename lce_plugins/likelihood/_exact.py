"""The likelihood of one PMT by the exact sum over photoelectron counts (Numba kernels).

For expected photons ``mu`` the photoelectron (PE) count is n = N1 + 2 N2 with
N1 ~ Poisson(mu (1 - p_dpe)) and N2 ~ Poisson(mu p_dpe) (a Hermite distribution), and

    L(a | mu) = sum_n P(n | mu) phi_n(a),
    phi_n = Normal(n, sigma^2 n) for n >= 1,   phi_0 = Normal(0, sigma0^2).

Numerical route, chosen so that nothing overflows for mu from 0 to 1e4 and beyond:

* The pmf follows from its probability generating function
  G(z) = exp(a1 (z - 1) + a2 (z^2 - 1)), a1 = mu (1 - p_dpe), a2 = mu p_dpe, whose
  derivative gives (n + 1) P(n + 1) = a1 P(n) + 2 a2 P(n - 1). Every coefficient is
  positive, so running it upwards from n = 0 never cancels: relative errors grow at
  most linearly in n.
* It runs on Q(n) = P(n) e^mu / c^n with c = max(a1, sqrt(a2)), which keeps the
  recursion coefficients at most 2 even when mu is tiny or huge; Q is renormalised
  whenever it leaves [1 / RENORM, RENORM], and the log of the accumulated factor
  travels with the Gaussian factor of each term.
* Terms are summed in one pass from a lower edge (below which the terms are provably
  negligible) upwards, in linear space relative to a reference log-term that is
  moved up whenever a term exceeds it by e^16; the pass stops once past both the
  Gaussian centre and the pmf mode, when two successive terms are below
  :data:`STOP_TOLERANCE` of the sum.
* The derivatives in mu come from the same terms: dP(n)/dmu = (1 - p) P(n - 1)
  + p P(n - 2) - P(n), so d^k L / dmu^k are sums of P(n - j) phi_n, j <= 2 k.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from lce_plugins.likelihood._fastmath import FAST_EXP_MAX, fast_exp

__all__ = [
    "HALF_LOG_2PI",
    "derivatives_from_sums",
    "exact_log_likelihood",
    "lower_edge",
    "zero_mu_log_likelihood",
]

#: Log-drop below the peak term at the lower edge of the sum: e^-40 = 4e-18.
WINDOW_LOG_DEPTH = 40.0
#: Sum areas and PE counts below this start at n = 0 (cheaper than finding an edge).
LOW_EDGE_MIN = 8.0
#: The sum stops when two successive terms are below this fraction of it.
STOP_TOLERANCE = 1e-17
#: Q is renormalised when it leaves [1 / RENORM, RENORM].
RENORM = 1e30
#: Tables of 1/n and ln(n)/2 for the hot loop; larger n are computed.
N_TABLE = 2048
_INV = np.concatenate([[0.0], 1.0 / np.arange(1, N_TABLE)])
_HALF_LOG = np.concatenate([[0.0], 0.5 * np.log(np.arange(1, N_TABLE))])
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _inverse(n):
    return _INV[n] if n < N_TABLE else 1.0 / n


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _half_log(n):
    return _HALF_LOG[n] if n < N_TABLE else 0.5 * math.log(n)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def lower_edge(area, mean_pe, sigma, depth):
    """First PE count whose term can matter: below it every term is < e^-depth of the peak.

    Below low = min(|area|, mean_pe) both factors of a term grow with n, so the peak
    is at least as high as the term at ``low``. From ``low`` down to n the Gaussian
    factor falls by ((A - n)^2 / n - (A - low)^2 / low) / (2 sigma^2), A = |area|
    (valid for area > 0), and the pmf by at least
    (low - n) (1 - (n + low + 1) / (2 mean_pe)) / 2: its log-ratio of successive counts
    is ln(1 / tau) >= ln(mean_pe / k) / 2, tau the PE-count saddle point. Either drop
    reaching the depth (plus the ln(n) / 2 of the Gaussian norm) is enough.
    """
    centre = abs(area)
    low = min(centre, mean_pe)
    if low < LOW_EDGE_MIN:
        return 0
    depth = depth + 0.5 * math.log(low) + 1.0
    edge = 0.0
    if area > 0.0:
        c = 2.0 * sigma * sigma * depth + (centre - low) ** 2 / low
        b = 2.0 * centre + c
        edge = 0.5 * (b - math.sqrt(b * b - 4.0 * centre * centre))
    gap = 2.0 * mean_pe - 2.0 * low - 1.0
    drop = 0.5 * (-gap + math.sqrt(gap * gap + 16.0 * mean_pe * depth))
    edge = max(edge, low - drop)
    return max(int(edge) - 1, 0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def derivatives_from_sums(sums, scale, p_dpe):
    """d ln L / dmu and d^2 ln L / dmu^2 from the shifted sums.

    With r_j = sum P(n - j) phi_n / L = S_j / (c^j S_0):
    L'/L = (1 - p) r1 + p r2 - 1 and
    L''/L = (1 - p)^2 r2 + 2 p (1 - p) r3 + p^2 r4 - 2 (1 - p) r1 - 2 p r2 + 1.
    If that overflows (tiny mu far above the noise: c -> 0 while r_j c^j stay finite)
    the same is evaluated multiplied by c^2 and c^4 so that the huge terms cancel before
    dividing, and d^2 overflows to -inf instead of becoming inf - inf. NaN is returned
    only when both fail (c^j underflowing); the caller then takes the mu -> 0 limit.
    """
    s0, s1, s2, s3, s4 = sums
    q = 1.0 - p_dpe
    t1, t2, t3, t4 = s1 / s0, s2 / s0, s3 / s0, s4 / s0  # r_j c^j
    r1, r2, r3, r4 = t1 / scale, t2 / scale**2, t3 / scale**3, t4 / scale**4
    first = q * r1 + p_dpe * r2 - 1.0
    second = (q * q - 2.0 * p_dpe) * r2 + 2.0 * p_dpe * q * r3 + p_dpe * p_dpe * r4
    second += 1.0 - 2.0 * q * r1 - first * first
    if np.isfinite(first) and np.isfinite(second):
        return first, second
    c2 = scale * scale
    first_c2 = q * t1 * scale + p_dpe * t2 - c2
    second_c4 = (q * q - 2.0 * p_dpe) * t2 * c2 + 2.0 * p_dpe * q * t3 * scale
    second_c4 += p_dpe * p_dpe * t4 + c2 * c2 - 2.0 * q * t1 * scale * c2
    second_c4 -= first_c2 * first_c2
    return first_c2 / c2, second_c4 / (c2 * c2)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def zero_mu_log_likelihood(area, sigma, p_dpe, sigma0):
    """ln L and its one-sided derivatives at mu = 0 (only n = 0 contributes to L).

    The derivatives weigh the 1..4-PE Gaussians against the baseline Gaussian; far
    above the noise they overflow to +inf (first) and -inf (second), never NaN.
    """
    log_gauss_0 = -0.5 * (area / sigma0) ** 2 - math.log(sigma0)
    ratio = np.empty(5)
    for n in range(1, 5):
        log_gauss = -0.5 * (area - n) ** 2 / (sigma * sigma * n) - math.log(sigma) - _half_log(n)
        if log_gauss - log_gauss_0 > 700.0:
            return log_gauss_0 - HALF_LOG_2PI, np.inf, -np.inf
        ratio[n] = math.exp(log_gauss - log_gauss_0)
    q = 1.0 - p_dpe
    first = q * ratio[1] + p_dpe * ratio[2] - 1.0
    second = (q * q - 2.0 * p_dpe) * ratio[2] + 2.0 * p_dpe * q * ratio[3]
    second += p_dpe * p_dpe * ratio[4] + 1.0 - 2.0 * q * ratio[1] - first * first
    return log_gauss_0 - HALF_LOG_2PI, first, second


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _log_gaussian(area, n, sigma0, half_inv_var, log_sigma):
    """ln phi_n(area) + ln sqrt(2 pi) (the constant is added once at the end)."""
    if n == 0:
        return -0.5 * (area / sigma0) ** 2 - math.log(sigma0)
    d = area - n
    return -d * d * half_inv_var * _inverse(n) - log_sigma - _half_log(n)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _renormalise(q, h1, h2, h3, h4, offset):
    """Keep Q within [1 / RENORM, RENORM]; the log of the factor goes into ``offset``."""
    if q > RENORM or (q < 1.0 / RENORM and h1 < 1.0 / RENORM):
        factor = 1.0 / RENORM if q > RENORM else RENORM
        return (
            q * factor,
            h1 * factor,
            h2 * factor,
            h3 * factor,
            h4 * factor,
            offset - math.log(factor),
        )
    return q, h1, h2, h3, h4, offset


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sums(area, mu, sigma, p_dpe, sigma0, n_lo, n_peak_max):
    """The shifted sums S_j = sum_n Q(n - j) w_n, j = 0..4, in one upward pass.

    w_n = exp(log Gaussian factor + n ln c + log renormalisation - reference). Returns
    the sums, the reference log-term and ln c.
    """
    a1, a2 = mu * (1.0 - p_dpe), mu * p_dpe
    scale = max(a1, math.sqrt(a2))
    alpha, beta = a1 / scale, 2.0 * a2 / (scale * scale)
    log_scale = math.log(scale)
    half_inv_var, log_sigma = 0.5 / (sigma * sigma), math.log(sigma)

    q, h1, h2, h3, h4, offset = 1.0, 0.0, 0.0, 0.0, 0.0, 0.0
    s0 = s1 = s2 = s3 = s4 = 0.0
    reference, previous = -np.inf, 0.0
    for n in range(n_peak_max + 40 * int(math.sqrt(n_peak_max + 1.0)) + 1000):
        if n >= n_lo:
            log_term = _log_gaussian(area, n, sigma0, half_inv_var, log_sigma)
            log_term += n * log_scale + offset
            if log_term - reference > FAST_EXP_MAX:
                # move the reference up; what was summed shrinks (to 0 if negligible)
                shrink = fast_exp(reference - log_term)
                s0, s1, s2, s3, s4 = s0 * shrink, s1 * shrink, s2 * shrink, s3 * shrink, s4 * shrink
                reference = log_term
            weight = fast_exp(log_term - reference)
            term = q * weight
            s0, s1, s2 = s0 + term, s1 + h1 * weight, s2 + h2 * weight
            s3, s4 = s3 + h3 * weight, s4 + h4 * weight
            if n > n_peak_max and max(term, previous) <= STOP_TOLERANCE * s0:
                break
            previous = term
        q_next = (alpha * q + beta * h1) * _inverse(n + 1)
        q, h1, h2, h3, h4, offset = _renormalise(q_next, q, h1, h2, h3, offset)
    return s0, s1, s2, s3, s4, reference, log_scale


@numba.njit(cache=True, nogil=True, error_model="numpy")
def exact_log_likelihood(area, mu, sigma, p_dpe, sigma0):
    """ln L(area | mu) and its first two derivatives in mu by the exact sum.

    Parameters
    ----------
    area : float
        Observed area [PE]; finite.
    mu : float
        Expected detected photons, >= 0.
    sigma, sigma0 : float
        Single-PE resolution and baseline noise [PE], > 0.
    p_dpe : float
        Double-PE emission probability, in [0, 1).

    Returns
    -------
    (float, float, float)
        ln L, d ln L / dmu [1/photon], d^2 ln L / dmu^2 [1/photon^2].
    """
    if mu == 0.0:
        return zero_mu_log_likelihood(area, sigma, p_dpe, sigma0)
    mean_pe = mu * (1.0 + p_dpe)
    n_lo = lower_edge(area, mean_pe, sigma, WINDOW_LOG_DEPTH)
    n_peak_max = int(max(abs(area), mean_pe)) + 2
    s0, s1, s2, s3, s4, reference, log_scale = _sums(
        area, mu, sigma, p_dpe, sigma0, n_lo, n_peak_max
    )
    log_like = -mu + reference + math.log(s0) - HALF_LOG_2PI
    first, second = derivatives_from_sums((s0, s1, s2, s3, s4), math.exp(log_scale), p_dpe)
    if np.isnan(first) or np.isnan(second):
        # mu so small (< ~1e-150) that c^j underflows: the one-sided limit at mu = 0
        first, second = zero_mu_log_likelihood(area, sigma, p_dpe, sigma0)[1:]
    return log_like, first, second

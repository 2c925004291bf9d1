"""The saturated model of one PMT: the largest likelihood any mu >= 0 gives an area.

L_sat(a) = max_mu L(a | mu) depends on (a, sigma) (and on p_dpe, sigma0) only. Its
structure, which the table of :mod:`.saturated` follows:

* Near a = 0 the baseline term wins: L(a | mu) falls with mu from mu = 0, and
  L_sat(a) = Normal(a | 0, sigma0^2). This holds while
  d ln L / dmu at mu = 0, ((1 - p) phi_1(a) + p phi_2(a)) / phi_0(a) - 1, is negative.
* At the two "birth areas" a_+ > 0 and a_- < 0 where that derivative crosses zero, an
  interior maximum is born at mu = 0 and moves continuously up (L(a | mu) has a
  single maximum in mu here). So L_sat is continuous with a continuous first
  derivative in a, and its second derivative jumps at a_+ and a_-: an interpolation
  table must have nodes exactly there.
* Beyond them, L_sat is the smooth interior maximum, found here by Newton's method
  on d ln L / dmu = 0, kept inside a bracket.
"""

from __future__ import annotations

import math

import numba

from lce_plugins.likelihood._exact import HALF_LOG_2PI
from lce_plugins.likelihood._single import pmt_log_likelihood

__all__ = ["baseline_log_likelihood", "birth_area", "interior_maximum", "saturated_direct"]

_MAX_ITERATIONS = 200
_RELATIVE_TOLERANCE = 1e-12


@numba.njit(cache=True, nogil=True, error_model="numpy")
def baseline_log_likelihood(area, sigma0):
    """ln Normal(area | 0, sigma0^2): the likelihood at mu = 0."""
    return -0.5 * (area / sigma0) ** 2 - math.log(sigma0) - HALF_LOG_2PI


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _birth_function(area, sigma, p_dpe, sigma0):
    """ln((1 - p) phi_1 + p phi_2) - ln phi_0: positive where an interior maximum exists."""
    log_one = math.log(1.0 - p_dpe) - 0.5 * (area - 1.0) ** 2 / sigma**2 - math.log(sigma)
    if p_dpe > 0.0:
        log_two = math.log(p_dpe) - 0.25 * (area - 2.0) ** 2 / sigma**2 - math.log(sigma)
        log_two -= 0.5 * math.log(2.0)
        top = max(log_one, log_two)
        log_one = top + math.log(math.exp(log_one - top) + math.exp(log_two - top))
    return log_one - (-0.5 * (area / sigma0) ** 2 - math.log(sigma0))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def birth_area(sigma, p_dpe, sigma0, sign):
    """a_+ (sign = 1) or a_- (sign = -1): where the interior maximum is born [PE].

    Returns 0 when an interior maximum exists already at a = 0 (sigma0 not much
    smaller than sigma).
    """
    if _birth_function(0.0, sigma, p_dpe, sigma0) >= 0.0:
        return 0.0
    inner, outer = 0.0, sign * 1.0
    while _birth_function(outer, sigma, p_dpe, sigma0) < 0.0:
        outer *= 2.0
    for _ in range(200):
        middle = 0.5 * (inner + outer)
        if _birth_function(middle, sigma, p_dpe, sigma0) < 0.0:
            inner = middle
        else:
            outer = middle
        if abs(outer - inner) <= 1e-15 * abs(outer):
            break
    return 0.5 * (inner + outer)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def interior_maximum(area, sigma, p_dpe, sigma0):
    """(ln L_sat, mu_hat) for an area where d ln L / dmu > 0 at mu = 0.

    Newton's method on d ln L / dmu = 0 inside a bracket [low, high] that always holds
    the root (the derivative is positive below it and negative above).
    """
    low, high = 0.0, max(abs(area), 1.0)
    while pmt_log_likelihood(area, high, sigma, p_dpe, sigma0)[1] > 0.0:
        low, high = high, 2.0 * high
    mu = max(area / (1.0 + p_dpe), 0.5 * high) if area > 0.0 else 0.5 * high
    for _ in range(_MAX_ITERATIONS):
        value, first, second = pmt_log_likelihood(area, mu, sigma, p_dpe, sigma0)
        if first > 0.0:
            low = mu
        else:
            high = mu
        step = -first / second if second < 0.0 else 0.0
        candidate = mu + step
        if not (low < candidate < high) or step == 0.0:
            candidate = math.sqrt(low * high) if low > 0.0 else 0.5 * high
        if abs(candidate - mu) <= _RELATIVE_TOLERANCE * mu or high - low <= 1e-300:
            mu = candidate
            break
        mu = candidate
    return pmt_log_likelihood(area, mu, sigma, p_dpe, sigma0)[0], mu


@numba.njit(cache=True, nogil=True, error_model="numpy")
def saturated_direct(area, sigma, p_dpe, sigma0):
    """ln L_sat(area) computed from scratch (slow: tens of likelihood evaluations)."""
    if birth_area(sigma, p_dpe, sigma0, -1.0) <= area <= birth_area(sigma, p_dpe, sigma0, 1.0):
        if _birth_function(area, sigma, p_dpe, sigma0) < 0.0:
            return baseline_log_likelihood(area, sigma0)
    return interior_maximum(area, sigma, p_dpe, sigma0)[0]

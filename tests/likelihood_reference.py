"""A slow, obviously correct reference for :mod:`lce_plugins.likelihood` (tests only).

Everything is a direct transcription of the model, with no windows, tables or
approximations:

* the PE-count pmf P(n) of n = N1 + 2 N2, N1 ~ Poisson(mu (1 - p)), N2 ~ Poisson(mu p):
  :func:`log_pe_pmf_direct` sums the definition in 40-digit arithmetic (mpmath);
  :func:`log_pe_pmf` runs the recursion (n + 1) P(n + 1) = a1 P(n) + 2 a2 P(n - 1) that
  follows from the generating function exp(a1 (z - 1) + a2 (z^2 - 1)), in log space,
  and is checked against the definition by the tests;
* L(a | mu) = sum over every n from 0 up to far beyond the signal of
  P(n) Normal(a | n, sigma^2 n) (Normal(a | 0, sigma0^2) for n = 0), by log-sum-exp;
* the mu-derivatives from dP(n)/dmu = (1 - p) P(n - 1) + p P(n - 2) - P(n) applied once
  or twice;
* the saturated value by maximising over mu with scipy (plus the boundary mu = 0).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy import optimize
from scipy.special import logsumexp

__all__ = [
    "log_pe_pmf",
    "log_pe_pmf_direct",
    "reference_log_likelihood",
    "reference_saturated",
]

#: Terms this far (in ln) below the largest are checked to be absent at the end of the sum.
TAIL_DEPTH = 50.0


def log_pe_pmf_direct(n: int, mu: float, p_dpe: float) -> float:
    """ln P(n) from the definition: sum over N2 = k of Poisson(n - 2k) Poisson(k)."""
    with mpmath.workdps(40):
        a1, a2 = mpmath.mpf(mu) * (1 - mpmath.mpf(p_dpe)), mpmath.mpf(mu) * mpmath.mpf(p_dpe)
        total = mpmath.fsum(
            mpmath.exp(-a1)
            * a1 ** (n - 2 * k)
            / mpmath.factorial(n - 2 * k)
            * mpmath.exp(-a2)
            * a2**k
            / mpmath.factorial(k)
            for k in range(n // 2 + 1)
        )
        return float(mpmath.log(total))


def log_pe_pmf(n_max: int, mu: float, p_dpe: float) -> np.ndarray:
    """ln P(n) for n = 0..n_max by the recursion, in log space (no over- or underflow)."""
    a1, a2 = mu * (1.0 - p_dpe), mu * p_dpe
    log_a1 = math.log(a1) if a1 > 0 else -math.inf
    log_2a2 = math.log(2.0 * a2) if a2 > 0 else -math.inf
    out = np.full(n_max + 1, -np.inf)
    out[0] = -mu
    if n_max >= 1:
        out[1] = log_a1 - mu
    for n in range(1, n_max):
        out[n + 1] = np.logaddexp(log_a1 + out[n], log_2a2 + out[n - 1]) - math.log(n + 1)
    return out


def _log_gaussians(area: float, n_max: int, sigma: float, sigma0: float) -> np.ndarray:
    n = np.arange(n_max + 1, dtype=float)
    variance = np.where(n > 0, sigma * sigma * n, sigma0 * sigma0)
    return -((area - n) ** 2) / (2 * variance) - 0.5 * np.log(2 * np.pi * variance)


def reference_log_likelihood(
    area: float, mu: float, sigma: float, p_dpe: float = 0.2, sigma0: float = 0.05
) -> tuple[float, float, float]:
    """(ln L, d ln L / dmu, d^2 ln L / dmu^2), summing every PE count that could matter."""
    top = max(abs(area), mu * (1 + p_dpe), 1.0)
    n_max = int(math.ceil(top + 40 * math.sqrt(2 * top) + 60))
    log_pmf = log_pe_pmf(n_max, mu, p_dpe)
    log_gauss = _log_gaussians(area, n_max, sigma, sigma0)

    def shifted(j):  # ln sum_n P(n - j) phi_n
        return logsumexp(log_pmf[: n_max + 1 - j] + log_gauss[j:])

    terms = log_pmf + log_gauss
    log_l = logsumexp(terms)
    if terms[-10:].max() > log_l - TAIL_DEPTH:
        raise RuntimeError(f"reference sum not converged for area={area}, mu={mu}")
    if mu == 0:
        return log_l, math.nan, math.nan
    r = [math.exp(shifted(j) - log_l) for j in range(5)]
    q = 1 - p_dpe
    first = q * r[1] + p_dpe * r[2] - 1
    second_ratio = q * q * r[2] + 2 * p_dpe * q * r[3] + p_dpe**2 * r[4]
    second_ratio += -2 * q * r[1] - 2 * p_dpe * r[2] + 1
    return log_l, first, second_ratio - first * first


def reference_saturated(area: float, sigma: float, p_dpe: float = 0.2, sigma0: float = 0.05):
    """max over mu >= 0 of the reference ln L: a scan in ln mu, then a bounded refinement."""

    def value(log_mu):
        return reference_log_likelihood(area, math.exp(log_mu), sigma, p_dpe, sigma0)[0]

    grid = np.linspace(math.log(1e-6), math.log(3 * max(area, 1.0) + 10), 80)
    scan = [value(x) for x in grid]
    best = int(np.argmax(scan))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    result = optimize.minimize_scalar(
        lambda x: -value(x), bounds=(low, high), method="bounded", options={"xatol": 1e-10}
    )
    at_zero = reference_log_likelihood(area, 0.0, sigma, p_dpe, sigma0)[0]
    return max(-result.fun, max(scan), at_zero)

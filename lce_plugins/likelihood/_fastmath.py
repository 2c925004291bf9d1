"""exp and log for the likelihood sums: scalar and in-place vectorisable versions.

All are accurate to 2 ulp, which keeps every ln L far inside the 1e-8 budget, and
cheaper than the C library in the hot loops (the vector ones let LLVM use AVX2: no
table lookups, no calls).

* :func:`fast_exp`: exp(y) = exp(16 - 8 j1) exp(-j2 / 16) exp(r) with
  j = 256 - 16 y = 128 j1 + j2 and |r| < 1/16 (two small tables, degree-8 Taylor
  polynomial, truncation below 4e-17; ``r`` is exact by Sterbenz's lemma).
* :func:`exp_in_place`: Cody-Waite reduction y = k ln 2 + r, |r| <= ln(2) / 2, a
  degree-10 polynomial interpolating exp at the Chebyshev nodes of that interval
  (coefficients solved in 40-digit arithmetic; relative error below 3.3e-16), and
  2^k assembled from the bits of k (the "magic number" rounding leaves k in the low
  mantissa bits).
* :func:`log_in_place`: x = 2^k m with m in [sqrt(1/2), sqrt(2)) read from the bits,
  ln m = 2 atanh(f), f = (m - 1) / (m + 1), |f| < 0.172, by its odd series to f^21
  (truncation below 2e-17).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "FAST_EXP_MAX",
    "FAST_EXP_MIN",
    "VECTOR_EXP_MIN",
    "exp_in_place",
    "fast_exp",
    "log_in_place",
]

#: Largest argument of :func:`fast_exp` (its tables end there).
FAST_EXP_MAX = 16.0
#: Below this, :func:`fast_exp` returns 0 (exp(-288) = 5e-126 never matters in a sum here).
FAST_EXP_MIN = -288.0
#: Smallest argument of :func:`exp_in_place` (callers clip to it).
VECTOR_EXP_MIN = -700.0
_COARSE = np.exp(16.0 - 8.0 * np.arange(40))
_FINE = np.exp(-np.arange(128) / 16.0)
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8 = (1.0 / math.factorial(k) for k in range(9))
#: exp on [-ln(2)/2, ln(2)/2]: interpolating polynomial at the 11 Chebyshev nodes.
_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10 = (
    1.0,
    1.0000000000000067,
    0.5000000000000006,
    0.16666666666554406,
    0.04166666666657314,
    0.008333333385667782,
    0.0013888888932488599,
    0.00019841170270440067,
    2.4801504346997686e-05,
    2.764018079620985e-06,
    2.7626357241447223e-07,
)
_LOG2E = 1.4426950408889634
#: ln 2 split so that k * _LN2_HIGH is exact for |k| < 2^11.
_LN2_HIGH = 0.6931471803691238
_LN2_LOW = 1.9082149292705877e-10
#: 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
_ROUNDING_MAGIC = 6755399441055744.0
_MAGIC_BITS = 0x4338000000000000
_EXPONENT_BIAS = 1023
_ZERO_SCALE = _ROUNDING_MAGIC - _EXPONENT_BIAS
_MANTISSA_MASK = (1 << 52) - 1
_ONE_BITS = 0x3FF0000000000000
_TWO52_BITS = 0x4330000000000000
_TWO52_PLUS_BIAS = 2.0**52 + _EXPONENT_BIAS
_LN2 = 0.6931471805599453
_SQRT2 = 1.4142135623730951
#: 1 / (2 j + 1), j = 0..10: the atanh series.
_A0, _A1, _A2, _A3, _A4, _A5, _A6, _A7, _A8, _A9, _A10 = (1.0 / (2 * j + 1) for j in range(11))


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always", fastmath={"contract"})
def fast_exp(y):
    """exp(y) for y <= FAST_EXP_MAX (16); 0 below FAST_EXP_MIN (-288)."""
    if y < FAST_EXP_MIN:
        return 0.0
    j = int(256.0 - 16.0 * y)
    r = y + (j - 256) * 0.0625
    r2 = r * r
    r4 = r2 * r2
    low = (_C0 + _C1 * r) + (_C2 + _C3 * r) * r2
    high = (_C4 + _C5 * r) + (_C6 + _C7 * r) * r2 + _C8 * r4
    return (low + high * r4) * (_COARSE[j >> 7] * _FINE[j & 127])


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always", fastmath={"contract"})
def _exp_reduced(r):
    """exp(r) for |r| <= ln(2) / 2 (Estrin's scheme: short dependency chains)."""
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    p0 = (_E0 + _E1 * r) + (_E2 + _E3 * r) * r2
    p1 = (_E4 + _E5 * r) + (_E6 + _E7 * r) * r2
    p2 = (_E8 + _E9 * r) + _E10 * r2
    return (p0 + p1 * r4) + p2 * r8


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def exp_in_place(values, count, scratch):
    """values[:count] = exp(values[:count]); 0 for arguments <= -700, none above 700.

    ``scratch`` is a float64 work array at least ``count`` long. Three branch-free
    loops, each vectorisable.
    """
    for i in range(count):
        argument = values[i]
        y = max(argument, VECTOR_EXP_MIN)
        shifted = y * _LOG2E + _ROUNDING_MAGIC
        k = shifted - _ROUNDING_MAGIC
        values[i] = _exp_reduced((y - k * _LN2_HIGH) - k * _LN2_LOW)
        # below the range, k = -1023 makes the scale factor's bits all zero: exactly 0
        scratch[i] = shifted if argument > VECTOR_EXP_MIN else _ZERO_SCALE
    bits = scratch.view(np.int64)
    for i in range(count):
        bits[i] = (bits[i] - _MAGIC_BITS + _EXPONENT_BIAS) << 52
    for i in range(count):
        values[i] *= scratch[i]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def log_in_place(values, count, exponents):
    """values[:count] = ln(values[:count]) for positive, finite, normal values.

    ``exponents`` is a float64 work array at least ``count`` long. Zero, negative,
    subnormal or non-finite inputs give meaningless results (callers exclude them).
    """
    # AVX2 has no 64-bit arithmetic shift and no int64 -> double conversion: unsigned
    # shifts, and the biased exponent placed in the mantissa of 2^52 instead.
    bits = values.view(np.uint64)
    exponent_bits = exponents.view(np.uint64)
    for i in range(count):
        exponent_bits[i] = (bits[i] >> np.uint64(52)) | np.uint64(_TWO52_BITS)
        bits[i] = (bits[i] & np.uint64(_MANTISSA_MASK)) | np.uint64(_ONE_BITS)
    for i in range(count):
        high = 1.0 if values[i] > _SQRT2 else 0.0
        mantissa = values[i] * (1.0 - 0.5 * high)
        k = exponents[i] - _TWO52_PLUS_BIAS + high
        f = (mantissa - 1.0) / (mantissa + 1.0)
        f2 = f * f
        f4 = f2 * f2
        f8 = f4 * f4
        p0 = (_A0 + _A1 * f2) + (_A2 + _A3 * f2) * f4
        p1 = (_A4 + _A5 * f2) + (_A6 + _A7 * f2) * f4
        p2 = (_A8 + _A9 * f2) + _A10 * f4
        series = p0 + (p1 + p2 * f8) * f8
        values[i] = k * _LN2 + 2.0 * f * series

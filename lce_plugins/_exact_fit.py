"""Gauss-Newton on the exact PMT likelihood in (x, y, ln N): the polish stage of
:mod:`lce_plugins.reconstruction` (Numba kernels, one event at a time).

Per evaluation point a work array ``state`` of shape (7, 253) holds, for the used PMTs
in the order of ``pmt`` (their channels): LCE, dLCE/dx, dLCE/dy [1/cm], mu = N LCE
[photons], ln L, d ln L / dmu and d^2 ln L / dmu^2 (rows :data:`LCE` ... :data:`SECOND`).
``fixed`` (3, 253) holds the same PMTs' area [PE], sigma [PE] and ln sigma. Two states
alternate: the current point and the line search's trial, so that an accepted trial
needs no second evaluation.

The light enters as ln N, so that dmu/d(ln N) = mu and the matrix is well scaled; the
convergence test on its step is a test on the relative step of N.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from lce_plugins.lce_grid import lce_into
from lce_plugins.likelihood._block import block_log_likelihood
from lce_plugins.pattern_fit import _MAX_HALVINGS, _TOLERANCE_CM, FitStatus

__all__ = ["covariance", "exact_fit", "gather", "inside", "lce_at", "log_likelihood_at"]

#: Lower bound of w_j (1 + mu_j) during the iterations: 1 % of the Poisson information.
WEIGHT_FLOOR = 0.01
#: Convergence of the light: step of ln N (relative step of N).
LIGHT_TOLERANCE = 1e-7
MAX_ITERATIONS = 50
#: Convergence in the metric of the curvature matrix: the remaining step s = A^-1 g has
#: s^T A s = s . g below this, i.e. it moves the parameters by about a hundredth of their
#: uncertainties or less (and ln L would rise by at most half this).
DECREMENT_TOLERANCE = 1e-4
#: A step whose s . g is below this is the last one (see :func:`exact_fit`).
LAST_STEP_DECREMENT = 0.03
#: A pivot of the 3x3 Cholesky factorisation below this fraction of its diagonal entry
#: counts as singular.
_PIVOT_FLOOR = 1e-12
#: Rows of a state; N_ROWS of them.
LCE, DLCE_DX, DLCE_DY, MU, VALUE, FIRST, SECOND = range(7)
N_ROWS = 7

_OK, _NOT_CONVERGED = int(FitStatus.OK), int(FitStatus.NOT_CONVERGED)


@numba.njit(cache=True, nogil=True)
def inside(x, y, limit):
    """(x, y) pulled radially onto the circle of radius ``limit`` if beyond it [cm]."""
    r = math.sqrt(x * x + y * y)
    if r > limit:
        return x * limit / r, y * limit / r
    return x, y


@numba.njit(cache=True, nogil=True)
def lce_at(x, y, model, pmt, n_used, full, state):
    """LCE and its x, y gradient of the used PMTs at (x, y), into ``state``.

    ``model``: (map kernel arguments, table), see :func:`lce_plugins.lce_grid.lce_into`;
    ``full`` (3, 253) receives the values of all PMTs.
    """
    lce_into(x, y, model, full[0], full[1], full[2])
    gather(pmt, n_used, full, state)


@numba.njit(cache=True, nogil=True)
def gather(pmt, n_used, full, state):
    """The used PMTs' LCE and gradient from the rows ``full`` (3, 253) into ``state``."""
    for k in range(n_used):
        j = pmt[k]
        state[LCE, k], state[DLCE_DX, k], state[DLCE_DY, k] = full[0, j], full[1, j], full[2, j]


@numba.njit(cache=True, nogil=True)
def log_likelihood_at(n_photons, fixed, n_used, state, p_dpe, sigma0, order=2):
    """sum_j ln L at mu = n_photons * LCE, filling the value and (``order`` 2) the
    mu-derivative rows.

    -inf if some mu is not a finite non-negative number (the kernel is not called then).
    """
    for k in range(n_used):
        state[MU, k] = n_photons * state[LCE, k]
        if not (0.0 <= state[MU, k] < np.inf):
            return -np.inf
    block_log_likelihood(
        fixed[0, :n_used], state[MU, :n_used], fixed[1, :n_used], fixed[2, :n_used], p_dpe,
        sigma0, order, state[VALUE, :n_used], state[FIRST, :n_used], state[SECOND, :n_used],
    )  # fmt: skip
    return state[VALUE, :n_used].sum()


@numba.njit(cache=True, nogil=True)
def _curvature(state, n_used, n_photons, clamp, matrix, gradient):
    """Gradient of ln L and the Gauss-Newton matrix A in (x [cm], y [cm], ln N).

    A_ab = sum_j w_j dmu_j/da dmu_j/db, w_j = -d^2 ln L / dmu_j^2; with ``clamp``, w_j is
    bounded below by WEIGHT_FLOOR / (1 + mu_j).
    """
    a00 = a01 = a02 = a11 = a12 = a22 = g0 = g1 = g2 = 0.0
    for k in range(n_used):
        mu, first = state[MU, k], state[FIRST, k]
        weight = -state[SECOND, k]
        if clamp:
            weight = max(weight, WEIGHT_FLOOR / (1.0 + mu))
        dmu_x, dmu_y = n_photons * state[DLCE_DX, k], n_photons * state[DLCE_DY, k]
        g0 += first * dmu_x
        g1 += first * dmu_y
        g2 += first * mu
        a00 += weight * dmu_x * dmu_x
        a01 += weight * dmu_x * dmu_y
        a02 += weight * dmu_x * mu
        a11 += weight * dmu_y * dmu_y
        a12 += weight * dmu_y * mu
        a22 += weight * mu * mu
    matrix[0, 0], matrix[0, 1], matrix[0, 2] = a00, a01, a02
    matrix[1, 0], matrix[1, 1], matrix[1, 2] = a01, a11, a12
    matrix[2, 0], matrix[2, 1], matrix[2, 2] = a02, a12, a22
    gradient[0], gradient[1], gradient[2] = g0, g1, g2


@numba.njit(cache=True, nogil=True)
def _cholesky_solve(matrix, rhs, out):
    """Solve ``matrix @ out = rhs`` for a symmetric 3x3 matrix by Cholesky.

    Returns False (``out`` untouched) unless the matrix is positive definite.
    """
    if not matrix[0, 0] > 0.0:
        return False
    l00 = math.sqrt(matrix[0, 0])
    l10, l20 = matrix[1, 0] / l00, matrix[2, 0] / l00
    pivot = matrix[1, 1] - l10 * l10
    if not pivot > _PIVOT_FLOOR * matrix[1, 1]:
        return False
    l11 = math.sqrt(pivot)
    l21 = (matrix[2, 1] - l20 * l10) / l11
    pivot = matrix[2, 2] - l20 * l20 - l21 * l21
    if not pivot > _PIVOT_FLOOR * matrix[2, 2]:
        return False
    l22 = math.sqrt(pivot)

    z0 = rhs[0] / l00
    z1 = (rhs[1] - l10 * z0) / l11
    z2 = (rhs[2] - l20 * z0 - l21 * z1) / l22
    out[2] = z2 / l22
    out[1] = (z1 - l21 * out[2]) / l11
    out[0] = (z0 - l10 * out[1] - l20 * out[2]) / l00
    return True


@numba.njit(cache=True, nogil=True)
def _newton_step(x, y, limit, matrix, gradient, step):
    """Step (dx [cm], dy [cm], d ln N) solving A step = gradient.

    On the circle of radius ``limit`` a step that points outwards is replaced by the best
    step along it (tangential only). False if A is not positive definite.
    """
    if not _cholesky_solve(matrix, gradient, step):
        return False
    r = math.sqrt(x * x + y * y)
    if r < limit * (1.0 - 1e-12) or step[0] * x + step[1] * y <= 0.0:
        return True
    # the (tangent, ln N) subproblem, as a 3x3 one whose radial direction is fixed
    tx, ty = -y / r, x / r
    reduced = np.zeros((3, 3))
    reduced[0, 0] = 1.0
    reduced[1, 1] = tx * tx * matrix[0, 0] + 2.0 * tx * ty * matrix[0, 1] + ty * ty * matrix[1, 1]
    reduced[1, 2] = reduced[2, 1] = tx * matrix[0, 2] + ty * matrix[1, 2]
    reduced[2, 2] = matrix[2, 2]
    rhs = np.array([0.0, tx * gradient[0] + ty * gradient[1], gradient[2]])
    if not _cholesky_solve(reduced, rhs, step):
        return False
    along = step[1]
    step[0], step[1] = along * tx, along * ty
    return True


@numba.njit(cache=True, nogil=True)
def _line_search(point, step, fixed, pmt, n_used, full, state, model, p_dpe, sigma0, limit,
                 order):  # fmt: skip
    """Halve the step from ``point`` = (x, y, N, ln L) until ln L does not fall.

    Returns (found, x, y, N, ln L, whether the whole step was taken); ``state`` holds the
    accepted point, evaluated to ``order`` (0: ln L only, 2: with its mu-derivatives).
    """
    x, y, n_photons, loglik = point
    scale = 1.0
    for _ in range(_MAX_HALVINGS):
        new_x, new_y = inside(x + scale * step[0], y + scale * step[1], limit)
        new_n = n_photons * math.exp(scale * step[2])
        lce_at(new_x, new_y, model, pmt, n_used, full, state)
        new_loglik = log_likelihood_at(new_n, fixed, n_used, state, p_dpe, sigma0, order)
        if new_loglik >= loglik:
            return True, new_x, new_y, new_n, new_loglik, scale == 1.0
        scale *= 0.5
    return False, x, y, n_photons, loglik, False


@numba.njit(cache=True, nogil=True)
def _model_gain(state, n_used, n_photons, step, decrement):
    """Rise of ln L along ``step`` predicted by the quadratic model of the point of
    ``state``: s . g - s^T A s / 2 with the unclamped A (``decrement`` = s . g)."""
    matrix, gradient = np.empty((3, 3)), np.empty(3)
    _curvature(state, n_used, n_photons, False, matrix, gradient)
    quadratic = 0.0
    for a in range(3):
        for b in range(3):
            quadratic += step[a] * matrix[a, b] * step[b]
    return decrement - 0.5 * quadratic


@numba.njit(cache=True, nogil=True)
def exact_fit(x, y, n_photons, fixed, pmt, n_used, full, states, model, p_dpe, sigma0, limit):
    """Maximise the exact ln L from (x [cm], y [cm], n_photons), with the LCE at (x, y)
    already in ``states[0]``.

    Converged when the next step s = A^-1 g has s . g below :data:`DECREMENT_TOLERANCE`,
    or moves the position by less than 1e-4 cm and N by less than
    :data:`LIGHT_TOLERANCE` relatively, or when no step increases ln L. A step with
    s . g below :data:`LAST_STEP_DECREMENT` is the last: Gauss-Newton shrinks the
    distance to the optimum about tenfold per step, so its end point is the optimum to
    within the tolerance. It is taken whole and not evaluated: ln L there is the
    quadratic model's (:func:`_model_gain`; s . g / 2 or a little more), and the
    curvature at the step's start gives the uncertainties. Only a last step that would
    leave the disk of radius ``limit`` is clipped and evaluated (ln L only).

    Returns (x, y, n_photons, ln L, index of the state that holds the curvature for the
    uncertainties, iterations, status).
    """
    matrix, gradient, step = np.empty((3, 3)), np.empty(3), np.empty(3)
    current, iterations, status = 0, 0, _NOT_CONVERGED
    loglik = log_likelihood_at(n_photons, fixed, n_used, states[current], p_dpe, sigma0)
    while iterations < MAX_ITERATIONS:
        iterations += 1
        _curvature(states[current], n_used, n_photons, True, matrix, gradient)
        if not _newton_step(x, y, limit, matrix, gradient, step):
            break
        shift = math.sqrt(step[0] * step[0] + step[1] * step[1])
        decrement = step[0] * gradient[0] + step[1] * gradient[1] + step[2] * gradient[2]
        if decrement < DECREMENT_TOLERANCE or (
            shift < _TOLERANCE_CM and abs(step[2]) < LIGHT_TOLERANCE
        ):
            status = _OK
            break
        last = decrement < LAST_STEP_DECREMENT
        end_x, end_y = x + step[0], y + step[1]
        if last and end_x * end_x + end_y * end_y <= limit * limit and math.isfinite(loglik):
            loglik += _model_gain(states[current], n_used, n_photons, step, decrement)
            x, y, n_photons = end_x, end_y, n_photons * math.exp(step[2])
            status = _OK
            break
        found, x, y, n_photons, loglik, whole = _line_search(
            (x, y, n_photons, loglik), step, fixed, pmt, n_used, full, states[1 - current],
            model, p_dpe, sigma0, limit, 0 if last else 2,
        )  # fmt: skip
        if not found:
            # no ascent left along a Gauss-Newton direction: a maximum within precision
            status = _OK if np.isfinite(loglik) else _NOT_CONVERGED
            break
        if last and whole:
            # the curvature of the step's start serves for the uncertainties
            status = _OK
            break
        current = 1 - current
        if last:
            loglik = log_likelihood_at(n_photons, fixed, n_used, states[current], p_dpe, sigma0)
    return x, y, n_photons, loglik, current, iterations, status


@numba.njit(cache=True, nogil=True)
def covariance(state, n_used, n_photons, out):
    """out = (var x, cov xy, var y [cm^2], var N [photons^2]): the inverse of A with the
    unclamped w_j at the point of ``state``; left as it is (NaN) unless A is positive
    definite."""
    matrix, gradient, column = np.empty((3, 3)), np.empty(3), np.empty(3)
    _curvature(state, n_used, n_photons, False, matrix, gradient)
    for a in range(3):
        unit = np.zeros(3)
        unit[a] = 1.0
        if not _cholesky_solve(matrix, unit, column):
            return
        if a == 0:
            out[0], out[1] = column[0], column[1]
        elif a == 1:
            out[2] = column[1]
        else:
            out[3] = column[2] * n_photons * n_photons

"""Four-point (cubic Lagrange) interpolation on uniform nodes, shared by the tables."""

import numba

__all__ = ["lagrange_weights", "stencil"]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def lagrange_weights(x):
    """Cubic Lagrange weights for nodes at 0, 1, 2, 3 evaluated at x."""
    a, b, c, d = x, x - 1.0, x - 2.0, x - 3.0
    return (-b * c * d / 6.0, a * c * d / 2.0, -a * b * d / 2.0, a * b * c / 6.0)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def stencil(position, size):
    """First of four nodes around ``position`` (in node units) and the offset from it."""
    first = min(max(int(position) - 1, 0), size - 4)
    return first, position - first

"""The shortest specular reflection path off the TPC wall, in Numba.

For an S2 at horizontal position e and a PMT at p, both inside the wall circle of
radius R, light reflected once by the wall travels the unfolded horizontal path
L = min_w |e - w| + |w - p| over wall points w. This module finds that wall point.

Two solvers share the work. The robust one scans the wall at :data:`_N_WALL_SAMPLES`
points on the shorter arc between the polar angles of e and p (outside it, moving
towards the arc shortens both legs), which picks the basin of the global minimum even
where two minima exist, and refines it by Halley's method. The fast one starts from a
precomputed table of the robust answers on a grid of event positions (per PMT) and
needs one or two Halley steps; where the table's neighbouring answers disagree (near the
lines where the global minimum switches basin) it defers to the robust solver.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

# Floating-point contraction (fused multiply-add), reciprocal multiplication and
# reassociation; not the "no NaN" assumptions, which would drop the NaN checks.
_FAST = {"contract", "arcp", "reassoc"}

__all__ = ["shortest_reflection", "wall_geometry"]

_ANGLE_TOLERANCE_RAD = 1e-7
# Wall points at which reflection paths are compared to find the basin of the shortest.
_N_WALL_SAMPLES = 64
_WALL_INDEX_MASK = _N_WALL_SAMPLES - 1


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _rotate(x, y, angle):
    """Rotate (x, y) by ``angle`` [rad], |angle| < 0.5, without calling sin and cos.

    Taylor series to the 13th/12th order: errors below 1e-14 for |angle| < 0.5.
    The reflection solver only rotates by less than one wall-sample spacing.
    """
    a2 = angle * angle
    sin_a = angle * (
        1.0
        - a2
        / 6.0
        * (
            1.0
            - a2
            / 20.0
            * (1.0 - a2 / 42.0 * (1.0 - a2 / 72.0 * (1.0 - a2 / 110.0 * (1.0 - a2 / 156.0))))
        )
    )
    cos_a = 1.0 - a2 / 2.0 * (
        1.0
        - a2 / 12.0 * (1.0 - a2 / 30.0 * (1.0 - a2 / 56.0 * (1.0 - a2 / 90.0 * (1.0 - a2 / 132.0))))
    )
    return cos_a * x - sin_a * y, sin_a * x + cos_a * y


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _leg_derivatives(qx, qy, wx, wy):
    """First three derivatives of |w - q| as w moves along the wall, per radian.

    With w1 = t = (-w_y, w_x), w2 = -w and w3 = -t (derivatives of the wall point), the
    half square f = |w - q|**2 / 2 has f1 = (w - q).t, f2 = q.w and f3 = q.t, and
    d = sqrt(2 f) follows from d d1 = f1, d1**2 + d d2 = f2 and 3 d1 d2 + d d3 = f3.
    """
    dx, dy = wx - qx, wy - qy
    inverse = 1.0 / math.sqrt(dx * dx + dy * dy)
    first = (dy * wx - dx * wy) * inverse
    second = (qx * wx + qy * wy - first * first) * inverse
    third = (qy * wx - qx * wy - 3.0 * first * second) * inverse
    return first, second, third


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _reflection_start(ex, ey, px, py, wall_xy, event_wall, pmt_wall, j, arc_first, arc_last):
    """Starting wall point (bx, by) and angle offset for the reflection solver.

    The shortest path touches the wall on the shorter arc between the polar angles of
    e and p (outside it, moving towards the arc shortens both legs). The path length
    |e - w| + |w - p| is compared at the wall samples ``arc_first .. arc_last``
    (indices into ``wall_xy``, modulo its length) that cover that arc; their distances
    to the event (``event_wall``) and to the PMT (``pmt_wall[j]``) are precomputed, so
    this costs additions only and finds the basin of the global minimum even where two
    minima exist (e and p far apart).
    """
    # 1. the samples across the arc; their count is a power of two, so that
    # "& _WALL_INDEX_MASK" wraps indices cheaply
    best_m, best = 0, np.inf
    for m in range(arc_first, arc_last + 1):
        wrapped = m & _WALL_INDEX_MASK
        path = event_wall[wrapped] + pmt_wall[j, wrapped]
        if path < best:
            best_m, best = wrapped, path

    # 2. the vertex of the parabola through the best sample and its neighbours
    before_m, after_m = (best_m - 1) & _WALL_INDEX_MASK, (best_m + 1) & _WALL_INDEX_MASK
    before = event_wall[before_m] + pmt_wall[j, before_m]
    after = event_wall[after_m] + pmt_wall[j, after_m]
    bend = before - 2.0 * best + after
    spacing = 2.0 * math.pi / _N_WALL_SAMPLES
    offset = 0.5 * spacing * (before - after) / bend if bend > 0.0 else 0.0
    bx, by = wall_xy[best_m, 0], wall_xy[best_m, 1]

    # 3. a point close to the wall makes a narrow V-shaped minimum next to it, which the
    # samples can straddle: the wall points nearest the event and the PMT also compete.
    radius = math.sqrt(wall_xy[0, 0] ** 2 + wall_xy[0, 1] ** 2)
    for qx, qy in ((ex, ey), (px, py)):
        r_q = math.sqrt(qx * qx + qy * qy)
        if r_q > 1e-9 * radius:
            nearest_x, nearest_y = radius * qx / r_q, radius * qy / r_q
            path = math.sqrt((ex - nearest_x) ** 2 + (ey - nearest_y) ** 2) + math.sqrt(
                (px - nearest_x) ** 2 + (py - nearest_y) ** 2
            )
            if path < best:
                best, bx, by, offset = path, nearest_x, nearest_y, 0.0
    return bx, by, offset


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _reflection_point(ex, ey, px, py, wall_xy, event_wall, pmt_wall, j, arc_first, arc_last):
    """Wall point (wx, wy) of the shortest specular reflection path from e to PMT j, and
    the second derivative of the path length with respect to its polar angle there.

    From the start of :func:`_reflection_start`, Halley's method in the angle, with
    bisection whenever a step leaves the bracket of the neighbouring wall samples.
    """
    bx, by, offset = _reflection_start(
        ex, ey, px, py, wall_xy, event_wall, pmt_wall, j, arc_first, arc_last
    )
    low, high = -2.0 * math.pi / _N_WALL_SAMPLES, 2.0 * math.pi / _N_WALL_SAMPLES
    wx, wy = _rotate(bx, by, offset)
    curvature = 0.0
    for _ in range(60):
        e1, e2, e3 = _leg_derivatives(ex, ey, wx, wy)
        p1, p2, p3 = _leg_derivatives(px, py, wx, wy)
        slope, curvature, third = e1 + p1, e2 + p2, e3 + p3
        if slope > 0.0:
            high = offset
        else:
            low = offset
        denominator = 2.0 * curvature * curvature - slope * third
        new_offset = (
            offset - 2.0 * slope * curvature / denominator if curvature > 0.0 else high + 1.0
        )
        if not (low <= new_offset <= high) or denominator <= 0.0:
            new_offset = 0.5 * (low + high)
        # Halley converges cubically: after a step this small the next is negligible
        converged = abs(new_offset - offset) < _ANGLE_TOLERANCE_RAD or high - low < 1e-14
        offset = new_offset
        wx, wy = _rotate(bx, by, offset)
        if converged:
            break
    return wx, wy, curvature


#: Spacing of the event-position grid of tabulated reflection points [cm].
_START_GRID_STEP_CM = 2.0
#: A tabulated start farther than this from the answer is not trusted [rad].
_MAX_START_ERROR_RAD = 0.15
#: Neighbouring tabulated answers closer than this (cosine of the angle between them)
#: lie in one basin; otherwise the robust solver decides.
_CONSISTENT_COSINE = math.cos(0.3)
#: Error of the reflection angle at which Halley's method from a tabulated start stops.
_ANGLE_ERROR_RAD = 1e-15


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _halley_from(ex, ey, px, py, bx, by):
    """Halley's method for the reflection point from the wall point (bx, by).

    Returns (wx, wy, curvature, ok); ``ok`` is False when the start was not close to a
    minimum (the steps add up to more than ``_MAX_START_ERROR_RAD`` or the path is not
    convex there). Halley's error shrinks as e -> K e**3 with K ~ (L3 / 2 L2)**2 (L2, L3:
    the path's second and third derivatives in the angle); a step after which K step**3
    is below ``_ANGLE_ERROR_RAD`` is the last one.
    """
    offset, wx, wy = 0.0, bx, by
    for _ in range(8):
        e1, e2, e3 = _leg_derivatives(ex, ey, wx, wy)
        p1, p2, p3 = _leg_derivatives(px, py, wx, wy)
        slope, curvature, third = e1 + p1, e2 + p2, e3 + p3
        denominator = 2.0 * curvature * curvature - slope * third
        if not (curvature > 0.0 and denominator > 0.0):
            return 0.0, 0.0, 0.0, False
        step = -2.0 * slope * curvature / denominator
        offset += step
        if abs(offset) > _MAX_START_ERROR_RAD:
            return 0.0, 0.0, 0.0, False
        wx, wy = _rotate(bx, by, offset)
        error_scale = third / (2.0 * curvature)
        if 2.0 * error_scale * error_scale * abs(step) ** 3 < _ANGLE_ERROR_RAD:
            return wx, wy, curvature, True
    return 0.0, 0.0, 0.0, False


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _event_wall_state(ex, ey, wall_xy, event_wall, radius, grid_step, n_grid):
    """Per-event quantities of the reflection solvers: distances to the wall samples
    (written into ``event_wall``), the event's polar angle in sample units, and its grid
    cell and position within it."""
    for m in range(_N_WALL_SAMPLES):
        event_wall[m] = math.sqrt((ex - wall_xy[m, 0]) ** 2 + (ey - wall_xy[m, 1]) ** 2)
    position = (math.atan2(ey, ex) / (2.0 * math.pi) * _N_WALL_SAMPLES) % _N_WALL_SAMPLES
    gx, gy = (ex + radius) / grid_step, (ey + radius) / grid_step
    ix = min(max(int(math.floor(gx)), 0), n_grid - 2)
    iy = min(max(int(math.floor(gy)), 0), n_grid - 2)
    return position, ix, iy, gx - ix, gy - iy


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _robust_reflection(ex, ey, px, py, j, event_position, wall_xy, event_wall, pmt_wall,
                       pmt_position):  # fmt: skip
    """The robust solver on the wall samples spanning the shorter arc from e to p."""
    arc = pmt_position[j] - event_position
    if arc > 0.5 * _N_WALL_SAMPLES:
        arc -= _N_WALL_SAMPLES
    elif arc < -0.5 * _N_WALL_SAMPLES:
        arc += _N_WALL_SAMPLES
    arc_first = int(math.floor(min(event_position, event_position + arc)))
    arc_last = int(math.ceil(max(event_position, event_position + arc)))
    return _reflection_point(ex, ey, px, py, wall_xy, event_wall, pmt_wall, j, arc_first, arc_last)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _two_basins(ex, ey, px, py, radius, first_x, first_y, second_x, second_y):
    """Where the tabulated answers around e disagree, e lies near a line where the
    shortest path switches between two local minima: solve from both and keep the
    shorter. ``ok`` is False if either start fails."""
    best_path, result = np.inf, (0.0, 0.0, 0.0)
    for ux, uy in ((first_x, first_y), (second_x, second_y)):
        wx, wy, curvature, ok = _halley_from(ex, ey, px, py, radius * ux, radius * uy)
        if not ok:
            return 0.0, 0.0, 0.0, False
        path = math.sqrt((ex - wx) ** 2 + (ey - wy) ** 2) + math.sqrt(
            (px - wx) ** 2 + (py - wy) ** 2
        )
        if path < best_path:
            best_path, result = path, (wx, wy, curvature)
    return result[0], result[1], result[2], True


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def shortest_reflection(ex, ey, px, py, j, state, wall_xy, event_wall, pmt_wall, pmt_position,
                        start_grid):  # fmt: skip
    """Wall point (wx, wy) of the shortest reflection path from e to PMT j, and the
    path's second derivative in the wall angle there.

    ``state`` is :func:`_event_wall_state` of the event. The tabulated answers at the
    four grid nodes around e, interpolated, start Halley's method; if they disagree, the
    two most different ones start it; if that fails, the robust solver answers.
    """
    event_position, ix, iy, fx, fy = state
    radius = math.sqrt(wall_xy[0, 0] ** 2 + wall_xy[0, 1] ** 2)
    x00, y00 = start_grid[ix, iy, j, 0], start_grid[ix, iy, j, 1]
    x10, y10 = start_grid[ix + 1, iy, j, 0], start_grid[ix + 1, iy, j, 1]
    x01, y01 = start_grid[ix, iy + 1, j, 0], start_grid[ix, iy + 1, j, 1]
    x11, y11 = start_grid[ix + 1, iy + 1, j, 0], start_grid[ix + 1, iy + 1, j, 1]
    dots = (x00 * x10 + y00 * y10, x00 * x01 + y00 * y01, x00 * x11 + y00 * y11)
    if min(dots) > _CONSISTENT_COSINE:
        w00, w10, w01, w11 = (1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy
        cx = w00 * x00 + w10 * x10 + w01 * x01 + w11 * x11
        cy = w00 * y00 + w10 * y10 + w01 * y01 + w11 * y11
        scale = radius / math.sqrt(cx * cx + cy * cy)
        wx, wy, curvature, ok = _halley_from(ex, ey, px, py, cx * scale, cy * scale)
    else:
        # the corner least like (x00, y00) stands for the other basin
        other = (
            (x10, y10)
            if dots[0] <= min(dots[1], dots[2])
            else ((x01, y01) if dots[1] <= dots[2] else (x11, y11))
        )
        wx, wy, curvature, ok = _two_basins(ex, ey, px, py, radius, x00, y00, other[0], other[1])
    if ok:
        return wx, wy, curvature
    return _robust_reflection(
        ex, ey, px, py, j, event_position, wall_xy, event_wall, pmt_wall, pmt_position
    )


@numba.njit(cache=True, parallel=True, error_model="numpy", fastmath=_FAST)
def _fill_start_grid(radius, grid_step, clearance, pmt_xy, wall_xy, pmt_wall, pmt_position, out):
    """Robust reflection points, as unit vectors, for events on the grid nodes (pulled
    inside the wall where they lie outside) and every PMT."""
    n_grid = out.shape[0]
    for node in numba.prange(n_grid * n_grid):
        ex, ey = -radius + (node // n_grid) * grid_step, -radius + (node % n_grid) * grid_step
        r_event, limit = math.sqrt(ex * ex + ey * ey), radius * (1.0 - clearance)
        if r_event > limit:
            ex, ey = ex * limit / r_event, ey * limit / r_event
        event_wall = np.empty(_N_WALL_SAMPLES)
        position = _event_wall_state(ex, ey, wall_xy, event_wall, radius, grid_step, n_grid)[0]
        for j in range(pmt_xy.shape[0]):
            wx, wy, _ = _robust_reflection(
                ex, ey, pmt_xy[j, 0], pmt_xy[j, 1], j, position, wall_xy, event_wall, pmt_wall,
                pmt_position,
            )  # fmt: skip
            out[node // n_grid, node % n_grid, j, 0] = wx / radius
            out[node // n_grid, node % n_grid, j, 1] = wy / radius


@functools.lru_cache(maxsize=4)
def _cached_geometry(radius_cm: float, pmt_bytes: bytes, clearance: float) -> tuple:
    pmt_xy = np.frombuffer(pmt_bytes).reshape(-1, 2)
    angles = 2.0 * np.pi * np.arange(_N_WALL_SAMPLES) / _N_WALL_SAMPLES
    wall_xy = radius_cm * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    pmt_wall = np.ascontiguousarray(
        np.hypot(*(pmt_xy[:, None, :] - wall_xy[None, :, :]).transpose(2, 0, 1))
    )
    polar = np.arctan2(pmt_xy[:, 1], pmt_xy[:, 0])
    pmt_position = (polar / (2.0 * np.pi) * _N_WALL_SAMPLES) % _N_WALL_SAMPLES

    n_grid = int(np.ceil(2.0 * radius_cm / _START_GRID_STEP_CM)) + 1
    start_grid = np.empty((n_grid, n_grid, len(pmt_xy), 2))
    _fill_start_grid(radius_cm, _START_GRID_STEP_CM, clearance, pmt_xy, wall_xy, pmt_wall,
                     pmt_position, start_grid)  # fmt: skip
    arrays = (wall_xy, pmt_wall, pmt_position, start_grid, _START_GRID_STEP_CM)
    for array in arrays[:-1]:
        array.flags.writeable = False
    return arrays


def wall_geometry(radius_cm: float, pmt_xy: np.ndarray, clearance: float) -> tuple:
    """The reflection solvers' arrays for a TPC radius and PMT positions (cached).

    Returns, in the order the kernels take them: ``wall_xy`` (n_samples, 2) and
    ``pmt_wall`` (n_pmts, n_samples) [cm], ``pmt_position`` (n_pmts,) [sample units],
    ``start_grid`` (n_grid, n_grid, n_pmts, 2) unit vectors to the reflection points for
    events on the grid nodes, ``grid_step`` [cm]. Building the table takes about a second
    the first time; ``clearance`` is how far (relative) nodes outside the wall are pulled
    inside.
    """
    pmt_xy = np.ascontiguousarray(pmt_xy, dtype=np.float64)
    return _cached_geometry(float(radius_cm), pmt_xy.tobytes(), float(clearance))

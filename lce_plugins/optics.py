"""The structural light-collection model: LCE of each top PMT from a few 1-D functions.

Both the simulation's true response and learned maps are instances of one family,

.. math::

    \\mathrm{LCE}_j(\\vec e) = \\epsilon_j \\, [D(\\rho_j)\\, S(t_j) + W(L_j)\\, S(t'_j)] + F,

for an S2 at horizontal position :math:`\\vec e` and PMT :math:`j` at :math:`\\vec p_j`:

- :math:`D(\\rho)`: direct light versus the horizontal event-PMT distance
  :math:`\\rho_j = |\\vec p_j - \\vec e|` (photocathode solid angle for the simulation);
- :math:`S(t)`: transmission through the anode wires versus the slope of the ray across
  the wires, :math:`t = |(\\vec p_j - \\vec e)\\cdot\\hat n_\\perp| / H` with :math:`H` the
  mean emission-to-PMT height and :math:`\\hat n_\\perp` perpendicular to the wires;
- :math:`W(L)`: light specularly reflected once by the PTFE wall, versus the unfolded
  horizontal path :math:`L_j = \\min_{\\vec w} |\\vec e - \\vec w| + |\\vec w - \\vec p_j|`
  over wall points :math:`\\vec w`; its first leg crosses the wires with slope
  :math:`t'_j`;
- :math:`F`: a diffuse floor, the same for every PMT; :math:`\\epsilon_j`: PMT
  efficiencies.

The 1-D functions are :class:`CubicTable` splines, evaluated with their derivatives in
Numba, so LCE values and their gradients with respect to (x, y) cost a few hundred
floating-point operations per PMT. Positions outside the TPC evaluate to NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from lce_plugins import geometry
from lce_plugins.wall_reflection import _event_wall_state, shortest_reflection, wall_geometry

# Floating-point contraction (fused multiply-add), reciprocal multiplication and
# reassociation; not the "no NaN" assumptions, which would drop the NaN checks.
_FAST = {"contract", "arcp", "reassoc"}

__all__ = ["CubicTable", "LightResponse"]

# Radii are kept this fraction inside the wall in the reflection solver, where the
# distance to the reflection point would otherwise vanish and its derivative diverge.
_WALL_CLEARANCE = 1e-7


@dataclass(frozen=True)
class CubicTable:
    """A function on [0, x_max] as a cubic spline on a uniform grid.

    Interval ``k`` covers ``[k * step, (k + 1) * step]`` where the function is
    ``c0 + c1 u + c2 u**2 + c3 u**3`` with ``u = x - k * step`` and
    ``(c0, c1, c2, c3) = coefficients[k]``. Beyond ``x_max`` the table continues with
    its end value and zero slope.

    Parameters
    ----------
    step : float
        Grid spacing, in the unit of the argument.
    coefficients : numpy.ndarray
        Shape (n_intervals, 4), float64.
    """

    step: float
    coefficients: np.ndarray

    def __post_init__(self):
        coefficients = np.ascontiguousarray(self.coefficients, dtype=np.float64)
        if coefficients.ndim != 2 or coefficients.shape[1] != 4 or len(coefficients) < 1:
            raise ValueError(
                f"Spline coefficients must have shape (n_intervals, 4); got {coefficients.shape}."
            )
        if not (self.step > 0 and np.isfinite(self.step)):
            raise ValueError(f"The grid step must be positive and finite; got {self.step}.")
        if not np.all(np.isfinite(coefficients)):
            raise ValueError("Spline coefficients must be finite.")
        coefficients.flags.writeable = False
        object.__setattr__(self, "coefficients", coefficients)
        object.__setattr__(self, "step", float(self.step))

    @classmethod
    def from_samples(cls, values: np.ndarray, step: float, slope_at_zero: float = 0.0):
        """Interpolate samples ``values[k] = f(k * step)`` with a cubic spline.

        The slope at 0 is clamped to ``slope_at_zero``; all functions of the model are
        even in their argument's underlying vector, so their slope at 0 is 0.
        """
        from scipy.interpolate import CubicSpline

        values = np.asarray(values, dtype=np.float64)
        grid = np.arange(len(values)) * step
        spline = CubicSpline(grid, values, bc_type=((1, slope_at_zero), "not-a-knot"))
        # scipy stores the highest power first
        return cls(step=step, coefficients=spline.c[::-1].T.copy())

    @classmethod
    def constant(cls, value: float, x_max: float = 1.0):
        """A table of the constant ``value`` (e.g. no wire shadowing: S = 1)."""
        return cls(step=x_max, coefficients=np.array([[value, 0.0, 0.0, 0.0]]))

    @property
    def x_max(self) -> float:
        """End of the tabulated range."""
        return self.step * len(self.coefficients)

    def __call__(self, x) -> np.ndarray:
        """Evaluate the table at ``x >= 0`` (array_like); returns float64 values."""
        x = np.asarray(x, dtype=np.float64)
        values = np.empty(x.size)
        _table_many(self.coefficients, self.step, x.ravel(), values)
        return values.reshape(x.shape)

    def __eq__(self, other):
        return (
            isinstance(other, CubicTable)
            and self.step == other.step
            and np.array_equal(self.coefficients, other.coefficients)
        )

    __hash__ = None


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _table_value_slope(coefficients, step, x):
    """Value and derivative of a :class:`CubicTable` at ``x >= 0``."""
    n_intervals = coefficients.shape[0]
    k = int(x / step)
    if k >= n_intervals:
        u = step
        k = n_intervals - 1
        c0, c1, c2, c3 = (
            coefficients[k, 0],
            coefficients[k, 1],
            coefficients[k, 2],
            coefficients[k, 3],
        )
        return c0 + u * (c1 + u * (c2 + u * c3)), 0.0
    u = x - k * step
    c0, c1, c2, c3 = coefficients[k, 0], coefficients[k, 1], coefficients[k, 2], coefficients[k, 3]
    return c0 + u * (c1 + u * (c2 + u * c3)), c1 + u * (2.0 * c2 + 3.0 * u * c3)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _table_many(coefficients, step, x, out):
    for i in range(x.size):
        out[i] = _table_value_slope(coefficients, step, x[i])[0]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _direct_term(ex, ey, px, py, nx, ny, height, direct_c, direct_step, shadow_c, shadow_step):
    """D(rho) S(t) and its gradient with respect to the event position (ex, ey)."""
    dx, dy = px - ex, py - ey
    rho = math.sqrt(dx * dx + dy * dy)
    across = dx * nx + dy * ny
    direct, direct_slope = _table_value_slope(direct_c, direct_step, rho)
    shadow, shadow_slope = _table_value_slope(shadow_c, shadow_step, abs(across) / height)

    # d rho / d e = -(p - e) / rho; d t / d e = -sign(across) n / H
    g_rho = direct_slope * shadow / rho if rho > 0.0 else 0.0
    g_t = direct * shadow_slope * math.copysign(1.0, across) / height
    return direct * shadow, -g_rho * dx - g_t * nx, -g_rho * dy - g_t * ny


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _reflected_term(
    ex, ey, px, py, wx, wy, curvature, nx, ny, height, refl_c, refl_step, shadow_c,
    shadow_step, with_gradient,
):  # fmt: skip
    """W(L) S(t') of the shortest specular wall reflection via the wall point (wx, wy),
    where the path's second derivative in the wall angle is ``curvature``, and its
    gradient in (ex, ey) (zeros unless ``with_gradient``).

    The event must lie strictly inside the wall (the caller pulls it in by a hair).
    """
    leg_event = math.sqrt((ex - wx) ** 2 + (ey - wy) ** 2)
    path = leg_event + math.sqrt((px - wx) ** 2 + (py - wy) ** 2)
    inverse_leg, inverse_height = 1.0 / leg_event, 1.0 / height

    ux, uy = (ex - wx) * inverse_leg, (ey - wy) * inverse_leg
    across = -(ux * nx + uy * ny)  # (w - e) . n / |w - e|
    t_reflected = abs(across) * path * inverse_height
    reflected, reflected_slope = _table_value_slope(refl_c, refl_step, path)
    shadow, shadow_slope = _table_value_slope(shadow_c, shadow_step, t_reflected)
    if not with_gradient:
        return reflected * shadow, 0.0, 0.0

    # Envelope theorem: at the stationary wall point dL/de is the unit vector u from w
    # to e. The wall point itself moves with e (dphi/de from implicit differentiation of
    # dL/dphi = 0), which matters only for the slope t' of the first leg across wires.
    tx, ty = -wy, wx
    tu = tx * ux + ty * uy
    # With event and PMT both at the centre every wall point is a reflection point.
    inverse = inverse_leg / curvature if curvature > 1e-12 else 0.0
    dphi_x = (tx - tu * ux) * inverse
    dphi_y = (ty - tu * uy) * inverse

    # d(across)/de = [(dw/de . n) - n - across * d|w-e|/de] / |w-e|
    dleg_x = ux - tu * dphi_x
    dleg_y = uy - tu * dphi_y
    tn = tx * nx + ty * ny
    dacross_x = (tn * dphi_x - nx - across * dleg_x) * inverse_leg
    dacross_y = (tn * dphi_y - ny - across * dleg_y) * inverse_leg
    sign = inverse_height if across >= 0.0 else -inverse_height
    dt_x = sign * (dacross_x * path + across * ux)
    dt_y = sign * (dacross_y * path + across * uy)

    value = reflected * shadow
    grad_x = reflected_slope * shadow * ux + reflected * shadow_slope * dt_x
    grad_y = reflected_slope * shadow * uy + reflected * shadow_slope * dt_y
    return value, grad_x, grad_y


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _prepare_event(ex, ey, radius, wall_xy, grid_step, n_grid):
    """Whether the event lies in the TPC, its position (a hair inside the wall if on it),
    its distances to the wall samples and the reflection solver's per-event state."""
    event_wall = np.empty(wall_xy.shape[0])
    r_event = math.sqrt(ex * ex + ey * ey)
    if not r_event <= radius * (1.0 + 1e-12):
        return False, ex, ey, event_wall, (0.0, 0, 0, 0.0, 0.0)
    # On the wall the distance to the reflection point vanishes and its derivative
    # diverges; a hair inside, both are regular.
    limit = radius * (1.0 - _WALL_CLEARANCE)
    if r_event > limit:
        ex, ey = ex * limit / r_event, ey * limit / r_event
    state = _event_wall_state(ex, ey, wall_xy, event_wall, radius, grid_step, n_grid)
    return True, ex, ey, event_wall, state


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _lce_one_event(
    ex, ey, pmt_xy, efficiency, floor, direct_c, direct_step, refl_c, refl_step,
    shadow_c, shadow_step, nx, ny, height, radius, wall_xy, pmt_wall, pmt_position,
    start_grid, grid_step, lce, dlce_dx, dlce_dy, with_gradient=True,
):  # fmt: skip
    """LCE of every top PMT, and its gradient if ``with_gradient``, for one event, written
    into the rows given."""
    inside, ex, ey, event_wall, state = _prepare_event(
        ex, ey, radius, wall_xy, grid_step, start_grid.shape[0]
    )
    if not inside:
        lce[:] = np.nan
        if with_gradient:
            dlce_dx[:] = np.nan
            dlce_dy[:] = np.nan
        return

    for j in range(pmt_xy.shape[0]):
        px, py = pmt_xy[j, 0], pmt_xy[j, 1]
        direct, gdx, gdy = _direct_term(
            ex, ey, px, py, nx, ny, height, direct_c, direct_step, shadow_c, shadow_step
        )
        wx, wy, curvature = shortest_reflection(
            ex, ey, px, py, j, state, wall_xy, event_wall, pmt_wall, pmt_position, start_grid
        )
        reflected, grx, gry = _reflected_term(
            ex, ey, px, py, wx, wy, curvature, nx, ny, height, refl_c, refl_step, shadow_c,
            shadow_step, with_gradient,
        )  # fmt: skip
        lce[j] = efficiency[j] * (direct + reflected) + floor
        if with_gradient:
            dlce_dx[j] = efficiency[j] * (gdx + grx)
            dlce_dy[j] = efficiency[j] * (gdy + gry)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _lce_serial(x, y, model, lce, dlce_dx, dlce_dy, with_gradient):
    """Evaluate events one after the other (safe inside threads that strax runs).

    Without gradients, ``dlce_dx`` and ``dlce_dy`` are not touched (pass ``lce``)."""
    for i in range(x.size):
        _lce_one_event(x[i], y[i], *model, lce[i], dlce_dx[i], dlce_dy[i], with_gradient)


@numba.njit(cache=True, parallel=True, error_model="numpy", fastmath=_FAST)
def _lce_parallel(x, y, model, lce, dlce_dx, dlce_dy, with_gradient):
    """Evaluate events on all Numba threads."""
    for i in numba.prange(x.size):
        _lce_one_event(x[i], y[i], *model, lce[i], dlce_dx[i], dlce_dy[i], with_gradient)


def as_position_arrays(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast positions to two flat, contiguous float64 arrays of equal length.

    Raises
    ------
    TypeError
        If the positions are not real numbers.
    """
    try:
        x, y = np.broadcast_arrays(np.asarray(x), np.asarray(y))
    except ValueError as err:
        raise ValueError(
            f"x and y must broadcast to one shape; got shapes {np.shape(x)} and {np.shape(y)}."
        ) from err
    for name, values in (("x", x), ("y", y)):
        if not (
            np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)
        ):
            raise TypeError(f"{name} must hold real numbers in cm; got dtype {values.dtype}.")
    return (
        np.ascontiguousarray(x, dtype=np.float64).ravel(),
        np.ascontiguousarray(y, dtype=np.float64).ravel(),
    )


def per_event_values(name: str, values, n_events: int) -> np.ndarray:
    """``values`` as a float64 array of one real number per event.

    Raises
    ------
    TypeError
        If they are not real numbers.
    ValueError
        If the shape is not (n_events,).
    """
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be real numbers; got dtype {values.dtype}.")
    if values.shape != (n_events,):
        raise ValueError(
            f"{name} must have shape ({n_events},), one value per event; got {values.shape}."
        )
    return values.astype(np.float64)


class LightResponse:
    """Light collection efficiency of the top PMTs from the structural model.

    See the module docstring for the formula. Instances are immutable; the simulation's
    true response and its Monte-Carlo-style nominal map are instances, and so are maps
    that the package learns.

    Parameters
    ----------
    direct, reflection, shadow : CubicTable
        D(rho) and W(L) in detected photons per emitted photon, arguments in cm; S(t)
        dimensionless with the dimensionless slope t.
    efficiency : array_like, shape (253,)
        Relative PMT efficiencies epsilon_j.
    floor : float
        Diffuse floor F, detected photons per emitted photon per PMT.
    live_pmts : LivePMTs
        PMTs that deliver signals; :meth:`pattern` normalises over these.
    name : str
        What the response stands for, e.g. ``"truth"``; shown in ``repr``.
    height_cm, radius_cm, wire_angle_deg : float
        Geometry; default to the XENONnT values of :mod:`lce_plugins.geometry`.
    """

    def __init__(
        self,
        *,
        direct: CubicTable,
        reflection: CubicTable,
        shadow: CubicTable,
        efficiency,
        floor: float,
        live_pmts: geometry.LivePMTs,
        name: str = "",
        height_cm: float = geometry.EMISSION_TO_PMT_WINDOW_CM,
        radius_cm: float = geometry.TPC_RADIUS_CM,
        wire_angle_deg: float = geometry.ANODE_WIRE_ANGLE_DEG,
    ):
        efficiency = np.array(efficiency, dtype=np.float64)
        if efficiency.shape != (geometry.N_TOP_PMTS,):
            raise ValueError(
                f"efficiency needs one value per top PMT, shape ({geometry.N_TOP_PMTS},); "
                f"got {efficiency.shape}."
            )
        if not (np.all(np.isfinite(efficiency)) and np.all(efficiency >= 0)):
            raise ValueError("PMT efficiencies must be finite and non-negative.")
        if not isinstance(live_pmts, geometry.LivePMTs):
            raise TypeError(f"live_pmts must be a LivePMTs; got {type(live_pmts).__name__}.")
        if not (np.isfinite(floor) and floor >= 0):
            raise ValueError(f"The diffuse floor must be finite and >= 0; got {floor}.")
        efficiency.flags.writeable = False
        self.direct, self.reflection, self.shadow = direct, reflection, shadow
        self.efficiency, self.floor, self.live_pmts = efficiency, float(floor), live_pmts
        self.name = name
        self.height_cm, self.radius_cm = float(height_cm), float(radius_cm)
        self.wire_angle_deg = float(wire_angle_deg)
        self.pmt_xy = np.ascontiguousarray(geometry.pmt_positions())
        if np.any(np.hypot(*self.pmt_xy.T) >= self.radius_cm):
            raise ValueError(f"All PMT centres must lie inside the TPC radius {self.radius_cm} cm.")
        self._wall_geometry = wall_geometry(self.radius_cm, self.pmt_xy, _WALL_CLEARANCE)

    @property
    def kernel_arguments(self) -> tuple:
        """The model as the tuple of arrays and numbers the Numba kernels take."""
        angle = np.deg2rad(self.wire_angle_deg)
        normal_x, normal_y = -np.sin(angle), np.cos(angle)
        return (
            self.pmt_xy, self.efficiency, self.floor,
            self.direct.coefficients, self.direct.step,
            self.reflection.coefficients, self.reflection.step,
            self.shadow.coefficients, self.shadow.step,
            normal_x, normal_y, self.height_cm, self.radius_cm, *self._wall_geometry,
        )  # fmt: skip

    def lce_and_gradient(self, x, y, *, parallel: bool = True):
        """LCE of every top PMT and its derivatives with respect to x and y.

        Parameters
        ----------
        x, y : array_like
            Event positions [cm], broadcast to one shape with n elements.
        parallel : bool
            Use all Numba threads; pass False inside threads that strax manages.

        Returns
        -------
        lce, dlce_dx, dlce_dy : numpy.ndarray
            Each shape (n, 253), float64; detected photons per emitted photon, and its
            derivatives [1/cm]. Rows of positions outside the TPC are NaN.
        """
        x, y = as_position_arrays(x, y)
        lce = np.empty((x.size, geometry.N_TOP_PMTS))
        dlce_dx, dlce_dy = np.empty_like(lce), np.empty_like(lce)
        kernel = _lce_parallel if parallel else _lce_serial
        kernel(x, y, self.kernel_arguments, lce, dlce_dx, dlce_dy, True)
        return lce, dlce_dx, dlce_dy

    def lce(self, x, y, *, parallel: bool = True) -> np.ndarray:
        """LCE of every top PMT, shape (n, 253), detected photons per emitted photon."""
        x, y = as_position_arrays(x, y)
        lce = np.empty((x.size, geometry.N_TOP_PMTS))
        kernel = _lce_parallel if parallel else _lce_serial
        kernel(x, y, self.kernel_arguments, lce, lce, lce, False)
        return lce

    def pattern_and_gradient(self, x, y, *, parallel: bool = True):
        """:meth:`pattern` and its derivatives with respect to x and y [1/cm].

        With p = lce / sum_live(lce): dp = (dlce - p dsum) / sum. Shapes (n, 253) each.
        """
        lce, dlce_dx, dlce_dy = self.lce_and_gradient(x, y, parallel=parallel)
        live = self.live_pmts.mask
        total = (lce * live).sum(axis=1, keepdims=True)
        pattern = lce * live / total
        gradients = [
            (d * live - pattern * (d * live).sum(axis=1, keepdims=True)) / total
            for d in (dlce_dx, dlce_dy)
        ]
        return pattern, gradients[0], gradients[1]

    def pattern(self, x, y, *, parallel: bool = True) -> np.ndarray:
        """Expected fraction of the top-array light in each PMT, shape (n, 253).

        Normalised to 1 over the live PMTs; dead PMTs get 0. NaN outside the TPC.
        """
        lce = self.lce(x, y, parallel=parallel) * self.live_pmts.mask
        return lce / lce.sum(axis=1, keepdims=True)

    def __repr__(self) -> str:
        return (
            f"LightResponse(name={self.name!r}, floor={self.floor:.3g}, "
            f"{self.live_pmts.n_live} live PMTs)"
        )

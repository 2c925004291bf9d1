"""Arguments of the structural model's 1-D functions for every event-PMT pair.

The LCE of PMT j is ``eps_j [D(rho) S(t) + W(L) S(t')] + F`` (:mod:`lce_plugins.optics`).
Learning D, S and W needs, for each event and PMT, the four arguments: the horizontal
distance ``rho`` [cm], the slope ``t`` of the direct ray across the anode wires, the
unfolded length ``L`` [cm] of the shortest wall-reflected path and the slope ``t'`` of
its first leg across the wires. They depend on geometry only, so they are computed here
in Numba (without TensorFlow) and fed to the network as inputs.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from lce_plugins import geometry
from lce_plugins.optics import LightResponse, _prepare_event, as_position_arrays
from lce_plugins.wall_reflection import shortest_reflection

__all__ = ["FEATURE_NAMES", "FEATURE_SCALES", "N_FEATURES", "network_inputs", "structural_features"]

#: The feature axis of :func:`structural_features`, in order.
FEATURE_NAMES = ("distance_cm", "slope_across_wires", "reflection_path_cm", "reflected_slope")
N_FEATURES = len(FEATURE_NAMES)
#: The network sees the features divided by these, values of order one.
FEATURE_SCALES = (geometry.TPC_RADIUS_CM, 10.0, geometry.TPC_RADIUS_CM, 10.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _features_one_event(ex, ey, model, out):
    """Fill ``out`` (n_pmts, 4) for one event; NaN outside the TPC."""
    pmt_xy, nx, ny, height, radius = model[0], model[9], model[10], model[11], model[12]
    wall_xy, pmt_wall, pmt_position, start_grid, grid_step = model[13:]
    inside, ex, ey, event_wall, state = _prepare_event(
        ex, ey, radius, wall_xy, grid_step, start_grid.shape[0]
    )
    if not inside:
        out[:] = np.nan
        return

    for j in range(pmt_xy.shape[0]):
        px, py = pmt_xy[j, 0], pmt_xy[j, 1]
        out[j, 0] = math.sqrt((px - ex) ** 2 + (py - ey) ** 2)
        out[j, 1] = abs((px - ex) * nx + (py - ey) * ny) / height
        wx, wy, _ = shortest_reflection(
            ex, ey, px, py, j, state, wall_xy, event_wall, pmt_wall, pmt_position, start_grid
        )
        leg_event = math.sqrt((ex - wx) ** 2 + (ey - wy) ** 2)
        path = leg_event + math.sqrt((px - wx) ** 2 + (py - wy) ** 2)
        out[j, 2] = path
        out[j, 3] = abs((wx - ex) * nx + (wy - ey) * ny) / leg_event * path / height


@numba.njit(cache=True, nogil=True)
def _features_serial(x, y, model, out):
    for i in range(x.size):
        _features_one_event(x[i], y[i], model, out[i])


@numba.njit(cache=True, parallel=True)
def _features_parallel(x, y, model, out):
    for i in numba.prange(x.size):
        _features_one_event(x[i], y[i], model, out[i])


def structural_features(
    response: LightResponse, x, y, *, parallel: bool = True, dtype=np.float32
) -> np.ndarray:
    """The four arguments of D, S, W and S for every event and top PMT.

    Parameters
    ----------
    response : LightResponse
        Supplies the geometry (PMT positions, radius, wires, emission height); its
        learned functions are not used.
    x, y : array_like
        Event positions [cm], broadcast to n events.
    parallel : bool
        Use all Numba threads.
    dtype : numpy dtype
        Of the result (float32 for TensorFlow).

    Returns
    -------
    numpy.ndarray
        Shape (n, 253, 4): :data:`FEATURE_NAMES` per event and PMT; NaN for events
        outside the TPC.
    """
    if not isinstance(response, LightResponse):
        raise TypeError(f"response must be a LightResponse; got {type(response).__name__}.")
    x, y = as_position_arrays(x, y)
    out = np.empty((x.size, geometry.N_TOP_PMTS, N_FEATURES))
    kernel = _features_parallel if parallel else _features_serial
    kernel(x, y, response.kernel_arguments, out)
    return out.astype(dtype, copy=False)


def network_inputs(response: LightResponse, x, y, *, parallel: bool = True) -> np.ndarray:
    """:func:`structural_features` divided by :data:`FEATURE_SCALES`: the network's
    float32 inputs, of order one, shape (n, 253, 4)."""
    features = structural_features(response, x, y, parallel=parallel, dtype=np.float64)
    return (features / np.array(FEATURE_SCALES)).astype(np.float32)

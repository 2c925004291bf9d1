"""LCE quantities of reconstructed S2s: the data-driven (x, y) light correction and the
calibrated goodness of fit (processing; no TensorFlow).

- The summed LCE of the live top PMTs at a peak's position, relative to its mean over
  the TPC, is the map's S2 (x, y) correction factor: the top-array light of a peak
  divided by it is the light the same S2 would give at an average place.
- With a peak's position and light fitted, its deviance D is compared with what a
  perfect model makes it average to, E[D] (:func:`lce_plugins.likelihood.expected_deviance`)
  less the 3 fitted parameters: D / (E[D] - 3) is 1 on average for a perfect map, also at
  the few-PE level of the far PMTs where D / ndf is not.
"""

from __future__ import annotations

import numpy as np

from lce_plugins.lce_map import LCEMap
from lce_plugins.likelihood import expected_deviance

__all__ = [
    "FITTED_PARAMETERS",
    "calibrated_ratio",
    "mean_total_lce",
    "peak_lce_quantities",
    "total_lce",
]

#: Parameters fitted per peak: x, y and the light N.
FITTED_PARAMETERS = 3
#: Spacing of the grid over which :func:`mean_total_lce` averages [cm].
_MEAN_GRID_CM = 0.5
#: mean_total_lce by map content hash.
_MEAN_TOTAL_LCE: dict[str, float] = {}


def calibrated_ratio(deviance, expected) -> np.ndarray:
    """D / (E[D] - 3): 1 on average for a perfect model (NaN where undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(deviance) / (np.asarray(expected) - FITTED_PARAMETERS)


def total_lce(lce_map: LCEMap, x, y, *, parallel: bool = True) -> np.ndarray:
    """Summed LCE of the live top PMTs at (x, y), shape (n,) [detected photons per emitted
    photon]; NaN outside the TPC."""
    return np.sum(lce_map.lce(x, y, parallel=parallel) * lce_map.live_pmts.mask, axis=1)


def mean_total_lce(lce_map: LCEMap) -> float:
    """Mean of :func:`total_lce` over the TPC's area (a 0.5 cm grid), computed once per map
    content."""
    key = lce_map.content_hash
    if key not in _MEAN_TOTAL_LCE:
        edges = np.arange(-lce_map.radius_cm, lce_map.radius_cm, _MEAN_GRID_CM) + _MEAN_GRID_CM / 2
        x, y = np.meshgrid(edges, edges)
        inside = np.hypot(x, y) < lce_map.radius_cm
        _MEAN_TOTAL_LCE[key] = float(np.mean(total_lce(lce_map, x[inside], y[inside])))
    return _MEAN_TOTAL_LCE[key]


def peak_lce_quantities(
    lce_map: LCEMap,
    area_top,
    used,
    x,
    y,
    n_photons,
    deviance,
    *,
    sigma0: float,
    parallel: bool = True,
) -> dict:
    """LCE quantities of fitted peaks.

    Parameters
    ----------
    lce_map : LCEMap
    area_top : numpy.ndarray
        Shape (n, 253), float: top-array areas [PE] (only their shape is used).
    used : numpy.ndarray
        Shape (n, 253), bool: the channels the fit used.
    x, y, n_photons, deviance : numpy.ndarray
        Shape (n,): the fit's position [cm], light [photons] and deviance; peaks with a
        NaN entry get NaN.
    sigma0 : float
        Baseline noise [PE].

    Returns
    -------
    dict
        ``total`` (summed live LCE), ``relative`` (total over its TPC mean),
        ``expected_deviance`` (E[D] at the fit) and ``calibrated_chi2``
        (D / (E[D] - 3)), each shape (n,), float64.
    """
    n_peaks = len(area_top)
    quantities = {
        key: np.full(n_peaks, np.nan)
        for key in ("total", "relative", "expected_deviance", "calibrated_chi2")
    }
    fitted = np.isfinite(x) & np.isfinite(y) & np.isfinite(n_photons) & (n_photons > 0)
    if not fitted.any():
        return quantities
    lce = lce_map.lce(x[fitted], y[fitted], parallel=parallel)
    quantities["total"][fitted] = np.sum(lce * lce_map.live_pmts.mask, axis=1)
    quantities["relative"][fitted] = quantities["total"][fitted] / mean_total_lce(lce_map)
    expected = expected_deviance(
        n_photons[fitted, None] * lce,
        lce_map.spe_resolution,
        lce_map.p_dpe,
        used[fitted],
        sigma0=sigma0,
    )
    quantities["expected_deviance"][fitted] = expected
    quantities["calibrated_chi2"][fitted] = calibrated_ratio(deviance[fitted], expected)
    return quantities

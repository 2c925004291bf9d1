"""Goodness of fit during and after a training: deviances, outliers, reduced chi2.

Per event, with light N and position (x, y) fitted, the deviance
D = -2 sum_j ln(L(a_j | N LCE_j) / L_sat(a_j)) over the used PMTs is compared with what
it averages to for a perfect model, E[D] (:func:`lce_plugins.likelihood.expected_deviance`),
less the 3 fitted parameters (which lower it by 3 on average: the fit takes out the
part of the fluctuations that a shift of (x, y, N) can absorb). Two figures follow:

- ``reduced_chi2`` = sum D / sum ndf, ndf = used PMTs - 3: the figure an earlier
  real-data study quoted (1.223 for a data-driven map, 2.301 for the Monte-Carlo one);
  not 1 for a perfect model at the few-PE level of far PMTs;
- ``reduced_chi2_calibrated`` = sum D / sum (E[D] - 3): 1 for a perfect model.

Events that do not follow the model (two S2s merged into one peak) have a D far above
E[D]. :func:`outlier_selection` rejects events whose D / (E[D] - 3) lies more than
``sigmas`` robust standard deviations above the median of the reference events.
"""

from __future__ import annotations

import numpy as np

from lce_plugins.lce_map import LCEMap
from lce_plugins.lce_quantities import FITTED_PARAMETERS, calibrated_ratio
from lce_plugins.likelihood import deviance, expected_deviance

__all__ = [
    "FITTED_PARAMETERS",
    "deviance_at",
    "goodness_of_fit",
    "outlier_selection",
]

#: 1.4826 times the median absolute deviation is the standard deviation of a Gaussian.
MAD_TO_SIGMA = 1.4826


def deviance_at(lce_map: LCEMap, area, used, x, y, n_photons, *, sigma0: float):
    """D and E[D] of events at given positions and light, with ``lce_map``.

    Parameters
    ----------
    lce_map : LCEMap
    area : numpy.ndarray
        Shape (n, 253), float64: observed areas [PE].
    used : numpy.ndarray
        Shape (n, 253), bool: channels that enter (live, not saturated).
    x, y, n_photons : numpy.ndarray
        Shape (n,): positions [cm] and light [photons]; events with a NaN entry get NaN.
    sigma0 : float
        Baseline noise [PE].

    Returns
    -------
    deviance, expected : numpy.ndarray
        Shape (n,), float64.
    """
    observed, expected = np.full(len(area), np.nan), np.full(len(area), np.nan)
    valid = np.isfinite(x) & np.isfinite(y) & np.isfinite(n_photons) & (n_photons > 0)
    if not valid.any():
        return observed, expected
    mu = n_photons[valid, None] * lce_map.lce(x[valid], y[valid])
    arguments = (lce_map.spe_resolution, lce_map.p_dpe, used[valid])
    observed[valid] = deviance(area[valid], mu, *arguments, sigma0=sigma0)
    expected[valid] = expected_deviance(mu, *arguments, sigma0=sigma0)
    return observed, expected


def outlier_selection(deviance_values, expected, reference, sigmas: float) -> tuple:
    """Events that follow the model: D / (E[D] - 3) not far above the typical value.

    Parameters
    ----------
    deviance_values, expected : numpy.ndarray
        Shape (n,): D and E[D] per event (NaN for events without a fit).
    reference : numpy.ndarray
        Shape (n,), bool: the events whose median and spread set the cut (the training
        events); the cut is applied to all.
    sigmas : float
        Cut at the median plus this many robust standard deviations (1.4826 MAD).

    Returns
    -------
    kept : numpy.ndarray
        Shape (n,), bool; events with NaN numbers are not kept.
    threshold : float
        The cut on D / (E[D] - 3).
    """
    ratio = calibrated_ratio(deviance_values, expected)
    finite = np.isfinite(ratio)
    values = ratio[reference & finite]
    if values.size == 0:
        raise ValueError("No reference event has a finite deviance: nothing sets the cut.")
    median = float(np.median(values))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    threshold = median + sigmas * spread
    with np.errstate(invalid="ignore"):
        return finite & (ratio <= threshold), threshold


def goodness_of_fit(deviance_values, expected, ndf, selection) -> dict:
    """``reduced_chi2`` (sum D / sum ndf) and ``reduced_chi2_calibrated``
    (sum D / sum (E[D] - 3)) over the selected events, and ``n_events``.

    Parameters
    ----------
    deviance_values, expected, ndf : numpy.ndarray
        Shape (n,) each.
    selection : numpy.ndarray
        Shape (n,), bool; must select events with finite numbers.
    """
    chosen = np.asarray(selection, bool)
    total = float(np.sum(deviance_values[chosen]))
    if not chosen.any() or not np.isfinite(total):
        raise ValueError("goodness_of_fit needs selected events with finite deviances.")
    return dict(
        reduced_chi2=total / float(np.sum(ndf[chosen])),
        reduced_chi2_calibrated=total / float(np.sum(expected[chosen] - FITTED_PARAMETERS)),
        n_events=int(chosen.sum()),
    )

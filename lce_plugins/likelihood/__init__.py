"""The exact likelihood of PMT areas given the expected light, and the deviance built on it.

For a PMT expecting ``mu`` detected photons, each photon gives one photoelectron (PE) or,
with probability ``p_dpe``, two; each PE's area is Gaussian around 1 PE with the PMT's
resolution ``sigma``; a channel without PE reads baseline noise ``sigma0``. The
likelihood of an observed area sums over the PE count exactly: where PMTs see a few PE
the Gaussian approximations (or straxen's shifted Poisson, which ignores the PMT
resolution) misstate it. Only where enough photons take part (tilted photon count
>= 150) a second-order saddle-point approximation takes over; it agrees with the exact
sum to better than 1e-9 in ln L there, so value and derivatives are continuous across
the switch.

Functions (all Numba underneath; TensorFlow only in :mod:`.tf_bridge`):

* :func:`log_likelihood`, :func:`log_likelihood_derivatives`: per PMT, broadcasting;
* :func:`saturated_log_likelihood`: the best any mu could do for an area (a table over
  (area, sigma), built once in seconds and cached);
* :func:`deviance`: -2 ln(L / L_sat) summed over the live PMTs of each event;
* :func:`expected_deviance`, :func:`calibrated_chi2`: what D averages to for a perfect
  model, and D / E[D], which is 1 for a perfect model at any light level.

>>> import numpy as np
>>> from lce_plugins.likelihood import deviance, expected_deviance
>>> area = np.array([[0.0, 1.2, 3.9]])
>>> mu = np.array([[0.1, 1.0, 3.0]])
>>> deviance(area, mu, sigma=0.4).round(3)
array([0.246])
>>> expected_deviance(mu, sigma=0.4).round(3)
array([2.758])
"""

from lce_plugins.likelihood.api import (
    calibrated_chi2,
    deviance,
    expected_deviance,
    log_likelihood,
    log_likelihood_derivatives,
    saturated_log_likelihood,
)
from lce_plugins.likelihood.saturated import SIGMA_RANGE_PE

__all__ = [
    "SIGMA_RANGE_PE",
    "calibrated_chi2",
    "deviance",
    "expected_deviance",
    "log_likelihood",
    "log_likelihood_derivatives",
    "saturated_log_likelihood",
]

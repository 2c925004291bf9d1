"""ln L of one PMT and its mu-derivatives: the choice between exact sum and saddle point.

* mu = 0: only the zero-PE term (baseline noise) is possible.
* Small signals (mu < :data:`SADDLE_MU_MIN` and |area| < :data:`SADDLE_AREA_MIN`): the
  exact sum. There the tilted photon count of the saddle point is below its threshold
  anyway (below the mean it is at most mu, above it at most the area), so trying the
  saddle point would only cost time.
* Otherwise the saddle point, where it is valid (enough tilted photons, no 1-PE
  ripple, negligible baseline term), else the exact sum. The switch happens where
  both agree to about 1e-9 in ln L, so the value and its derivatives are continuous
  to that level.
"""

from __future__ import annotations

import numba

from lce_plugins.likelihood._exact import exact_log_likelihood, zero_mu_log_likelihood
from lce_plugins.likelihood._saddle import saddle_log_likelihood

__all__ = ["SADDLE_AREA_MIN", "SADDLE_MU_MIN", "pmt_log_likelihood"]

#: Below both of these the saddle point is never tried [photons, PE].
SADDLE_MU_MIN = 150.0
SADDLE_AREA_MIN = 180.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def pmt_log_likelihood(area, mu, sigma, p_dpe, sigma0):
    """ln L(area | mu), d ln L / dmu, d^2 ln L / dmu^2 for one PMT.

    Parameters
    ----------
    area : float
        Observed area [PE], finite.
    mu : float
        Expected detected photons, >= 0 (not checked here).
    sigma, sigma0 : float
        Single-PE resolution and baseline noise [PE], > 0.
    p_dpe : float
        Double-PE emission probability, in [0, 1).
    """
    if mu == 0.0:
        return zero_mu_log_likelihood(area, sigma, p_dpe, sigma0)
    if mu >= SADDLE_MU_MIN or abs(area) >= SADDLE_AREA_MIN:
        valid, value, first, second = saddle_log_likelihood(area, mu, sigma, p_dpe, sigma0)
        if valid:
            return value, first, second
    return exact_log_likelihood(area, mu, sigma, p_dpe, sigma0)

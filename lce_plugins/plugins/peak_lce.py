"""``peak_lce``: LCE quantities of S2s at their positions fitted with the LCE map.

Use it for a data-driven S2 (x, y) light correction and for a goodness of fit that can
be compared across peak sizes: ``lce_relative`` is the summed LCE of the live top PMTs at
the peak's LCE position over its mean across the TPC (divide the top-array area by it),
``lce_chi2_calibrated`` the fit's deviance over what a perfect map makes it average to
(1 on average, also for small S2s, where the deviance per degree of freedom is not).
Peaks without an LCE position get NaN.
"""

from __future__ import annotations

import numpy as np
import strax

from lce_plugins.lce_quantities import peak_lce_quantities
from lce_plugins.plugins._map_option import LCEMapPlugin

__all__ = ["PeakLCE"]


class PeakLCE(LCEMapPlugin):
    """Summed LCE at the LCE position, relative to the TPC mean, and calibrated chi2."""

    __version__ = "0.1.0"
    provides = "peak_lce"
    depends_on = ("peaks", "peak_positions_lce")
    data_kind = "peaks"
    compressor = "zstd"
    parallel = True

    def infer_dtype(self):
        return strax.time_fields + [
            (("Summed LCE of the live top PMTs at (x_lce, y_lce)", "lce_total"), np.float32),
            (
                (
                    "lce_total over its mean across the TPC: the S2 (x, y) light correction",
                    "lce_relative",
                ),
                np.float32,
            ),
            (
                (
                    "Expected -2 ln(L / L_saturated) of a perfect map at the fit",
                    "lce_expected_2llh",
                ),
                np.float32,
            ),
            (
                (
                    "lce_2llh / (lce_expected_2llh - 3): 1 on average for a perfect map",
                    "lce_chi2_calibrated",
                ),
                np.float32,
            ),
        ]

    def compute(self, peaks):
        result = np.zeros(len(peaks), dtype=self.dtype)
        result["time"], result["endtime"] = peaks["time"], strax.endtime(peaks)
        top = slice(0, self.n_top_pmts)
        used = self.map.live_pmts.mask[None, :] & (peaks["saturated_channel"][:, top] == 0)
        quantities = peak_lce_quantities(
            self.map,
            peaks["area_per_channel"][:, top],
            used,
            peaks["x_lce"].astype(np.float64),
            peaks["y_lce"].astype(np.float64),
            peaks["lce_n_photons"].astype(np.float64),
            peaks["lce_2llh"].astype(np.float64),
            sigma0=self.lce_baseline_noise,
        )
        result["lce_total"], result["lce_relative"] = quantities["total"], quantities["relative"]
        result["lce_expected_2llh"] = quantities["expected_deviance"]
        result["lce_chi2_calibrated"] = quantities["calibrated_chi2"]
        return result

"""``peak_positions_lce``: S2 positions by maximum likelihood with a data-driven LCE map.

Use it where positions should come from a map learned on calibration data rather than
from networks trained on an optical Monte Carlo. For every S2 above
``min_reconstruction_area`` it fits the position and the light of the peak to the top
array's areas with the exact PMT likelihood (:func:`lce_plugins.reconstruct_positions`):
unbiased where the map is right, with per-peak uncertainties and a goodness of fit,
at the cost of an iterative fit per peak. Saturated channels are left out; dead PMTs
come from the map. Peaks not reconstructed (not S2s, too small) get NaN and the status
``NOT_RECONSTRUCTED``; peaks with unusable areas get NaN and the fit's status.

The field names follow straxen's algorithms (``x_lce``, ``y_lce``), so that
:class:`~lce_plugins.plugins.PeakPositionsWithLCE` merges them into ``peak_positions``
and event building picks up the algorithm ``lce``.
"""

from __future__ import annotations

import numpy as np
import strax
import straxen

from lce_plugins.peak_types import PEAK_TYPE_S2
from lce_plugins.plugins._map_option import LCEMapPlugin
from lce_plugins.reconstruction import reconstruct_positions

__all__ = ["NOT_RECONSTRUCTED", "PeakPositionsLCE", "peak_positions_lce_dtype"]

#: ``lce_fit_status`` of peaks that were not fitted (not S2s, below the minimum area);
#: other values are those of :class:`lce_plugins.pattern_fit.FitStatus`.
NOT_RECONSTRUCTED = -1
#: (field of the fit result, field of the plugin) pairs.
_FIELDS = (
    ("x", "x_lce"),
    ("y", "y_lce"),
    ("x_err", "x_err_lce"),
    ("y_err", "y_err_lce"),
    ("xy_correlation", "xy_corr_lce"),
    ("n_photons", "lce_n_photons"),
    ("deviance", "lce_2llh"),
    ("ndf", "lce_ndf"),
    ("status", "lce_fit_status"),
)


def peak_positions_lce_dtype() -> list:
    """The fields of ``peak_positions_lce`` (after strax's time fields)."""
    return strax.time_fields + [
        (("Reconstructed S2 X position with the LCE map [cm], uncorrected", "x_lce"), np.float32),
        (("Reconstructed S2 Y position with the LCE map [cm], uncorrected", "y_lce"), np.float32),
        (("Uncertainty of x_lce [cm]", "x_err_lce"), np.float32),
        (("Uncertainty of y_lce [cm]", "y_err_lce"), np.float32),
        (("Correlation of the x_lce and y_lce uncertainties", "xy_corr_lce"), np.float32),
        (("Fitted S2 light: detected photons per unit LCE [photons]", "lce_n_photons"), np.float32),
        (("-2 ln(L / L_saturated) of the LCE fit over the used top PMTs", "lce_2llh"), np.float32),
        (("Used top PMTs (live, not saturated) minus 3", "lce_ndf"), np.int16),
        (
            ("LCE fit status: -1 not reconstructed, else lce_plugins.FitStatus", "lce_fit_status"),
            np.int8,
        ),
    ]


class PeakPositionsLCE(LCEMapPlugin):
    """Maximum-likelihood (x, y, light) of S2 peaks with the LCE map."""

    __version__ = "0.1.0"
    provides = "peak_positions_lce"
    depends_on = "peaks"
    data_kind = "peaks"
    compressor = "zstd"
    parallel = True

    min_reconstruction_area = straxen.URLConfig(
        default=0, infer_type=False, help="Skip reconstruction if area (PE) is less than this"
    )

    def infer_dtype(self):
        return peak_positions_lce_dtype()

    def compute(self, peaks):
        result = np.zeros(len(peaks), dtype=self.dtype)
        result["time"], result["endtime"] = peaks["time"], strax.endtime(peaks)
        for _, field in _FIELDS[:7]:
            result[field] = np.nan
        result["lce_fit_status"] = NOT_RECONSTRUCTED

        chosen = (peaks["type"] == PEAK_TYPE_S2) & (peaks["area"] > self.min_reconstruction_area)
        if not chosen.any():
            return result
        top = slice(0, self.n_top_pmts)
        fit = reconstruct_positions(
            peaks["area_per_channel"][chosen, top],
            self.map,
            saturated_channel=peaks["saturated_channel"][chosen, top],
            sigma0=self.lce_baseline_noise,
            warn=False,
        )
        for source, field in _FIELDS:
            result[field][chosen] = fit[source]
        return result

"""strax plugin: positions of simulated peaks from the Monte-Carlo-style nominal map.

These play the part of XENONnT's MC-trained positions (CNF/MLP) in offline tests: the
starting positions of a training on simulated runs, and the comparison that shows what
a data-driven map gains. Pattern fit (multinomial likelihood) with the nominal map of
the simulated detector; saturated channels are left out.
"""

from __future__ import annotations

import numpy as np
import strax

from lce_plugins.simulation.detector import DetectorConfig
from lce_plugins.simulation.initial import initial_positions

__all__ = ["PeakPositionsNominal"]


class PeakPositionsNominal(strax.Plugin):
    """``x_nominal``, ``y_nominal`` of every peak, from the simulation's nominal map."""

    __version__ = "0.1.0"
    provides = "peak_positions_nominal"
    depends_on = "peaks"
    parallel = True

    lce_sim_detector_seed = strax.Config(
        default=DetectorConfig().seed,
        type=int,
        help="Seed of the simulated detector (PMT efficiencies, resolutions, dead PMTs)",
    )

    def infer_dtype(self):
        return strax.time_fields + [
            (("Reconstructed x with the nominal (MC-style) map [cm]", "x_nominal"), np.float32),
            (("Reconstructed y with the nominal (MC-style) map [cm]", "y_nominal"), np.float32),
            (("Uncertainty of x_nominal [cm]", "x_err_nominal"), np.float32),
            (("Uncertainty of y_nominal [cm]", "y_err_nominal"), np.float32),
            (("Fit status, see lce_plugins.pattern_fit.FitStatus", "nominal_fit_status"), np.int8),
        ]

    def setup(self):
        self.detector = DetectorConfig(seed=self.lce_sim_detector_seed)

    def compute(self, peaks):
        fit = initial_positions(
            peaks["area_per_channel"],
            saturated_channel=peaks["saturated_channel"],
            detector=self.detector,
            parallel=False,  # strax may run plugins in threads
        )
        result = np.zeros(len(peaks), dtype=self.dtype)
        result["time"], result["endtime"] = peaks["time"], strax.endtime(peaks)
        for name in ("x", "y", "x_err", "y_err"):
            result[f"{name}_nominal"] = fit[name]
        result["nominal_fit_status"] = fit["status"]
        return result

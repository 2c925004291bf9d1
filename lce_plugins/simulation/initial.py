"""Initial positions as a Monte-Carlo-trained reconstruction would give them.

XENONnT's position reconstruction is trained on optical Monte-Carlo maps, so its
positions inherit that map's errors. The simulation mimics this by fitting each event
with the nominal (Monte-Carlo-style) map: near the wall, where the nominal map expects
more reflected light than the detector delivers, positions come out pulled inwards.
"""

from __future__ import annotations

import numpy as np

from lce_plugins.pattern_fit import fit_positions_pattern
from lce_plugins.simulation.detector import Detector, DetectorConfig
from lce_plugins.simulation.response import _detector_for, nominal_map

__all__ = ["initial_positions"]


def initial_positions(
    area_per_channel,
    *,
    saturated_channel=None,
    detector: Detector | DetectorConfig | None = None,
    parallel: bool = True,
) -> np.ndarray:
    """Positions of each peak from a pattern fit with the nominal map.

    Parameters
    ----------
    area_per_channel : array_like
        Shape (n, 253) or (n, 494) [PE].
    saturated_channel : array_like, optional
        Same shape; saturated channels are left out of the fit.
    detector : Detector or DetectorConfig, optional
        The simulated detector whose nominal map is used.
    parallel : bool
        Use all Numba threads.

    Returns
    -------
    numpy.ndarray
        :func:`lce_plugins.pattern_fit.pattern_fit_dtype`: ``x``, ``y`` [cm], their
        uncertainties and a fit status per peak.
    """
    detector = _detector_for(detector)
    return fit_positions_pattern(
        area_per_channel,
        nominal_map(detector),
        saturated_channel=saturated_channel,
        p_dpe=detector.config.p_dpe,
        spe_resolution=detector.spe_resolution[:253],
        parallel=parallel,
    )

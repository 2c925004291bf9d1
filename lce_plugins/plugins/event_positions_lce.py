"""``event_positions_lce``: the LCE positions of an event's main and alternative S2.

Use it to get the data-driven positions, their uncertainties and goodness of fit per
event without changing ``peak_positions`` (and so ``event_basics``) of a context. It
takes the S2s that ``event_basics`` chose (``s2_index``, ``alt_s2_index``, counted among
the peaks the event contains, as straxen's event plugins do) and copies their fields of
``peak_positions_lce``; events without such an S2 get NaN and -1.
"""

from __future__ import annotations

import numpy as np
import strax

__all__ = ["EventPositionsLCE"]

#: peak_positions_lce field -> title of the event fields ``s2_<field>``, ``alt_s2_<field>``.
_FIELDS = {
    "x_lce": "S2 X position with the LCE map [cm], uncorrected",
    "y_lce": "S2 Y position with the LCE map [cm], uncorrected",
    "x_err_lce": "Uncertainty of the S2's x_lce [cm]",
    "y_err_lce": "Uncertainty of the S2's y_lce [cm]",
    "xy_corr_lce": "Correlation of the S2's x_lce and y_lce uncertainties",
    "lce_2llh": "-2 ln(L / L_saturated) of the S2's LCE fit",
    "lce_ndf": "Used top PMTs minus 3 of the S2's LCE fit (-1: no S2)",
    "lce_fit_status": "Status of the S2's LCE fit (-1: no S2)",
}
_ROLES = (("s2", "Main"), ("alt_s2", "Alternate"))


class EventPositionsLCE(strax.Plugin):
    """Main and alternate S2 positions of events from ``peak_positions_lce``."""

    __version__ = "0.1.0"
    provides = "event_positions_lce"
    depends_on = ("event_basics", "peak_positions_lce")
    data_kind = "events"
    compressor = "zstd"

    def infer_dtype(self):
        peak_dtype = self.deps["peak_positions_lce"].dtype_for("peak_positions_lce")
        dtype = list(strax.time_fields)
        for role, label in _ROLES:
            for field, title in _FIELDS.items():
                dtype.append(((f"{label} {title}", f"{role}_{field}"), peak_dtype[field]))
        return dtype

    def compute(self, events, peaks):
        result = np.zeros(len(events), dtype=self.dtype)
        strax.set_nan_defaults(result)  # NaN, and -1 for the integer fields: no S2
        result["time"], result["endtime"] = events["time"], strax.endtime(events)

        # each event's peaks, as split_by_containment orders them: contained peaks by time
        container = strax.fully_contained_in(peaks, events)
        contained = np.flatnonzero(container >= 0)
        counts = np.bincount(container[contained], minlength=len(events))
        first = np.cumsum(counts) - counts
        for role, _ in _ROLES:
            index = events[f"{role}_index"]
            has_peak = (index >= 0) & (index < counts)
            chosen = contained[first[has_peak] + index[has_peak]]
            for field in _FIELDS:
                result[f"{role}_{field}"][has_peak] = peaks[field][chosen]
        return result

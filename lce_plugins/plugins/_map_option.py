"""The options every LCE plugin shares, and the map they load once in ``setup()``."""

from __future__ import annotations

import strax
import straxen

from lce_plugins import geometry
from lce_plugins.lce_map import LCEMap
from lce_plugins.pmt_response import DEFAULT_BASELINE_NOISE_PE
from lce_plugins.straxen_protocol import OPTION_NAME, register_protocol

__all__ = ["LCEMapPlugin"]

# ``import straxen`` registers the protocol through the entry point of an installed
# package; this covers a source checkout on sys.path.
register_protocol()


class LCEMapPlugin(strax.Plugin):
    """Base of the LCE plugins: the ``lce_map``, ``n_top_pmts`` and
    ``lce_baseline_noise`` options and the map.

    ``self.map`` is the :class:`~lce_plugins.LCEMap` after ``setup()``.
    """

    lce_map = straxen.URLConfig(
        default=None,
        infer_type=False,
        help="LCE map: lce://NAME (a map registered with lce_plugins.register_map), "
        "lce:///path/to/map.npz or a path; the map's content hash enters the lineage",
    )
    n_top_pmts = straxen.URLConfig(
        default=straxen.n_top_pmts, infer_type=False, help="Number of top PMTs"
    )
    lce_baseline_noise = straxen.URLConfig(
        default=DEFAULT_BASELINE_NOISE_PE,
        infer_type=False,
        help="Baseline noise of a channel without photoelectrons in the LCE fit [PE]",
    )

    def setup(self):
        lce_map = self.lce_map
        if lce_map is None:
            raise ValueError(
                f"{type(self).__name__} needs an LCE map: set the context option "
                f"{OPTION_NAME!r} to lce://NAME (see lce_plugins.register_map) or to a map "
                "file, e.g. lce_plugins.register(st, lce_map='lce://NAME')."
            )
        if not isinstance(lce_map, LCEMap):
            raise TypeError(
                f"The option {OPTION_NAME!r} must resolve to an LCEMap; got "
                f"{type(lce_map).__name__}. Use lce://NAME or a path of a map file."
            )
        if self.n_top_pmts != geometry.N_TOP_PMTS:
            raise ValueError(
                f"The LCE map covers {geometry.N_TOP_PMTS} top PMTs, but this context has "
                f"n_top_pmts = {self.n_top_pmts}; use a map made for this detector."
            )
        self.map = lce_map

"""``peak_positions`` with the LCE algorithm merged into straxen's.

straxen's :class:`straxen.PeakPositions` merges the fields of its algorithms' plugins
(``peak_positions_cnf``, ``peak_positions_mlp``, ...) and copies the default algorithm's
``x_<algorithm>``, ``y_<algorithm>`` to ``x``, ``y``, which event building uses. This
subclass adds ``peak_positions_lce``; :func:`lce_plugins.register` widens its
``depends_on`` with the algorithms the context already merges, and
``default_reconstruction_algorithm='lce'`` makes the LCE positions the default.
"""

from __future__ import annotations

import straxen

__all__ = ["PeakPositionsWithLCE", "with_algorithms"]


class PeakPositionsWithLCE(straxen.PeakPositions):
    """straxen's PeakPositions, with ``peak_positions_lce`` among the merged algorithms."""

    __version__ = "0.1.0"
    depends_on = ("peak_positions_lce",)


def with_algorithms(depends_on) -> type:
    """A :class:`PeakPositionsWithLCE` that also merges ``depends_on`` (e.g. the
    ``peak_positions_cnf``, ``peak_positions_mlp`` of a context's own PeakPositions)."""
    merged = tuple(dict.fromkeys(tuple(depends_on) + ("peak_positions_lce",)))
    return type("PeakPositionsWithLCE", (PeakPositionsWithLCE,), {"depends_on": merged})

"""strax plugins of the LCE map: positions, LCE quantities and the merged peak positions.

Importing this module imports strax and straxen (not TensorFlow).
"""

from lce_plugins.plugins.event_positions_lce import EventPositionsLCE
from lce_plugins.plugins.peak_lce import PeakLCE
from lce_plugins.plugins.peak_positions import PeakPositionsWithLCE
from lce_plugins.plugins.peak_positions_lce import NOT_RECONSTRUCTED, PeakPositionsLCE
from lce_plugins.plugins.register import register

__all__ = [
    "NOT_RECONSTRUCTED",
    "EventPositionsLCE",
    "PeakLCE",
    "PeakPositionsLCE",
    "PeakPositionsWithLCE",
    "register",
]

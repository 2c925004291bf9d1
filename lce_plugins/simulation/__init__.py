"""A Kr83m S2 detector simulation whose true light response is known.

Use it to develop and validate anything that learns or uses LCE maps without real data:

>>> from lce_plugins.simulation import simulate_kr83m, truth_map, nominal_map
>>> peaks, truth = simulate_kr83m(1000, seed=7)          # doctest: +SKIP
>>> truth_map().lce(truth["x_truth"], truth["y_truth"])  # doctest: +SKIP

Everything is seeded; see :mod:`.kr83m` for the event model and :mod:`.response` for
the optics.
"""

from lce_plugins.simulation.detector import (
    Detector,
    DetectorConfig,
    build_detector,
    default_detector,
)
from lce_plugins.simulation.kr83m import Kr83mSource, truth_dtype
from lce_plugins.simulation.response import bottom_array_lce, nominal_map, truth_map
from lce_plugins.simulation.runs import seed_for_run, simulate_kr83m, simulate_slice

__all__ = [
    "Detector",
    "DetectorConfig",
    "Kr83mSource",
    "bottom_array_lce",
    "build_detector",
    "default_detector",
    "nominal_map",
    "seed_for_run",
    "simulate_kr83m",
    "simulate_slice",
    "truth_dtype",
    "truth_map",
]

"""Data-driven S2 light collection efficiency (LCE) maps for XENONnT.

The import is light: geometry and the maps load without strax or TensorFlow; the strax
integration (:func:`demo_context`) is imported on first use.
"""

__version__ = "0.1.0"

from lce_plugins.geometry import LivePMTs, pmt_positions  # noqa: E402
from lce_plugins.lce_map import LCEMap, MapFileError  # noqa: E402
from lce_plugins.optics import LightResponse  # noqa: E402

__all__ = [
    "LCEMap",
    "LightResponse",
    "LivePMTs",
    "MapFileError",
    "__version__",
    "demo_context",
    "pmt_positions",
]


def __getattr__(name):
    # strax and straxen take seconds to import; only pay for them when asked
    if name == "demo_context":
        from lce_plugins.context import demo_context

        return demo_context
    raise AttributeError(f"module 'lce_plugins' has no attribute {name!r}")

"""Data-driven S2 light collection efficiency (LCE) maps for XENONnT.

The import is light: geometry and the maps load without strax or TensorFlow; the strax
integration (:func:`demo_context`) is imported on first use.
"""

from lce_plugins.geometry import LivePMTs, pmt_positions
from lce_plugins.optics import LightResponse

__version__ = "0.1.0"

__all__ = ["LightResponse", "LivePMTs", "__version__", "demo_context", "pmt_positions"]


def __getattr__(name):
    # strax and straxen take seconds to import; only pay for them when asked
    if name == "demo_context":
        from lce_plugins.context import demo_context

        return demo_context
    raise AttributeError(f"module 'lce_plugins' has no attribute {name!r}")

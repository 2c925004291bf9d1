"""Data-driven S2 light collection efficiency (LCE) maps for XENONnT.

The import is light: geometry and the maps load without strax or TensorFlow; the strax
integration (:func:`demo_context`) is imported on first use.
"""

__version__ = "0.1.0"

from lce_plugins.geometry import LivePMTs, pmt_positions  # noqa: E402
from lce_plugins.lce_map import LCEMap, MapFileError  # noqa: E402
from lce_plugins.optics import LightResponse  # noqa: E402

__all__ = [
    "FitStatus",
    "LCEMap",
    "LightResponse",
    "LivePMTs",
    "MapFileError",
    "TrainingOptions",
    "__version__",
    "demo_context",
    "pmt_positions",
    "reconstruct_positions",
    "register",
    "register_map",
    "resolve_map",
    "save_training_input",
    "train",
]

#: Imported on first use: strax and TensorFlow take seconds to import, and processing
#: must never need TensorFlow (only ``train`` does).
_LAZY = {
    "FitStatus": "lce_plugins.pattern_fit",
    "demo_context": "lce_plugins.context",
    "reconstruct_positions": "lce_plugins.reconstruction",
    "register": "lce_plugins.plugins",
    "register_map": "lce_plugins.registry",
    "resolve_map": "lce_plugins.registry",
    "save_training_input": "lce_plugins.training.inputs",
    "TrainingOptions": "lce_plugins.training.options",
    "train": "lce_plugins.training.api",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lce_plugins' has no attribute {name!r}")

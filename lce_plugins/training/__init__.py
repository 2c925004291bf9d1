"""Co-evolution training of LCE maps: the loop, its reports and its plots.

``train`` needs TensorFlow and is imported on first use, so that the options, the
figures of merit (:mod:`.metrics`) and the plots (:mod:`.plots`) load without it.
"""

from lce_plugins.training.options import TrainingOptions

__all__ = ["TrainingOptions", "train"]


def __getattr__(name):
    if name == "train":
        from lce_plugins.training.api import train

        return train
    raise AttributeError(f"module 'lce_plugins.training' has no attribute {name!r}")

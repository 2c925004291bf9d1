"""strax peak types: the ``type`` field of peaks, numbered as strax and straxen do."""

__all__ = ["PEAK_TYPE_S1", "PEAK_TYPE_S2", "PEAK_TYPE_UNKNOWN"]

PEAK_TYPE_UNKNOWN = 0
PEAK_TYPE_S1 = 1
PEAK_TYPE_S2 = 2

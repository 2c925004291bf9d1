"""XENONnT TPC geometry as seen by the S2 light: PMT positions, wall, anode wires.

Everything here is a named constant with its unit in the name, or a small function
returning arrays in cm. The module has no dependencies beyond NumPy so that every other
part of the package (likelihood, maps, simulation, plugins) can share it.

Sources
-------
- PMT positions: ``data/pmt_positions_xenonnt.csv``, a copy of the file that
  ``straxen.pmt_positions()`` downloads (XENONnT/strax_auxiliary_files,
  ``strax_files/pmt_positions_xenonnt.csv``).
- TPC radius, anode wire pitch and direction, anode-to-PMT distance: the project's
  design brief (``DESIGN.md``).
- Anode wire diameter 216 um: XENONnT collaboration, "The XENONnT dark matter
  experiment", Eur. Phys. J. C 84 (2024) 784, arXiv:2402.10446.
- Photocathode radius: Hamamatsu R11410-21 3-inch PMT, 64 mm minimum effective
  photocathode diameter (datasheet).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources

import numpy as np

__all__ = [
    "ANODE_TO_PMT_WINDOW_CM",
    "ANODE_WIRE_ANGLE_DEG",
    "ANODE_WIRE_DIAMETER_CM",
    "ANODE_WIRE_PITCH_CM",
    "EMISSION_DEPTH_MAX_CM",
    "EMISSION_TO_PMT_WINDOW_CM",
    "LIQUID_SURFACE_BELOW_ANODE_CM",
    "LivePMTs",
    "N_BOTTOM_PMTS",
    "N_TOP_PMTS",
    "N_TPC_PMTS",
    "PHOTOCATHODE_RADIUS_CM",
    "PMT_PITCH_CM",
    "TPC_RADIUS_CM",
    "bottom_pmt_positions",
    "pmt_positions",
    "wire_direction",
    "wire_normal",
]

#: Radius of the TPC (inner surface of the PTFE wall) [cm].
TPC_RADIUS_CM = 66.4
#: Top-array PMTs, channels 0 .. 252.
N_TOP_PMTS = 253
#: Bottom-array PMTs, channels 253 .. 493.
N_BOTTOM_PMTS = 241
#: All TPC PMTs; ``area_per_channel`` of a strax peak has this length.
N_TPC_PMTS = N_TOP_PMTS + N_BOTTOM_PMTS
#: Centre-to-centre distance of neighbouring PMTs on the hexagonal pattern [cm].
PMT_PITCH_CM = 8.0
#: Radius of the sensitive photocathode disk of a 3-inch PMT [cm].
PHOTOCATHODE_RADIUS_CM = 3.2

#: Distance between neighbouring anode wires [cm].
ANODE_WIRE_PITCH_CM = 0.5
#: Diameter of an anode wire [cm].
ANODE_WIRE_DIAMETER_CM = 0.0216
#: Direction of the anode wires, counter-clockwise from the x axis [deg].
ANODE_WIRE_ANGLE_DEG = -60.0

#: Vertical distance from the anode plane up to the PMT windows [cm].
ANODE_TO_PMT_WINDOW_CM = 6.9
#: The liquid surface lies this far below the anode; S2 light is emitted in the gas
#: between the two [cm].
LIQUID_SURFACE_BELOW_ANODE_CM = 0.3
#: Deepest emission point of S2 light below the anode [cm] (emission spans 0 .. this).
EMISSION_DEPTH_MAX_CM = LIQUID_SURFACE_BELOW_ANODE_CM
#: Mean vertical distance from the S2 emission region to the PMT windows [cm].
EMISSION_TO_PMT_WINDOW_CM = ANODE_TO_PMT_WINDOW_CM + EMISSION_DEPTH_MAX_CM / 2

_PMT_FILE = "pmt_positions_xenonnt.csv"


@functools.cache
def _read_pmt_file() -> np.ndarray:
    """Return the shipped PMT table as a (494, 2) float64 array of (x, y) in cm."""
    text = resources.files("lce_plugins").joinpath("data", _PMT_FILE).read_text()
    rows = [line.split(",") for line in text.strip().splitlines()[1:]]
    channels = np.array([int(row[0]) for row in rows])
    if not np.array_equal(channels, np.arange(N_TPC_PMTS)):
        raise RuntimeError(f"The shipped {_PMT_FILE} is not in channel order 0..{N_TPC_PMTS - 1}")
    positions = np.array([[float(row[2]), float(row[3])] for row in rows])
    positions.flags.writeable = False
    return positions


def pmt_positions() -> np.ndarray:
    """Positions of the top-array PMTs in channel order.

    Returns
    -------
    numpy.ndarray
        Shape (253, 2), float64: (x, y) of channels 0 .. 252 [cm]. A fresh copy; the
        caller may modify it.

    Examples
    --------
    >>> import lce_plugins
    >>> lce_plugins.pmt_positions().shape
    (253, 2)
    """
    return _read_pmt_file()[:N_TOP_PMTS].copy()


def bottom_pmt_positions() -> np.ndarray:
    """Positions of the bottom-array PMTs, channels 253 .. 493, shape (241, 2) [cm]."""
    return _read_pmt_file()[N_TOP_PMTS:].copy()


def wire_direction() -> np.ndarray:
    """Unit vector along the anode wires in the (x, y) plane, shape (2,)."""
    angle = np.deg2rad(ANODE_WIRE_ANGLE_DEG)
    return np.array([np.cos(angle), np.sin(angle)])


def wire_normal() -> np.ndarray:
    """Unit vector in the (x, y) plane perpendicular to the anode wires, shape (2,).

    Light travelling along this direction crosses the wires; light travelling along
    :func:`wire_direction` runs parallel to them and is shadowed least.
    """
    along = wire_direction()
    return np.array([-along[1], along[0]])


class LivePMTs:
    """Which top-array PMTs deliver usable signals.

    The single mask type of the package: the simulation, the likelihood, maps and the
    position fit all take one. Immutable and hashable, so it can key caches.

    Parameters
    ----------
    mask : array_like of bool, shape (253,)
        True where the PMT is live.

    Examples
    --------
    >>> live = LivePMTs.from_dead_channels([3, 17])
    >>> live.n_live, live.dead_channels
    (251, (3, 17))
    """

    __slots__ = ("_mask",)

    def __init__(self, mask: Iterable[bool]):
        mask = np.asarray(mask)
        if mask.shape != (N_TOP_PMTS,):
            raise ValueError(
                f"A live-PMT mask needs one entry per top PMT, shape ({N_TOP_PMTS},); "
                f"got shape {mask.shape}."
            )
        if mask.dtype != bool:
            raise TypeError(f"A live-PMT mask must be boolean; got dtype {mask.dtype}.")
        if not mask.any():
            raise ValueError("A live-PMT mask with no live PMT cannot be used for anything.")
        self._mask = mask.copy()
        self._mask.flags.writeable = False

    @classmethod
    def all_live(cls) -> LivePMTs:
        """Every top PMT live."""
        return cls(np.ones(N_TOP_PMTS, dtype=bool))

    @classmethod
    def from_dead_channels(cls, dead_channels: Iterable[int]) -> LivePMTs:
        """Build the mask from the channel numbers (0 .. 252) of dead top PMTs.

        Channel numbers of the bottom array (253 .. 493) are rejected: they have no
        place in a top-array mask, and silently dropping them would hide a mistake.
        """
        dead = np.unique(np.asarray(list(dead_channels), dtype=np.int64))
        bad = dead[(dead < 0) | (dead >= N_TOP_PMTS)]
        if bad.size:
            raise ValueError(
                f"Dead top-PMT channels must lie in 0..{N_TOP_PMTS - 1}; got {bad.tolist()}."
            )
        mask = np.ones(N_TOP_PMTS, dtype=bool)
        mask[dead] = False
        return cls(mask)

    @property
    def mask(self) -> np.ndarray:
        """Read-only boolean array, shape (253,), True for live PMTs."""
        return self._mask

    @property
    def dead_channels(self) -> tuple[int, ...]:
        """Channel numbers of the dead PMTs, ascending."""
        return tuple(int(c) for c in np.flatnonzero(~self._mask))

    @property
    def n_live(self) -> int:
        """Number of live PMTs."""
        return int(self._mask.sum())

    def __array__(self, dtype=None, copy=None):
        return self._mask.astype(dtype) if dtype is not None else self._mask.copy()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LivePMTs) and np.array_equal(self._mask, other._mask)

    def __hash__(self) -> int:
        return hash(self.dead_channels)

    def __repr__(self) -> str:
        return f"LivePMTs(n_live={self.n_live}, dead_channels={list(self.dead_channels)})"

"""The events a training fits: areas, usable channels, initial positions, truth.

:func:`prepare_events` checks the arrays that :func:`lce_plugins.train` receives and
turns them into :class:`TrainingEvents`; :func:`split_events` divides them into training
and held-out events. Events that cannot enter a fit at all (NaN or infinite areas on a
used channel, no light) are kept out and counted, never silently fitted.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from lce_plugins import geometry
from lce_plugins.geometry import N_TOP_PMTS, N_TPC_PMTS, LivePMTs
from lce_plugins.optics import per_event_values

__all__ = ["TrainingEvents", "prepare_events", "split_events"]

log = logging.getLogger(__name__)

#: Initial positions beyond the wall are pulled this far inside it [cm].
WALL_CLEARANCE_CM = 0.01
#: Truth fields that a synthetic training compares with (simulation only).
TRUTH_FIELDS = ("x_truth", "y_truth", "n_photons_truth", "is_outlier")


@dataclass(frozen=True)
class TrainingEvents:
    """Checked training input.

    Attributes
    ----------
    area : numpy.ndarray
        Shape (n, 253), float64: top-array areas [PE].
    used : numpy.ndarray
        Shape (n, 253), bool: channels that enter the likelihood (live, not saturated).
    saturated : numpy.ndarray
        Shape (n, 253), bool: saturated channels.
    x, y : numpy.ndarray
        Shape (n,), float64: initial positions [cm], NaN where none was given (the
        first fit then seeds itself).
    live_pmts : LivePMTs
    truth : numpy.ndarray or None
        Shape (n,), structured with :data:`TRUTH_FIELDS` (synthetic data only).
    n_dropped : int
        Input events left out (non-finite areas on used channels, no light).
    """

    area: np.ndarray
    used: np.ndarray
    saturated: np.ndarray
    x: np.ndarray
    y: np.ndarray
    live_pmts: LivePMTs
    truth: np.ndarray | None
    n_dropped: int

    def __len__(self) -> int:
        return len(self.area)

    def fingerprint(self) -> str:
        """SHA-256 of the areas, channel masks and initial positions (for resuming)."""
        digest = hashlib.sha256()
        for values in (self.area, self.used, self.x, self.y):
            digest.update(np.ascontiguousarray(values).tobytes())
        return digest.hexdigest()


def _per_channel(values, name: str, n_events: int | None = None) -> np.ndarray:
    """A (n, 253) or (n, 494) array as its top-array part."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] not in (N_TOP_PMTS, N_TPC_PMTS):
        raise ValueError(
            f"{name} must have shape (n_events, {N_TOP_PMTS}) or (n_events, {N_TPC_PMTS}); "
            f"got {values.shape}."
        )
    if n_events is not None and len(values) != n_events:
        raise ValueError(f"{name} has {len(values)} rows; area_per_channel has {n_events}.")
    return values[:, :N_TOP_PMTS]


def _live_pmts(live_pmts, dead_pmts) -> LivePMTs:
    if live_pmts is not None and dead_pmts is not None:
        raise ValueError("Give live_pmts or dead_pmts, not both.")
    if isinstance(live_pmts, LivePMTs):
        return live_pmts
    if live_pmts is not None:
        return LivePMTs(np.asarray(live_pmts))
    return LivePMTs.from_dead_channels([] if dead_pmts is None else dead_pmts)


def _initial_positions(x, y, n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Initial x, y [cm] as float64 arrays (NaN if not given), pulled inside the wall."""
    if (x is None) != (y is None):
        raise ValueError("Give both initial x and y, or neither.")
    if x is None:
        return np.full(n_events, np.nan), np.full(n_events, np.nan)
    x, y = (per_event_values(f"Initial {name} [cm]", values, n_events)
            for name, values in (("x", x), ("y", y)))  # fmt: skip
    r = np.hypot(x, y)
    limit = geometry.TPC_RADIUS_CM - WALL_CLEARANCE_CM
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(r > limit, limit / r, 1.0)
    return x * scale, y * scale


def _check_truth(truth, n_events: int) -> np.ndarray | None:
    if truth is None:
        return None
    names = getattr(getattr(truth, "dtype", None), "names", None) or ()
    missing = [name for name in TRUTH_FIELDS if name not in names]
    if missing:
        raise ValueError(f"truth must be a structured array with {TRUTH_FIELDS}; lacks {missing}.")
    if len(truth) != n_events:
        raise ValueError(f"truth has {len(truth)} rows; area_per_channel has {n_events}.")
    return np.asarray(truth)


def _usable_events(area: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Events whose used channels are all finite and that have some light."""
    finite = np.all(np.isfinite(area) | ~used, axis=1)
    light = np.sum(np.where(used & np.isfinite(area), area, 0.0), axis=1) > 0.0
    return finite & light


def prepare_events(
    area_per_channel,
    *,
    x=None,
    y=None,
    live_pmts=None,
    dead_pmts=None,
    saturated_channel=None,
    truth=None,
) -> TrainingEvents:
    """Check the training input and keep the events a fit can use.

    Parameters
    ----------
    area_per_channel : array_like
        Shape (n, 253) or (n, 494), areas [PE]; only the top array is used.
    x, y : array_like, optional
        Initial positions [cm], shape (n,) each (e.g. straxen's MLP/CNF positions).
        Positions beyond the wall are pulled inside it; NaN entries are seeded by the
        first fit.
    live_pmts : LivePMTs or array_like of bool, optional
        Shape (253,). Alternatively ``dead_pmts``.
    dead_pmts : sequence of int, optional
        Dead top-array channels (0..252).
    saturated_channel : array_like, optional
        Same shape as the areas, nonzero where a channel saturated.
    truth : numpy.ndarray, optional
        Shape (n,), with :data:`TRUTH_FIELDS`: the simulation's truth.

    Returns
    -------
    TrainingEvents

    Raises
    ------
    ValueError, TypeError
        For shapes that do not fit, non-numeric input, or fewer than 10 usable events.
    """
    area = _per_channel(area_per_channel, "area_per_channel")
    if area.dtype.kind not in "fiu":
        raise TypeError(f"area_per_channel must be numeric [PE]; got dtype {area.dtype}.")
    n_events = len(area)
    live = _live_pmts(live_pmts, dead_pmts)
    saturated = np.zeros(area.shape, bool)
    if saturated_channel is not None:
        saturated = _per_channel(saturated_channel, "saturated_channel", n_events) != 0
    x, y = _initial_positions(x, y, n_events)
    truth = _check_truth(truth, n_events)

    area = area.astype(np.float64)
    used = live.mask[None, :] & ~saturated
    usable = _usable_events(area, used)
    n_dropped = int((~usable).sum())
    if n_dropped:
        log.warning("%d of %d events dropped: NaN/inf areas on used channels or no light",
                    n_dropped, n_events)  # fmt: skip
    if usable.sum() < 10:
        raise ValueError(f"Only {int(usable.sum())} usable events; a training needs many more.")
    return TrainingEvents(
        area=np.ascontiguousarray(area[usable]), used=np.ascontiguousarray(used[usable]),
        saturated=np.ascontiguousarray(saturated[usable]), x=x[usable], y=y[usable],
        live_pmts=live, truth=None if truth is None else truth[usable], n_dropped=n_dropped,
    )  # fmt: skip


def split_events(n_events: int, heldout_fraction: float, seed: int):
    """Indices of the training and the held-out events, a seeded random split.

    Returns
    -------
    train, heldout : numpy.ndarray
        Sorted int64 index arrays; together they cover 0..n_events-1 once.
    """
    n_heldout = int(round(heldout_fraction * n_events))
    if not 1 <= n_heldout < n_events:
        raise ValueError(
            f"heldout_fraction {heldout_fraction} of {n_events} events leaves no training or "
            "no held-out events."
        )
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,))).permutation(
        n_events
    )
    return np.sort(order[n_heldout:]), np.sort(order[:n_heldout])

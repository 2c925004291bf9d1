"""Where ``lce-train`` gets its events: a synthetic run, an input file, a strax context.

:func:`load_training_input` returns the keyword arguments of
:func:`lce_plugins.train` for one source description (the ``source`` part of
``run_config.json``), so that a resumed run rebuilds exactly the same input.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np

from lce_plugins.geometry import N_TOP_PMTS
from lce_plugins.optics import per_event_values
from lce_plugins.peak_types import PEAK_TYPE_S2
from lce_plugins.training.events import TRUTH_FIELDS, _live_pmts, _per_channel

__all__ = ["load_training_input", "save_training_input", "silent_channels"]

log = logging.getLogger(__name__)


def silent_channels(area_per_channel) -> list[int]:
    """Top-array channels whose area is exactly 0 in every event (dead PMTs)."""
    top = np.asarray(area_per_channel)[:, :N_TOP_PMTS]
    return [int(channel) for channel in np.flatnonzero(np.all(top == 0, axis=0))]


def save_training_input(
    path,
    area_per_channel,
    *,
    x=None,
    y=None,
    dead_pmts=None,
    saturated_channel=None,
    spe_resolution=None,
) -> Path:
    """Write the input file of ``lce-train --input`` (a compressed ``.npz``).

    Parameters
    ----------
    path : str or Path
        Where to write; ``.npz`` is appended if missing.
    area_per_channel : array_like
        Shape (n, 253) or (n, 494), float: the S2s' areas [PE]; only the top array is
        stored.
    x, y : array_like, optional
        Shape (n,): initial positions [cm] (e.g. from straxen's ``peak_positions``).
    dead_pmts : sequence of int, optional
        Dead top-array channels; without them ``lce-train`` takes the channels that are
        0 in every event.
    saturated_channel : array_like, optional
        Same shape as the areas, nonzero where a channel saturated.
    spe_resolution : array_like, optional
        Shape (253,): single-PE resolutions of the top PMTs [PE].

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError, TypeError
        For shapes that do not fit or values that are not numbers.
    """
    area = _per_channel(area_per_channel, "area_per_channel")
    if area.dtype.kind not in "fiu":
        raise TypeError(f"area_per_channel must be numeric [PE]; got dtype {area.dtype}.")
    stored = dict(area_per_channel=area.astype(np.float32))
    if (x is None) != (y is None):
        raise ValueError("Give both initial x and y, or neither.")
    if x is not None:
        stored["x"] = per_event_values("x [cm]", x, len(area)).astype(np.float32)
        stored["y"] = per_event_values("y [cm]", y, len(area)).astype(np.float32)
    if dead_pmts is not None:
        stored["dead_pmts"] = np.flatnonzero(~_live_pmts(None, dead_pmts).mask)
    if saturated_channel is not None:
        saturated = _per_channel(saturated_channel, "saturated_channel", len(area))
        stored["saturated_channel"] = (saturated != 0).astype(np.int8)
    if spe_resolution is not None:
        resolution = np.asarray(spe_resolution, dtype=np.float64)
        if resolution.shape != (N_TOP_PMTS,):
            raise ValueError(
                f"spe_resolution must have shape ({N_TOP_PMTS},); got {resolution.shape}."
            )
        stored["spe_resolution"] = resolution
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez_compressed(path, **stored)
    log.info("Wrote %d events to %s", len(area), path)
    return path


def _dead_pmts(text: str | None, area_per_channel) -> list[int]:
    if text:
        try:
            return [int(channel) for channel in text.split(",") if channel.strip()]
        except ValueError as err:
            raise ValueError(f"--dead-pmts must be comma-separated channels; got {text!r}") from err
    dead = silent_channels(area_per_channel)
    log.info("Dead top PMTs (no signal in any event): %s", dead)
    return dead


def _synthetic(n_events: int, seed: int, progress: bool) -> dict:
    from lce_plugins.simulation import default_detector, simulate_kr83m, truth_map
    from lce_plugins.simulation.initial import initial_positions

    if n_events < 100:
        raise ValueError(f"--synthetic needs at least 100 events; got {n_events}.")
    log.info("Simulating %d Kr83m S2s (synthetic), seed %d", n_events, seed)
    peaks, truth = simulate_kr83m(n_events, seed=seed, progress=progress)
    initial = initial_positions(peaks["area_per_channel"],
                                saturated_channel=peaks["saturated_channel"])  # fmt: skip
    return dict(
        area_per_channel=peaks["area_per_channel"], saturated_channel=peaks["saturated_channel"],
        x=initial["x"], y=initial["y"], dead_pmts=default_detector().live_pmts.dead_channels,
        truth=truth, truth_map=truth_map(),
        provenance=dict(data=f"synthetic Kr83m run, {n_events} events, seed {seed}",
                        synthetic=True),
    )  # fmt: skip


def _file_truth(stored: dict) -> dict:
    """Truth and true map of a file written by ``lce-simulate`` (simulation only)."""
    if not (set(TRUTH_FIELDS) <= set(stored) and "detector_seed" in stored):
        return {}
    from lce_plugins.simulation import DetectorConfig, truth_map

    n_events = len(stored["area_per_channel"])
    truth = np.zeros(n_events, dtype=[(name, stored[name].dtype) for name in TRUTH_FIELDS])
    for name in TRUTH_FIELDS:
        truth[name] = stored[name]
    return dict(truth=truth, truth_map=truth_map(DetectorConfig(seed=int(stored["detector_seed"]))))


def _from_file(path: str, dead_pmts: str | None) -> dict:
    with np.load(path, allow_pickle=False) as archive:
        stored = {key: archive[key] for key in archive.files}
    if "area_per_channel" not in stored:
        raise KeyError(f"{path} has no 'area_per_channel' (it holds {sorted(stored)}).")
    area = stored["area_per_channel"]
    result = dict(area_per_channel=area, x=stored.get("x"), y=stored.get("y"),
                  saturated_channel=stored.get("saturated_channel"),
                  spe_resolution=stored.get("spe_resolution"),
                  provenance=dict(data=f"input file {Path(path).name}"))  # fmt: skip
    if "dead_pmts" in stored and not dead_pmts:
        result["dead_pmts"] = [int(channel) for channel in stored["dead_pmts"]]
    else:
        result["dead_pmts"] = _dead_pmts(dead_pmts, area)
    truth = _file_truth(stored)
    if truth:
        result |= truth
        result["provenance"]["synthetic"] = True
    return result


def _context(spec: str):
    module_name, _, function_name = spec.partition(":")
    if not (module_name and function_name):
        raise ValueError(f"--context must be MODULE:FUNCTION; got {spec!r}.")
    return getattr(importlib.import_module(module_name), function_name)()


def _from_context(source: dict) -> dict:
    st = _context(source["context"])
    targets, fields = ["peaks"], ("x", "y")
    if source.get("positions"):
        target, _, names = source["positions"].partition(":")
        targets.append(target)
        fields = tuple(names.split(",")) if names else fields
    selection = [f"type == {PEAK_TYPE_S2}"] + (
        [source["selection"]] if source.get("selection") else []
    )
    peaks = st.get_array(source["run_id"], targets, selection=selection, progress_bar=False)
    log.info("Read %d S2 peaks of runs %s", len(peaks), ", ".join(source["run_id"]))
    positions = {}
    if len(targets) > 1:
        positions = dict(x=peaks[fields[0]], y=peaks[fields[1]])
    return dict(
        area_per_channel=peaks["area_per_channel"], saturated_channel=peaks["saturated_channel"],
        dead_pmts=_dead_pmts(source.get("dead_pmts"), peaks["area_per_channel"]), **positions,
        provenance=dict(data=f"strax context {source['context']}, runs {source['run_id']}",
                        selection=source.get("selection")),
    )  # fmt: skip


def load_training_input(source: dict, *, seed: int = 0, progress: bool = True) -> dict:
    """Keyword arguments of :func:`lce_plugins.train` for a source description.

    Parameters
    ----------
    source : dict
        ``synthetic`` (number of events), ``input`` (path of an ``.npz``) or
        ``context`` (``MODULE:FUNCTION``) with ``run_id`` (list), and optionally
        ``selection``, ``positions`` (``TARGET[:X,Y]``) and ``dead_pmts`` (``"1,2"``).
    seed : int
        Seeds a synthetic run.
    progress : bool
        Progress bar of a synthetic simulation.
    """
    if source.get("input"):
        return _from_file(source["input"], source.get("dead_pmts"))
    if source.get("context"):
        return _from_context(source)
    return _synthetic(int(source["synthetic"]), seed, progress)

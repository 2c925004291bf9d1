"""Export a map to straxen's S2 pattern-map format (an ``InterpolatingMap`` pickle).

straxen's ``EventPatternFit`` reads its S2 pattern map through
``itp_map://resource://FILE?fmt=pkl``; with an exported data-driven map, straxen's own
goodness of fit uses it unchanged. The pattern (normalised over live PMTs) is tabulated
on a regular (x, y) grid covering the TPC; nodes outside the wall get the pattern at the
wall point on the same radius, so that interpolation near the wall stays sensible. The
map array has shape (n_x, n_y, 253), stored zstd-compressed as float32 (straxen's
``compressed`` form; its ``save_interpolation_formatted_map`` refuses a grid coordinate
system with an array-valued map, so the dictionary is written here). Use a ``.pkl``
name: straxen parses plain ``.json`` maps very slowly.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path

import numpy as np

from lce_plugins.optics import LightResponse

__all__ = ["export_straxen_map", "straxen_grid"]

log = logging.getLogger(__name__)


def straxen_grid(radius_cm: float, grid_step_cm: float) -> np.ndarray:
    """Node coordinates along x (and y) of the exported grid: -R .. R [cm]."""
    n_nodes = int(np.ceil(2.0 * radius_cm / grid_step_cm)) + 1
    return np.linspace(-radius_cm, radius_cm, n_nodes)


def export_straxen_map(
    response: LightResponse,
    path: str | os.PathLike,
    *,
    grid_step_cm: float = 1.0,
    description: str = "",
) -> Path:
    """Write ``response``'s pattern as a straxen ``InterpolatingMap`` pickle.

    Parameters
    ----------
    response : LightResponse
        The map (an :class:`~lce_plugins.lce_map.LCEMap`, whose content hash goes into
        the description).
    path : path
        Output file, ``.pkl``.
    grid_step_cm : float
        Grid spacing [cm]; linear interpolation between nodes is accurate to about
        ``(grid_step / 7 cm)**2 / 8`` relative for the brightest PMTs.
    description : str
        Added to the map's description.

    Returns
    -------
    Path
        The file written. Load it in straxen with
        ``itp_map://resource://PATH?fmt=pkl`` (optionally ``&method=RegularGridInterpolator``).
    """
    import strax

    if not grid_step_cm > 0:
        raise ValueError(f"grid_step_cm must be positive; got {grid_step_cm}.")
    path = Path(path)
    if path.suffix != ".pkl":
        raise ValueError(f"Export to a .pkl file (straxen fmt=pkl); got {path.name!r}.")
    nodes = straxen_grid(response.radius_cm, grid_step_cm)
    x, y = np.meshgrid(nodes, nodes, indexing="ij")
    r = np.hypot(x, y)
    inside = np.minimum(1.0, response.radius_cm * (1.0 - 1e-9) / np.maximum(r, 1e-12))
    pattern = response.pattern(x.ravel() * inside.ravel(), y.ravel() * inside.ravel())
    pattern = pattern.reshape(len(nodes), len(nodes), -1).astype(np.float32)

    identity = getattr(response, "content_hash", "")
    text = (f"S2 top-array pattern (LCE normalised over live PMTs) of lce_plugins map "
            f"{response.name!r} {identity}. {description}").strip()  # fmt: skip
    extent = [float(nodes[0]), float(nodes[-1]), len(nodes)]
    output = dict(
        coordinate_system=[["x", extent], ["y", extent]],
        map=strax.io.COMPRESSORS["zstd"]["compress"](pattern),
        compressed=("zstd", "float32", pattern.shape),
        name=response.name,
        description=text,
        timestamp=time.time(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as stream:
        pickle.dump(output, stream)
    os.replace(partial, path)
    log.info("Exported %r to straxen format: %s (%d x %d nodes)", response.name, path,
             len(nodes), len(nodes))  # fmt: skip
    return path

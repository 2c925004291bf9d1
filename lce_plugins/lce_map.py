"""The portable LCE map: one versioned file that processing evaluates without TensorFlow.

An :class:`LCEMap` is a :class:`~lce_plugins.optics.LightResponse` (the structural model's
tabulated functions, PMT efficiencies, floor, geometry and live PMTs) plus what users of
the map need with it: the per-PMT single-PE resolutions and p_dpe of the likelihood, and
the provenance of the map. The simulation's true response and nominal map, and maps the
package learns, are all LCEMaps, so fits, metrics and exports treat them alike.

File format (``.npz``, written atomically): arrays ``direct``, ``reflection``,
``shadow`` (spline coefficients, (n_intervals, 4)), ``table_steps`` (3,),
``efficiency`` (253,), ``live`` (253,) bool, ``pmt_xy`` (253, 2) [cm],
``spe_resolution`` (253,) [PE], ``scalars`` (floor, p_dpe, height_cm, radius_cm,
wire_angle_deg), and ``metadata``, a JSON text with ``schema_version``, ``name``,
``provenance`` and ``content_hash`` (SHA-256 of everything else, in a fixed order).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from lce_plugins import __version__, geometry
from lce_plugins.optics import CubicTable, LightResponse

__all__ = ["SCHEMA_VERSION", "LCEMap", "MapFileError"]

log = logging.getLogger(__name__)

#: Version of the file layout; files of another version are refused.
SCHEMA_VERSION = 1
_ARRAYS = ("direct", "reflection", "shadow", "table_steps", "efficiency", "live", "pmt_xy",
           "spe_resolution", "scalars")  # fmt: skip


class MapFileError(ValueError):
    """An LCE map file that cannot be used: corrupt, truncated, tampered or of another
    schema version."""


class LCEMap(LightResponse):
    """A light response with its likelihood parameters and provenance, saveable.

    Parameters
    ----------
    response : LightResponse
        The model (tables, efficiencies, floor, live PMTs, geometry).
    spe_resolution : array_like, shape (253,)
        Single-PE area resolution of each top PMT [PE].
    p_dpe : float
        Double-photoelectron emission probability.
    provenance : dict
        JSON-serialisable description of where the map comes from (data, options, date);
        the package version is added if missing. It is part of the content hash.
    name : str, optional
        Defaults to the response's name.
    """

    def __init__(self, response: LightResponse, *, spe_resolution, p_dpe: float,
                 provenance: dict | None = None, name: str | None = None):  # fmt: skip
        super().__init__(
            direct=response.direct, reflection=response.reflection, shadow=response.shadow,
            efficiency=response.efficiency, floor=response.floor, live_pmts=response.live_pmts,
            name=response.name if name is None else name, height_cm=response.height_cm,
            radius_cm=response.radius_cm, wire_angle_deg=response.wire_angle_deg,
        )  # fmt: skip
        resolution = np.array(spe_resolution, dtype=np.float64)
        if resolution.shape != (geometry.N_TOP_PMTS,) or not np.all(resolution > 0):
            raise ValueError(
                f"spe_resolution needs {geometry.N_TOP_PMTS} positive values [PE]; "
                f"got shape {resolution.shape}."
            )
        if not 0 <= p_dpe < 1:
            raise ValueError(f"p_dpe must lie in [0, 1); got {p_dpe}.")
        resolution.flags.writeable = False
        self.spe_resolution, self.p_dpe = resolution, float(p_dpe)
        provenance = dict(provenance or {})
        provenance.setdefault("package_version", __version__)
        try:
            self.provenance = json.loads(json.dumps(provenance, sort_keys=True))
        except TypeError as err:
            raise TypeError(f"provenance must be JSON-serialisable: {err}") from err

    # --- content and identity -----------------------------------------------------------

    def _arrays(self) -> dict:
        return dict(
            direct=self.direct.coefficients,
            reflection=self.reflection.coefficients,
            shadow=self.shadow.coefficients,
            table_steps=np.array([self.direct.step, self.reflection.step, self.shadow.step]),
            efficiency=self.efficiency,
            live=self.live_pmts.mask,
            pmt_xy=self.pmt_xy,
            spe_resolution=self.spe_resolution,
            scalars=np.array(
                [self.floor, self.p_dpe, self.height_cm, self.radius_cm, self.wire_angle_deg]
            ),  # fmt: skip
        )

    @staticmethod
    def _hash(arrays: dict, name: str, provenance: dict) -> str:
        digest = hashlib.sha256(f"lce_map schema {SCHEMA_VERSION}".encode())
        for key in _ARRAYS:
            array = np.ascontiguousarray(arrays[key])
            digest.update(f"{key}{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        digest.update(json.dumps({"name": name, "provenance": provenance}, sort_keys=True).encode())
        return digest.hexdigest()

    @property
    def content_hash(self) -> str:
        """SHA-256 of the map's content (tables, parameters, geometry, provenance)."""
        return self._hash(self._arrays(), self.name, self.provenance)

    # --- files ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the map atomically (a reader never sees a half-written file).

        Returns the path written; ``.npz`` is appended if the name lacks it.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        metadata = dict(schema_version=SCHEMA_VERSION, name=self.name,
                        provenance=self.provenance, content_hash=self.content_hash)  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, metadata=np.array(json.dumps(metadata)), **self._arrays())
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        log.info("Wrote LCE map %r to %s (hash %s)", self.name, path, self.content_hash[:12])
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LCEMap:
        """Read a map written by :meth:`save`; needs neither TensorFlow nor the network.

        Raises
        ------
        MapFileError
            If the file is missing, not a map, truncated, altered or of another schema.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as stored:
                metadata = json.loads(str(stored["metadata"]))
                arrays = {key: stored[key] for key in _ARRAYS}
        except FileNotFoundError as err:
            raise MapFileError(f"No LCE map at {path}.") from err
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise MapFileError(
                f"{path} is not a readable LCE map ({type(err).__name__}: {err}); it may be "
                "truncated or not a map file. Write maps with LCEMap.save."
            ) from err
        return cls._from_stored(path, metadata, arrays)

    @classmethod
    def _from_stored(cls, path: Path, metadata: dict, arrays: dict) -> LCEMap:
        version = metadata.get("schema_version")
        if version != SCHEMA_VERSION:
            raise MapFileError(
                f"{path} has LCE-map schema version {version!r}; this lce_plugins "
                f"({__version__}) reads version {SCHEMA_VERSION}. Use a matching version."
            )
        name, provenance = metadata.get("name", ""), metadata.get("provenance", {})
        if cls._hash(arrays, name, provenance) != metadata.get("content_hash"):
            raise MapFileError(
                f"{path} does not match its content hash: it was altered or damaged."
            )
        steps, scalars = arrays["table_steps"], arrays["scalars"]
        response = LightResponse(
            direct=CubicTable(float(steps[0]), arrays["direct"]),
            reflection=CubicTable(float(steps[1]), arrays["reflection"]),
            shadow=CubicTable(float(steps[2]), arrays["shadow"]),
            efficiency=arrays["efficiency"], floor=float(scalars[0]),
            live_pmts=geometry.LivePMTs(arrays["live"]), name=name,
            height_cm=float(scalars[2]), radius_cm=float(scalars[3]),
            wire_angle_deg=float(scalars[4]),
        )  # fmt: skip
        if not np.array_equal(arrays["pmt_xy"], response.pmt_xy):
            raise MapFileError(f"{path} was made for other PMT positions than this package's.")
        return cls(response, spe_resolution=arrays["spe_resolution"], p_dpe=float(scalars[1]),
                   provenance=provenance, name=name)  # fmt: skip

    def export_straxen(self, path: str | os.PathLike, **options) -> Path:
        """Write the pattern as a straxen interpolating map (see
        :func:`lce_plugins.straxen_export.export_straxen_map`)."""
        from lce_plugins.straxen_export import export_straxen_map

        return export_straxen_map(self, path, **options)

    def __repr__(self) -> str:
        return (
            f"LCEMap(name={self.name!r}, {self.live_pmts.n_live} live PMTs, "
            f"hash={self.content_hash[:12]})"
        )

"""Disk cache of the likelihood tables (arrays in an ``.npz`` keyed by a hash).

Tables take seconds to build; once written they load in milliseconds. The directory is
``$LCE_PLUGINS_CACHE_DIR`` or ``~/.cache/lce_plugins``; an empty variable switches the
cache off. Problems with the cache never stop a computation: an unreadable file is
ignored (warning) and rebuilt, an unwritable directory only logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["CACHE_ENV", "cache_directory", "cache_file", "load_arrays", "store_arrays"]

log = logging.getLogger(__name__)

CACHE_ENV = "LCE_PLUGINS_CACHE_DIR"


def cache_directory() -> Path | None:
    """Where tables are cached: ``$LCE_PLUGINS_CACHE_DIR``, else ``~/.cache/lce_plugins``.

    Setting the variable to an empty string switches the disk cache off.
    """
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value) if value else None
    return Path.home() / ".cache" / "lce_plugins"


def cache_file(kind: str, key: tuple) -> Path | None:
    """The file for a table of ``kind`` whose content is fixed by ``key`` (None: no cache)."""
    directory = cache_directory()
    if directory is None:
        return None
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
    return directory / f"{kind}_{digest}.npz"


def load_arrays(path: Path | None, names: tuple[str, ...]) -> dict | None:
    """The named arrays from ``path``, or None if there is no usable file."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path) as stored:
            return {name: stored[name] for name in names}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        log.warning("Ignoring the unreadable likelihood-table cache %s: %s", path, err)
        return None


def store_arrays(path: Path | None, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` atomically (a partial file is never read)."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, **arrays)
        os.replace(partial, path)
    except OSError as err:
        log.info("Could not cache a likelihood table at %s: %s", path, err)

"""A local registry of LCE maps, so that ``lce://NAME`` names a map file.

:func:`register_map` copies a map file into the registry directory as ``NAME.npz``;
:func:`resolve_map` turns ``lce://NAME`` (or a plain path) into the file's path. The
directory is ``$LCE_PLUGINS_MAP_REGISTRY`` if set, else ``lce_plugins/maps`` under
``$XDG_DATA_HOME`` (default ``~/.local/share``). Registering checks that the file is a
readable map; a name already taken by a map of other content is refused unless
``overwrite=True``, so a name cannot silently change meaning under an analysis.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from lce_plugins.lce_map import LCEMap

__all__ = ["PROTOCOL", "register_map", "registered_maps", "registry_directory", "resolve_map"]

log = logging.getLogger(__name__)

#: URL scheme of registered maps.
PROTOCOL = "lce://"
REGISTRY_VARIABLE = "LCE_PLUGINS_MAP_REGISTRY"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def registry_directory() -> Path:
    """Where registered maps live (see the module docstring); not created here."""
    configured = os.environ.get(REGISTRY_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "lce_plugins" / "maps"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".npz"):
        raise ValueError(
            f"A map name is letters, digits, '_', '.' and '-', starting with a letter or "
            f"digit, without '.npz'; got {name!r}."
        )
    return name


def register_map(path: str | os.PathLike, name: str, *, overwrite: bool = False) -> Path:
    """Copy the map file ``path`` into the registry as ``name``; ``lce://name`` then
    resolves to it.

    Returns
    -------
    Path
        The registered file.

    Raises
    ------
    lce_plugins.MapFileError
        If ``path`` is not a readable map.
    FileExistsError
        If ``name`` holds a map of other content and ``overwrite`` is False.
    """
    name = _check_name(name)
    lce_map = LCEMap.load(path)
    target = registry_directory() / f"{name}.npz"
    if target.exists() and not overwrite:
        existing = LCEMap.load(target)
        if existing.content_hash == lce_map.content_hash:
            return target
        raise FileExistsError(
            f"lce://{name} is already a map of other content ({target}, hash "
            f"{existing.content_hash[:12]}); pick another name or pass overwrite=True."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".tmp")
    os.close(handle)
    try:
        shutil.copyfile(path, partial)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    log.info("Registered %s as %s%s (hash %s)", path, PROTOCOL, name, lce_map.content_hash[:12])
    return target


def resolve_map(location: str | os.PathLike) -> Path:
    """The file behind ``lce://NAME`` or a plain path (which must exist).

    Raises
    ------
    FileNotFoundError
        If no such map is registered, or the path does not exist.
    """
    text = os.fspath(location)
    if text.startswith(PROTOCOL):
        name = _check_name(text[len(PROTOCOL) :])
        path = registry_directory() / f"{name}.npz"
        if not path.exists():
            known = ", ".join(registered_maps()) or "none"
            raise FileNotFoundError(
                f"No map registered as {PROTOCOL}{name} in {registry_directory()} (registered: "
                f"{known}); register one with lce_plugins.register_map(path, {name!r})."
            )
        return path
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"No map file at {path}.")
    return path


def registered_maps() -> list[str]:
    """Names of the registered maps, sorted."""
    directory = registry_directory()
    return sorted(path.stem for path in directory.glob("*.npz")) if directory.is_dir() else []

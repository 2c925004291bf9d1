"""The ``lce://`` protocol of straxen's URL configs: a context option that names a map.

``lce_map="lce://NAME"`` names a map in the local registry
(:func:`lce_plugins.register_map`), ``lce_map="lce:///path/to/map.npz"`` or a plain path
a map file. The protocol returns the loaded :class:`~lce_plugins.LCEMap` (cached by
path and content hash).

strax hashes a plugin's options into the lineage of its data, and the option's text
alone would not change when a registered map is replaced. So a preprocessor of the
``lce_map`` option pins the content before the options are hashed: it rewrites the value
to ``lce://<name or path>?content_hash=<hash>``. A different map gives a different
lineage, and a map that changes after the option was pinned is refused.

Both are registered with straxen through the ``straxen`` entry-point group of this
package (``import straxen`` calls :func:`register_protocol`), or by calling it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lce_plugins.lce_map import LCEMap, MapFileError
from lce_plugins.registry import PROTOCOL, resolve_map

__all__ = ["OPTION_NAME", "load_lce_map", "pin_map_content", "register_protocol"]

#: The context option that names the map.
OPTION_NAME = "lce_map"
_SCHEME = PROTOCOL.removesuffix("://")


def _location(argument: str) -> str:
    """``lce://`` argument -> what :func:`~lce_plugins.registry.resolve_map` takes: a
    registry name (no path separator, no ``.npz``) or a path."""
    is_path = os.sep in argument or "/" in argument or argument.endswith(".npz")
    return argument if is_path else PROTOCOL + argument


@functools.lru_cache(maxsize=8)
def _load(path: str, modified_ns: int) -> LCEMap:
    # keyed by the file's modification time too, so a replaced file is read again
    return LCEMap.load(path)


def load_lce_map(argument: str, content_hash: str | None = None) -> LCEMap:
    """The map behind an ``lce://`` argument, checked against ``content_hash``.

    Raises
    ------
    FileNotFoundError
        If no such map is registered or the file is missing.
    MapFileError
        If the map's content is not the one the option was pinned to.
    """
    path = resolve_map(_location(argument)).resolve()
    lce_map = _load(str(path), path.stat().st_mtime_ns)
    if content_hash is not None and lce_map.content_hash != content_hash:
        raise MapFileError(
            f"{PROTOCOL}{argument} now holds a map of content {lce_map.content_hash[:12]}, not "
            f"the {content_hash[:12]} that this processing was configured with; register the "
            "map under a new name (or set the option again) instead of replacing it."
        )
    return lce_map


def pin_map_content(value, name: str | None = None):
    """Preprocessor of straxen's URL configs: ``lce_map`` values get the map's content
    hash (see the module docstring); other options are left alone."""
    if name != OPTION_NAME or not isinstance(value, str | os.PathLike):
        return value
    text = os.fspath(value)
    if text.startswith(PROTOCOL):
        if "content_hash=" in text:
            return text
        argument = text[len(PROTOCOL) :].split("?")[0]
    elif "://" in text:
        return text  # another protocol: the user's choice
    else:
        argument = str(Path(text).expanduser().resolve())
    lce_map = load_lce_map(argument)
    return f"{PROTOCOL}{argument}?content_hash={lce_map.content_hash}"


def register_protocol() -> None:
    """Register ``lce://`` and its preprocessor with straxen's URLConfig (idempotent)."""
    from straxen.config.url_config import URLConfig

    if _SCHEME not in URLConfig._LOOKUP:
        URLConfig.register(_SCHEME, load_lce_map)
    if all(function is not pin_map_content for _, function in URLConfig._PREPROCESSORS):
        URLConfig.preprocessor(pin_map_content)

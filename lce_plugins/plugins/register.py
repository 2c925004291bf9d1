"""Put the LCE plugins into a strax context."""

from __future__ import annotations

import logging
import os

import strax

from lce_plugins.plugins.event_positions_lce import EventPositionsLCE
from lce_plugins.plugins.peak_lce import PeakLCE
from lce_plugins.plugins.peak_positions import PeakPositionsWithLCE, with_algorithms
from lce_plugins.plugins.peak_positions_lce import PeakPositionsLCE
from lce_plugins.straxen_protocol import OPTION_NAME, register_protocol

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(
    st: strax.Context,
    lce_map: str | os.PathLike | None = None,
    default_algorithm: str | None = None,
) -> strax.Context:
    """Register the LCE plugins in a context (e.g. ``straxen.contexts.xenonnt_online()``).

    Adds ``peak_positions_lce``, ``peak_lce`` and ``event_positions_lce``, and replaces
    ``peak_positions`` by one that also merges the algorithm ``lce`` (keeping the
    algorithms the context merged before).

    Parameters
    ----------
    st : strax.Context
        Changed in place and returned.
    lce_map : str or path, optional
        Sets the option ``lce_map``: ``lce://NAME`` (see :func:`lce_plugins.register_map`)
        or a map file.
    default_algorithm : str, optional
        Sets ``default_reconstruction_algorithm`` (``"lce"`` makes the LCE positions the
        ``x``, ``y`` of ``peak_positions`` and so of event building).

    Returns
    -------
    strax.Context
    """
    if not isinstance(st, strax.Context):
        raise TypeError(f"st must be a strax.Context; got {type(st).__name__}.")
    register_protocol()
    registry = st._plugin_class_registry
    existing = registry.get("peak_positions")
    algorithms = (
        ()
        if existing is None or issubclass(existing, PeakPositionsWithLCE)
        else (
            existing.depends_on
            if isinstance(existing.depends_on, tuple)
            else (existing.depends_on,)
        )
    )
    st.register([PeakPositionsLCE, PeakLCE, EventPositionsLCE, with_algorithms(algorithms)])
    config = {}
    if lce_map is not None:
        config[OPTION_NAME] = os.fspath(lce_map)
    if default_algorithm is not None:
        config["default_reconstruction_algorithm"] = default_algorithm
    if config:
        st.set_config(config)
    log.debug("Registered the LCE plugins (merging %s into peak_positions)", algorithms or "none")
    return st

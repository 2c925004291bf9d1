"""Checkpoints of a training: written after every round, read to resume.

One file, ``checkpoint.npz`` in the output directory, replaced atomically after each
round (a training killed at any moment leaves the previous round's checkpoint intact).
It holds the :class:`~lce_plugins.training.coevolution.TrainingState` (per-event
positions, light, deviances and selections, the network's weights, Adam's state, the
history) and a fingerprint of what the training depends on: the events, the options
and the initial map. A resumed training refuses a checkpoint whose fingerprint differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from lce_plugins.training.coevolution import TrainingState
from lce_plugins.training.options import TrainingOptions

__all__ = ["CHECKPOINT_NAME", "CheckpointError", "load_checkpoint", "run_fingerprint",
           "save_checkpoint"]  # fmt: skip

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.npz"
_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: damaged, or from another training."""


#: Options that only say when to stop or where to run: a training may resume with others.
_FREE_OPTIONS = ("max_rounds", "min_rounds", "tolerance", "strategy")


def run_fingerprint(events_fingerprint: str, options: TrainingOptions, map_hash: str) -> str:
    """SHA-256 of the events, the options that shape the result (not the stopping rule
    or the distribution strategy) and the initial map's content hash."""
    shaping = {key: value for key, value in dataclasses.asdict(options).items()
               if key not in _FREE_OPTIONS}  # fmt: skip
    text = json.dumps(dict(events=events_fingerprint, options=shaping, map=map_hash),
                      sort_keys=True)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def _atomic_savez(path: Path, arrays: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def save_checkpoint(directory: str | os.PathLike, state: TrainingState, fingerprint: str) -> Path:
    """Write ``state`` to ``directory/checkpoint.npz`` atomically; returns the path."""
    path = Path(directory) / CHECKPOINT_NAME
    metadata = dict(
        format=_FORMAT, fingerprint=fingerprint, completed_rounds=state.completed_rounds,
        converged=state.converged, history=state.history, timings=state.timings,
        n_weights=len(state.weights), n_optimizer=len(state.optimizer),
        initial_keys=sorted(state.initial),
    )  # fmt: skip
    arrays = {f"state_{name}": getattr(state, name) for name in TrainingState.ARRAYS}
    arrays |= {f"initial_{key}": value for key, value in state.initial.items()}
    arrays |= {f"weight_{i}": value for i, value in enumerate(state.weights)}
    arrays |= {f"optimizer_{i}": value for i, value in enumerate(state.optimizer)}
    _atomic_savez(path, dict(arrays, metadata=np.array(json.dumps(metadata))))
    log.debug("Checkpoint of round %d written to %s", state.completed_rounds, path)
    return path


def _read(path: Path) -> tuple[dict, dict]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            metadata = json.loads(str(stored["metadata"]))
            return metadata, {key: stored[key] for key in stored.files if key != "metadata"}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err}); delete it to "
            "start the training afresh."
        ) from err


def load_checkpoint(directory: str | os.PathLike, fingerprint: str) -> TrainingState | None:
    """The state saved in ``directory``, or None if there is no checkpoint.

    Raises
    ------
    CheckpointError
        If the checkpoint is damaged or belongs to another training (other events,
        options or initial map).
    """
    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        return None
    metadata, arrays = _read(path)
    if metadata.get("format") != _FORMAT or metadata.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path} belongs to another training (other events, options or initial map); "
            "resume with the same input and options, or use another output directory."
        )
    return TrainingState(
        completed_rounds=int(metadata["completed_rounds"]),
        **{name: arrays[f"state_{name}"] for name in TrainingState.ARRAYS},
        initial={key: arrays[f"initial_{key}"] for key in metadata["initial_keys"]},
        history=metadata["history"], converged=bool(metadata["converged"]),
        weights=[arrays[f"weight_{i}"] for i in range(metadata["n_weights"])],
        optimizer=[arrays[f"optimizer_{i}"] for i in range(metadata["n_optimizer"])],
        timings=metadata["timings"],
    )  # fmt: skip

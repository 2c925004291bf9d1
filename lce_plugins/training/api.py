"""``lce_plugins.train``: an LCE map learned from calibration S2s, positions co-evolved.

See :mod:`lce_plugins.training.coevolution` for the method. This module checks the
input, picks the starting map, runs the rounds with checkpoints and a progress bar,
and writes what a training leaves behind in its output directory:

- ``lce_map.npz``: the learned :class:`~lce_plugins.LCEMap` (no TensorFlow needed);
- ``lce_model.keras``: the network in Keras's own format;
- ``report.json``: goodness of fit, homogeneity, rates and (synthetic data) the
  comparison with the truth (:mod:`lce_plugins.training.report`);
- ``history.png``, ``lce_maps.png``, ``residual_maps.png``, ``density.png``,
  ``radial_displacement.png``;
- ``checkpoint.npz``: the state after the last round, from which ``resume=True``
  continues an interrupted training.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lce_plugins import geometry
from lce_plugins.lce_map import LCEMap
from lce_plugins.optics import LightResponse
from lce_plugins.training.checkpoint import load_checkpoint, run_fingerprint, save_checkpoint
from lce_plugins.training.coevolution import CoEvolution, TrainingState, rounds_left
from lce_plugins.training.events import prepare_events
from lce_plugins.training.options import TrainingOptions, options_with
from lce_plugins.training.report import build_report, write_plots

__all__ = ["MAP_FILE", "REPORT_FILE", "starting_map", "train"]

log = logging.getLogger(__name__)

MAP_FILE = "lce_map.npz"
MODEL_FILE = "lce_model.keras"
REPORT_FILE = "report.json"


def _load_map(initial_map) -> LCEMap:
    if initial_map is None:
        from lce_plugins.simulation import nominal_map

        return nominal_map()
    if isinstance(initial_map, LCEMap):
        return initial_map
    if isinstance(initial_map, str | os.PathLike):
        from lce_plugins.registry import resolve_map

        return LCEMap.load(resolve_map(initial_map))
    raise TypeError(
        f"initial_map must be an LCEMap, a path, an lce://NAME or None; got "
        f"{type(initial_map).__name__}."
    )


def starting_map(initial_map, live_pmts: geometry.LivePMTs, spe_resolution=None,
                 p_dpe: float | None = None) -> LCEMap:  # fmt: skip
    """The map a training starts from, with the data's live PMTs.

    Parameters
    ----------
    initial_map : LCEMap, path, ``"lce://NAME"`` or None
        None: the simulation's Monte-Carlo-style nominal map (XENONnT geometry, no wire
        shadowing, equal efficiencies), standing in for an optical Monte-Carlo map.
    live_pmts : LivePMTs
        The data's live PMTs.
    spe_resolution : array_like, optional
        Shape (253,) or (494,), single-PE resolutions [PE]; default: the map's.
    p_dpe : float, optional
        Double-PE probability; default: the map's.
    """
    base = _load_map(initial_map)
    resolution = base.spe_resolution if spe_resolution is None else spe_resolution
    resolution = np.broadcast_to(np.asarray(resolution, dtype=np.float64), (geometry.N_TOP_PMTS,)
                                 if np.ndim(resolution) == 0 else np.shape(resolution))  # fmt: skip
    response = LightResponse(
        direct=base.direct, reflection=base.reflection, shadow=base.shadow,
        efficiency=base.efficiency, floor=base.floor, live_pmts=live_pmts, name=base.name,
        height_cm=base.height_cm, radius_cm=base.radius_cm, wire_angle_deg=base.wire_angle_deg,
    )  # fmt: skip
    return LCEMap(response, spe_resolution=resolution[: geometry.N_TOP_PMTS],
                  p_dpe=base.p_dpe if p_dpe is None else float(p_dpe),
                  provenance=base.provenance, name=base.name)  # fmt: skip


def _initial_state(run: CoEvolution, out: Path | None, resume: bool, fingerprint: str):
    if resume:
        if out is None:
            raise ValueError("resume=True needs the output directory `out` of the training.")
        state = load_checkpoint(out, fingerprint)
        if state is not None:
            run.restore(state)
            run.resume_history(state)
            log.info("Resuming from %s after round %d", out, state.completed_rounds)
            return state
        log.warning("No checkpoint in %s: starting the training afresh", out)
    state = run.start()
    if out is not None:
        save_checkpoint(out, state, fingerprint)
    return state


def _run_rounds(run: CoEvolution, state: TrainingState, out, fingerprint, progress) -> None:
    """Rounds until convergence, a checkpoint after each."""
    options = run.options
    with tqdm(total=options.max_rounds, initial=state.completed_rounds, unit="round",
              desc="Co-evolution", disable=not progress) as bar:  # fmt: skip
        for _ in range(rounds_left(state, options)):
            started = time.perf_counter()
            run.run_round(state, progress=progress)
            state.timings["training_s"] = (state.timings.get("training_s", 0.0)
                                           + time.perf_counter() - started)  # fmt: skip
            if out is not None:
                save_checkpoint(out, state, fingerprint)
            last = state.history[-1]
            bar.update(1)
            bar.set_postfix(heldout_chi2=f"{last['heldout_deviance_per_ndf']:.4f}",
                            loss=f"{last['train_loss']:.3f}")  # fmt: skip
            if state.converged:
                break


def _provenance(run: CoEvolution, state: TrainingState, extra: dict | None) -> dict:
    return dict(
        kind="trained", method="co-evolution (lce_plugins.train)",
        created_utc=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        n_events_train=len(run.train_index), n_events_heldout=len(run.heldout_index),
        rounds=state.completed_rounds, options=dataclasses.asdict(run.options),
        initial_map=dict(name=run.initial_map.name, content_hash=run.initial_map.content_hash),
        **(extra or {}),
    )  # fmt: skip


def _write_outputs(out: Path, run, state, final, lce_map, report, truth, truth_map, plots):
    out.mkdir(parents=True, exist_ok=True)
    report["map_file"] = str(lce_map.save(out / MAP_FILE))
    report["map_content_hash"] = lce_map.content_hash
    run.model.save(out / MODEL_FILE)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    if plots:
        write_plots(out, run, state, final, lce_map, truth=truth, truth_map=truth_map)
    log.info("Wrote map, model, report%s to %s", " and plots" if plots else "", out)


def train(
    area_per_channel,
    *,
    x=None,
    y=None,
    live_pmts=None,
    dead_pmts=None,
    saturated_channel=None,
    initial_map=None,
    spe_resolution=None,
    p_dpe: float | None = None,
    options: TrainingOptions | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    truth=None,
    truth_map: LCEMap | None = None,
    provenance: dict | None = None,
    progress: bool = True,
    plots: bool = True,
    **option_overrides,
) -> tuple[LCEMap, dict]:
    """Learn an LCE map from S2 peaks, fitting every event's position and light with it.

    Parameters
    ----------
    area_per_channel : array_like
        Shape (n, 253) or (n, 494), areas [PE] of Kr83m S2s (top array used).
    x, y : array_like, optional
        Initial positions [cm], shape (n,) (e.g. straxen's MLP/CNF positions); without
        them the events are first fitted with the starting map.
    live_pmts, dead_pmts : optional
        The live top PMTs (LivePMTs or (253,) bool) or the dead channels; default all
        live.
    saturated_channel : array_like, optional
        Same shape as the areas, nonzero where a channel saturated (left out).
    initial_map : LCEMap, path, ``"lce://NAME"`` or None
        Where the network starts (see :func:`starting_map`).
    spe_resolution, p_dpe : optional
        The PMT response of the likelihood; default: the starting map's.
    options : TrainingOptions, optional
        Settings; keyword arguments (``max_rounds=5``, ...) override single ones.
    out : path, optional
        Output directory for the map, model, report, plots and checkpoints.
    resume : bool
        Continue from the checkpoint in ``out`` (same events, options and starting map).
    truth : numpy.ndarray, optional
        Shape (n,), ``x_truth``, ``y_truth``, ``n_photons_truth``, ``is_outlier``
        (simulation only); with ``truth_map`` the report compares with the truth.
    truth_map : LCEMap, optional
        The true response (simulation only).
    provenance : dict, optional
        Added to the map's provenance (e.g. ``data="runs 047201-047210"``).
    progress : bool
        Progress bars (rounds, and the events of the current round).
    plots : bool
        Write the PNG figures (with ``out``).

    Returns
    -------
    lce_map : LCEMap
        The learned map.
    report : dict
        What ``report.json`` holds (see :func:`lce_plugins.training.report.build_report`).
    """
    started = time.perf_counter()
    options = options_with(options, option_overrides)
    events = prepare_events(area_per_channel, x=x, y=y, live_pmts=live_pmts,
                            dead_pmts=dead_pmts, saturated_channel=saturated_channel,
                            truth=truth)  # fmt: skip
    initial = starting_map(initial_map, events.live_pmts, spe_resolution, p_dpe)
    log.info("Training on %d events (%d live PMTs) from map %r; options %s", len(events),
             events.live_pmts.n_live, initial.name, options)  # fmt: skip
    run = CoEvolution(events, initial, options)
    fingerprint = run_fingerprint(events.fingerprint(), options, initial.content_hash)
    out = None if out is None else Path(out)
    state = _initial_state(run, out, resume, fingerprint)
    _run_rounds(run, state, out, fingerprint, progress)

    name = (provenance or {}).get("name", "trained (co-evolution)")
    lce_map, final = run.finish(state, _provenance(run, state, provenance), name)
    timings = dict(state.timings, wall_time_s=time.perf_counter() - started)
    report = build_report(run, state, final, lce_map, timings=timings,
                          truth=events.truth, truth_map=truth_map)  # fmt: skip
    if out is not None:
        _write_outputs(out, run, state, final, lce_map, report, events.truth, truth_map, plots)
    log.info(
        "Trained map %r (hash %s): held-out reduced chi2 %.4f (initial map %.4f)",
        name,
        lce_map.content_hash[:12],
        report["reduced_chi2"],
        report["reduced_chi2_initial"],
    )
    return lce_map, report

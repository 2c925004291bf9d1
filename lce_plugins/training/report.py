"""The numbers and figures a training ends with: ``report.json`` and its PNG plots.

The goodness of fit is measured on the held-out events, each refitted with the map
being judged (trained, initial and, for synthetic data, the truth), on one common
selection: the held-out events that pass the trained map's outlier cut. Positions are
judged on every event that passes the cut (training and held-out). With synthetic
input, the truth adds the LCE error of the maps, position biases and resolutions, the
Cramér-Rao bound, and how well the outlier cut found the merged double S2s.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from lce_plugins.geometry import pmt_positions
from lce_plugins.lce_map import LCEMap
from lce_plugins.reconstruction import FitStatus, reconstruct_positions
from lce_plugins.training import metrics, plots
from lce_plugins.training.coevolution import CoEvolution, TrainingState
from lce_plugins.training.evaluation import deviance_at, goodness_of_fit

__all__ = ["build_report", "plot_channels", "write_plots"]

log = logging.getLogger(__name__)


def _heldout_mask(run: CoEvolution) -> np.ndarray:
    mask = np.zeros(len(run.events), bool)
    mask[run.heldout_index] = True
    return mask


def _gof(deviance, expected, ndf, selection, prefix: str) -> dict:
    figures = goodness_of_fit(deviance, expected, ndf, selection)
    return {prefix: figures["reduced_chi2"],
            f"{prefix}_calibrated": figures["reduced_chi2_calibrated"]}  # fmt: skip


def _fit_with(run: CoEvolution, lce_map: LCEMap, index, x, y, n_photons) -> dict:
    """(x, y, N, D, E[D], status) of events ``index`` refitted with ``lce_map``."""
    events = run.events
    fit = reconstruct_positions(
        events.area[index], lce_map, saturated_channel=events.saturated[index],
        start=(x, y, n_photons), sigma0=run.options.sigma0, warn=False, tabulated=False,
    )  # fmt: skip
    deviance, expected = deviance_at(
        lce_map,
        events.area[index],
        events.used[index],
        fit["x"],
        fit["y"],
        fit["n_photons"],
        sigma0=run.options.sigma0,
    )
    return dict(x=fit["x"].astype(float), y=fit["y"].astype(float), n_photons=fit["n_photons"],
                deviance=deviance, expected=expected, ok=fit["status"] == FitStatus.OK)  # fmt: skip


def _goodness(run: CoEvolution, state: TrainingState, final: TrainingState, truth_fit) -> dict:
    """Held-out reduced chi2 of the trained, initial and (synthetic) true maps, all on the
    held-out events that pass the trained map's cut and have a fit with every map."""
    selection = _heldout_mask(run) & final.kept & np.isfinite(state.initial["deviance"])
    if truth_fit is not None:
        selection &= truth_fit["ok"] & np.isfinite(truth_fit["deviance"])
    report = _gof(final.deviance, final.expected, run.ndf, selection, "reduced_chi2")
    initial = state.initial
    report |= _gof(initial["deviance"], initial["expected"], run.ndf, selection,
                   "reduced_chi2_initial")  # fmt: skip
    if truth_fit is not None:
        report |= _gof(truth_fit["deviance"], truth_fit["expected"], run.ndf, selection,
                       "reduced_chi2_truth")  # fmt: skip
    report["n_events_gof"] = int(selection.sum())
    return report


def _homogeneity(state: TrainingState, final: TrainingState, truth, true_fit) -> dict:
    """Uniformity of the initial and final positions of the kept events; with the truth,
    also of their true positions and of their fits with the true response (the best a
    fit can do: its resolution smears the events at the wall)."""
    kept = final.kept
    result = dict(initial=metrics.homogeneity(state.initial["x"][kept], state.initial["y"][kept]),
                  final=metrics.homogeneity(final.x[kept], final.y[kept]))  # fmt: skip
    if truth is not None:
        result["truth"] = metrics.homogeneity(truth["x_truth"][kept], truth["y_truth"][kept])
        result["truth_map_fit"] = metrics.homogeneity(true_fit["x"][kept], true_fit["y"][kept])
    return result


def _rejection(run: CoEvolution, final: TrainingState, truth) -> dict:
    rejected = ~final.kept
    result = dict(n_events_rejected=int(rejected.sum()),
                  n_rejected_train=int(rejected[run.train_index].sum()),
                  n_rejected_heldout=int(rejected[run.heldout_index].sum()))  # fmt: skip
    if truth is not None:
        outlier = truth["is_outlier"].astype(bool)
        result |= dict(n_merged_s2=int(outlier.sum()),
                       n_merged_s2_rejected=int((outlier & rejected).sum()),
                       n_clean_rejected=int((~outlier & rejected).sum()))  # fmt: skip
    return result


def _truth_comparison(run, state, final, lce_map, truth, truth_map, true_fit) -> dict:
    """LCE errors, position errors and the Cramér-Rao bound (synthetic data only)."""
    clean = final.kept & ~truth["is_outlier"].astype(bool)
    x_true, y_true = truth["x_truth"][clean], truth["y_truth"][clean]
    positions = dict(
        trained=metrics.position_errors(final.x[clean], final.y[clean], x_true, y_true),
        initial=metrics.position_errors(state.initial["x"][clean], state.initial["y"][clean],
                                        x_true, y_true),
        truth_map=metrics.position_errors(true_fit["x"][clean], true_fit["y"][clean],
                                          x_true, y_true),
    )  # fmt: skip
    bound = metrics.cramer_rao_bound(
        truth_map, run.events.area[clean], x_true, y_true, truth["n_photons_truth"][clean],
        spe_resolution=truth_map.spe_resolution, p_dpe=truth_map.p_dpe,
        live=run.events.used[clean],
    )  # fmt: skip
    return dict(
        lce_relative_rms=dict(trained=metrics.lce_relative_rms(lce_map, truth_map),
                              initial=metrics.lce_relative_rms(run.initial_map, truth_map)),
        positions=positions,
        cramer_rao=metrics.summarise_cramer_rao(bound, x_true, y_true),
    )  # fmt: skip


def _true_map_fits(run: CoEvolution, truth, truth_map: LCEMap) -> dict:
    """Every event refitted with the true response, started at the truth."""
    everything = np.arange(len(run.events))
    return _fit_with(
        run,
        truth_map,
        everything,
        truth["x_truth"].astype(float),
        truth["y_truth"].astype(float),
        truth["n_photons_truth"].astype(float),
    )


def build_report(run: CoEvolution, state: TrainingState, final: TrainingState,
                 lce_map: LCEMap, *, timings: dict, truth=None,
                 truth_map: LCEMap | None = None) -> dict:  # fmt: skip
    """The content of ``report.json`` (plain numbers, JSON-ready).

    ``final`` is ``state`` refitted with the final map ``lce_map``
    (:meth:`CoEvolution.finish`); ``timings`` holds ``wall_time_s``, ``training_s`` and
    the per-part times of :attr:`TrainingState.timings`.
    """
    synthetic = truth is not None and truth_map is not None
    true_fit = _true_map_fits(run, truth, truth_map) if synthetic else None
    report = dict(
        synthetic=synthetic, n_events=len(run.events) + run.events.n_dropped,
        n_events_dropped=run.events.n_dropped, n_events_train=len(run.train_index),
        n_events_heldout=len(run.heldout_index),
    )  # fmt: skip
    report |= _rejection(run, final, truth if synthetic else None)
    report |= _goodness(run, state, final, true_fit)
    report["homogeneity"] = _homogeneity(state, final, truth if synthetic else None, true_fit)
    report |= _speed(run, state, timings)
    if synthetic:
        report["truth"] = _truth_comparison(run, state, final, lce_map, truth, truth_map, true_fit)
    report |= dict(options=dataclasses.asdict(run.options), history=state.history,
                   initial_map=dict(name=run.initial_map.name,
                                    content_hash=run.initial_map.content_hash))  # fmt: skip
    return report


#: Where a training's time goes (keys of TrainingState.timings): position refits, map
#: exports, network inputs, Adam steps, Gauss-Newton steps.
_PARTS = ("refit_s", "map_s", "features_s", "network_s", "gauss_newton_s")


def _speed(run: CoEvolution, state: TrainingState, timings: dict) -> dict:
    network_s, refit_s = timings.get("network_s", 0.0), timings.get("refit_s", 0.0)
    wall = timings["wall_time_s"]
    passes = state.completed_rounds * len(run.train_index)
    return dict(
        rounds=state.completed_rounds, converged=bool(state.converged),
        wall_time_s=float(wall), training_time_s=float(timings.get("training_s", wall)),
        events_per_second=passes / max(timings.get("training_s", wall), 1e-9),
        network_events_per_second=timings.get("n_network_events", 0) / max(network_s, 1e-9),
        position_refits_per_second=timings.get("n_refits", 0) / max(refit_s, 1e-9),
        seconds_per_part={key: float(timings.get(key, 0.0)) for key in _PARTS},
    )  # fmt: skip


def plot_channels() -> list[int]:
    """Three PMTs to show: nearest the centre, halfway out, and outermost."""
    radius = np.hypot(*pmt_positions().T)
    return [int(np.argmin(radius)), int(np.argmin(np.abs(radius - 35.0))), int(np.argmax(radius))]


def write_plots(out: Path, run: CoEvolution, state: TrainingState, final: TrainingState,
                lce_map: LCEMap, *, truth=None, truth_map=None) -> list[Path]:  # fmt: skip
    """The training's PNG figures in ``out``; returns their paths."""
    synthetic, channels, kept = truth is not None, plot_channels(), final.kept
    reference = truth_map if truth_map is not None else run.initial_map
    expected_pe = (final.n_photons[kept, None] * lce_map.lce(final.x[kept], final.y[kept])
                   * (1.0 + lce_map.p_dpe))  # fmt: skip
    r_initial = np.hypot(state.initial["x"], state.initial["y"])[kept]
    r_truth = np.hypot(truth["x_truth"], truth["y_truth"])[kept] if synthetic else None
    return [
        plots.plot_history(state.history, out / "history.png", synthetic=synthetic),
        plots.plot_lce_maps(lce_map, channels, out / "lce_maps.png", reference=reference,
                            synthetic=synthetic),
        plots.plot_residual_maps(run.events.area[kept], expected_pe, final.x[kept],
                                 final.y[kept], channels, out / "residual_maps.png",
                                 synthetic=synthetic),
        plots.plot_density(state.initial["x"][kept], state.initial["y"][kept], final.x[kept],
                           final.y[kept], out / "density.png",
                           labels=("initial positions", "trained map"), synthetic=synthetic),
        plots.plot_radial_displacement(r_initial, np.hypot(final.x, final.y)[kept],
                                       out / "radial_displacement.png", r_truth=r_truth,
                                       synthetic=synthetic),
    ]  # fmt: skip

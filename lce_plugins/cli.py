"""Command-line entry points.

``lce-simulate``: simulate a Kr83m calibration run, reconstruct it with the nominal
(Monte-Carlo-style) map and with the true response, and write the training input file,
a summary and plots. All numbers it prints are from the synthetic run it just made.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["simulate_main"]

log = logging.getLogger(__name__)

RADIAL_BINS_CM = (0.0, 30.0, 50.0, 60.0, 66.4)


def _parse_simulate(argv):
    parser = argparse.ArgumentParser(
        prog="lce-simulate",
        description="Simulate a Kr83m calibration run (synthetic) and show how biased "
        "positions from the Monte-Carlo-style nominal map are.",
    )
    parser.add_argument("--n-events", type=int, default=20_000, help="S2 peaks (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out", type=Path, default=Path("lce_output"), help="output directory (default lce_output)"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return parser.parse_args(argv)


def radial_bias_table(r_true: np.ndarray, r_fit: np.ndarray) -> list[dict]:
    """Median radial displacement (fit - truth) and its uncertainty in radial bins [cm]."""
    rows = []
    for low, high in zip(RADIAL_BINS_CM[:-1], RADIAL_BINS_CM[1:], strict=True):
        selected = (r_true >= low) & (r_true < high) & np.isfinite(r_fit)
        shift = (r_fit - r_true)[selected]
        # the median's standard error for a roughly Gaussian spread
        error = 1.2533 * np.std(shift) / np.sqrt(max(shift.size, 1))
        rows.append(
            dict(
                r_min_cm=low,
                r_max_cm=high,
                n_events=int(shift.size),
                median_shift_cm=float(np.median(shift)) if shift.size else float("nan"),
                median_shift_error_cm=float(error),
            )  # fmt: skip
        )
    return rows


def _reconstruct(peaks):
    """Positions from the nominal map (the initial positions) and from the true response,
    and the nominal fit's rate [events/s]."""
    from lce_plugins.pattern_fit import fit_positions_pattern
    from lce_plugins.simulation import default_detector, truth_map
    from lce_plugins.simulation.initial import initial_positions

    area, saturated = peaks["area_per_channel"], peaks["saturated_channel"]
    started = time.perf_counter()
    nominal = initial_positions(area, saturated_channel=saturated)
    rate = len(peaks) / (time.perf_counter() - started)
    detector = default_detector()
    best = fit_positions_pattern(
        area, truth_map(), saturated_channel=saturated, p_dpe=detector.config.p_dpe,
        spe_resolution=detector.spe_resolution[:253],
    )  # fmt: skip
    return nominal, best, rate


def _write_training_input(path: Path, peaks, truth, nominal) -> None:
    """The ``lce-train --input`` file, plus the truth and the detector's seed (synthetic
    data only: ``lce-train`` then compares its map with the simulation's truth)."""
    from lce_plugins import geometry
    from lce_plugins.simulation import default_detector

    top = geometry.N_TOP_PMTS
    detector = default_detector()
    np.savez_compressed(
        path,
        area_per_channel=peaks["area_per_channel"][:, :top],
        saturated_channel=peaks["saturated_channel"][:, :top],
        x=nominal["x"], y=nominal["y"],
        dead_pmts=np.array(detector.live_pmts.dead_channels),
        spe_resolution=detector.spe_resolution[:top],
        x_truth=truth["x_truth"], y_truth=truth["y_truth"],
        n_photons_truth=truth["n_photons_truth"], is_outlier=truth["is_outlier"],
        detector_seed=detector.config.seed,
    )  # fmt: skip


def _summarise(args, peaks, truth, nominal, best, rates) -> dict:
    """Headline numbers of the synthetic run (outliers left out of position figures)."""
    clean = ~truth["is_outlier"]
    r_true = np.hypot(truth["x_truth"], truth["y_truth"])[clean]
    r_nominal = np.hypot(nominal["x"], nominal["y"])[clean]
    r_best = np.hypot(best["x"], best["y"])[clean]
    return dict(
        synthetic=True,
        n_events=args.n_events,
        seed=args.seed,
        events_per_second_simulation=rates[0],
        events_per_second_nominal_fit=rates[1],
        median_top_area_pe=float(np.median(peaks["area_per_channel"][:, :253].sum(axis=1))),
        outlier_fraction=float(truth["is_outlier"].mean()),
        fraction_with_saturated_channel=float((peaks["n_saturated_channels"] > 0).mean()),
        radial_bias_nominal=radial_bias_table(r_true, r_nominal),
        radial_bias_truth=radial_bias_table(r_true, r_best),
        ks_pvalue_uniform_r2=dict(
            truth=_ks_uniform(r_true),
            nominal=_ks_uniform(r_nominal),
            truth_map_fit=_ks_uniform(r_best),
        ),  # fmt: skip
    )


def simulate_main(argv=None) -> int:
    """Run ``lce-simulate``; returns the exit status."""
    args = _parse_simulate(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")  # fmt: skip
    from lce_plugins.simulation import simulate_kr83m

    if args.n_events < 1:
        print(f"lce-simulate: --n-events must be positive, got {args.n_events}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    log.info("Simulating %d Kr83m S2s (synthetic), seed %d", args.n_events, args.seed)

    started = time.perf_counter()
    peaks, truth = simulate_kr83m(args.n_events, seed=args.seed, progress=not args.quiet)
    simulation_rate = args.n_events / (time.perf_counter() - started)
    nominal, best, fit_rate = _reconstruct(peaks)

    input_path = args.out / "kr83m_synthetic.npz"
    _write_training_input(input_path, peaks, truth, nominal)
    summary = _summarise(args, peaks, truth, nominal, best, (simulation_rate, fit_rate))
    (args.out / "simulation_summary.json").write_text(json.dumps(summary, indent=2))
    if not args.no_plots:
        from lce_plugins.simulation.plots import plot_nominal_bias

        clean = ~truth["is_outlier"]
        plot_nominal_bias(truth[clean], nominal[clean], best[clean], args.out / "nominal_bias.png")
    _print_summary(summary, args.out, input_path)
    return 0


def _ks_uniform(r_cm: np.ndarray) -> float:
    """KS p-value of (r / R)**2 against uniform: large for a uniform density in the disk."""
    from scipy import stats

    from lce_plugins.geometry import TPC_RADIUS_CM

    r_cm = r_cm[np.isfinite(r_cm)]
    return float(stats.kstest((r_cm / TPC_RADIUS_CM) ** 2, "uniform").pvalue)


def _print_summary(summary: dict, out: Path, input_path: Path) -> None:
    lines = [
        f"Synthetic Kr83m run: {summary['n_events']} S2s, seed {summary['seed']}",
        f"  simulated at {summary['events_per_second_simulation']:.0f} events/s (the first run "
        "in a new environment includes compiling the Numba kernels)",
        f"  median top-array area {summary['median_top_area_pe']:.0f} PE; "
        f"{100 * summary['outlier_fraction']:.1f} % merged double S2s; "
        f"{100 * summary['fraction_with_saturated_channel']:.1f} % with a saturated channel",
        "  median radial shift of reconstructed positions [mm] (nominal map | true response):",
    ]
    for nominal, best in zip(
        summary["radial_bias_nominal"], summary["radial_bias_truth"], strict=True
    ):
        shifts = [f"{10 * row['median_shift_cm']:+6.2f} +- {10 * row['median_shift_error_cm']:.2f}"
                  for row in (nominal, best)]  # fmt: skip
        lines.append(
            f"    r {nominal['r_min_cm']:4.0f}-{nominal['r_max_cm']:4.1f} cm: "
            f"{shifts[0]} | {shifts[1]}"
        )
    ks = summary["ks_pvalue_uniform_r2"]
    lines += [
        f"  KS p-value of r^2 against uniform: truth {ks['truth']:.3g}, "
        f"nominal-map positions {ks['nominal']:.3g}, true-response positions "
        f"{ks['truth_map_fit']:.3g}",
        f"  training input: {input_path}",
        f"  summary and plots: {out}",
    ]
    print("\n".join(lines))

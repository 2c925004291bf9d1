"""Co-evolution training on a synthetic Kr83m run: speed and the figures of merit.

Simulates ``--n-events`` training events plus a quarter as many held-out events
(synthetic), starts from positions fitted with the Monte-Carlo-style nominal map, runs
:func:`lce_plugins.train` with its default options and prints, beside the targets of
the training, the figures of ``report.json``: time per round, training events per
second per round, position refits per second, goodness of fit of the trained, true and
nominal maps, LCE error, position bias and resolution against the Cramér-Rao bound,
and homogeneity. ``--fixed-positions`` also trains the map at the initial positions
only, the comparison that shows what the co-evolution buys.
"""

from __future__ import annotations

import json
import time

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument(
        "--n-events",
        type=int,
        default=100_000,
        help="training events (default 1e5); a quarter more are held out",
    )
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the training's outputs here")
    parser.add_argument(
        "--fixed-positions",
        action="store_true",
        help="also train with the positions held at their initial values",
    )


def _training_input(n_events: int, seed: int) -> dict:
    from lce_plugins.simulation import default_detector, simulate_kr83m, truth_map
    from lce_plugins.simulation.initial import initial_positions

    peaks, truth = simulate_kr83m(n_events, seed=seed, progress=True)
    initial = initial_positions(
        peaks["area_per_channel"], saturated_channel=peaks["saturated_channel"]
    )
    return dict(
        area_per_channel=peaks["area_per_channel"],
        saturated_channel=peaks["saturated_channel"],
        x=initial["x"],
        y=initial["y"],
        dead_pmts=default_detector().live_pmts.dead_channels,
        truth=truth,
        truth_map=truth_map(),
    )


def _check(value: float, limit: float, below: bool = True) -> str:
    return "ok" if (value < limit if below else value > limit) else "MISSED"


def _summary(report: dict) -> list[str]:
    """Lines of figures against the training targets (synthetic data)."""
    truth, rounds = report["truth"], max(report["rounds"], 1)
    lce, positions = truth["lce_relative_rms"], truth["positions"]
    bound = truth["cramer_rao"]["bulk"]["resolution_bound_cm"]
    chi2, chi2_truth = report["reduced_chi2"], report["reduced_chi2_truth"]
    calibrated = report["reduced_chi2_calibrated"]
    resolution = positions["trained"]["bulk"]["resolution_cm"]
    homogeneity = report["homogeneity"]
    bulk_bias = abs(positions["trained"]["bulk"]["radial_bias_cm"])
    wall_bias = abs(positions["trained"]["wall"]["radial_bias_cm"])
    return [
        f"  rounds {report['rounds']} (converged: {report['converged']}), wall time "
        f"{report['wall_time_s']:.0f} s, {report['training_time_s'] / rounds:.0f} s per round",
        f"  training events/s per round {report['events_per_second']:.0f}; position refits/s "
        f"{report['position_refits_per_second']:.0f}; network events/s "
        f"{report['network_events_per_second']:.0f}",
        f"  held-out D/ndf: trained {chi2:.4f}, true response {chi2_truth:.4f} (ratio "
        f"{chi2 / chi2_truth:.4f}, target within 1 %: {_check(abs(chi2 / chi2_truth - 1), 0.01)})"
        f", nominal map {report['reduced_chi2_initial']:.4f}",
        f"  calibrated chi2 D/(E[D]-3) {calibrated:.4f} (target 0.99-1.01: "
        f"{_check(abs(calibrated - 1), 0.01)})",
        f"  LCE relative RMS r < 60 cm {lce['trained']['bulk']:.2%} (target < 1 %: "
        f"{_check(lce['trained']['bulk'], 0.01)}), 60-66.4 cm {lce['trained']['wall']:.2%} "
        f"(target < 2 %: {_check(lce['trained']['wall'], 0.02)}); nominal map "
        f"{lce['initial']['bulk']:.2%} | {lce['initial']['wall']:.2%}",
        f"  median radial bias r < 60 cm {10 * bulk_bias:.3f} mm (target < 0.3 mm: "
        f"{_check(bulk_bias, 0.03)}), beyond {10 * wall_bias:.3f} mm (target < 1 mm: "
        f"{_check(wall_bias, 0.1)}); initial positions "
        f"{10 * positions['initial']['bulk']['radial_bias_cm']:+.2f} | "
        f"{10 * positions['initial']['wall']['radial_bias_cm']:+.2f} mm",
        f"  resolution r < 60 cm {resolution:.4f} cm, Cramér-Rao bound {bound:.4f} cm (ratio "
        f"{resolution / bound:.3f}, target < 1.1: {_check(resolution / bound, 1.1)})",
        "  KS p-value of r^2 against uniform: "
        + ", ".join(f"{key} {value['ks_pvalue']:.3g}" for key, value in homogeneity.items()),
        f"  rejected {report['n_events_rejected']} events: {report['n_merged_s2_rejected']} of "
        f"{report['n_merged_s2']} merged double S2s, {report['n_clean_rejected']} clean",
    ]


def run(args) -> dict:
    from lce_plugins.training.api import train

    started = time.perf_counter()
    data = _training_input(args.n_events + args.n_events // 4, args.seed)
    simulation_s = time.perf_counter() - started
    print(f"Synthetic Kr83m run and nominal-map positions: {simulation_s:.0f} s")

    results = {}
    variants = [("co-evolution", {})]
    if args.fixed_positions:
        variants.append(("fixed positions", dict(coevolve=False)))
    for label, overrides in variants:
        out = None if args.out is None else f"{args.out}/{label.replace(' ', '_')}"
        _, report = train(**data, heldout_fraction=0.2, out=out, plots=out is not None, **overrides)
        results[label] = report
        print(
            f"\n{label} on {report['n_events_train']} training and "
            f"{report['n_events_heldout']} held-out events (synthetic):"
        )
        print("\n".join(_summary(report)))
    figures = {
        label: {key: value for key, value in report.items() if key != "history"}
        for label, report in results.items()
    }
    figures["simulation_s"] = simulation_s
    json.dumps(figures)  # the figures must be plain numbers
    return figures

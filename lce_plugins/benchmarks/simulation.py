"""Simulated Kr83m events per second, and where the time goes.

Times the whole simulation (``simulate_kr83m``) and, on the same events, its dominant
steps: the true LCE of all 253 top PMTs, and the PMT response. A warm-up run first
compiles the Numba kernels.
"""

from __future__ import annotations

import time

import numba
import numpy as np

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("--n-events", type=int, default=100_000, help="events (default 1e5)")
    parser.add_argument("--seed", type=int, default=1)


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def run(args) -> dict:
    from lce_plugins.simulation import simulate_kr83m, truth_map
    from lce_plugins.simulation.detector import default_detector
    from lce_plugins.simulation.kr83m import _pmt_response

    simulate_kr83m(1_000, seed=args.seed + 1)  # compile and build the tables
    (peaks, truth), total_s = _timed(simulate_kr83m, args.n_events, seed=args.seed)

    response = truth_map()
    lce, lce_s = _timed(response.lce, truth["x_truth"], truth["y_truth"])
    detector = default_detector()
    expected = truth["n_photons_truth"][:, None] * lce
    rng = np.random.default_rng(0)
    _, response_s = _timed(_pmt_response, rng, expected, detector.spe_resolution[:253], 0.2, 0.05)

    figures = dict(
        n_events=args.n_events,
        numba_threads=numba.get_num_threads(),
        events_per_second=args.n_events / total_s,
        seconds_total=total_s,
        seconds_true_lce=lce_s,
        seconds_pmt_response_top=response_s,
        lce_pmt_evaluations_per_second=args.n_events * 253 / lce_s,
    )
    print(
        f"Simulation of {args.n_events} Kr83m S2s on {figures['numba_threads']} threads:\n"
        f"  total                {total_s:8.2f} s   {figures['events_per_second']:10.0f} events/s\n"
        f"  true LCE (253 PMTs)  {lce_s:8.2f} s   ({lce_s / total_s:5.1%} of total)\n"
        f"  PMT response (top)   {response_s:8.2f} s   ({response_s / total_s:5.1%} of total)"
    )
    return figures

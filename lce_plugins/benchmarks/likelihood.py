"""Exact PMT deviance against straxen's neg2llh_modpoisson and the reference, in PMT-terms/s.

All three run in one process on the same simulated Kr83m patterns (the live top PMTs of
``--n-events`` events: about 1e6 PMT-terms by default), with mu the simulation's true
expected light. Timings are the best of ``--repeats`` runs after a warm-up that compiles
the kernels and loads (or builds) the saturated-likelihood table:

* exact deviance: :func:`lce_plugins.likelihood.deviance`, parallel (Numba's threads)
  and serial;
* straxen: ``neg2llh_modpoisson`` (numpy, one thread, approximate: a shifted Poisson in
  area / mean PE per photon, no PMT resolution), summed per event like the deviance,
  both as a single call and as straxen's own goodness of fit (``s2_2llh`` in
  ``event_pattern_fit``), which normalises by a second call at mu = area / mean PE
  per photon -- the like-for-like counterpart of the deviance;
* reference: the slow exact ln L of ``tests/likelihood_reference.py`` on
  ``--reference-terms`` random terms, scaled to a rate (needs a repository checkout).

Ratios are rates over straxen's; absolute rates depend on the machine (and on other
load: on a shared 2-core machine the parallel figure needs both cores free).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numba
import numpy as np

__all__ = ["add_arguments", "run"]

_REFERENCE = Path(__file__).resolve().parents[2] / "tests" / "likelihood_reference.py"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--n-events",
        type=int,
        default=4_100,
        help="simulated Kr83m events (default 4100: ~1e6 live PMT-terms)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs, best kept")
    parser.add_argument(
        "--reference-terms",
        type=int,
        default=300,
        help="PMT-terms for the slow reference (0: skip it)",
    )


def _best_time(function, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def _patterns(n_events: int, seed: int):
    """Top-array areas, true expected photons, resolutions and live PMTs of simulated events."""
    from lce_plugins.simulation import default_detector, simulate_kr83m, truth_map

    peaks, truth = simulate_kr83m(n_events, seed=seed)
    mu = truth["n_photons_truth"][:, None] * truth_map().lce(truth["x_truth"], truth["y_truth"])
    area = peaks["area_per_channel"][:, :253].astype(np.float64)
    detector = default_detector()
    return area, mu, detector.spe_resolution[:253], detector.live_pmts


def _reference_rate(area, mu, sigma, live, n_terms: int, seed: int) -> float | None:
    if n_terms <= 0 or not _REFERENCE.is_file():
        return None
    spec = importlib.util.spec_from_file_location("likelihood_reference", _REFERENCE)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    rng = np.random.default_rng(seed)
    events = rng.integers(0, area.shape[0], n_terms)
    pmts = rng.choice(np.flatnonzero(live.mask), n_terms)
    started = time.perf_counter()
    for i, j in zip(events, pmts, strict=True):
        reference.reference_log_likelihood(area[i, j], mu[i, j], sigma[j])
    return n_terms / (time.perf_counter() - started)


def _print_table(figures: dict) -> None:
    single = figures["straxen_terms_per_second"]
    straxen_deviance = figures["straxen_deviance_terms_per_second"]
    rows = [
        ("exact deviance, parallel", figures["exact_parallel_terms_per_second"]),
        ("exact deviance, serial", figures["exact_serial_terms_per_second"]),
        ("straxen neg2llh_modpoisson, 1 call", single),
        ("straxen deviance (2 calls, s2_2llh)", straxen_deviance),
        ("reference (slow, exact)", figures["reference_terms_per_second"]),
    ]
    print(
        f"PMT likelihood on {figures['n_terms']} live PMT-terms of {figures['n_events']} "
        f"simulated Kr83m events, {figures['numba_threads']} Numba threads:"
    )
    columns = ("PMT-terms/s", "/ 1 neg2llh call", "/ straxen deviance")
    print(f"  {'method':36s} {columns[0]:>12s} {columns[1]:>17s} {columns[2]:>19s}")
    for name, rate in rows:
        if rate is None:
            print(f"  {name:36s} {'(skipped)':>12s}")
            continue
        print(f"  {name:36s} {rate:12.4g} {rate / single:17.3g} {rate / straxen_deviance:19.3g}")


def _straxen_functions(live_area, live_mu, mean_pe_photon):
    """straxen's per-event sums: one call, and its own normalised form (two calls)."""
    from straxen.plugins.events.event_pattern_fit import neg2llh_modpoisson

    def single():
        return neg2llh_modpoisson(live_mu, live_area, mean_pe_photon).sum(axis=1)

    def normalised():  # as straxen's event_pattern_fit computes s2_2llh
        model = neg2llh_modpoisson(live_mu, live_area, mean_pe_photon)
        best = neg2llh_modpoisson(live_area / mean_pe_photon, live_area, mean_pe_photon)
        return (model - best).sum(axis=1)

    return single, normalised


def run(args) -> dict:
    from lce_plugins.likelihood import deviance
    from lce_plugins.pmt_response import DEFAULT_P_DPE

    area, mu, sigma, live = _patterns(args.n_events, args.seed)
    live_area, live_mu = area[:, live.mask], mu[:, live.mask]
    single, normalised = _straxen_functions(live_area, live_mu, 1 + DEFAULT_P_DPE)
    # warm-up: compile the kernels, load or build the saturated table
    deviance(area[:100], mu[:100], sigma, live=live)
    deviance(area[:100], mu[:100], sigma, live=live, parallel=False)
    single(), normalised()

    candidates = {
        "exact_parallel": lambda: deviance(area, mu, sigma, live=live),
        "exact_serial": lambda: deviance(area, mu, sigma, live=live, parallel=False),
        "straxen": single,
        "straxen_deviance": normalised,
    }
    n_terms = live_area.size
    figures = dict(
        n_events=args.n_events, n_terms=int(n_terms), numba_threads=numba.get_num_threads()
    )
    for name, function in candidates.items():
        figures[f"{name}_terms_per_second"] = n_terms / _best_time(function, args.repeats)
    figures["reference_terms_per_second"] = _reference_rate(
        area, mu, sigma, live, args.reference_terms, args.seed
    )
    for name in ("exact_parallel", "exact_serial", "reference"):
        rate = figures[f"{name}_terms_per_second"]
        for against in ("straxen", "straxen_deviance"):
            figures[f"{name}_ratio_to_{against}"] = (
                None if rate is None else rate / figures[f"{against}_terms_per_second"]
            )
    _print_table(figures)
    return figures

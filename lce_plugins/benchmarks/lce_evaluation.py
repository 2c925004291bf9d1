"""LCE evaluations per second: the portable map in Numba against the Keras network.

On the same positions, uniform in the TPC: the LCEMap's Numba kernel (values only, and
with the gradient), the Keras model on precomputed structural features, and the Keras
model including the feature computation. One evaluation is one event and 253 PMTs.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("--n-events", type=int, default=20_000, help="positions (default 2e4)")
    parser.add_argument("--seed", type=int, default=1)


def _rate(function, n_events: int, repeats: int = 2) -> float:
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return n_events / best


def run(args) -> dict:
    from lce_plugins.features import network_inputs
    from lce_plugins.model import build_lce_model, model_to_response
    from lce_plugins.simulation import truth_map

    truth = truth_map()
    model = build_lce_model(truth.live_pmts, initial=truth)
    learned = model_to_response(model, name="network initialised from the truth")
    rng = np.random.default_rng(args.seed)
    r = truth.radius_cm * np.sqrt(rng.uniform(size=args.n_events))
    phi = rng.uniform(0, 2 * np.pi, args.n_events)
    x, y = r * np.cos(phi), r * np.sin(phi)
    features = network_inputs(truth, x, y)
    learned.lce(x[:10], y[:10])  # compile
    model.predict(features[:10], verbose=0)

    rates = {
        "numba, values": _rate(lambda: learned.lce(x, y), args.n_events),
        "numba, values and gradient": _rate(lambda: learned.lce_and_gradient(x, y), args.n_events),
        "keras, on features": _rate(
            lambda: model.predict(features, batch_size=2048, verbose=0), args.n_events
        ),
        "keras, features included": _rate(
            lambda: model.predict(network_inputs(truth, x, y), batch_size=2048, verbose=0),
            args.n_events,
        ),
    }
    reference = rates["keras, on features"]
    print(f"LCE evaluations (events x 253 PMTs) on {args.n_events} positions:")
    print(f"  {'method':30s} {'events/s':>12s} {'PMT-evaluations/s':>18s} {'/ keras':>8s}")
    for name, rate in rates.items():
        print(f"  {name:30s} {rate:12.0f} {253 * rate:18.3g} {rate / reference:8.2f}")
    return dict(n_events=args.n_events, events_per_second=rates)

"""Peaks per second of ``peak_positions_lce`` against straxen's MLP and a SciPy fit.

On the same simulated Kr83m S2s (synthetic): the ``compute`` of
:class:`~lce_plugins.plugins.PeakPositionsLCE` (maximum likelihood with the map, in
Numba), the ``compute`` of straxen's ``PeakletPositionsMLP`` with a Keras MLP of the
production network's size (253-198-198-60-30-2, about 1e5 weights, random weights: the
production file needs the XENON database), and a straightforward ``scipy.optimize``
maximisation of the same exact likelihood with the same map (L-BFGS-B in (x, y, ln N)
with analytic gradients, started at the centre of gravity, one peak after another on
one thread) on a subset of the peaks. Each is run once before timing (compilation,
graph tracing); the LCE and MLP plugins then run alternately ``--repeats`` times and
the fastest run of each counts.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "run", "scipy_fit"]

#: Layer widths of the stand-in for straxen's production MLP.
MLP_LAYERS = (198, 198, 60, 30)


def add_arguments(parser) -> None:
    parser.add_argument("--n-peaks", type=int, default=20_000, help="peaks (default 20 000)")
    parser.add_argument(
        "--n-scipy", type=int, default=200, help="peaks fitted by SciPy (default 200)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each, best taken (default 3)"
    )
    parser.add_argument("--seed", type=int, default=5)


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def _lce_plugin(peaks, storage: Path):
    import lce_plugins

    st = lce_plugins.demo_context(storage, n_events=len(peaks))
    return st.get_single_plugin("000001", "peak_positions_lce")


def _mlp_plugin(storage: Path):
    """straxen's PeakletPositionsMLP in a context whose peaklets are simulated S2s."""
    import keras
    import strax
    import straxen

    from lce_plugins.simulation.strax_source import SimulatedKr83mPeaks

    inputs = keras.Input((253,))
    hidden = inputs
    for width in MLP_LAYERS:
        hidden = keras.layers.Dense(width, activation="elu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    path = storage / "mlp_stand_in.keras"
    model.save(path)

    class SimulatedPeaklets(SimulatedKr83mPeaks):
        provides = ("peaklets", "peaklet_truth")
        data_kind = dict(peaklets="peaklets", peaklet_truth="peaklets")

        def infer_dtype(self):
            dtypes = super().infer_dtype()
            return dict(peaklets=dtypes["peaks"], peaklet_truth=dtypes["peak_truth"])

    st = strax.Context(
        storage=[],
        register=[SimulatedPeaklets, straxen.PeakletPositionsMLP],
        config=dict(tf_model_mlp=f"tf://{path}"),
        use_per_run_defaults=False,
    )
    return st.get_single_plugin("000001", "peaklet_positions_mlp"), model.count_params()


def scipy_fit(area_top, used, lce_map, sigma0: float = 0.05) -> np.ndarray:
    """Positions of events by ``scipy.optimize.minimize`` of the exact negative ln L.

    Parameters
    ----------
    area_top : numpy.ndarray
        Shape (n, 253) [PE].
    used : numpy.ndarray
        Shape (n, 253), bool.
    lce_map : LCEMap

    Returns
    -------
    numpy.ndarray
        Shape (n, 2): x, y [cm].
    """
    from scipy import optimize

    from lce_plugins.likelihood import log_likelihood_derivatives

    pmt_xy, limit = lce_map.pmt_xy, lce_map.radius_cm - 0.01
    result = np.full((len(area_top), 2), np.nan)
    for i, (area, use) in enumerate(zip(area_top, used, strict=True)):
        weights = np.where(use, np.clip(area, 0, None), 0.0)
        centre = weights @ pmt_xy / weights.sum()
        collected = (1 + lce_map.p_dpe) * lce_map.lce(*centre, parallel=False).sum()
        start_light = weights.sum() / collected

        def negative_log_likelihood(parameters, area=area, use=use):
            x, y, log_light = parameters
            radius = np.hypot(x, y)
            if radius > limit:  # the box's corners lie outside the TPC: project inside
                x, y = x * limit / radius, y * limit / radius
            lce, dlce_dx, dlce_dy = (
                values[0] for values in lce_map.lce_and_gradient(x, y, parallel=False)
            )
            light = np.exp(log_light)
            value, first, _ = log_likelihood_derivatives(
                np.where(use, area, 0.0),
                light * lce,
                lce_map.spe_resolution,
                lce_map.p_dpe,
                sigma0,
                parallel=False,
            )
            first = np.where(use, first, 0.0)
            gradient = [light * first @ dlce_dx, light * first @ dlce_dy, light * first @ lce]
            return -np.sum(value[use]), -np.asarray(gradient)

        fit = optimize.minimize(
            negative_log_likelihood,
            [*centre, np.log(start_light)],
            jac=True,
            method="L-BFGS-B",
            bounds=[(-limit, limit), (-limit, limit), (0.0, 30.0)],
        )
        result[i] = fit.x[:2]
    return result


def run(args) -> dict:
    from lce_plugins.simulation import simulate_kr83m

    peaks, truth = simulate_kr83m(args.n_peaks, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        lce_plugin = _lce_plugin(peaks, Path(folder) / "lce")
        mlp_plugin, n_weights = _mlp_plugin(Path(folder))
        lce_plugin.compute(peaks[:500])
        mlp_plugin.compute(peaks[:500])
        # alternating repeats, best of each: the least disturbed by other load
        lce_s = mlp_s = np.inf
        for _ in range(args.repeats):
            lce_result, seconds = _timed(lce_plugin.compute, peaks)
            lce_s = min(lce_s, seconds)
            mlp_s = min(mlp_s, _timed(mlp_plugin.compute, peaks)[1])

        subset = slice(0, args.n_scipy)
        top = peaks["area_per_channel"][subset, :253].astype(np.float64)
        used = lce_plugin.map.live_pmts.mask & (peaks["saturated_channel"][subset, :253] == 0)
        scipy_fit(top[:2], used[:2], lce_plugin.map)  # compiles the map's kernels
        scipy_xy, scipy_s = _timed(scipy_fit, top, used, lce_plugin.map)

    rates = dict(lce=args.n_peaks / lce_s, mlp=args.n_peaks / mlp_s, scipy=args.n_scipy / scipy_s)
    agreement = np.hypot(
        scipy_xy[:, 0] - lce_result["x_lce"][subset], scipy_xy[:, 1] - lce_result["y_lce"][subset]
    )
    print(
        f"S2 position reconstruction of {args.n_peaks} simulated Kr83m peaks (synthetic):\n"
        f"  peak_positions_lce (exact likelihood, Numba) {rates['lce']:10.0f} peaks/s\n"
        f"  straxen PeakletPositionsMLP ({n_weights} weights) {rates['mlp']:10.0f} peaks/s\n"
        f"  scipy.optimize fit, same map ({args.n_scipy} peaks) {rates['scipy']:10.1f} peaks/s\n"
        f"  ratios: LCE / MLP {rates['lce'] / rates['mlp']:.3f} (target >= 0.5), "
        f"LCE / scipy {rates['lce'] / rates['scipy']:.1f} (target >= 20)\n"
        f"  scipy and LCE positions agree to {np.median(agreement):.2g} cm (median)"
    )
    return dict(
        n_peaks=args.n_peaks,
        n_scipy=args.n_scipy,
        peaks_per_second=rates,
        mlp_weights=n_weights,
        ratio_to_mlp=rates["lce"] / rates["mlp"],
        ratio_to_scipy=rates["lce"] / rates["scipy"],
        median_distance_to_scipy_cm=float(np.median(agreement)),
    )

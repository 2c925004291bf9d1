"""The public likelihood functions: validation, broadcasting and threads around the kernels.

Conventions shared by every function here:

* ``area`` [PE] observed, ``mu`` expected detected photons (not PE: one photon gives
  1 + p_dpe PE on average), ``sigma`` the single-PE resolution [PE], ``sigma0`` the
  baseline noise [PE] of a channel that saw no PE.
* Invalid input raises before any computation: NaN/inf areas or mu (in a deviance only
  where the PMT is live: dead channels may hold anything), negative mu, sigma <= 0,
  p_dpe outside [0, 1), shapes that do not fit. Nothing returns NaN silently.
* mu = 0 is allowed: then only the zero-PE term remains, ln L = ln Normal(a | 0,
  sigma0^2), finite even far above the noise (a very bad fit, not an error). The
  one-sided derivatives at mu = 0 are finite but overflow to +inf / -inf when a is
  far above the noise.
* ``parallel=True`` spreads work over Numba's threads for large inputs; a call that
  finds another thread already inside a parallel kernel runs serially instead (Numba's
  default threading layer must not be entered from several threads at once), so the
  functions are safe to call from threads.
"""

from __future__ import annotations

import threading
import warnings

import numba
import numpy as np

from lce_plugins.errors import DataWarning
from lce_plugins.likelihood import _kernels
from lce_plugins.likelihood._checks import (
    as_float_array,
    check_finite,
    check_model_parameters,
    check_mu,
    check_sigma,
    live_mask,
)
from lce_plugins.likelihood.expected import expected_deviance_table
from lce_plugins.likelihood.saturated import saturated_table
from lce_plugins.pmt_response import DEFAULT_BASELINE_NOISE_PE, DEFAULT_P_DPE

__all__ = [
    "calibrated_chi2",
    "deviance",
    "expected_deviance",
    "log_likelihood",
    "log_likelihood_derivatives",
    "saturated_log_likelihood",
]

#: Inputs smaller than these run serially (threads would cost more than they save).
PARALLEL_MIN_ELEMENTS = 20_000
PARALLEL_MIN_EVENTS = 64
_PARALLEL_LOCK = threading.Lock()


def _dispatch(serial, parallel, use_parallel: bool, *arguments) -> None:
    """Run the parallel kernel if asked and free, else the serial (nogil) one."""
    if use_parallel and _PARALLEL_LOCK.acquire(blocking=False):
        try:
            n_chunks = _kernels.CHUNKS_PER_THREAD * numba.get_num_threads()
            parallel(*arguments, n_chunks)
        finally:
            _PARALLEL_LOCK.release()
    else:
        serial(*arguments)


def _elementwise(area, mu, sigma, p_dpe, sigma0, parallel, order):
    p_dpe, sigma0 = check_model_parameters(p_dpe, sigma0)
    arrays = [
        as_float_array(name, values)
        for name, values in (("area", area), ("mu", mu), ("sigma", sigma))
    ]
    try:
        area, mu, sigma = np.broadcast_arrays(*arrays)
    except ValueError as err:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"area, mu and sigma must broadcast together; got {shapes}.") from err
    check_finite("area", area)
    check_mu(mu)
    check_sigma(sigma, tabulated=False)
    shape = area.shape
    flat = [np.array(a, dtype=np.float64).ravel() for a in (area, mu, sigma)]  # copies
    outputs = [np.empty(flat[0].size) for _ in range(3)]
    use_parallel = parallel and flat[0].size >= PARALLEL_MIN_ELEMENTS
    _dispatch(
        _kernels.elementwise_serial,
        _kernels.elementwise_parallel,
        use_parallel,
        *flat,
        p_dpe,
        sigma0,
        order,
        *outputs,
    )
    return [out.reshape(shape) for out in outputs]


def log_likelihood(
    area,
    mu,
    sigma,
    p_dpe: float = DEFAULT_P_DPE,
    sigma0: float = DEFAULT_BASELINE_NOISE_PE,
    *,
    parallel: bool = True,
) -> np.ndarray:
    """ln L(area | mu) of single PMTs, elementwise with broadcasting.

    L(a | mu) = sum_n P(n | mu) Normal(a | n, sigma^2 n) (n = 0: Normal(a | 0, sigma0^2)),
    n = N1 + 2 N2 the PE count, N1 ~ Poisson(mu (1 - p_dpe)), N2 ~ Poisson(mu p_dpe):
    summed exactly (to about 1e-11) for small signals, and where enough photons take
    part (tilted photon count >= 150) by a second-order saddle point that agrees with
    the exact sum to about 1e-9 relative (see :mod:`lce_plugins.likelihood`).

    Parameters
    ----------
    area : array_like of float
        Observed areas [PE]; finite (slightly negative values are fine).
    mu : array_like of float
        Expected detected photons, >= 0.
    sigma : array_like of float
        Single-PE resolutions [PE], > 0.
    p_dpe : float
        Double-PE emission probability, in [0, 1).
    sigma0 : float
        Baseline noise of a channel without PE [PE], > 0.
    parallel : bool
        Use Numba's threads for large inputs.

    Returns
    -------
    ndarray of float64
        ln L, shape of the broadcast inputs (ln of a density in 1/PE).

    Examples
    --------
    >>> from lce_plugins.likelihood import log_likelihood
    >>> round(float(log_likelihood(1.0, 1.0, 0.4)), 6)
    -1.13126
    """
    return _elementwise(area, mu, sigma, p_dpe, sigma0, parallel, order=0)[0]


def log_likelihood_derivatives(
    area,
    mu,
    sigma,
    p_dpe: float = DEFAULT_P_DPE,
    sigma0: float = DEFAULT_BASELINE_NOISE_PE,
    *,
    parallel: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ln L and its first two derivatives in mu, elementwise (see :func:`log_likelihood`).

    Returns
    -------
    (ndarray, ndarray, ndarray)
        ln L, d ln L / dmu [1/photon] and d^2 ln L / dmu^2 [1/photon^2]. They come from
        the same sums as ln L, via dP(n)/dmu = (1 - p) P(n - 1) + p P(n - 2) - P(n).
    """
    value, first, second = _elementwise(area, mu, sigma, p_dpe, sigma0, parallel, order=2)
    return value, first, second


def saturated_log_likelihood(
    area, sigma, p_dpe: float = DEFAULT_P_DPE, sigma0: float = DEFAULT_BASELINE_NOISE_PE
) -> np.ndarray:
    """ln L_sat(area) = max over mu >= 0 of ln L(area | mu), elementwise.

    From a table over (area, sigma) built once per (p_dpe, sigma0) in a few seconds and
    cached (:mod:`lce_plugins.likelihood.saturated`); sigma must lie in its range,
    0.1 to 1 PE.
    """
    p_dpe, sigma0 = check_model_parameters(p_dpe, sigma0)
    area = as_float_array("area", area)
    sigma = as_float_array("sigma", sigma)
    try:
        area, sigma = np.broadcast_arrays(area, sigma)
    except ValueError as err:
        raise ValueError(
            f"area and sigma must broadcast; got {area.shape}, {sigma.shape}."
        ) from err
    check_finite("area", area)
    check_sigma(sigma, tabulated=True)
    table = saturated_table(p_dpe, sigma0)
    out = np.empty(area.size)
    _kernels.saturated_elementwise(
        np.ascontiguousarray(area).ravel(),
        np.log(np.ascontiguousarray(sigma).ravel()),
        table.kernel_arguments(),
        out,
    )
    return out.reshape(area.shape)


def _event_arrays(area, mu, sigma, live, p_dpe, sigma0):
    """Validated (area, mu, sigma, live, p_dpe, sigma0) for the per-event functions."""
    p_dpe, sigma0 = check_model_parameters(p_dpe, sigma0)
    area, mu = as_float_array("area", area), as_float_array("mu", mu)
    if area.ndim != 2 or mu.shape != area.shape:
        raise ValueError(
            "area and mu must both have shape (n_events, n_pmts); got "
            f"{area.shape} and {mu.shape} (for one event use area[None], mu[None])."
        )
    sigma = np.ascontiguousarray(np.broadcast_to(as_float_array("sigma", sigma), area.shape[1:]))
    mask = np.ascontiguousarray(live_mask(live, area.shape))
    check_finite("area", area, where=mask)
    check_mu(mu, where=mask)
    check_sigma(sigma, tabulated=True)
    return area, mu, sigma, mask, p_dpe, sigma0


def deviance(
    area,
    mu,
    sigma,
    p_dpe: float = DEFAULT_P_DPE,
    live=None,
    *,
    sigma0: float = DEFAULT_BASELINE_NOISE_PE,
    parallel: bool = True,
) -> np.ndarray:
    """Per-event deviance D = -2 sum_j ln(L(a_j | mu_j) / L_sat(a_j)) over live PMTs.

    Parameters
    ----------
    area, mu : array_like of float, shape (n_events, n_pmts)
        Observed areas [PE] and expected photons; only live entries must be finite.
    sigma : array_like of float, shape (n_pmts,) or scalar
        Single-PE resolutions [PE], 0.1 to 1 PE (the range of the saturated table).
    p_dpe : float
        Double-PE emission probability.
    live : None, LivePMTs or array_like of bool, shape (n_pmts,) or (n_events, n_pmts)
        Which PMTs enter the sum (None: all). An event without live PMTs gets D = 0.
    sigma0 : float
        Baseline noise [PE].
    parallel : bool
        Spread events over Numba's threads (for 64 events or more).

    Returns
    -------
    ndarray of float64, shape (n_events,)
        D >= 0 up to the saturated table's interpolation error (at most ~3e-4 per PMT
        for sigma >= 0.2 PE, mostly far less; :mod:`lce_plugins.likelihood.saturated`).
        Compare with :func:`expected_deviance`, not with the number of PMTs: at low
        counts a perfect model does not give D / ndf = 1.
    """
    area, mu, sigma, mask, p_dpe, sigma0 = _event_arrays(area, mu, sigma, live, p_dpe, sigma0)
    saturated = saturated_table(p_dpe, sigma0).kernel_arguments()[:5]
    out = np.empty(area.shape[0])
    use_parallel = parallel and area.shape[0] >= PARALLEL_MIN_EVENTS
    _dispatch(
        _kernels.deviance_serial,
        _kernels.deviance_parallel,
        use_parallel,
        area,
        mu,
        sigma,
        mask,
        p_dpe,
        sigma0,
        saturated,
        out,
    )
    return out


def expected_deviance(
    mu,
    sigma,
    p_dpe: float = DEFAULT_P_DPE,
    live=None,
    *,
    sigma0: float = DEFAULT_BASELINE_NOISE_PE,
) -> np.ndarray:
    """What :func:`deviance` averages to when the areas follow the model at ``mu``.

    sum_j E[d](mu_j, sigma_j) over live PMTs, from a table built once per (p_dpe,
    sigma0) (:mod:`lce_plugins.likelihood.expected`). Arguments as for
    :func:`deviance`; returns shape (n_events,).
    """
    mu = as_float_array("mu", mu)
    _, mu, sigma, mask, p_dpe, sigma0 = _event_arrays(
        np.zeros_like(mu), mu, sigma, live, p_dpe, sigma0
    )
    table = expected_deviance_table(p_dpe, sigma0)
    out = np.empty(mu.shape[0])
    _kernels.expected_serial(mu, np.log(sigma), mask, table.kernel_arguments(), out)
    return out


def calibrated_chi2(
    area,
    mu,
    sigma,
    p_dpe: float = DEFAULT_P_DPE,
    live=None,
    *,
    sigma0: float = DEFAULT_BASELINE_NOISE_PE,
    parallel: bool = True,
) -> np.ndarray:
    """D / E[D] per event: 1 on average for a perfect model, at any light level.

    Events without live PMTs (E[D] = 0) get NaN, with a :class:`DataWarning`.
    """
    observed = deviance(area, mu, sigma, p_dpe, live, sigma0=sigma0, parallel=parallel)
    expected = expected_deviance(mu, sigma, p_dpe, live, sigma0=sigma0)
    empty = expected <= 0.0
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} event(s) have no live PMT: calibrated chi2 set to NaN.",
            DataWarning,
            stacklevel=2,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(empty, np.nan, observed / np.where(empty, 1.0, expected))

"""Input validation for the public likelihood functions: clear errors before any kernel."""

from __future__ import annotations

import numpy as np

from lce_plugins import geometry
from lce_plugins.likelihood.saturated import SIGMA_RANGE_PE

__all__ = [
    "as_float_array",
    "check_finite",
    "check_model_parameters",
    "check_mu",
    "check_sigma",
    "live_mask",
]


def as_float_array(name: str, values) -> np.ndarray:
    """``values`` as a float64 array, or a TypeError naming the argument."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric (array-like of float); got {values!r}.") from err


def _first_bad(mask: np.ndarray) -> str:
    mask = np.atleast_1d(mask)
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"{int(mask.sum())} value(s), first at index {index if len(index) > 1 else index[0]}"


def check_finite(name: str, values: np.ndarray, where: np.ndarray | None = None) -> None:
    """ValueError if ``values`` (where ``where`` is True) holds NaN or inf."""
    bad = ~np.isfinite(values)
    if where is not None:
        bad &= where
    if bad.any():
        raise ValueError(
            f"{name} must be finite: got NaN/inf in {_first_bad(bad)}. Mark broken or dead "
            "channels as not live (the `live` argument) or remove them."
        )


def check_mu(mu: np.ndarray, where: np.ndarray | None = None) -> None:
    """ValueError unless every (live) expected photon count is finite and >= 0."""
    check_finite("mu", mu, where)
    negative = mu < 0.0
    if where is not None:
        negative &= where
    if negative.any():
        raise ValueError(
            f"mu (expected detected photons) must be >= 0: got negative values in "
            f"{_first_bad(negative)}, smallest {float(mu[negative].min())!r}."
        )


def check_sigma(sigma: np.ndarray, tabulated: bool) -> None:
    """ValueError unless the single-PE resolutions are positive (and within the tables)."""
    check_finite("sigma", sigma)
    if not (sigma > 0.0).all():
        raise ValueError(f"sigma (single-PE resolution) must be > 0 PE; got {sigma.min()!r}.")
    low, high = SIGMA_RANGE_PE
    if tabulated and not ((sigma >= low) & (sigma <= high)).all():
        raise ValueError(
            f"sigma must lie in [{low}, {high}] PE for the saturated and expected deviance "
            f"(the range of their tables); got values from {sigma.min()!r} to {sigma.max()!r}."
        )


def check_model_parameters(p_dpe: float, sigma0: float) -> tuple[float, float]:
    """Validated (p_dpe, sigma0) as floats."""
    p_dpe, sigma0 = float(p_dpe), float(sigma0)
    if not 0.0 <= p_dpe < 1.0:
        raise ValueError(f"p_dpe (double-PE probability) must lie in [0, 1); got {p_dpe!r}.")
    if not (np.isfinite(sigma0) and sigma0 > 0.0):
        raise ValueError(f"sigma0 (baseline noise) must be > 0 PE; got {sigma0!r}.")
    return p_dpe, sigma0


def live_mask(live, shape: tuple[int, int]) -> np.ndarray:
    """A boolean (n_events, n_pmts) view for ``live``: None, LivePMTs, (n_pmts,) or full."""
    n_events, n_pmts = shape
    if live is None:
        return np.ones(shape, dtype=bool)
    if isinstance(live, geometry.LivePMTs):
        if n_pmts != geometry.N_TOP_PMTS:
            raise ValueError(
                f"A LivePMTs mask describes the {geometry.N_TOP_PMTS} top PMTs, but the "
                f"arrays have {n_pmts} PMTs per event; pass a boolean array instead."
            )
        live = live.mask
    live = np.asarray(live)
    if live.dtype != bool:
        raise TypeError(f"live must be boolean (True = live PMT); got dtype {live.dtype}.")
    if live.shape not in ((n_pmts,), shape):
        raise ValueError(
            f"live must have shape ({n_pmts},) or {shape} to match area; got {live.shape}."
        )
    return np.broadcast_to(live, shape)

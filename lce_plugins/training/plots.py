"""Figures of a training run, written as PNG files into its output directory.

Each function draws on a :class:`matplotlib.figure.Figure` of its own (no pyplot, so no
global state and no GUI backend: safe in batch jobs and threads), writes it to ``path``
and returns the path. With ``synthetic=True`` every title says "(synthetic data)", as
every number from simulated events must be labelled.

- :func:`plot_history`: training loss and held-out goodness of fit per round;
- :func:`plot_lce_maps`: the LCE of a few PMTs over the TPC, and its ratio to a reference;
- :func:`plot_residual_maps`: where in the TPC a few PMTs see more or less than expected;
- :func:`plot_density`: event density before and after (flat in r^2 for Kr83m);
- :func:`plot_radial_displacement`: how far the positions moved, and their bias.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from lce_plugins.geometry import N_TOP_PMTS, N_TPC_PMTS, TPC_RADIUS_CM, pmt_positions
from lce_plugins.optics import LightResponse
from lce_plugins.training.metrics import radial_displacement_profile

__all__ = [
    "plot_density",
    "plot_history",
    "plot_lce_maps",
    "plot_radial_displacement",
    "plot_residual_maps",
]

log = logging.getLogger(__name__)

_HISTORY_KEYS = ("round", "train_loss", "heldout_deviance_per_ndf")
_DPI = 110
#: Plot range of x and y [cm]: the TPC and a margin for events fitted beyond the wall.
_EXTENT_CM = 70.0


def _figure(title: str, synthetic: bool, n_rows: int, n_columns: int, panel_size=(4.6, 4.0)):
    """A constrained-layout figure with its title (marked synthetic if so) and its
    (n_rows, n_columns) array of axes."""
    width, height = panel_size[0] * n_columns, panel_size[1] * n_rows + 0.4
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.suptitle(f"{title} (synthetic data)" if synthetic else title)
    return figure, figure.subplots(n_rows, n_columns, squeeze=False)


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_DPI)
    log.debug("Wrote %s", path)
    return path


def _draw_tpc(axes, radius_cm: float = TPC_RADIUS_CM, colour: str = "k") -> None:
    """The wall as a circle, equal aspect, the TPC's extent, axis labels in cm."""
    axes.add_patch(Circle((0.0, 0.0), radius_cm, fill=False, color=colour, lw=0.8))
    axes.set(xlim=(-_EXTENT_CM, _EXTENT_CM), ylim=(-_EXTENT_CM, _EXTENT_CM), aspect="equal",
             xlabel="x [cm]", ylabel="y [cm]")  # fmt: skip


def _check_channels(channels) -> list[int]:
    channels = [int(channel) for channel in np.atleast_1d(channels)]
    if not channels or any(not 0 <= channel < N_TOP_PMTS for channel in channels):
        raise ValueError(
            f"channels must be one or more top-array channels in 0..{N_TOP_PMTS - 1}; "
            f"got {channels}."
        )
    return channels


def _same_length(**named) -> list[np.ndarray]:
    """Named arrays as flat float64 arrays of one length (NaN kept)."""
    arrays = [np.asarray(values, dtype=np.float64).ravel() for values in named.values()]
    if len({values.size for values in arrays}) > 1:
        sizes = ", ".join(
            f"{name} {values.size}" for name, values in zip(named, arrays, strict=True)
        )
        raise ValueError(f"{', '.join(named)} must have the same length; got {sizes}.")
    return arrays


def _finite_positions(**named) -> tuple[np.ndarray, np.ndarray]:
    """x and y [cm] of the events where both are finite."""
    x, y = _same_length(**named)
    finite = np.isfinite(x) & np.isfinite(y)
    return x[finite], y[finite]


def plot_history(
    history: Sequence[Mapping], path: str | os.PathLike, *, synthetic: bool = False
) -> Path:
    """Training loss and held-out goodness of fit per co-evolution round.

    Parameters
    ----------
    history : sequence of dict
        One dict per round with ``round``, ``train_loss`` and ``heldout_deviance_per_ndf``;
        optional ``heldout_calibrated_chi2`` (D / E[D], 1 for a perfect model) and
        ``n_rejected`` (events rejected as outliers). None marks a missing value.
    path : str or PathLike
        PNG file to write.
    synthetic : bool
        The run used simulated data.

    Returns
    -------
    Path
        ``path``.
    """
    if not history:
        raise ValueError("history is empty: there is no round to plot.")
    for index, entry in enumerate(history):
        missing = [key for key in _HISTORY_KEYS if key not in entry]
        if missing:
            raise ValueError(
                f"history[{index}] lacks {missing}; every round needs {list(_HISTORY_KEYS)}."
            )

    def column(key):
        return np.array([np.nan if e.get(key) is None else e[key] for e in history], dtype=float)

    rounds = column("round")
    with_rejected = any(entry.get("n_rejected") is not None for entry in history)
    figure, axes = _figure("Training history", synthetic, 1, 3 if with_rejected else 2)
    axes = axes[0]

    axes[0].plot(rounds, column("train_loss"), marker="o")
    axes[0].set(xlabel="round", ylabel="training loss", title="Training loss")
    axes[1].plot(rounds, column("heldout_deviance_per_ndf"), marker="o", label="deviance / ndf")
    if any(entry.get("heldout_calibrated_chi2") is not None for entry in history):
        axes[1].plot(rounds, column("heldout_calibrated_chi2"), marker="s",
                     label="calibrated $\\chi^2$ = D / E[D]")  # fmt: skip
        axes[1].axhline(1.0, color="grey", lw=0.8, ls="--", label="perfect model")
    axes[1].set(xlabel="round", ylabel="held-out goodness of fit",
                title="Held-out events")  # fmt: skip
    axes[1].legend()
    if with_rejected:
        axes[2].bar(rounds, column("n_rejected"), color="tab:red")
        axes[2].set(xlabel="round", ylabel="events", title="Events rejected")
    return _save(figure, path)


def _disk_grid(radius_cm: float, n_grid: int):
    """Grid axis [cm], the (n_grid, n_grid) mask of points inside the TPC, and their
    x and y [cm], shape (m,) each."""
    axis = np.linspace(-radius_cm, radius_cm, n_grid)
    grid_x, grid_y = np.meshgrid(axis, axis)
    inside = np.hypot(grid_x, grid_y) < radius_cm
    return axis, inside, grid_x[inside], grid_y[inside]


def _on_grid(inside: np.ndarray, values: np.ndarray) -> np.ma.MaskedArray:
    image = np.full(inside.shape, np.nan)
    image[inside] = values
    return np.ma.masked_invalid(image)


def plot_lce_maps(
    response: LightResponse,
    channels,
    path: str | os.PathLike,
    reference: LightResponse | None = None,
    *,
    synthetic: bool = False,
    n_grid: int = 121,
) -> Path:
    """The LCE of a few PMTs over the TPC; with a reference, their ratio to it.

    Top row: LCE_j(x, y) on a logarithmic colour scale (it spans orders of magnitude),
    all PMT centres as dots and PMT j as a star. Second row (with ``reference``):
    LCE_j / (s LCE_ref,j) - 1, with s the one global scale that the data cannot fix
    (geometric mean of the ratio over the grid and the PMTs live in both maps, as in
    :func:`lce_plugins.training.metrics.lce_relative_rms`).

    Parameters
    ----------
    response : LightResponse
        The map to show (e.g. the learned one).
    channels : int or sequence of int
        Top-array channels, 0..252, one column each.
    path : str or PathLike
        PNG file to write.
    reference : LightResponse, optional
        E.g. the simulation's truth or the nominal map.
    synthetic : bool
        The map was learned from simulated data.
    n_grid : int
        Grid points along x and along y.

    Returns
    -------
    Path
        ``path``.
    """
    channels = _check_channels(channels)
    axis, inside, x, y = _disk_grid(response.radius_cm, n_grid)
    lce = response.lce(x, y)
    n_rows = 1 if reference is None else 2
    title = f"LCE of {response.name or 'the map'}"
    if reference is not None:
        title += f", relative to {reference.name or 'the reference'}"
    figure, axes = _figure(title, synthetic, n_rows, len(channels))
    pmt_xy = pmt_positions()

    if reference is not None:
        live = response.live_pmts.mask & reference.live_pmts.mask
        ratio = lce / reference.lce(x, y)
        ratio /= np.exp(np.mean(np.log(ratio[:, live])))
        limit = max(float(np.max(np.abs(ratio[:, channels] - 1.0))), 1e-3)

    for column, channel in enumerate(channels):
        image = _on_grid(inside, lce[:, channel])
        mesh = axes[0, column].pcolormesh(axis, axis, image, shading="nearest",
                                          norm=LogNorm(image.min(), image.max()))  # fmt: skip
        figure.colorbar(mesh, ax=axes[0, column], label="LCE [detected / emitted photons]")
        axes[0, column].set_title(f"PMT {channel}")
        if reference is not None:
            image = _on_grid(inside, ratio[:, channel] - 1.0)
            mesh = axes[1, column].pcolormesh(axis, axis, image, shading="nearest",
                                              cmap="RdBu_r", vmin=-limit, vmax=limit)  # fmt: skip
            figure.colorbar(mesh, ax=axes[1, column], label="relative difference")
            axes[1, column].set_title(f"PMT {channel}: ratio - 1")
        for row in range(n_rows):
            axes[row, column].plot(*pmt_xy.T, ".", color="grey", ms=1.5)
            axes[row, column].plot(*pmt_xy[channel], "*", color="k", ms=9)
            _draw_tpc(axes[row, column])
    return _save(figure, path)


def plot_residual_maps(
    area_per_channel,
    expected_pe,
    x,
    y,
    channels,
    path: str | os.PathLike,
    *,
    synthetic: bool = False,
    gridsize: int = 20,
) -> Path:
    """Mean relative residual (observed - expected) / expected of a few PMTs vs position.

    For each PMT, events are binned in hexagons of their (x, y) and the mean relative
    residual is shown: a map that is right gives noise around 0; structure shows where
    it misses light (e.g. a wire shadow or the wall reflection). Entries with a
    non-positive or NaN expectation and events with NaN positions are left out.

    Parameters
    ----------
    area_per_channel : array_like
        Shape (n, 253) or (n, 494), observed areas [PE]; only the top array is used.
    expected_pe : array_like
        Shape (n, 253), expected areas [PE] (N LCE (1 + p_dpe) at the fitted positions).
    x, y : array_like
        Fitted positions [cm], shape (n,).
    channels : int or sequence of int
        Top-array channels, 0..252, one panel each.
    path : str or PathLike
        PNG file to write.
    synthetic : bool
        The events are simulated.
    gridsize : int
        Hexagons across the x range.

    Returns
    -------
    Path
        ``path``.
    """
    channels = _check_channels(channels)
    area = np.asarray(area_per_channel, dtype=np.float64)
    expected = np.asarray(expected_pe, dtype=np.float64)
    x, y = _same_length(x=x, y=y)
    if area.ndim != 2 or area.shape[1] not in (N_TOP_PMTS, N_TPC_PMTS) or len(area) != x.size:
        raise ValueError(f"area_per_channel must have shape ({x.size}, {N_TOP_PMTS}) or "
                         f"({x.size}, {N_TPC_PMTS}); got {area.shape}.")  # fmt: skip
    if expected.shape != (x.size, N_TOP_PMTS):
        raise ValueError(
            f"expected_pe must have shape ({x.size}, {N_TOP_PMTS}); got {expected.shape}."
        )

    figure, axes = _figure("Mean (observed - expected) / expected", synthetic, 1, len(channels))
    pmt_xy = pmt_positions()
    for ax, channel in zip(axes[0], channels, strict=True):
        used = np.isfinite(x) & np.isfinite(y) & (expected[:, channel] > 0)
        used &= np.isfinite(area[:, channel])
        residual = area[used, channel] / expected[used, channel] - 1.0
        hexagons = ax.hexbin(x[used], y[used], C=residual, reduce_C_function=np.mean,
                             gridsize=gridsize, cmap="RdBu_r", mincnt=3,
                             extent=(-_EXTENT_CM, _EXTENT_CM, -_EXTENT_CM, _EXTENT_CM))  # fmt: skip
        means = np.asarray(hexagons.get_array())
        limit = max(float(np.nanpercentile(np.abs(means), 98)) if means.size else 0.0, 1e-3)
        hexagons.set_clim(-limit, limit)
        figure.colorbar(hexagons, ax=ax, label="relative residual")
        ax.plot(*pmt_xy[channel], "*", color="k", ms=9)
        ax.set_title(f"PMT {channel}")
        _draw_tpc(ax)
    return _save(figure, path)


def plot_density(
    x_before,
    y_before,
    x_after,
    y_after,
    path: str | os.PathLike,
    *,
    labels: tuple[str, str] = ("before", "after"),
    radius_cm: float = TPC_RADIUS_CM,
    synthetic: bool = False,
) -> Path:
    """Event density before and after: in r^2 (flat for a uniform source) and in (x, y).

    The r^2 histograms count events per unit of r^2 / R^2 divided by the number of
    events, so a uniform source lies on 1 inside the wall and events fitted beyond the
    wall show up above r^2 / R^2 = 1. NaN positions are left out.

    Parameters
    ----------
    x_before, y_before, x_after, y_after : array_like
        Positions [cm], shape (n,) each (the two sets may differ in length).
    path : str or PathLike
        PNG file to write.
    labels : tuple of str
        Names of the two sets, e.g. ("nominal map", "learned map").
    radius_cm : float
        TPC radius R [cm].
    synthetic : bool
        The events are simulated.

    Returns
    -------
    Path
        ``path``.
    """
    if len(labels) != 2:
        raise ValueError(f"labels must name the two sets of positions; got {labels!r}.")
    sets = [_finite_positions(x_before=x_before, y_before=y_before),
            _finite_positions(x_after=x_after, y_after=y_after)]  # fmt: skip
    figure, axes = _figure("Event density", synthetic, 1, 3)
    axes = axes[0]

    # 1. density per unit r^2: flat at 1 for a uniform source
    edges = np.linspace(0.0, 1.1, 45)
    for (x, y), label in zip(sets, labels, strict=True):
        counts, _ = np.histogram((x**2 + y**2) / radius_cm**2, edges)
        axes[0].stairs(counts / max(x.size, 1) / np.diff(edges), edges, label=label)
    axes[0].axhline(1.0, color="grey", lw=0.8, ls="--", label="uniform")
    axes[0].axvline(1.0, color="k", lw=0.8)
    axes[0].set(xlabel="$r^2 / R^2$", ylabel="fraction of events per unit $r^2/R^2$",
                title="Density in $r^2$")  # fmt: skip
    axes[0].legend(loc="lower left")

    # 2, 3. where the events are, on one colour scale
    bins = np.linspace(-_EXTENT_CM, _EXTENT_CM, 71)
    histograms = [np.histogram2d(x, y, [bins, bins])[0] for x, y in sets]
    top = max(max(float(h.max()) for h in histograms), 1.0)
    for ax, histogram, label in zip(axes[1:], histograms, labels, strict=True):
        mesh = ax.pcolormesh(bins, bins, histogram.T, vmin=0, vmax=top, cmap="viridis")
        figure.colorbar(mesh, ax=ax, label="events per 2 cm x 2 cm")
        _draw_tpc(ax, radius_cm, colour="w")
        ax.set_title(f"Positions, {label}")
    return _save(figure, path)


def _draw_profile(ax, profile: dict, label: str, colour: str) -> None:
    centre = profile["r_centre_cm"]
    ax.plot(centre, profile["median_cm"], marker="o", ms=3, color=colour, label=label)
    ax.fill_between(centre, profile["quantile_16_cm"], profile["quantile_84_cm"],
                    color=colour, alpha=0.25, lw=0)  # fmt: skip


def plot_radial_displacement(
    r_initial,
    r_final,
    path: str | os.PathLike,
    r_truth=None,
    *,
    n_bins: int = 20,
    synthetic: bool = False,
) -> Path:
    """How far the training moved the event radii, and, with the truth, their biases.

    Left: r_final - r_initial against r_initial. Right (with ``r_truth``): r - r_truth
    of the initial and the final positions against r_truth. Lines are medians per bin,
    bands the 16-84 % quantiles (:func:`~lce_plugins.training.metrics.radial_displacement_profile`).

    Parameters
    ----------
    r_initial, r_final : array_like
        Radii of the initial and final positions [cm], shape (n,).
    path : str or PathLike
        PNG file to write.
    r_truth : array_like, optional
        True radii [cm], shape (n,) (simulation only).
    n_bins : int
        Radial bins from 0 to the TPC radius.
    synthetic : bool
        The events are simulated.

    Returns
    -------
    Path
        ``path``.
    """
    if r_truth is None:
        r_initial, r_final = _same_length(r_initial=r_initial, r_final=r_final)
    else:
        r_initial, r_final, r_truth = _same_length(
            r_initial=r_initial, r_final=r_final, r_truth=r_truth
        )
    figure, axes = _figure("Radial displacement", synthetic, 1, 1 if r_truth is None else 2)
    axes = axes[0]

    moved = radial_displacement_profile(r_initial, r_final, r_initial, n_bins)
    _draw_profile(axes[0], moved, "median, 16-84 %", "tab:blue")
    axes[0].set(xlabel="initial r [cm]", ylabel="$r_{final} - r_{initial}$ [cm]",
                title="Moved by the training")  # fmt: skip
    if r_truth is not None:
        for radii, label, colour in ((r_initial, "initial", "tab:orange"),
                                     (r_final, "final", "tab:green")):  # fmt: skip
            profile = radial_displacement_profile(r_truth, radii, r_truth, n_bins)
            _draw_profile(axes[1], profile, label, colour)
        axes[1].set(xlabel="true r [cm]", ylabel="$r - r_{true}$ [cm]",
                    title="Against the truth")  # fmt: skip
    for ax in axes:
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.legend()
    return _save(figure, path)

"""Plots of simulated runs (matplotlib, written to files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lce_plugins.geometry import TPC_RADIUS_CM

__all__ = ["plot_nominal_bias"]


def plot_nominal_bias(truth: np.ndarray, nominal: np.ndarray, best: np.ndarray, path: Path) -> None:
    """Event density and radial displacement of nominal-map and true-response positions.

    Parameters
    ----------
    truth : numpy.ndarray
        Simulation truth (``x_truth``, ``y_truth``), shape (n,).
    nominal, best : numpy.ndarray
        Fits with ``x``, ``y`` fields, shape (n,): the nominal map and the true response.
    path : Path
        PNG file to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r_true = np.hypot(truth["x_truth"], truth["y_truth"])
    fits = {"nominal map": nominal, "true response": best}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))

    # 1. density in r^2: flat for a uniform source
    bins = np.linspace(0, 1.05, 43)
    axes[0].hist((r_true / TPC_RADIUS_CM) ** 2, bins, histtype="step", label="truth", lw=2)
    for label, fit in fits.items():
        r_fit = np.hypot(fit["x"], fit["y"])
        axes[0].hist((r_fit / TPC_RADIUS_CM) ** 2, bins, histtype="step", label=label)
    axes[0].set(xlabel="$r^2 / R^2$", ylabel="events", title="Event density (synthetic)")
    axes[0].legend(loc="lower left")

    # 2. median radial displacement against true radius
    edges = np.linspace(0, TPC_RADIUS_CM, 23)
    centres = 0.5 * (edges[1:] + edges[:-1])
    for label, fit in fits.items():
        shift = np.hypot(fit["x"], fit["y"]) - r_true
        index = np.digitize(r_true, edges) - 1
        medians = [np.nanmedian(shift[index == k]) if np.any(index == k) else np.nan
                   for k in range(len(centres))]  # fmt: skip
        axes[1].plot(centres, 10 * np.asarray(medians), marker="o", label=label)
    axes[1].axhline(0, color="grey", lw=0.5)
    axes[1].set(xlabel="true r [cm]", ylabel="median $r_{fit} - r_{true}$ [mm]",
                title="Radial displacement (synthetic)")  # fmt: skip
    axes[1].legend()

    # 3. where the nominal-map positions put the events
    axes[2].hist2d(nominal["x"][np.isfinite(nominal["x"])], nominal["y"][np.isfinite(nominal["y"])],
                   bins=80, range=[[-70, 70], [-70, 70]], cmap="viridis")  # fmt: skip
    axes[2].add_patch(plt.Circle((0, 0), TPC_RADIUS_CM, fill=False, color="w", lw=0.8))
    axes[2].set(xlabel="x [cm]", ylabel="y [cm]", aspect="equal",
                title="Nominal-map positions (synthetic)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

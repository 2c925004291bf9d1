"""The simulated detector: optics parameters and per-PMT properties, fixed by a seed.

A :class:`DetectorConfig` holds the handful of numbers that define the simulated
XENONnT-like detector; :func:`build_detector` draws the per-PMT properties (relative
efficiencies, single-PE resolutions, dead PMTs, saturation levels) from its seed, so
that every call with the same configuration gives the same detector.

Values marked "stand-in" are plausible round numbers, not measurements: the simulation
is a test bed whose truth is known, not a model of one XENONnT science run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from lce_plugins import geometry, pmt_response

__all__ = ["Detector", "DetectorConfig", "build_detector", "default_detector"]


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of the simulated detector.

    Attributes
    ----------
    seed : int
        Seeds the per-PMT draws (efficiencies, resolutions, dead PMTs).
    n_dead_top_pmts : int
        Top PMTs that read 0.
    efficiency_spread : float
        Relative standard deviation of the top-PMT efficiencies (clipped to +-3 sigma).
    spe_resolution_range_pe : tuple of float
        Per-channel single-PE resolutions are uniform in this range [PE].
    p_dpe : float
        Double-photoelectron emission probability.
    baseline_noise_pe : float
        Standard deviation of the area of a channel without photoelectrons [PE].
    photon_detection_efficiency : float
        Quantum times collection efficiency of the photocathode (stand-in 0.3; the
        R11410-21 quantum efficiency at 175 nm is about 0.34).
    wall_reflectivity : float
        Specular reflectivity of the PTFE wall for S2 light in the gas (stand-in).
    nominal_wall_reflectivity : float
        The value the Monte-Carlo-style nominal map assumes instead (stand-in, chosen
        higher than the truth, so nominal positions are pulled inwards as XENONnT's
        MC-trained positions are).
    wire_shadowing : bool
        Whether the truth includes anode-wire shadowing (the nominal map never does).
    liquid_surface_reflection : bool
        Whether light reflected by the liquid surface below the emission (Fresnel,
        refractive index of liquid xenon 1.69) adds to the direct light.
    floor_fraction : float
        Diffuse floor: this fraction of the top-array direct light of an event at the
        centre, spread evenly over the top PMTs (stand-in).
    bottom_to_top_ratio : float
        Bottom-array over top-array light (stand-in; area fraction top about 0.72).
    saturation_pe_per_ns : float
        A channel saturates when its pulse amplitude exceeds this [PE/ns] (stand-in,
        chosen so that a few per cent of peaks have a saturated channel).
    """

    seed: int = 8313
    n_dead_top_pmts: int = 7
    efficiency_spread: float = 0.10
    spe_resolution_range_pe: tuple[float, float] = pmt_response.SPE_RESOLUTION_RANGE_PE
    p_dpe: float = pmt_response.DEFAULT_P_DPE
    baseline_noise_pe: float = pmt_response.DEFAULT_BASELINE_NOISE_PE
    photon_detection_efficiency: float = 0.3
    wall_reflectivity: float = 0.15
    nominal_wall_reflectivity: float = 0.5
    wire_shadowing: bool = True
    liquid_surface_reflection: bool = True
    floor_fraction: float = 0.05
    bottom_to_top_ratio: float = 0.39
    saturation_pe_per_ns: float = 1.0

    def __post_init__(self):
        checks = {
            "n_dead_top_pmts": 0 <= self.n_dead_top_pmts < geometry.N_TOP_PMTS,
            "efficiency_spread": 0 <= self.efficiency_spread < 0.3,
            "spe_resolution_range_pe": 0
            < self.spe_resolution_range_pe[0]
            <= self.spe_resolution_range_pe[1],
            "p_dpe": 0 <= self.p_dpe < 1,
            "baseline_noise_pe": self.baseline_noise_pe > 0,
            "photon_detection_efficiency": 0 < self.photon_detection_efficiency <= 1,
            "wall_reflectivity": 0 <= self.wall_reflectivity <= 1,
            "nominal_wall_reflectivity": 0 <= self.nominal_wall_reflectivity <= 1,
            "floor_fraction": 0 <= self.floor_fraction < 1,
            "bottom_to_top_ratio": self.bottom_to_top_ratio >= 0,
            "saturation_pe_per_ns": self.saturation_pe_per_ns > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(f"DetectorConfig out of range: {values}. See its docstring.")


@dataclass(frozen=True, eq=False)
class Detector:
    """Per-PMT properties drawn for a :class:`DetectorConfig`.

    Attributes
    ----------
    config : DetectorConfig
    efficiency : numpy.ndarray
        Shape (253,), relative efficiencies of the top PMTs, mean 1 over live PMTs.
    spe_resolution : numpy.ndarray
        Shape (494,), single-PE area resolution of every channel [PE].
    live_pmts : LivePMTs
        Live top PMTs.
    """

    config: DetectorConfig
    efficiency: np.ndarray = field(repr=False)
    spe_resolution: np.ndarray = field(repr=False)
    live_pmts: geometry.LivePMTs


@functools.lru_cache(maxsize=8)
def build_detector(config: DetectorConfig = DetectorConfig()) -> Detector:
    """Draw the per-PMT properties for ``config`` (cached: same config, same object)."""
    if not isinstance(config, DetectorConfig):
        raise TypeError(f"Expected a DetectorConfig; got {type(config).__name__}.")
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1,)))

    dead = rng.choice(geometry.N_TOP_PMTS, size=config.n_dead_top_pmts, replace=False)
    live_pmts = geometry.LivePMTs.from_dead_channels(dead)

    spread = config.efficiency_spread * np.clip(rng.standard_normal(geometry.N_TOP_PMTS), -3, 3)
    efficiency = 1.0 + spread
    efficiency /= efficiency[live_pmts.mask].mean()

    spe_resolution = rng.uniform(*config.spe_resolution_range_pe, size=geometry.N_TPC_PMTS)
    for values in (efficiency, spe_resolution):
        values.flags.writeable = False
    return Detector(config, efficiency, spe_resolution, live_pmts)


def default_detector() -> Detector:
    """The detector that the simulation uses unless told otherwise."""
    return build_detector(DetectorConfig())

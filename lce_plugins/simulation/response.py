"""The simulated detector's optics: the true top-array response and the nominal map.

The true response is the structural model of :mod:`lce_plugins.optics` with each
1-D function computed from physics:

- direct light D(rho): the solid angle of the photocathode disk (radius 3.2 cm) seen
  from the emission point, averaged over the emission depth (uniform across the 3 mm
  gas gap below the anode), plus the image of the emission in the liquid surface
  weighted by the Fresnel reflectance of a gas/liquid-xenon interface, times the
  photon detection efficiency, per 4 pi;
- wall reflection W(L) = R_wall D(L): a specular reflection off the PTFE wall, treated
  as a plane mirror along the unfolded path (the focusing of the concave wall is
  neglected);
- wire transmission S(t) = 1 - (d / p) sqrt(1 + t**2): the fraction of a grid of
  parallel wires of diameter d and pitch p that a ray with slope t across the wires
  passes (the projected wire width grows as 1 / cos of the crossing angle);
- a diffuse floor and per-PMT efficiencies from the :class:`Detector`.

The *nominal map* stands in for today's optical Monte-Carlo maps: the same optics with
design values - no wire shadowing, equal PMT efficiencies, another wall reflectivity.

Refractive index of liquid xenon at 178 nm, 1.69: A. Solovov et al., Nucl. Instrum.
Meth. A 516 (2004) 462.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from lce_plugins import geometry
from lce_plugins.lce_map import LCEMap
from lce_plugins.optics import CubicTable, LightResponse
from lce_plugins.simulation.detector import Detector, DetectorConfig, build_detector

__all__ = [
    "bottom_array_lce",
    "direct_light_table",
    "nominal_map",
    "photocathode_solid_angle",
    "truth_map",
    "wire_transmission_table",
]

LIQUID_XENON_REFRACTIVE_INDEX = 1.69
#: Height of the TPC that light going to the bottom array crosses [cm] (stand-in).
BOTTOM_ARRAY_DEPTH_CM = 150.0
#: Tables extend beyond the longest reflected path in the TPC (twice the diameter) [cm].
_TABLE_RANGE_CM = 4.0 * geometry.TPC_RADIUS_CM + 5.0
_TABLE_STEP_CM = 0.2
_N_DEPTH_NODES = 6


def _fresnel_reflectance(cos_incidence: np.ndarray, n_ratio: float) -> np.ndarray:
    """Unpolarised Fresnel reflectance at an interface into a denser medium."""
    sin2_transmitted = (1.0 - cos_incidence**2) / n_ratio**2
    cos_transmitted = np.sqrt(1.0 - sin2_transmitted)
    r_s = (cos_incidence - n_ratio * cos_transmitted) / (cos_incidence + n_ratio * cos_transmitted)
    r_p = (cos_transmitted - n_ratio * cos_incidence) / (cos_transmitted + n_ratio * cos_incidence)
    return 0.5 * (r_s**2 + r_p**2)


def photocathode_solid_angle(
    distance_cm: np.ndarray,
    height_cm: float,
    *,
    radius_cm: float = geometry.PHOTOCATHODE_RADIUS_CM,
    fresnel_index: float | None = None,
) -> np.ndarray:
    """Solid angle of a horizontal disk seen from a point below it [sr].

    Integrates ``h / (h**2 + s**2)**1.5`` over the disk by Gauss-Legendre quadrature in
    polar coordinates around the disk centre (accurate to about 1e-10 for heights above
    a few mm).

    Parameters
    ----------
    distance_cm : array_like
        Horizontal distances from the point to the disk centre [cm], shape (n,).
    height_cm : float
        Vertical distance from the point to the disk [cm].
    radius_cm : float
        Disk radius [cm].
    fresnel_index : float, optional
        If given, weight each ray with the Fresnel reflectance of an interface of this
        refractive-index ratio at the ray's angle to the vertical (for the image of the
        source in the liquid surface).

    Returns
    -------
    numpy.ndarray
        Shape (n,), float64 [sr].
    """
    distance = np.asarray(distance_cm, dtype=np.float64)[:, None, None]
    radial_nodes, radial_weights = np.polynomial.legendre.leggauss(16)
    angle_nodes, angle_weights = np.polynomial.legendre.leggauss(24)
    r = 0.5 * radius_cm * (radial_nodes + 1.0)
    phi = 0.5 * np.pi * (angle_nodes + 1.0)  # [0, pi]; the integrand is even in phi
    weights = (0.5 * radius_cm * radial_weights)[:, None] * (0.5 * np.pi * angle_weights)[None, :]

    lateral2 = distance**2 + r[:, None] ** 2 + 2.0 * distance * r[:, None] * np.cos(phi)[None, :]
    slant2 = height_cm**2 + lateral2
    integrand = height_cm / slant2**1.5 * r[:, None]
    if fresnel_index is not None:
        integrand = integrand * _fresnel_reflectance(height_cm / np.sqrt(slant2), fresnel_index)
    return 2.0 * np.sum(integrand * weights, axis=(1, 2))


@functools.lru_cache(maxsize=4)
def direct_light_table(
    photon_detection_efficiency: float, liquid_surface_reflection: bool
) -> CubicTable:
    """D(rho): detected photons per emitted photon for a PMT at horizontal distance rho.

    Averages over emission depths uniform in the gas gap between the liquid surface and
    the anode (Gauss-Legendre in depth). Covers rho up to twice the TPC diameter, the
    longest reflected path.
    """
    distance = np.arange(0.0, _TABLE_RANGE_CM + _TABLE_STEP_CM / 2, _TABLE_STEP_CM)
    depth_nodes, depth_weights = np.polynomial.legendre.leggauss(_N_DEPTH_NODES)
    depths = 0.5 * geometry.EMISSION_DEPTH_MAX_CM * (depth_nodes + 1.0)

    solid_angle = np.zeros_like(distance)
    for depth, weight in zip(depths, 0.5 * depth_weights, strict=True):
        height = geometry.ANODE_TO_PMT_WINDOW_CM + depth
        solid_angle += weight * photocathode_solid_angle(distance, height)
        if liquid_surface_reflection:
            # The image lies as far below the liquid surface as the source is above it.
            image_height = height + 2.0 * (geometry.LIQUID_SURFACE_BELOW_ANODE_CM - depth)
            solid_angle += weight * photocathode_solid_angle(
                distance, image_height, fresnel_index=LIQUID_XENON_REFRACTIVE_INDEX
            )
    return CubicTable.from_samples(
        photon_detection_efficiency * solid_angle / (4.0 * np.pi), _TABLE_STEP_CM
    )


def wire_transmission_table(
    wire_diameter_cm: float = geometry.ANODE_WIRE_DIAMETER_CM,
    wire_pitch_cm: float = geometry.ANODE_WIRE_PITCH_CM,
) -> CubicTable:
    """S(t) = 1 - (d / p) sqrt(1 + t**2), the wire-grid transmission at slope t.

    Tabulated up to the slope where the grid becomes opaque; beyond it S = 0.
    """
    opacity = wire_diameter_cm / wire_pitch_cm
    opaque_slope = np.sqrt(1.0 / opacity**2 - 1.0)
    slopes = np.linspace(0.0, opaque_slope, 1201)
    transmission = np.clip(1.0 - opacity * np.sqrt(1.0 + slopes**2), 0.0, None)
    return CubicTable.from_samples(transmission, slopes[1])


def _build_response(detector: Detector, *, nominal: bool) -> LCEMap:
    config = detector.config
    direct = direct_light_table(
        config.photon_detection_efficiency, config.liquid_surface_reflection
    )
    reflectivity = config.nominal_wall_reflectivity if nominal else config.wall_reflectivity
    reflection = CubicTable(direct.step, direct.coefficients * reflectivity)
    with_wires = config.wire_shadowing and not nominal
    shadow = wire_transmission_table() if with_wires else CubicTable.constant(1.0)
    efficiency = np.ones(geometry.N_TOP_PMTS) if nominal else detector.efficiency

    # The floor spreads a fixed fraction of the centre's direct light over all PMTs.
    centre_direct = direct(np.hypot(*geometry.pmt_positions().T)).sum()
    floor = config.floor_fraction * centre_direct / geometry.N_TOP_PMTS
    response = LightResponse(
        direct=direct,
        reflection=reflection,
        shadow=shadow,
        efficiency=efficiency,
        floor=floor,
        live_pmts=detector.live_pmts,
        name="nominal (Monte-Carlo-style)" if nominal else "truth (simulation)",
    )
    provenance = dict(
        source="lce_plugins.simulation", kind="nominal" if nominal else "truth",
        synthetic=True, detector=dataclasses.asdict(config),
    )  # fmt: skip
    return LCEMap(response, spe_resolution=detector.spe_resolution[: geometry.N_TOP_PMTS],
                  p_dpe=config.p_dpe, provenance=provenance)  # fmt: skip


def _detector_for(detector: Detector | DetectorConfig | None) -> Detector:
    if detector is None:
        return build_detector(DetectorConfig())
    if isinstance(detector, DetectorConfig):
        return build_detector(detector)
    if isinstance(detector, Detector):
        return detector
    raise TypeError(
        f"Expected a Detector, a DetectorConfig or None; got {type(detector).__name__}."
    )


@functools.lru_cache(maxsize=8)
def _cached_response(config: DetectorConfig, nominal: bool) -> LCEMap:
    return _build_response(build_detector(config), nominal=nominal)


def truth_map(detector: Detector | DetectorConfig | None = None) -> LCEMap:
    """The simulation's true top-array response (what generated the data), as an LCEMap.

    Parameters
    ----------
    detector : Detector or DetectorConfig, optional
        Defaults to the default detector.
    """
    return _cached_response(_detector_for(detector).config, False)


def nominal_map(detector: Detector | DetectorConfig | None = None) -> LCEMap:
    """The Monte-Carlo-style nominal map of the same detector, as an LCEMap.

    No wire shadowing, equal PMT efficiencies, the nominal wall reflectivity; the same
    dead PMTs (a Monte-Carlo map of a real run knows which PMTs are off).
    """
    return _cached_response(_detector_for(detector).config, True)


def bottom_array_lce(detector: Detector | DetectorConfig | None = None) -> np.ndarray:
    """Bottom-array LCE of every bottom PMT, shape (241,), position-independent.

    S2 light reaches the bottom array through the whole liquid column and after many
    reflections, so its pattern is broad: here the solid-angle falloff of a source
    150 cm above, scaled so that the bottom array sees ``bottom_to_top_ratio`` times
    the top-array light of an event at the centre.
    """
    detector = _detector_for(detector)
    distance = np.hypot(*geometry.bottom_pmt_positions().T)
    kernel = BOTTOM_ARRAY_DEPTH_CM / (BOTTOM_ARRAY_DEPTH_CM**2 + distance**2) ** 1.5
    top_centre = truth_map(detector).lce(0.0, 0.0, parallel=False)[0]
    top_total = top_centre[detector.live_pmts.mask].sum()
    return detector.config.bottom_to_top_ratio * top_total * kernel / kernel.sum()

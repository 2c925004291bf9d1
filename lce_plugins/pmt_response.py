"""Defaults of the PMT response model shared by the simulation and the likelihood.

A detected photon gives one photoelectron (PE), or two with probability ``p_dpe``
(double-photoelectron emission); each PE contributes a Gaussian area of mean 1 PE and
standard deviation ``spe_resolution`` (PE). A channel that saw no PE reads baseline
noise of standard deviation ``baseline_noise_pe``.

Sources: p_dpe of about 0.2 and single-PE resolutions of 0.3-0.6 PE for the XENONnT
R11410-21 PMTs are the values of the project's design brief (``DESIGN.md``). The
baseline noise is a stand-in value.
"""

#: Probability that a detected photon yields two photoelectrons.
DEFAULT_P_DPE = 0.2
#: Standard deviation of the area of a channel that saw no photoelectron [PE].
DEFAULT_BASELINE_NOISE_PE = 0.05
#: Range of the per-PMT single-PE area resolutions [PE].
SPE_RESOLUTION_RANGE_PE = (0.3, 0.6)


def mean_pe_per_photon(p_dpe: float = DEFAULT_P_DPE) -> float:
    """Mean number of photoelectrons per detected photon, ``1 + p_dpe``."""
    return 1.0 + p_dpe

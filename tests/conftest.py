"""Shared fixtures: small simulated runs and the simulation's maps, built once."""

from __future__ import annotations

import numpy as np
import pytest

from lce_plugins.simulation import (
    DetectorConfig,
    Kr83mSource,
    nominal_map,
    simulate_kr83m,
    truth_map,
)

#: A detector and source without saturation or outliers: the pure PMT-response model.
CLEAN_DETECTOR = DetectorConfig(saturation_pe_per_ns=1e12)
CLEAN_SOURCE = Kr83mSource(outlier_fraction=0.0)


@pytest.fixture(scope="session", autouse=True)
def private_table_cache(tmp_path_factory):
    """Likelihood tables are cached on disk; tests build theirs in a temporary folder."""
    patch = pytest.MonkeyPatch()
    patch.setenv("LCE_PLUGINS_CACHE_DIR", str(tmp_path_factory.mktemp("lce_cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def small_run():
    """(peaks, truth) of 3000 simulated Kr83m S2s with the default detector."""
    return simulate_kr83m(3000, seed=11)


@pytest.fixture(scope="session")
def clean_run():
    """(peaks, truth) of 4000 S2s without saturation or merged double S2s."""
    return simulate_kr83m(4000, seed=12, detector=CLEAN_DETECTOR, source=CLEAN_SOURCE)


@pytest.fixture(scope="session")
def truth_response():
    return truth_map()


@pytest.fixture(scope="session")
def nominal_response():
    return nominal_map()


@pytest.fixture
def rng():
    return np.random.default_rng(20261203)

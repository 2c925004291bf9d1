"""Processing must run without TensorFlow: the map, the fits and the simulation."""

import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
import lce_plugins
from lce_plugins import LCEMap
from lce_plugins.simulation import simulate_kr83m, truth_map
from lce_plugins.pattern_fit import fit_positions_pattern
from lce_plugins.likelihood import deviance
peaks, truth = simulate_kr83m(20, seed=1)
path = truth_map().save(sys.argv[1])
lce_map = LCEMap.load(path)
fit_positions_pattern(peaks["area_per_channel"], lce_map)
deviance(np.ones((2, 253)), np.ones((2, 253)), 0.4)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
"""


def test_maps_fits_simulation_and_likelihood_never_import_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "map.npz")],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "[]"

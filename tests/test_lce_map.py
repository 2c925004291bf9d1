import json
import zipfile

import numpy as np
import pytest

from lce_plugins import LCEMap, MapFileError
from lce_plugins.lce_map import SCHEMA_VERSION
from lce_plugins.straxen_export import straxen_grid


@pytest.fixture
def positions(rng):
    r = 66.4 * np.sqrt(rng.uniform(size=200))
    r[:20] = 66.3
    phi = rng.uniform(0, 2 * np.pi, r.size)
    return r * np.cos(phi), r * np.sin(phi)


def test_save_then_load_gives_identical_outputs(truth_response, tmp_path, positions):
    path = truth_response.save(tmp_path / "truth")
    assert path.name == "truth.npz"
    loaded = LCEMap.load(path)
    assert loaded.content_hash == truth_response.content_hash
    np.testing.assert_array_equal(loaded.lce(*positions), truth_response.lce(*positions))
    np.testing.assert_array_equal(loaded.spe_resolution, truth_response.spe_resolution)
    assert loaded.provenance == truth_response.provenance and loaded.p_dpe == 0.2


def test_maps_of_different_content_have_different_hashes(truth_response, nominal_response):
    assert truth_response.content_hash != nominal_response.content_hash
    assert len(truth_response.content_hash) == 64


def test_pattern_gradient_equals_finite_differences(truth_response, positions):
    x, y = 0.99 * positions[0][:30], 0.99 * positions[1][:30]
    pattern, dx, dy = truth_response.pattern_and_gradient(x, y)
    np.testing.assert_allclose(pattern.sum(axis=1), 1.0, rtol=1e-12)
    step = 1e-5
    numeric = (truth_response.pattern(x + step, y) - truth_response.pattern(x - step, y)) / (
        2 * step
    )
    assert np.max(np.abs(numeric - dx)) < 3e-5 * np.max(np.abs(dx))


def _rewrite(path, target, change):
    """Copy the npz at ``path`` to ``target`` with ``change(arrays)`` applied."""
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    change(arrays)
    np.savez(target, **arrays)
    return target


def _with_metadata(arrays, **updates):
    metadata = json.loads(str(arrays["metadata"]))
    arrays["metadata"] = np.array(json.dumps({**metadata, **updates}))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("truncate", "not a readable LCE map"),
        ("garbage", "not a readable LCE map"),
        ("altered", "does not match its content hash"),
        ("schema", f"schema version 99; .* reads version {SCHEMA_VERSION}"),
        ("missing_array", "not a readable LCE map"),
    ],
)
def test_damaged_map_files_are_refused(truth_response, tmp_path, damage, match):
    path = truth_response.save(tmp_path / "map.npz")
    target = tmp_path / "damaged.npz"
    if damage == "truncate":
        target.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        target.write_bytes(b"not a map at all" * 100)
    elif damage == "altered":
        _rewrite(path, target, lambda a: a["efficiency"].__setitem__(3, 1.5))
    elif damage == "schema":
        _rewrite(path, target, lambda a: _with_metadata(a, schema_version=99))
    else:
        _rewrite(path, target, lambda a: a.pop("shadow"))
    with pytest.raises(MapFileError, match=match):
        LCEMap.load(target)
    assert issubclass(MapFileError, ValueError)


def test_a_missing_map_file_is_reported(tmp_path):
    with pytest.raises(MapFileError, match="No LCE map at"):
        LCEMap.load(tmp_path / "nothing.npz")


def test_saving_is_atomic_and_leaves_no_partial_files(truth_response, tmp_path):
    truth_response.save(tmp_path / "map.npz")
    truth_response.save(tmp_path / "map.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["map.npz"]
    assert zipfile.is_zipfile(tmp_path / "map.npz")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(spe_resolution=np.ones(10)), ValueError, "needs 253 positive values"),
        (dict(p_dpe=1.5), ValueError, r"p_dpe must lie in \[0, 1\); got 1.5"),
        (dict(provenance={"when": object()}), TypeError, "JSON-serialisable"),
    ],
)
def test_lce_map_rejects_bad_parameters(truth_response, kwargs, error, match):
    arguments = dict(spe_resolution=np.full(253, 0.4), p_dpe=0.2) | kwargs
    with pytest.raises(error, match=match):
        LCEMap(truth_response, **arguments)


def test_straxen_loads_the_export_and_reproduces_the_pattern(truth_response, tmp_path, rng):
    import straxen
    from scipy.interpolate import RegularGridInterpolator

    path = truth_response.export_straxen(tmp_path / "s2_pattern.pkl", grid_step_cm=2.0)
    url = f"itp_map://resource://{path}?fmt=pkl&method=RegularGridInterpolator"
    straxen_map = straxen.URLConfig.evaluate_dry(url)

    r = 64.0 * np.sqrt(rng.uniform(size=300))
    phi = rng.uniform(0, 2 * np.pi, r.size)
    xy = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
    from_straxen = straxen_map(xy)[:, :253]

    # the same grid (nodes outside the wall moved onto it) interpolated linearly here
    nodes = straxen_grid(66.4, 2.0)
    node_x, node_y = np.meshgrid(nodes, nodes, indexing="ij")
    pull_in = np.minimum(1.0, 66.4 * (1 - 1e-9) / np.maximum(np.hypot(node_x, node_y), 1e-12))
    grid = truth_response.pattern((node_x * pull_in).ravel(), (node_y * pull_in).ravel())
    linear = RegularGridInterpolator((nodes, nodes), grid.reshape(len(nodes), len(nodes), -1))(xy)
    np.testing.assert_allclose(from_straxen, linear, atol=1e-7)
    exact = truth_response.pattern(xy[:, 0], xy[:, 1])
    # linear interpolation on a 2 cm grid: well below the pattern's own scale
    assert np.max(np.abs(from_straxen - exact)) < 0.05 * exact.max()
    assert np.mean(np.abs(from_straxen - exact)) < 1e-3 * exact.max()


def test_straxen_default_interpolation_also_loads_the_export(truth_response, tmp_path):
    import straxen

    path = truth_response.export_straxen(tmp_path / "s2_pattern.pkl", grid_step_cm=4.0)
    straxen_map = straxen.InterpolatingMap(straxen.get_resource(str(path), fmt="pkl"))
    values = straxen_map(np.array([[10.0, -5.0], [60.0, 20.0]]))
    assert values.shape == (2, 253)
    np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-4)


def test_export_needs_a_pkl_name(truth_response, tmp_path):
    with pytest.raises(ValueError, match=r"Export to a .pkl file"):
        truth_response.export_straxen(tmp_path / "map.json")

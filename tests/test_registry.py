"""The local map registry behind lce://NAME."""

import pytest

from lce_plugins import MapFileError
from lce_plugins.registry import register_map, registered_maps, registry_directory, resolve_map


@pytest.fixture(autouse=True)
def private_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("LCE_PLUGINS_MAP_REGISTRY", str(tmp_path / "registry"))


@pytest.fixture
def map_file(tmp_path, truth_response):
    return truth_response.save(tmp_path / "truth.npz")


def test_a_registered_map_resolves_by_name(map_file):
    target = register_map(map_file, "kr83m_2026")
    assert resolve_map("lce://kr83m_2026") == target
    assert target.parent == registry_directory()
    assert registered_maps() == ["kr83m_2026"]


def test_a_plain_path_resolves_to_itself(map_file):
    assert resolve_map(map_file) == map_file


def test_registering_the_same_map_twice_is_harmless(map_file):
    assert register_map(map_file, "same") == register_map(map_file, "same")


def test_a_name_taken_by_other_content_is_refused_unless_overwritten(tmp_path, map_file,
                                                                     nominal_response):  # fmt: skip
    register_map(map_file, "taken")
    other = nominal_response.save(tmp_path / "nominal.npz")
    with pytest.raises(FileExistsError, match="lce://taken is already a map of other content"):
        register_map(other, "taken")
    register_map(other, "taken", overwrite=True)


def test_an_unknown_name_says_what_is_registered(map_file):
    register_map(map_file, "known")
    with pytest.raises(FileNotFoundError, match=r"No map registered as lce://other .*known"):
        resolve_map("lce://other")


@pytest.mark.parametrize("name", ["", "../up", "with space", "x.npz", "-dash"])
def test_bad_names_are_refused(map_file, name):
    with pytest.raises(ValueError, match="A map name is letters"):
        register_map(map_file, name)


def test_a_file_that_is_not_a_map_cannot_be_registered(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a map")
    with pytest.raises(MapFileError, match="not a readable LCE map"):
        register_map(path, "junk")

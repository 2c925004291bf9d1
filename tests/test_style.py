"""The house style is checked by ruff, configured in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _ruff(*args):
    executable = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    return subprocess.run([executable, *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize(
    "args", [("check", "lce_plugins", "tests"), ("format", "--check", "lce_plugins", "tests")]
)
def test_code_passes_ruff(args):
    result = _ruff(*args)
    assert result.returncode == 0, result.stdout + result.stderr

"""The README's code works as written: its Python blocks run in order in a fresh folder,
its command lines parse, and what it shows exists.

The first ``bash`` block (the two set-up commands) is what CI itself runs.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
#: A fenced block: its language and its text.
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line number, code) of the README's blocks in ``language``, in order."""
    text = README.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(2))
        for match in _BLOCK.finditer(text)
        if match.group(1) == language
    ]


def _command_lines(code: str) -> list[list[str]]:
    """The commands of a bash block, continuation lines joined, comments dropped."""
    joined = code.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def _parser(program: str):
    if program == "lce-train":
        from lce_plugins.training.cli import _parser

        return _parser()
    if program == "lce-benchmark":
        from lce_plugins.benchmarks import build_parser

        return build_parser()[0]
    if program == "lce-simulate":
        from lce_plugins.cli import _parse_simulate

        return type("Parser", (), {"parse_args": staticmethod(_parse_simulate)})
    raise AssertionError(f"The README runs {program!r}, which this test does not know.")


def test_the_readme_starts_with_the_two_set_up_commands():
    line, code = _blocks("bash")[0]
    commands = [" ".join(words) for words in _command_lines(code)]
    assert commands == ["pip install .[train] && lce-train", "pip install .[test] && pytest"]


def test_every_command_line_of_the_readme_parses(capsys):
    commands = [
        (line, words) for line, code in _blocks("bash")[1:] for words in _command_lines(code)
    ]
    assert len(commands) >= 8
    for line, words in commands:
        try:
            _parser(words[0]).parse_args(words[1:])
        except SystemExit as err:
            message = capsys.readouterr().err
            raise AssertionError(f"README line {line}: {' '.join(words)}\n{message}") from err


def test_the_figures_and_files_the_readme_links_exist():
    text = README.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images
    links = re.findall(r"\]\(([^)#]+)\)", text)
    for target in links:
        if "://" not in target:
            assert (README.parent / target).exists(), target


def test_the_readme_has_no_unfilled_placeholder():
    placeholders = re.findall(r"@[A-Z_]+@|\bTODO\b|\bTBD\b|\bXXX\b", README.read_text("utf-8"))
    assert not placeholders


@pytest.mark.slow
def test_the_readme_python_blocks_run_in_order_in_a_fresh_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LCE_PLUGINS_MAP_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    blocks = _blocks("python")
    assert len(blocks) >= 6
    namespace: dict = {"__name__": "readme"}
    for line, code in blocks:
        try:
            exec(compile(code, f"README.md, block at line {line}", "exec"), namespace)
        except Exception as err:
            message = f"The README's Python block at line {line} failed: {err!r}"
            raise AssertionError(message) from err
    # the tour's figure and the training's map came out where the README says
    assert (tmp_path / "lce_tour.png").stat().st_size > 10_000
    assert (tmp_path / "my_training" / "lce_map.npz").is_file()

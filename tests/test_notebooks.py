"""The notebooks in ``notebooks/`` run top to bottom on small data and are committed clean.

Every notebook reads its sizes from ``LCE_NOTEBOOK_*`` environment variables in its
first code cell; the slow test sets small ones and executes the notebook in a fresh
kernel of this Python, in a temporary copy, so that the data it writes stay in tmp.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

#: Small sizes: together the notebooks run in a few minutes on 2 cores.
SMALL_SIZES = {
    "LCE_NOTEBOOK_EVENTS": "2500",
    "LCE_NOTEBOOK_TEST_EVENTS": "1000",
    "LCE_NOTEBOOK_MAX_ROUNDS": "2",
}
#: Longest a single cell may run [s] (a training cell takes well under a minute).
CELL_TIMEOUT_S = 300
KERNEL_NAME = "python3"


def _notebook_id(path: Path) -> str:
    return path.stem


def test_the_notebook_folder_holds_notebooks():
    # guards the parametrized tests below against silently running on nothing
    assert NOTEBOOKS, f"No notebooks found in {NOTEBOOK_DIR}."


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_id)
def test_notebook_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    dirty = [
        index
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have outputs or execution counts; clear them "
        "before committing (e.g. jupyter nbconvert --clear-output --inplace)."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_id)
def test_notebook_reads_its_sizes_from_the_environment(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    first_code = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert "LCE_NOTEBOOK_EVENTS" in "".join(first_code["source"]), (
        f"{path.name}: the first code cell must set its sizes from LCE_NOTEBOOK_* variables, "
        "so that the tests can run it on small data."
    )


@pytest.fixture
def notebook_kernel(tmp_path, monkeypatch) -> str:
    """A ``python3`` kernel of this Python, with Jupyter's and IPython's files in tmp.

    The kernel spec is written to a temporary folder first on ``JUPYTER_PATH``, so the
    kernel is this interpreter (and its packages) whatever kernels the user installed.
    """
    jupyter_dir = tmp_path / "jupyter"
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (lce_plugins tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter_runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    for name, value in SMALL_SIZES.items():
        monkeypatch.setenv(name, value)
    return KERNEL_NAME


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_id)
def test_notebook_runs_top_to_bottom_on_small_data(path, tmp_path, notebook_kernel):
    import nbformat
    from nbclient import NotebookClient

    work_dir = tmp_path / "work"
    work_dir.mkdir()
    copy = Path(shutil.copy(path, work_dir))
    notebook = nbformat.read(copy, as_version=4)
    # one more cell, to check that the kernel is this Python
    notebook.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))

    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name=notebook_kernel,
        resources={"metadata": {"path": str(work_dir)}},
    )
    try:
        client.execute()
    finally:
        nbformat.write(notebook, copy)  # the executed copy, for a look after a failure

    printed = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    assert Path(printed.strip()) == Path(sys.executable)

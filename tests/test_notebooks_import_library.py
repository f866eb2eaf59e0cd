"""Notebooks teach with the library's code: they import jepa_lite and never redefine it.

Also checks the course conventions every notebook follows: outputs stripped, the Colab cell and badge
point to `course.REPO_URL`, exercises are followed by a self-check, cells stay short.
"""

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

import jepa_lite
from jepa_lite import course
from jepa_lite.course.exercises import EXERCISES

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("0[1-4]_*.ipynb"))
ALWAYS_FORBIDDEN = {"sample_span_mask", "mask_spans", "ema_update", "cosine_distance", "JEPA", "Trainer", "collate"}


def library_names() -> set:
    """Every function and class defined in a jepa_lite module."""
    names = set()
    for info in pkgutil.walk_packages(jepa_lite.__path__, "jepa_lite."):  # the subpackages' modules too
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", "") == module.__name__:
                names.add(name)
    return names


def code_of(nb) -> list:
    """The Python source of each code cell, IPython syntax (!cmd, %magic) turned into plain Python."""
    tm = TransformerManager()
    return [tm.transform_cell(c.source) for c in nb.cells if c.cell_type == "code"]


def redefined(sources, forbidden) -> set:
    """Names of functions/classes defined in `sources` that belong to `forbidden`."""
    found = set()
    for src in sources:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in forbidden:
                found.add(node.name)
    return found


def test_there_are_four_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


def test_the_checker_catches_a_redefinition():
    fake = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import torch\ndef ema_update(t, o, m):\n    pass\nclass JEPA: pass")]
    )
    assert redefined(code_of(fake), library_names() | ALWAYS_FORBIDDEN) == {"ema_update", "JEPA"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_jepa_lite_and_redefines_nothing(path):
    nb = nbformat.read(path, as_version=4)
    sources = code_of(nb)
    assert any(re.search(r"^\s*(from jepa_lite\b|import jepa_lite\b)", s, re.M) for s in sources), "no jepa_lite import"
    assert redefined(sources, library_names() | ALWAYS_FORBIDDEN) == set()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_are_stripped(path):
    """No stored outputs, except the few pinned cells (marked NBVAL_CHECK_OUTPUT) whose printed text CI
    compares with the stored one: small, deterministic, text only."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            if "NBVAL_CHECK_OUTPUT" in cell.source:  # nbval compares only cells that were run: keep a count
                assert cell.outputs and all(o.output_type == "stream" for o in cell.outputs)
            else:
                assert cell.outputs == [] and cell.execution_count is None


def test_some_outputs_are_pinned():
    pinned = [c for p in NOTEBOOKS for c in nbformat.read(p, as_version=4).cells if "NBVAL_CHECK_OUTPUT" in c.source]
    assert len(pinned) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_cell_and_badge_use_the_repo_url(path):
    nb = nbformat.read(path, as_version=4)
    first_code = next(c.source for c in nb.cells if c.cell_type == "code")
    assert '"google.colab" in sys.modules' in first_code
    assert f'REPO_URL = "{course.REPO_URL}"' in first_code
    assert first_code == course.colab_cell(path.name)  # custom widget manager only where needed (tests/test_colab.py)
    assert course.colab_url(path.name) in nb.cells[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "By the end you will be able to" in nb.cells[0].source
    assert "Predict, then check" in text and "## Summary" in text
    code_cells = [c.source for c in nb.cells if c.cell_type == "code"]
    assert max(len(s.splitlines()) for s in code_cells) <= 15
    checks = [i for i, s in enumerate(code_cells) if s.startswith("check_answer(")]
    assert len(checks) >= 2
    for i in checks:  # each self-check follows the cell where the student writes the answer
        assert re.match(r"answer_\d+ = \.\.\.", code_cells[i - 1])
        exercise_id = re.match(r'check_answer\("([\d.]+)"', code_cells[i]).group(1)
        assert exercise_id in EXERCISES and exercise_id.startswith(path.name[:2])

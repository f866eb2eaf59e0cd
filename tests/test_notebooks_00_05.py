"""Notebooks 00 and 05 follow the same course conventions as 01–04 (see test_notebooks_import_library),
and notebook 05's prose matches what its code computes."""

import re
from pathlib import Path

import nbformat
import pytest

import test_notebooks_import_library as conventions

HERE = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = [HERE / "00_overview.ipynb", HERE / "05_training.ipynb"]
CHECKS = [
    conventions.test_notebook_imports_jepa_lite_and_redefines_nothing,
    conventions.test_notebook_outputs_are_stripped,
    conventions.test_colab_cell_and_badge_use_the_repo_url,
    conventions.test_notebook_structure,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_course_conventions(path, check):
    check(path)


def test_overview_maps_every_notebook_of_the_course():
    nb = nbformat.read(HERE / "00_overview.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for number in ("01", "02", "03", "04", "05", "06"):
        assert re.search(rf"\b{number}\b", text), number
    assert "2509.14252" in text
    assert any("check_setup()" in c.source for c in nb.cells if c.cell_type == "code")


def test_training_notebook_uses_the_trainer_callback_and_the_probe():
    nb = nbformat.read(HERE / "05_training.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "callbacks=[live]" in code and "LiveLossPlot" in code
    assert ".resume(" in code and "linear_probe" in code and "similarity_matrix" in code
    assert "with one_thread():" in code

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


COURSE = sorted(HERE.glob("0[0-5]_*.ipynb"))


def code_cells(path):
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", [p for p in COURSE if not p.name.startswith("00")], ids=lambda p: p.name)
def test_each_notebook_has_an_implement_it_yourself_and_an_experiment_exercise(path):
    from jepa_lite.course.exercises import EXPERIMENTS
    from jepa_lite.course.implement import CODING_EXERCISES

    cells = code_cells(path)
    checks = [i for i, s in enumerate(cells) if s.startswith("check_function(")]
    assert checks, "no implement-it-yourself exercise"
    for i in checks:  # a stub the student replaces, then the check of that very function
        exercise_id, name = re.match(r'check_function\("([\d.]+)", (\w+)\)', cells[i]).groups()
        assert exercise_id in CODING_EXERCISES and exercise_id.startswith(path.name[:2])
        assert re.match(rf"(.*\n)*def {name}\(", cells[i - 1]) and "raise NotImplementedError" in cells[i - 1]
    experiments = [s for s in cells if re.match(r"EXPERIMENT_\w+ = ", s)]
    assert experiments, "no experiment exercise (a setting to change, run, read)"
    ids = [re.match(r'check_answer\("([\d.]+)"', s).group(1) for s in cells if s.startswith("check_answer(")]
    assert [i for i in ids if i in EXPERIMENTS], "no experiment exercise checked"


def test_the_overview_has_an_experiment_exercise_checked_with_the_notebooks_settings():
    from jepa_lite.course.exercises import EXPERIMENTS

    cells = code_cells(COURSE[0])
    assert COURSE[0].name.startswith("00") and any(re.match(r"EXPERIMENT_STEPS = STEPS  # ←", s) for s in cells)
    assert 'check_answer("00.3", answer_3, steps=2 * STEPS)' in cells and "00.3" in EXPERIMENTS


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_predictions_are_asked_before_they_are_told_and_solutions_stay_hidden(path):
    code = "\n".join(code_cells(path))
    guesses = re.findall(r"^(my_\w+(?:, my_\w+)*) = (.+?)  # ←", code, re.M)
    assert guesses, "no 'predict, then check' variable"
    for names, value in guesses:  # nothing pre-filled: a pre-filled guess tells the answer
        assert value.replace(" ", "") in ("None", ",".join(["None"] * len(names.split(",")))) or re.fullmatch(
            r"\{(\"\w+\": None, )*\"\w+\": None\}", value
        ), (names, value)
    assert "show_solution(" not in code and "jepa_lite.course.solutions" not in code and "import solutions" not in code


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_every_notebook_links_the_glossary(path):
    assert "(GLOSSARY.md)" in nbformat.read(path, as_version=4).cells[0].source
    assert (HERE / "GLOSSARY.md").exists()


def test_the_glossary_gives_each_letter_one_meaning_and_defines_the_jargon():
    text = (HERE / "GLOSSARY.md").read_text(encoding="utf-8")
    letters = text.split("## Letters", 1)[1]
    rows = re.findall(r"^\| ([^|]+?) \|", letters, re.M)
    assert rows[0] == "letter"
    symbols = [s.strip() for row in rows[1:] for s in row.split(",")]
    assert len(symbols) == len(set(symbols)), sorted(s for s in symbols if symbols.count(s) > 1)
    for term in ("LayerNorm", "stop-gradient", "epoch", "PCA", "p-value", "confidence interval"):
        assert f"| **{term}** |" in text, term

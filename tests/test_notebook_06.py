"""Notebook 06 follows the course conventions, and its panel and cached runs behave."""

from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest

import test_notebooks_import_library as conventions
from jepa_lite import runs, widgets

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_llm_jepa_paper.ipynb"
@pytest.fixture(autouse=True)
def close_figures():
    """The panel draws figures (plt.show() does not close them off-screen): close them after each test."""
    yield
    plt.close("all")


TINY = dict(n_train=160, n_test=24, batch_size=16, tiny_dim=32, tiny_layers=1, steps=4, log_every=2)


@pytest.mark.parametrize("check", [
    conventions.test_notebook_imports_jepa_lite_and_redefines_nothing,
    conventions.test_notebook_outputs_are_stripped,
    conventions.test_colab_cell_and_badge_use_the_repo_url,
    conventions.test_notebook_structure,
], ids=lambda f: f.__name__)
def test_course_conventions(check):
    check(NOTEBOOK)


def test_notebook_covers_the_issue():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for call in ("runs.paired_run(", "runs.seed_summary(", "viz.spectrum_figure(", "viz.views_pca_figure(", "widgets.paired_explorer(", "SEEDS"):
        assert call in code, call
    assert "2509.14252" in text and "Table 14" in text and "Fig. 3" in text
    for placeholder in ("BASE_ACC", "JEPA_ACC", "SPEC_RATIO", "RES_BASE", "RES_JEPA", "MON_BASE"):
        assert placeholder not in text, f"unfilled measured figure {placeholder}"


def test_paired_runs_are_cached_and_measured():
    r = runs.paired_run(lbd=1.0, predictors=1, seed=5, **TINY)
    assert runs.is_paired_cached(lbd=1.0, predictors=1, seed=5, **TINY)
    assert runs.paired_run(lbd=1.0, predictors=1, seed=5, **TINY) is r
    assert 0.0 <= r["exact_match"] <= 1.0
    assert r["history"]["step"] == [2, 4]
    assert r["spectrum"].shape == (24,)  # min(N test pairs, D = 32)
    x2, y2 = r["views"]
    assert x2.shape == y2.shape == (24, 2)
    summary = runs.seed_summary([r, runs.paired_run(lbd=1.0, predictors=1, seed=6, **TINY)])
    assert summary["runs"] == 2 and summary["exact_match_std"] >= 0


def test_paired_explorer_slider_trains_and_shows_the_chosen_setting():
    panel = widgets.paired_explorer(lbds=(0.0, 1.0, 2.0), ks=(0, 1), value=(1.0, 0), **TINY)
    data = panel.render(lbd=2.0, predictors=1)
    assert data["run"]["config"]["lbd"] == 2.0 and data["run"]["config"]["predictors"] == 1
    assert data["baseline"]["config"]["lbd"] == 0.0
    data = panel.render(lbd=0.0, predictors=1)  # λ = 0 never trains [PRED]: k is ignored
    assert data["run"] is data["baseline"] and data["predictors"] == 0
    panel.controls["lbd"].value = 1.0  # what moving the slider does
    assert panel.last["lbd"] == 1.0 and panel.last["run"]["config"]["lbd"] == 1.0

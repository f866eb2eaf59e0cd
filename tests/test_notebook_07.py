"""Notebook 07 (semantic tubes) follows the course conventions, and what its prose says holds."""

from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest
import test_notebooks_import_library as conventions
import torch

from jepa_lite.course import study_view, tube_view
from jepa_lite.course.exercises import check_answer
from jepa_lite.paired import PairedConfig, PairedTrainer, nlrx, pretrain, stp

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07_semantic_tubes.ipynb"
NB = nbformat.read(NOTEBOOK, as_version=4)
CODE = "\n".join(c.source for c in NB.cells if c.cell_type == "code")
TEXT = "\n".join(c.source for c in NB.cells if c.cell_type == "markdown")
FAST_STEPS = 4  # LIVE_STEPS in fast mode
START = dict(
    model=str(pretrain.KIT_LM),
    data=str(nlrx.FILES["train"]),
    test_data=str(nlrx.FILES["test"]),
    device="cpu",
    progress=False,
    batch_size=32,
    lr=1e-3,
    warmup_steps=2,
    monitor_size=32,
)  # the notebook's START


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def trainer():
    torch.set_num_threads(1)
    return PairedTrainer(PairedConfig(**START, objective="stp", lbd=0.02, steps=0), log=lambda line: None)


@pytest.mark.parametrize(
    "check",
    [
        conventions.test_notebook_imports_jepa_lite_and_redefines_nothing,
        conventions.test_notebook_outputs_are_stripped,
        conventions.test_colab_cell_and_badge_use_the_repo_url,
        conventions.test_notebook_structure,
    ],
    ids=lambda f: f.__name__,
)
def test_course_conventions(check):
    check(NOTEBOOK)


def test_notebook_covers_the_issue():
    for call in (
        "tube_view.trajectory(",
        "tube_view.tube_figure(",
        "tube_view.tube_explorer(",
        "study_view.rows_through_model(",
        "tube_view.check_tube_loss(",
        "tube_view.mean_tube_cosine(",
        'objective="stp"',
        "course.pick(fast=4",
    ):
        assert call in CODE, call
    assert "2602.22617" in TEXT and "λ = 0.02" in TEXT and "Exercise 4 (experiment)" in TEXT
    assert NB.metadata["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    guess = next(i for i, c in enumerate(NB.cells) if c.source.startswith("my_guess = None"))
    told = next(i for i, c in enumerate(NB.cells) if "start_cos = tube_view.mean_tube_cosine" in c.source)
    assert "Predict, then check" in NB.cells[guess - 1].source and told == guess + 1  # asked before it is told


def test_the_panel_redraws_and_prints_the_librarys_cosine(trainer):
    traj = tube_view.trajectory(trainer, 0)
    panel = tube_view.tube_explorer(traj)
    n = traj["n_text"] + traj["n_code"]
    for span in [(0, 3), (traj["n_text"] - 2, traj["n_text"] + 3), (n - 4, n)]:  # in Text, across [SEP], in Code
        panel.controls["span"].value = span
        expected = float(stp.tube_cosine_one(traj["h"], traj["n_text"], traj["n_code"], *span))
        assert panel.last["cos"] == pytest.approx(expected, abs=1e-12)
    panel.controls["span"].value = (0, n)  # all of the content: not a span
    assert panel.last["cos"] is None
    parts = tube_view.pieces(traj, traj["n_text"] - 2, traj["n_text"] + 3)
    sep = traj["n_text"] + 1
    assert len(parts["patch"]) == 2 and all(
        not a <= sep <= b for a, b in parts["patch"] + parts["rest"]
    )  # [SEP]'s step in no arrow


def test_stp_runs_one_row_per_pair_and_llm_jepa_three(trainer):
    jepa = PairedTrainer(PairedConfig(**START, objective="llm_jepa", lbd=1.0, steps=0), log=lambda line: None)
    assert study_view.rows_through_model(trainer) == 32 and study_view.rows_through_model(jepa) == 96


def test_the_exercise_checker_can_fail(capsys):
    def right(h, a, b, s, t):
        return 1 - stp.tube_cosine_one(h, a, b, s, t)

    def sep_counted(h, a, b, s, t):
        content, span = stp.span_masks([a], [b], [(s, t)], h.shape[0])
        content[0, a + 1] = True
        return 1 - stp.tube_cosine(h[None], content, span)[0]

    def off_by_one(h, a, b, s, t):
        pos = stp.content_positions(a, b)
        patch = sum(h[pos[o] + 1] - h[pos[o]] for o in range(s, t))
        rest = sum(h[pos[o] + 1] - h[pos[o]] for o in range(len(pos)) if not s <= o < t)
        return 1 - torch.nn.functional.cosine_similarity(rest, patch, dim=0)

    assert tube_view.check_tube_loss(right)
    for wrong in (sep_counted, off_by_one, lambda *a: right(*a) - 1, lambda *a: ...):
        assert not tube_view.check_tube_loss(wrong)
    assert "expected" in capsys.readouterr().out


def test_the_warm_up_answers(capsys):
    check_answer("07.1", 54)
    check_answer("07.2", 32)
    check_answer("07.1", 55)
    out = capsys.readouterr().out
    assert out.count("Correct") + out.count("correct") >= 2 and 54 == 10 * 11 // 2 - 1


def test_in_fast_mode_the_stp_run_ends_straighter_than_the_lm_only_run():
    """§ 6's sentence: after fast mode's steps the STP run's mean cosine is above the LM-only run's."""
    torch.set_num_threads(1)
    after = {}
    for lbd in (0.0, 1.0):
        run = PairedTrainer(
            PairedConfig(**START, objective="stp", lbd=lbd, steps=FAST_STEPS, log_every=FAST_STEPS),
            log=lambda line: None,
        )
        run.fit()
        after[lbd] = tube_view.mean_tube_cosine(run, range(64))
    assert after[1.0] > after[0.0]


def test_the_numbers_in_the_prose(trainer):
    """§ 1's "128-dimensional" is kit_lm's hidden size; § 6's "four steps" is fast mode's LIVE_STEPS."""
    assert "a path through a 128-dimensional space" in " ".join(TEXT.split())
    assert trainer.model.config.hidden_size == 128
    assert "In fast mode's four steps" in " ".join(TEXT.split()) and FAST_STEPS == 4
    assert "three sequences per pair" in TEXT and "range(64)" in CODE and "64 pairs" in TEXT

"""Notebook 07 (semantic tubes) follows the course conventions, and what its prose says holds."""

from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest
import test_notebooks_import_library as conventions
import torch

from jepa_lite.course import study_view, tube_study_view, tube_view
from jepa_lite.course.exercises import check_answer
from jepa_lite.paired import PairedConfig, PairedTrainer, nlrx, pretrain, stp
from jepa_lite.paired import nlrx_study as ns

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


# § 7: the data-efficiency study, read from jepa_lite/resources/study_tube.json. Every sentence of its prose
# that states a finding is checked here against the file.
@pytest.fixture(scope="module")
def files():
    return tube_study_view.load_both()


def prose() -> str:
    return " ".join(TEXT.split())


def test_the_study_file_is_complete_and_has_the_protocol_the_prose_states(files):
    tube = files["tube"]
    c = ns.config_of(tube)
    assert tube["complete"] and ns.missing(tube) == [] and c.objective == "stp"
    assert c.sizes == (437, 1750) and [7000 // n for n in c.sizes] == [16, 4] and c.size_steps == "steps"
    assert c.lbds == (0.0, 0.005, 0.02, 0.1, 0.3, 1.0) and len(c.lrs) == 4 and len(c.seeds) == 10
    text = prose()
    assert "training sets of 437 and 1,750 pairs (1/16 and 1/4 of the 7,000)" in text
    assert "λ ∈ {0.005, 0.02, 0.1, 0.3, 1} (the official runs use 0.02)" in text and 0.02 in ns.STP_LBDS
    assert "chosen on the **validation** split from four" in text and "10 seeds per setting" in text
    for r in tube["runs"]:  # every run, every size, trained the full set's steps
        assert r["steps"] == c.steps_for(7000) == 875
    recipe = pretrain.load_recipe(pretrain.KIT_LM)
    assert "~1 M parameters" in text and 0.5e6 < recipe["parameters"] < 1.5e6


def test_the_lambda_sentences(files):
    tube = files["tube"]
    lbds = [lbd for lbd in ns.config_of(tube).lbds if lbd > 0]
    text = prose()
    assert "Both starts pick λ = 0.005 on validation, the smallest λ of the grid" in text
    assert (
        tube["best_lambda"]
        == {"scratch": min(lbds), "pretrained": min(lbds)}
        == {"scratch": 0.005, "pretrained": 0.005}
    )
    verdicts = {(s, lbd): ns.comparison(tube, s, lbd)["verdict"] for s in ns.STARTS for lbd in lbds}
    assert "every larger λ the grid tried is no better than LM-only" in text
    assert "helps" not in verdicts.values()
    assert "from λ = 0.1 up it hurts on both starts" in text
    assert all(v == "hurts" for (s, lbd), v in verdicts.items() if lbd >= 0.1)
    assert "At λ = 1 from scratch every one of the 10 runs ends at 0 exact match" in text
    collapsed = ns.tuned_runs(tube, "scratch", 1.0)
    assert len(collapsed) == 10 and all(r["exact_match"][k] == 0 for r in collapsed for k in ("test", "val", "train"))


def test_the_verdict_in_plain_words(files):
    tube = files["tube"]
    text = prose()
    assert 'At no size does STP beat LM-only: every STP difference above is "no gain of the paper\'s size"' in text
    for start in ns.STARTS:
        best = tube["best_lambda"][start]
        for n in (437, 1750, 0):
            assert ns.comparison(tube, start, best, n_train=n)["verdict"] == "no gain of the paper's size"
    assert "On 1/16 of the data STP falls far short of LM-only on all of it, by about as much as LM-only on" in text
    assert "the 16× claim is **not reproduced** at this scale" in text
    assert "Even 1/4 of the data falls short, with or without the tube term" in text
    short = "falls short of the full-data baseline"
    for start in ns.STARTS:
        best = tube["best_lambda"][start]
        stp, lm = (ns.against_full_data(tube, start, lbd, 437) for lbd in (best, 0.0))
        assert stp["verdict"] == lm["verdict"] == short and stp["ci_high"] < -0.3  # "far short"
        assert abs(stp["diff"] - lm["diff"]) < 0.02  # "about as much as LM-only on 1/16"
        for lbd in (best, 0.0):
            assert ns.against_full_data(tube, start, lbd, 1750)["verdict"] == short
    assert tube_study_view.claim_verdicts(files) == {
        s: {"STP": short, **({"LLM-JEPA": short} if "tube_jepa" in files else {})} for s in ns.STARTS
    }


def test_the_llm_jepa_verdict_in_plain_words(files):
    """§ 7's third line: LLM-JEPA at notebook 06's validation choice, on the STP study's sizes."""
    jepa, text = files["tube_jepa"], prose()
    assert jepa["complete"] and ns.missing(jepa) == [] and ns.config_of(jepa).objective == "llm_jepa"
    assert jepa["best_lambda"] == {s: 0.01 for s in ns.STARTS} and ns.config_of(jepa).lrs == (0.002,)
    assert "at the λ = 0.01 and rate notebook 06 chose on validation" in text
    assert ns.chosen_by_nlrx()["lbds"] == (0, 0.01)  # what --grid tube_jepa read from notebook 06's file
    verdicts = {(s, n): ns.comparison(jepa, s, 0.01, n_train=n) for s in ns.STARTS for n in (437, 1750, 0)}
    assert "it beats LM-only at no size and from neither start" in text
    hurts = [k for k, c in verdicts.items() if c["verdict"] == "hurts"]
    assert hurts == [("scratch", 1750)] and all(
        c["verdict"] == "no gain of the paper's size" for k, c in verdicts.items() if k not in hurts
    )
    assert -0.001 < verdicts[("scratch", 1750)]["ci_high"] < 0  # "just below zero"
    assert 'One of its six intervals lies just below zero (from scratch on 1,750 pairs, "hurts")' in text
    assert abs((1 - 0.95**6) - 1 / 4) < 0.02 and "about one time in four" in text
    for s in ns.STARTS:  # "on 1/16 of the data it too falls far short of LM-only on all of it"
        c = ns.against_full_data(jepa, s, 0.01, 437)
        assert c["verdict"] == "falls short of the full-data baseline" and c["ci_high"] < -0.3
    assert "on 1/16 of the data it too falls far short of LM-only on all of it" in text
    copied = [r for r in jepa["runs"] if r.get("copied_from")]
    assert jepa["copied"] == [{"from": "study_tube.json", "runs": len(copied)}] and all(r["lbd"] == 0 for r in copied)
    n_trained = len(jepa["runs"]) - len(copied)
    assert f"Its file holds {n_trained} runs trained for it and {len(copied)} LM-only runs copied" in text
    assert "every LM-only run that both files trained is identical, loss history and all" in text


def test_the_efficiency_figure_draws_a_line_per_objective_and_the_claims_markers(files):
    fig = tube_study_view.efficiency_figure(files)
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0] == "LM only (10 seeds)" and len(labels) == 1 + len(tube_study_view.objectives(files))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["437", "1,750", "7,000"]
        dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--" and len(set(ln.get_ydata())) == 1]
        assert dashed  # LM only on all the data

"""Notebook 06 follows the course conventions, and its prose agrees with the study's results file."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest

import test_notebooks_import_library as conventions
from jepa_lite.paired import pretrain, study
from jepa_lite.course import study_view
from jepa_lite.paired import PairedConfig, PairedTrainer

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_llm_jepa_paper.ipynb"
NB = nbformat.read(NOTEBOOK, as_version=4)
CODE = "\n".join(c.source for c in NB.cells if c.cell_type == "code")
TEXT = "\n".join(c.source for c in NB.cells if c.cell_type == "markdown")
STUDY = study.load_study()


@pytest.fixture(autouse=True)
def close_figures():
    """The panel draws figures (plt.show() does not close them off-screen): close them after each test."""
    yield
    plt.close("all")


@pytest.mark.parametrize("check", [
    conventions.test_notebook_imports_jepa_lite_and_redefines_nothing,
    conventions.test_notebook_outputs_are_stripped,
    conventions.test_colab_cell_and_badge_use_the_repo_url,
    conventions.test_notebook_structure,
], ids=lambda f: f.__name__)
def test_course_conventions(check):
    check(NOTEBOOK)


def test_notebook_is_built_on_the_study_and_covers_the_issue():
    for call in ("study.load_study(", "study_view.lambda_figure(", "study_view.lambda_lines(", "study_view.verdict(",
                 "study_view.paper_lines(", "study_view.size_figure(", "study_view.budget_figure(", "study_view.convergence_lines(", "study_view.stage2_lines(", "study_view.geometry_figure(",
                 "viz.spectrum_figure(", "viz.views_pca_figure(", "study_view.failure_lines(", "study_view.study_explorer(",
                 "study_view.describe(", "study_view.check_paired_t(", "pretrain.load_recipe("):
        assert call in CODE, call
    for cite in ("2509.14252", "Table 14", "Fig. 3 (left)", "eq. 3", "Table 2", "Table 10", "Table 12", "App. A.3"):
        assert cite in TEXT, cite
    assert "Fig. 4" not in TEXT and "Fig. 4" not in CODE
    # jargon defined where it first appears
    for term, definition in (("greedily", "most\nlikely next token"), ("stop-gradient", "no gradient flows"),
                             ("Frobenius norm", "square root of the sum of the squares"),
                             ("singular value decomposition", "singular values"),
                             ("NL-RX", "regular expression"), ("GSM8K", "maths problem"), ("Spider", "SQL")):
        first = TEXT.index(term)
        assert definition.replace("\n", " ") in TEXT[first:first + 400].replace("\n", " "), term


def test_predict_then_check_asks_before_it_tells():
    cells = NB.cells
    asks = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "Predict, then check" in c.source]
    assert len(asks) >= 2
    for i in asks:
        guess, reveal = cells[i + 1], cells[i + 2]
        assert guess.cell_type == "code" and re.fullmatch(r"my_\w+ = (None|\{.*\})\s*(#.*)?", guess.source.strip(), re.S)
        assert "None" in guess.source and "print" not in guess.source  # the guess cell only asks
        name = guess.source.split("=")[0].strip()
        shown = cells[i + 2].source + cells[i + 3].source
        assert reveal.cell_type == "code" and name in shown  # the answer comes after, with the guess beside it


def _paper_numbers():
    out = set()
    for table in study_view.PAPER.values():
        for v in table.values():
            if isinstance(v, tuple):
                out |= {f"{x:.2f}" for x in v}
            elif isinstance(v, dict):
                out |= {f"{x:.2f}" for x in v.values()}
            elif isinstance(v, float):
                out.add(f"{v:.2f}")
    return out


def test_every_number_in_the_prose_comes_from_the_paper_or_the_study_design():
    """Measured figures are printed by cells, never typed into the text: a decimal in the prose is the
    paper's (study_view.PAPER), a λ of the grid, or one checked in test_the_prose_claims_hold."""
    c = STUDY["config"]
    allowed = _paper_numbers() | {f"{l:g}" for l in c["lbds"]} | {"1.0"}  # 1.0: training exact match at 250 pairs
    allowed |= {"2509.14252", "0.5"}  # the arXiv id; exercise 2's loss_dropout
    decimals = re.findall(r"(?<![\w.\-])\d+\.\d+(?![\w\-])", TEXT)
    assert decimals and set(decimals) <= allowed, set(decimals) - allowed
    assert "the 300 test pairs" in TEXT and c["n_test"] == 300
    assert "Chance is 1/300" in TEXT
    assert "Fourteen λ values" in TEXT and 2 * (len(c["lbds"]) - 1) == 14
    assert "five\nseeds" in TEXT and len(c["seeds"]) == 5
    assert "more than a hundred runs" in TEXT and len(STUDY["runs"]) > 100
    recipe = pretrain.load_recipe()
    assert "the few hundred thousand tokens printed above" in TEXT and 1e5 < recipe["corpus"]["train_tokens"] < 1e6
    assert "about a thousand times more parameters" in TEXT and 5e2 < 1.24e9 / recipe["parameters"] < 2e3  # Llama-3.2-1B


def _effects(start):
    return {r["lbd"]: r["effect"] for r in study.lambda_table(STUDY) if r["start"] == start and r["lbd"] > 0}


def test_the_prose_claims_hold_in_the_study_file():
    """Each qualitative sentence of the notebook's text, checked against jepa_lite/resources/study.json."""
    scratch, pre = _effects("scratch"), _effects("pretrained")
    # § 4: "From scratch, small λ (up to 0.1) is within noise ... from λ = 0.3 upwards it lowers exact match clearly"
    assert all(scratch[l]["within_noise"] for l in (0.01, 0.03, 0.1))
    assert all(not scratch[l]["within_noise"] and scratch[l]["diff"] < 0 for l in (0.3, 1.0, 2.0, 4.0))
    assert "up to 0.1" in TEXT and "from λ = 0.3 upwards" in TEXT
    # "... down to almost nothing at λ = 4"
    assert study.summary(STUDY, stage="lambda", start="scratch", lbd=4.0)["mean"] < 0.1
    # "From the kit's pretrained start every λ is within noise" and it "fine-tunes far worse than the random one"
    assert all(e["within_noise"] for e in pre.values())
    p0, s0 = (study.summary(STUDY, stage="lambda", start=s, lbd=0.0) for s in ("pretrained", "scratch"))
    assert p0["mean"] < 0.5 * s0["mean"]
    # "In this miniature the JEPA term does not help": no λ raises exact match beyond noise
    assert not any(e["diff"] > 0 and not e["within_noise"] for e in [*scratch.values(), *pre.values()])
    # § 5: "from scratch, test exact match roughly doubles by the middle budget and still rises at the longest,
    # where both starts fit their training set exactly"; the pretrained start "stays behind", the interval excludes 0
    c = STUDY["config"]
    assert 3.5 < c["steps"] * c["batch_size"] / c["n_train"] < 4.5  # "about four epochs", the paper's budget
    assert c["long_steps"] == 3 * c["steps"] and c["longest_steps"] == 9 * c["steps"]  # "three and nine times"
    epochs = [n * c["batch_size"] / c["n_train"] for n in (c["long_steps"], c["longest_steps"])]
    assert "about 13 and 38 epochs, three\nseeds" in TEXT and [round(x) for x in epochs] == [13, 38] and len(c["later_seeds"]) == 3
    budget = {(r["start"], r["lbd"], r["steps"]): r for r in study_view.budget_rows(STUDY)}
    s400, s1200, s3600 = (budget[("scratch", 0.0, n)]["test"]["mean"] for n in (c["steps"], c["long_steps"], c["longest_steps"]))
    assert 1.7 < s1200 / s400 < 2.3 and s3600 > s1200
    assert all(r["train"]["mean"] == 1.0 for (_, _, n), r in budget.items() if n == c["longest_steps"])
    e = study.effect(STUDY, baseline=study_view.budget_where(STUDY, "scratch", 0.0, c["longest_steps"]),
                     **study_view.budget_where(STUDY, "pretrained", 0.0, c["longest_steps"]))
    assert e["diff"] < 0 and not e["within_noise"]
    assert all(budget[("pretrained", 0.0, n)]["test"]["mean"] < budget[("scratch", 0.0, n)]["test"]["mean"]
               for n in (c["steps"], c["long_steps"], c["longest_steps"]))  # "climbs more slowly"
    # "it leaves the weights several times larger than at initialisation"
    ratios = [float(line.rsplit("(", 1)[1].rstrip("×)")) for line in study_view.weight_scale_lines(pretrain.KIT_LM)]
    assert min(ratios) >= 3
    # sizes at the middle budget: the smallest set is memorised and generalises worst; more data helps;
    # the pretrained start on the full set is not yet converged there ("well below 1.0")
    rows = {(r["start"], r["lbd"], r["n_train"]): r for r in study_view.size_rows(STUDY)}
    for start in study.STARTS:
        small, mid, full = (rows[(start, 0.0, n)] for n in (250, 1000, 3000))
        assert small["train"]["mean"] == 1.0 and small["test"]["mean"] < mid["test"]["mean"]
        assert small["train"]["mean"] - small["test"]["mean"] > 0.5  # over-fitting
        assert mid["train"]["mean"] > 0.99
    assert rows[("scratch", 0.0, 3000)]["test"]["mean"] > rows[("scratch", 0.0, 1000)]["test"]["mean"]
    assert rows[("scratch", 0.0, 3000)]["train"]["mean"] > 0.98 and rows[("pretrained", 0.0, 3000)]["train"]["mean"] < 0.9
    # "test exact match keeps rising from the middle to the longest budget" (full set, both starts, both λ)
    for start in study.STARTS:
        for lbd in (0.0, STUDY["best_lambda"][start]):
            assert budget[(start, lbd, c["longest_steps"])]["test"]["mean"] > budget[(start, lbd, c["long_steps"])]["test"]["mean"]
    # "at every size and budget, the best λ is within noise of LM only"
    for start in study.STARTS:
        best = STUDY["best_lambda"][start]
        for n in (250, 1000, 3000):
            assert study.effect(STUDY, stage="size", start=start, lbd=best, n_train=n, steps=c["long_steps"])["within_noise"]
        assert study.effect(STUDY, **study_view.budget_where(STUDY, start, best, c["longest_steps"]))["within_noise"]
    # § 6: k changes nothing measurable; lm_tokens = "all" costs exact match
    for where in (dict(stage="k", start="scratch", predictors=1), dict(stage="k", start="scratch", predictors=2),
                  dict(stage="k", start="pretrained", predictors=1)):
        assert study.effect(STUDY, **where)["within_noise"], where
    e = study.effect(STUDY, baseline=dict(stage="lambda", start="scratch", lbd=0.0), stage="lm_tokens", start="scratch", lbd=0.0)
    assert e["diff"] < 0 and not e["within_noise"]
    e = study.effect(STUDY, baseline=dict(stage="lambda", start="pretrained", lbd=0.0), stage="lm_tokens", start="pretrained", lbd=0.0)
    assert e["within_noise"]  # "From the pretrained start ... the difference is within noise"
    # § 7: alignment grows with λ, and from scratch the gap and retrieval fall again at λ = 4 (collapse)
    m = lambda metric, start, lbd: study.summary(STUDY, metric, stage="lambda", start=start, lbd=lbd)["mean"]
    for start in study.STARTS:
        assert m("geometry.cos_true", start, 1.0) > m("geometry.cos_true", start, 0.0) + 0.5
        assert m("geometry.relative_residual_heldout", start, 1.0) < m("geometry.relative_residual_heldout", start, 0.0)
    assert m("geometry.cos_gap", "scratch", 4.0) < 0.2 * m("geometry.cos_gap", "scratch", 1.0)
    assert m("geometry.retrieval_at_1", "scratch", 4.0) < 0.5 * m("geometry.retrieval_at_1", "scratch", 1.0)
    # § 8: both failure modes collapse from either start
    for r in study.select(STUDY, stage="failure"):
        assert r["collapse"]["code"]["mean_cos"] > 0.98 and abs(r["geometry"]["cos_gap"]) < 0.01, r["start"]
        assert r["exact_match"]["test"] <= 0.03


def test_the_panel_browses_the_studys_runs_in_both_modes():
    panel = study_view.study_explorer(STUDY)
    data = panel.render(start="scratch", lbd=1.0, predictors=0, n_train=3000)
    assert [r["lbd"] for r in data["runs"]] == [1.0] * 5 and data["note"] == ""
    assert all(r["steps"] == STUDY["config"]["steps"] for r in data["runs"])
    data = panel.render(start="scratch", lbd=1.0, predictors=2, n_train=3000)  # k only ran at the best λ
    assert data["where"] == dict(stage="k", start="scratch", lbd=STUDY["best_lambda"]["scratch"], predictors=2)
    assert "best λ" in data["note"]
    data = panel.render(start="pretrained", lbd=0.0, predictors=0, n_train=250, steps=STUDY["config"]["steps"])
    assert {r["n_train"] for r in data["runs"]} == {250} and "sizes were trained" in data["note"]  # sizes ran long_steps
    assert {r["steps"] for r in data["runs"]} == {STUDY["config"]["long_steps"]}
    data = panel.render(start="scratch", lbd=2.0, predictors=0, n_train=3000, steps=STUDY["config"]["longest_steps"])
    assert data["where"]["stage"] == "long" and {r["lbd"] for r in data["runs"]} == {STUDY["best_lambda"]["scratch"]}
    assert {r["steps"] for r in data["runs"]} == {STUDY["config"]["longest_steps"]} and len(data["runs"]) == 3
    panel.controls["lbd"].value = 4.0  # what moving the slider does
    assert panel.last["where"]["lbd"] == 4.0 and panel.last["runs"]


def test_a_step_with_the_jepa_term_runs_three_rows_per_pair():
    trainer = PairedTrainer(PairedConfig(model=str(pretrain.KIT_LM), n_train=64, n_test=8, batch_size=16,
                                         device="cpu", progress=False), log=lambda s: None)
    assert study_view.rows_through_model(trainer) == 3 * 16
    trainer.config.lbd = 0.0
    assert study_view.rows_through_model(trainer) == 16


def test_the_paired_t_exercise_checker_can_fail(capsys):
    from jepa_lite.paired.stats import paired_t

    assert study_view.check_paired_t(lambda a, b: paired_t(a, b)["t"])
    assert not study_view.check_paired_t(lambda a, b: ...)
    assert not study_view.check_paired_t(lambda a, b: paired_t(a, b)["diff"])
    assert "expected" in capsys.readouterr().out


def test_the_papers_gains_quoted_in_words_are_right():
    t10, t12 = study_view.PAPER["table10"]["lbd"], study_view.PAPER["table12"]
    assert "more than nine points at every λ it tried" in TEXT
    assert min(v - t10[0.0] for l, v in t10.items() if l > 0) > 9
    assert t12["baseline"][0] == t10[0.0]

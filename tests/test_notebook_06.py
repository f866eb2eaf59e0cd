"""Notebook 06 follows the course conventions, and its prose agrees with the study's results file."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest
import test_notebooks_import_library as conventions

from jepa_lite.course import nlrx_view, study_view
from jepa_lite.paired import PairedConfig, PairedTrainer, nlrx_study, pretrain, study

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_llm_jepa_paper.ipynb"
NB = nbformat.read(NOTEBOOK, as_version=4)
CODE = "\n".join(c.source for c in NB.cells if c.cell_type == "code")
TEXT = "\n".join(c.source for c in NB.cells if c.cell_type == "markdown")
STUDY = study.load_study()
NLRX = nlrx_study.load()
FLAT = " ".join(TEXT.split())  # the prose with line breaks as spaces


@pytest.fixture(autouse=True)
def close_figures():
    """The panel draws figures (plt.show() does not close them off-screen): close them after each test."""
    yield
    plt.close("all")


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


def test_notebook_is_built_on_the_study_and_covers_the_issue():
    for call in (
        "nlrx_study.load(",
        "nlrx.splits(",
        "nlrx_view.describe(",
        "nlrx_view.lambda_figure(",
        "nlrx_view.lambda_lines(",
        "nlrx_view.verdict_lines(",
        "nlrx_view.lr_figure(",
        "nlrx_view.lr_lines(",
        "nlrx_view.size_figure(",
        "nlrx_view.size_lines(",
        "nlrx_view.contrast_rows(",
        "nlrx_view.overlap_lines(",
        "nlrx_view.generated_verdict_lines(",
        "study.load_study(",
        "study_view.lambda_figure(",
        "study_view.size_figure(",
        "study_view.budget_figure(",
        "study_view.convergence_lines(",
        "study_view.stage2_lines(",
        "study_view.geometry_figure(",
        "viz.spectrum_figure(",
        "viz.views_pca_figure(",
        "study_view.failure_lines(",
        "study_view.study_explorer(",
        'check_function("06.4", paired_t_statistic)',
        "pretrain.load_recipe(",
    ):
        assert call in CODE, call
    for cite in ("2509.14252", "Table 14", "Fig. 3 (left)", "eq. 3", "Table 2", "Table 10", "Table 12", "App. A.3"):
        assert cite in TEXT, cite
    assert "Fig. 4" not in TEXT and "Fig. 4" not in CODE
    # jargon defined where it first appears
    for term, definition in (
        ("greedily", "most\nlikely next token"),
        ("stop-gradient", "no gradient flows"),
        ("Frobenius norm", "square root of the sum of the squares"),
        ("singular value decomposition", "singular values"),
        ("NL-RX", "regular expression"),
        ("GSM8K", "maths problem"),
        ("Spider", "SQL"),
    ):
        first = TEXT.index(term)
        assert definition.replace("\n", " ") in TEXT[first : first + 400].replace("\n", " "), term


def test_predict_then_check_asks_before_it_tells():
    cells = NB.cells
    asks = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "Predict, then check" in c.source]
    assert len(asks) >= 2
    for i in asks:
        guess, reveal = cells[i + 1], cells[i + 2]
        assert guess.cell_type == "code" and re.fullmatch(
            r"my_\w+ = (None|\{.*\})\s*(#.*)?", guess.source.strip(), re.S
        )
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
    allowed = _paper_numbers() | {f"{lbd:g}" for lbd in c["lbds"]} | {"1.0"}  # 1.0: training exact match at 250 pairs
    allowed |= {"2509.14252", "0.5"}  # the arXiv id; exercise 2's loss_dropout
    decimals = re.findall(r"(?<![\w.\-])\d+\.\d+(?![\w\-])", TEXT)
    assert decimals and set(decimals) <= allowed, set(decimals) - allowed
    assert "the 300 test pairs" in TEXT and c["n_test"] == 300
    assert "Chance is 1/300" in TEXT
    n = nlrx_study.config_of(NLRX)
    assert "Fourteen λ values are compared" in FLAT and 2 * (len(n.lbds) - 1) == 14
    assert "and five seeds" in FLAT and len(c["seeds"]) == 5  # the kit's-pairs study
    assert (
        "up to ten seeds" in FLAT and len(n.seeds) == 10 and "the sweep's two seeds" in FLAT and len(n.sweep_seeds) == 2
    )
    assert "four peak learning rates" in FLAT and len(n.lrs) == 4 and n.epochs == 4 and "for four epochs" in FLAT
    assert "hundreds of runs" in FLAT and len(NLRX["runs"]) >= 200
    assert "8,000 training and 2,000 test pairs" in FLAT and "carves a **validation split** of 1,000 pairs" in FLAT
    assert n.n_val == 1000 and n.n_train == 0 and n.n_test == 0
    assert "trained 500 and 2,000 pairs" in FLAT and n.sizes == (500, 2000) and "instead of 7,000" in FLAT
    assert (
        "only 63 steps" in FLAT
        and n.steps_for(500) == 63
        and "2,000 pairs (250 steps)" in FLAT
        and n.steps_for(2000) == 250
    )
    assert "the full budget is 875 steps" in FLAT and n.steps_for(7000) == 875 and "`LIVE_STEPS = 875`" in FLAT
    assert "3,000 training pairs drawn" in FLAT and c["n_train"] == 3000
    assert "at 4e-3 for the pretrained start" in FLAT and c["lr"]["pretrained"] == 4e-3
    assert "nine to fourteen points" in FLAT  # Table 10's smallest and Table 12's gain, rounded down
    t10, t12 = study_view.PAPER["table10"]["lbd"], study_view.PAPER["table12"]
    assert (
        9 < min(v - t10[0.0] for lbd, v in t10.items() if lbd > 0) < 10
        and 14 < t12["llm_jepa"][0] - t12["baseline"][0] < 15
    )
    recipe = pretrain.load_recipe()
    assert "the few hundred thousand tokens printed above" in TEXT and 1e5 < recipe["corpus"]["train_tokens"] < 1e6
    assert (
        "about a thousand times more parameters" in TEXT and 5e2 < 1.24e9 / recipe["parameters"] < 2e3
    )  # Llama-3.2-1B


def _effects(start):
    return {r["lbd"]: r["effect"] for r in study.lambda_table(STUDY) if r["start"] == start and r["lbd"] > 0}


def test_the_prose_claims_hold_in_the_study_file():
    """Each qualitative sentence of the notebook's text, checked against jepa_lite/resources/study.json."""
    scratch, pre = _effects("scratch"), _effects("pretrained")
    # § 7: "From scratch it agrees with the paper's data: small λ show no paper-sized gain, large λ hurt.
    # From the pretrained start ... λ = 0.3 can't be told apart from a paper-sized gain"
    words = {
        s: {lbd: nlrx_study.verdict(e) for lbd, e in eff.items()}
        for s, eff in (("scratch", scratch), ("pretrained", pre))
    }
    assert {lbd for lbd, w in words["scratch"].items() if w == "no gain of the paper's size"} == {0.01, 0.03, 0.1}
    assert {lbd for lbd, w in words["scratch"].items() if w == "hurts"} == {0.3, 1.0, 2.0, 4.0}
    assert words["pretrained"][0.3] == "can't tell" and "helps" not in words["pretrained"].values()
    assert "λ = 0.3 can't be told apart" in FLAT
    # "a start that is far from converged": the pretrained start fine-tunes far worse than the random one
    p0, s0 = (study.summary(STUDY, stage="lambda", start=s, lbd=0.0) for s in ("pretrained", "scratch"))
    assert p0["mean"] < 0.5 * s0["mean"]
    # § 5: "from scratch, test exact match roughly doubles by the middle budget and still rises at the longest,
    # where both starts fit their training set exactly"; the pretrained start "stays behind", the interval excludes 0
    c = STUDY["config"]
    assert 3.5 < c["steps"] * c["batch_size"] / c["n_train"] < 4.5  # "about four epochs", the paper's budget
    assert c["long_steps"] == 3 * c["steps"] and c["longest_steps"] == 9 * c["steps"]  # "three and nine times"
    epochs = [n * c["batch_size"] / c["n_train"] for n in (c["long_steps"], c["longest_steps"])]
    assert (
        "about 13 and 38 epochs, three seeds" in FLAT
        and [round(x) for x in epochs] == [13, 38]
        and len(c["later_seeds"]) == 3
    )
    budget = {(r["start"], r["lbd"], r["steps"]): r for r in study_view.budget_rows(STUDY)}
    s400, s1200, s3600 = (
        budget[("scratch", 0.0, n)]["test"]["mean"] for n in (c["steps"], c["long_steps"], c["longest_steps"])
    )
    assert 1.7 < s1200 / s400 < 2.3 and s3600 > s1200
    assert all(r["train"]["mean"] == 1.0 for (_, _, n), r in budget.items() if n == c["longest_steps"])
    e = study.effect(
        STUDY,
        baseline=study_view.budget_where(STUDY, "scratch", 0.0, c["longest_steps"]),
        **study_view.budget_where(STUDY, "pretrained", 0.0, c["longest_steps"]),
    )
    assert e["diff"] < 0 and not e["within_noise"]
    assert all(
        budget[("pretrained", 0.0, n)]["test"]["mean"] < budget[("scratch", 0.0, n)]["test"]["mean"]
        for n in (c["steps"], c["long_steps"], c["longest_steps"])
    )  # "climbs more slowly"
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
    assert (
        rows[("scratch", 0.0, 3000)]["train"]["mean"] > 0.98 and rows[("pretrained", 0.0, 3000)]["train"]["mean"] < 0.9
    )
    # "test exact match keeps rising from the middle to the longest budget" (full set, both starts, both λ)
    for start in study.STARTS:
        for lbd in (0.0, STUDY["best_lambda"][start]):
            assert (
                budget[(start, lbd, c["longest_steps"])]["test"]["mean"]
                > budget[(start, lbd, c["long_steps"])]["test"]["mean"]
            )
    # "at every size and budget, the best λ is within noise of LM only"
    for start in study.STARTS:
        best = STUDY["best_lambda"][start]
        for n in (250, 1000, 3000):
            assert study.effect(STUDY, stage="size", start=start, lbd=best, n_train=n, steps=c["long_steps"])[
                "within_noise"
            ]
        assert study.effect(STUDY, **study_view.budget_where(STUDY, start, best, c["longest_steps"]))["within_noise"]
    # § 6: k changes nothing measurable; lm_tokens = "all" costs exact match
    for where in (
        dict(stage="k", start="scratch", predictors=1),
        dict(stage="k", start="scratch", predictors=2),
        dict(stage="k", start="pretrained", predictors=1),
    ):
        assert study.effect(STUDY, **where)["within_noise"], where
    e = study.effect(
        STUDY, baseline=dict(stage="lambda", start="scratch", lbd=0.0), stage="lm_tokens", start="scratch", lbd=0.0
    )
    assert e["diff"] < 0 and not e["within_noise"]
    e = study.effect(
        STUDY,
        baseline=dict(stage="lambda", start="pretrained", lbd=0.0),
        stage="lm_tokens",
        start="pretrained",
        lbd=0.0,
    )
    assert e["within_noise"]  # "From the pretrained start ... the difference is within noise"

    # § 7: alignment grows with λ, and from scratch the gap and retrieval fall again at λ = 4 (collapse)
    def m(metric, start, lbd):
        return study.summary(STUDY, metric, stage="lambda", start=start, lbd=lbd)["mean"]

    for start in study.STARTS:
        assert m("geometry.cos_true", start, 1.0) > m("geometry.cos_true", start, 0.0) + 0.5
        assert m("geometry.relative_residual_heldout", start, 1.0) < m("geometry.relative_residual_heldout", start, 0.0)
    assert m("geometry.cos_gap", "scratch", 4.0) < 0.2 * m("geometry.cos_gap", "scratch", 1.0)
    assert m("geometry.retrieval_at_1", "scratch", 4.0) < 0.5 * m("geometry.retrieval_at_1", "scratch", 1.0)
    # § 8: both failure modes collapse from either start
    for r in study.select(STUDY, stage="failure"):
        assert r["collapse"]["code"]["mean_cos"] > 0.98 and abs(r["geometry"]["cos_gap"]) < 0.01, r["start"]
        assert r["exact_match"]["test"] <= 0.03


def _cmp(start, lbd, n_train=0):
    return nlrx_study.comparison(NLRX, start, lbd, n_train=n_train)


def test_the_nlrx_claims_hold_in_its_results_file():
    """Each sentence of §§ 4–6 (the paper's data), checked against jepa_lite/resources/study_nlrx.json."""
    assert NLRX["complete"] and nlrx_study.missing(NLRX) == []
    lbds = [lbd for lbd in nlrx_study.config_of(NLRX).lbds if lbd > 0]
    c = {s: {lbd: _cmp(s, lbd) for lbd in lbds} for s in nlrx_study.STARTS}
    # § 4: from scratch, "λ up to 0.3 shows no gain of the paper's size ... from λ = 1 upwards the term hurts,
    # more the larger λ"
    assert all(c["scratch"][lbd]["verdict"] == "no gain of the paper's size" for lbd in (0.01, 0.03, 0.1, 0.3))
    assert all(c["scratch"][lbd]["verdict"] == "hurts" for lbd in (1.0, 2.0, 4.0))
    assert c["scratch"][1.0]["diff"] > c["scratch"][2.0]["diff"] > c["scratch"][4.0]["diff"]
    # pretrained: "the middle λ show no gain of the paper's size and λ ≥ 2 hurts; λ = 0.01 comes out a little lower"
    assert all(c["pretrained"][lbd]["verdict"] == "no gain of the paper's size" for lbd in (0.03, 0.1, 0.3, 1.0))
    assert all(c["pretrained"][lbd]["verdict"] == "hurts" for lbd in (2.0, 4.0))
    assert c["pretrained"][0.01]["verdict"] == "hurts" and c["pretrained"][0.01]["diff"] > -0.03
    assert "λ = 0.01 comes out a little lower than λ = 0" in FLAT
    # "does not help ... from either start"; "our intervals rule out gains that large"
    assert not any(x["verdict"] == "helps" for s in c.values() for x in s.values())
    assert all(x["ci_high"] < nlrx_study.MARGIN for s in c.values() for x in s.values())
    # "The λ picked on the validation split (the same small λ for both starts) is within a couple of points of λ = 0"
    best = NLRX["best_lambda"]
    assert best["scratch"] == best["pretrained"] <= 0.03 and all(abs(c[s][best[s]]["diff"]) < 0.02 for s in best)
    # "Table 2 ... our from-scratch runs at its λ = 1 and 2 go the other way"
    assert c["scratch"][1.0]["diff"] < 0 and c["scratch"][2.0]["diff"] < 0
    # "the pretrained start fine-tunes worse than the start from scratch at every λ"
    rows = {(r["start"], r["lbd"]): r["mean"] for r in nlrx_view.lambda_rows(NLRX)}
    assert all(rows[("pretrained", lbd)] < rows[("scratch", lbd)] for lbd in (0.0, *lbds))
    # § 5: "At a shared rate of 4e-3 or 8e-3 — too high for plain fine-tuning, whose best rate is lower — λ = 1 is
    # ahead of λ = 0; at the gentle 1e-3 it is far behind"; "From scratch ... λ = 1 trails λ = 0 at every rate"
    fixed = {(r["lr"], r["lbd"]): r["diff"] for r in nlrx_view.fixed_rate_rows(NLRX, "pretrained")}
    assert fixed[(4e-3, 1.0)] > 0 and fixed[(8e-3, 1.0)] > 0 and fixed[(1e-3, 1.0)] < -0.05
    assert NLRX["best_lr"]["pretrained"]["0"] < 4e-3
    assert all(r["diff"] < 0 for r in nlrx_view.fixed_rate_rows(NLRX, "scratch") if r["lbd"] == 1.0)
    # the winner's curse: "λ = 0.1 at 4e-3 had the highest test exact match of any setting from the pretrained start,
    # well above λ = 0; over all ten seeds at that rate it falls back to about λ = 0's level, with the widest interval"
    sweep = {}
    for r in NLRX["runs"]:
        if r["stage"] == "lr" and r["start"] == "pretrained":
            sweep.setdefault((r["lbd"], r["lr"]), []).append(r["exact_match"]["test"])
    means = {k: sum(v) / len(v) for k, v in sweep.items()}
    assert max(means, key=means.get) == (0.1, 4e-3) and NLRX["best_lr"]["pretrained"]["0.1"] == 4e-3
    assert means[(0.1, 4e-3)] - max(m for (lbd, _), m in means.items() if lbd == 0) > 0.03
    assert abs(rows[("pretrained", 0.1)] - rows[("pretrained", 0.0)]) < 0.01
    widths = {(s, lbd): x["ci_high"] - x["ci_low"] for s in c for lbd, x in c[s].items()}
    assert max(widths, key=widths.get) == ("pretrained", 0.1)
    # § 6: "no run of either start gets a single test regex right" at 500 pairs; at 2,000 no gain of the paper's size
    small = [r for r in NLRX["runs"] if r["stage"] == "size" and r["n_train"] == 500]
    assert len(small) == 40 and all(r["correct"]["test"] == 0 for r in small)
    for s in nlrx_study.STARTS:
        assert _cmp(s, best[s], 500)["verdict"] == "both score 0: nothing to compare"
        assert _cmp(s, best[s], 2000)["verdict"] == "no gain of the paper's size"


@pytest.fixture(scope="module")
def contrast():
    return nlrx_view.contrast_rows(STUDY, NLRX, pretrain.KIT_LM)


def test_the_two_corpora_differ_as_section_7_says(contrast):
    kit, off = contrast["kit's generated pairs"], contrast["NL-RX-SYNTH"]
    # "The official data is narrower. Fewer distinct words, and almost exactly one description per regex"
    assert off["vocabulary"] < kit["vocabulary"] and off["texts_per_code"] < 1.05 < kit["texts_per_code"]
    # "The official set is larger, so four epochs are more than twice as many steps ... although its regexes are longer"
    n = nlrx_study.config_of(NLRX)
    assert n.steps_for(off["train_pairs"]) > 2 * STUDY["config"]["steps"] and off["code_chars"] > kit["code_chars"]
    for start in nlrx_study.STARTS:  # "Both starts reach far higher exact match on it"
        assert off[f"{start}_test_em"] > kit[f"{start}_test_em"] + 0.2
        # "Neither corpus is at its ceiling at the paper's budget (training exact match well below 1 at λ = 0)"
        assert kit[f"{start}_train_em"] < 0.9 and off[f"{start}_train_em"] < 0.9
    # "The pretrained start finds NL-RX-SYNTH less familiar (a higher loss on its regexes and rows)"
    assert off["start_loss_code"] > kit["start_loss_code"] and off["start_loss_row"] > kit["start_loss_row"]


def test_the_shared_pca_axes_and_the_spectrum_caption():
    from jepa_lite.course import viz

    runs = {
        f"scratch, λ = {lbd:g}": study_view.as_viz_run(
            study_view.seed0(STUDY, stage="lambda", start="scratch", lbd=lbd)
        )
        for lbd in (0.0, 4.0)
    }
    fig = viz.views_pca_figure(runs)
    a, b = fig.axes[:2]
    assert a.get_xlim() == b.get_xlim() and a.get_ylim() == b.get_ylim() and len(a.get_xticks()) > 1
    title = viz.spectrum_figure(runs).axes[0].get_title()
    assert "collapse" in title


def test_the_panel_browses_the_studys_runs_in_both_modes():
    panel = study_view.study_explorer(STUDY)
    data = panel.render(start="scratch", lbd=1.0, predictors=0, n_train=3000)
    assert [r["lbd"] for r in data["runs"]] == [1.0] * 5 and data["note"] == ""
    assert all(r["steps"] == STUDY["config"]["steps"] for r in data["runs"])
    data = panel.render(start="scratch", lbd=1.0, predictors=2, n_train=3000)  # k only ran at the best λ
    assert data["where"] == dict(stage="k", start="scratch", lbd=STUDY["best_lambda"]["scratch"], predictors=2)
    assert "best λ" in data["note"]
    data = panel.render(start="pretrained", lbd=0.0, predictors=0, n_train=250, steps=STUDY["config"]["steps"])
    assert {r["n_train"] for r in data["runs"]} == {250} and "sizes were trained" in data[
        "note"
    ]  # sizes ran long_steps
    assert {r["steps"] for r in data["runs"]} == {STUDY["config"]["long_steps"]}
    data = panel.render(start="scratch", lbd=2.0, predictors=0, n_train=3000, steps=STUDY["config"]["longest_steps"])
    assert data["where"]["stage"] == "long" and {r["lbd"] for r in data["runs"]} == {STUDY["best_lambda"]["scratch"]}
    assert {r["steps"] for r in data["runs"]} == {STUDY["config"]["longest_steps"]} and len(data["runs"]) == 3
    panel.controls["lbd"].value = 4.0  # what moving the slider does
    assert panel.last["where"]["lbd"] == 4.0 and panel.last["runs"]


def test_a_step_with_the_jepa_term_runs_three_rows_per_pair():
    trainer = PairedTrainer(
        PairedConfig(model=str(pretrain.KIT_LM), n_train=64, n_test=8, batch_size=16, device="cpu", progress=False),
        log=lambda s: None,
    )
    assert study_view.rows_through_model(trainer) == 3 * 16
    trainer.config.lbd = 0.0
    assert study_view.rows_through_model(trainer) == 16


def test_the_paired_t_exercise_is_checked_like_the_other_implement_it_exercises(capsys):
    from jepa_lite.course.implement import check_function, first_failure
    from jepa_lite.paired.stats import paired_t

    assert check_function("06.4", lambda a, b: paired_t(a, b)["t"]) is True
    assert check_function("06.4", lambda a, b: ...) is None
    assert "not written yet" in capsys.readouterr().out
    seen = first_failure("06.4", lambda a, b: paired_t(a, b)["diff"])[2]
    assert "mean difference" in seen


def test_the_papers_gains_quoted_in_words_are_right():
    t10, t12 = study_view.PAPER["table10"]["lbd"], study_view.PAPER["table12"]
    assert "more than nine points at every λ it tried" in TEXT
    assert min(v - t10[0.0] for lbd, v in t10.items() if lbd > 0) > 9
    assert t12["baseline"][0] == t10[0.0]


def test_the_closing_note_says_where_each_of_the_five_questions_is_answered():
    """Issue 26 item 7: the closing note's table names, for each core question, sections that exist."""
    last = nbformat.read(NOTEBOOK, as_version=4).cells[-1].source
    rows = re.findall(r"^\| (.+\?) \| (.+) \|$", last, re.M)
    assert [q.split(",")[0] for q, _ in rows] == [
        "Why an EMA target",
        "Why the cosine",
        "Why spans",
        "What is collapse",
        "What does the paper's objective add",
    ]
    headings = {}
    for path in NOTEBOOK.parent.glob("0[0-6]_*.ipynb"):
        cells = nbformat.read(path, as_version=4).cells
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        headings[path.name[:2]] = set(re.findall(r"^## (\d+) · ", text, re.M))
    for _, where in rows:
        refs = re.findall(r"\b(0\d) § (\d+)", where)
        assert refs, where
        for notebook, section in refs:
            assert section in headings[notebook], (notebook, section)

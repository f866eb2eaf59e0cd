"""Claims the notebooks' prose makes about what their cells compute, checked against that code.

Each test names the notebook section whose text it guards, reads the sentence from the notebook (so
that a rewrite of the prose without the code, or of the code without the prose, fails here) and runs
the library with the notebook's own settings, in fast and full mode where they differ.
"""

import math
from pathlib import Path

import nbformat
import pytest
import torch

from jepa_lite.course import explore
from jepa_lite.course.runs import final_metrics, run_history
from jepa_lite.diagnostics import CollapseThresholds, collapse_warning
from jepa_lite.ema import half_life
from jepa_lite.masking import sample_span_mask

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def markdown(name: str) -> str:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_01_the_floor_of_the_budget_on_a_short_row():
    """01 § 3: 'with n = 3 and mask_ratio = 0.3, r·n = 0.9 but b is always 1'."""
    assert "with n = 3\nand mask_ratio = 0.3, r·n = 0.9 but b is always 1" in markdown("01_span_masking.ipynb")
    g = torch.Generator().manual_seed(0)
    assert {int(sample_span_mask([True] * 3, 0.3, 5, g).sum()) for _ in range(300)} == {1}


def test_01_names_the_source_article_with_its_citation_and_quotes_none_of_its_numbers():
    """01 § 3 names the article the kit grew from: it is cited there (author and title) and in CITATION.cff,
    and the prose quotes no number of the article's that no cell prints (its 0.369 once was)."""
    yaml = pytest.importorskip("yaml")  # PyYAML comes with jupyter (the notebooks extra)
    text = markdown("01_span_masking.ipynb")
    title = "用 PyTorch 实现 LLM-JEPA:不预测 token,预测嵌入"
    assert f"azhar, *{title}*" in text and "Implementing LLM-JEPA in PyTorch" in text
    cff = yaml.safe_load((NOTEBOOKS.parent / "CITATION.cff").read_text(encoding="utf-8"))
    blog = next(r for r in cff["references"] if r["type"] == "blog")
    assert title in blog["title"] and blog["authors"] == [{"name": "azhar"}]
    for where in (text, (NOTEBOOKS.parent / "docs" / "architecture.md").read_text(encoding="utf-8")):
        assert "0.369" not in where and "azhar" in where


def test_03_the_jump_is_half_closed_at_step_50_plus_68():
    """03 § 2: '50 + 68 ... 1 − m^(j+1) ... h = 68.97, after ⌈h⌉ = 69 updates'."""
    text = markdown("03_ema_target.ipynb")
    assert "h = 68.97, after ⌈h⌉ = 69 updates — at step 50 + 68" in text
    assert round(half_life(0.99), 2) == 68.97
    chase = explore.ema_chase(m=0.99, kind="jump")
    first = next(t for t, v in zip(chase["t"], chase["target"]) if v >= 0.5)
    assert first == 50 + 68 and math.ceil(half_life(0.99)) == 69
    j = 10
    assert chase["target"][50 + j] == pytest.approx(1 - 0.99 ** (j + 1), abs=1e-6)
    assert "a target with a half-life\nof one step" in text and half_life(0.5) == pytest.approx(1.0)


@pytest.mark.parametrize("steps", [150, 200], ids=["fast", "full"])
def test_03_m0_and_m05_collapse_and_m0996_recovers(steps):
    """03 § 3: m = 0 collapses below the std threshold, m = 0.5 is hardly better, m = 0.996 recovers."""
    text = markdown("03_ema_target.ipynb")
    assert "`CollapseThresholds().min_std` = 0.1" in text and CollapseThresholds().min_std == 0.1
    final = {m: final_metrics(run_history(ema_m=m, steps=steps, log_every=5)) for m in (0.0, 0.5, 0.996)}
    assert final[0.0]["std"] < 0.1 and collapse_warning(final[0.0])
    assert final[0.5]["std"] < 0.1 and collapse_warning(final[0.5])
    assert final[0.996]["std"] > 0.3 and collapse_warning(final[0.996]) is None


@pytest.mark.parametrize("steps", [150, 200], ids=["fast", "full"])
def test_03_a_frozen_target_m1_stays_healthy_but_ends_with_a_higher_loss_than_m0996(steps):
    """03 § 3: 'In this run (one seed) m = 1 stays healthy and ends with a higher loss than m = 0.996'."""
    assert "In this run (one seed) m = 1\nstays healthy and ends with a higher loss than m = 0.996" in markdown(
        "03_ema_target.ipynb"
    )
    frozen, slow = (final_metrics(run_history(ema_m=m, steps=steps, log_every=5)) for m in (1.0, 0.996))
    assert collapse_warning(frozen) is None and frozen["loss"] > slow["loss"]


def test_04_the_run_without_a_predictor_ends_healthier():
    """04 § 5: 'the run **without** a predictor ends the *healthier* one' (STEPS = 200 in both modes)."""
    assert "the run **without** a predictor ends the *healthier* one" in markdown("04_cosine_loss.ipynb")
    with_pred = final_metrics(run_history(loss="cosine", ema_m=0.9, steps=200))
    no_pred = final_metrics(run_history(loss="cosine", ema_m=0.9, steps=200, predictor=False))
    assert no_pred["std"] > with_pred["std"] and no_pred["mean_cos"] < with_pred["mean_cos"]
    text = markdown("04_cosine_loss.ipynb").replace("\n", " ")
    assert "On each of the three seeds the run **without** a predictor ends the *healthier* one" in text
    assert "some seeds end at the collapse threshold (std 0.1)" in text
    for seed in (0, 1, 2):  # the notebook's SEEDS
        with_pred = final_metrics(run_history(loss="cosine", ema_m=0.9, steps=200, seed=seed))
        no_pred = final_metrics(run_history(loss="cosine", ema_m=0.9, steps=200, seed=seed, predictor=False))
        assert no_pred["std"] > with_pred["std"] and no_pred["mean_cos"] < with_pred["mean_cos"], seed
    assert (
        sum(final_metrics(run_history(loss="cosine", ema_m=0.9, steps=200, seed=s))["std"] < 0.11 for s in (0, 1, 2))
        >= 1
    )


@pytest.mark.parametrize("n_rows", [160, 480], ids=["fast", "full"])
def test_01_sentences_are_short_and_the_kit_lands_on_the_ratio(n_rows):
    """01 § 3: 'under 20 maskable tokens' per row; 'both of the kit's maskers land on 0.30'."""
    text = markdown("01_span_masking.ipynb")
    assert "under 20 maskable tokens" in text and "both of the kit's maskers land on 0.30" in text
    assert float(explore.corpus_maskable("minilm", n_rows).sum(1).float().mean()) < 20
    c = explore.compare_maskers(mask_ratio=0.3, mean_span_len=5, n_rows=n_rows)
    assert round(c["sample_span_mask (readable)"]["masked_fraction"], 2) == 0.30
    assert round(c["mask_spans (vectorised)"]["masked_fraction"], 2) == 0.30


def test_04_at_m09_the_cosine_run_recovers_best_and_at_m0996_all_stay_healthy():
    """04 § 4: 'the **cosine** run ends highest (higher std, lower mean cosine)' (one run, worded so); at m = 0.996
    'the slow target alone keeps all three losses healthy in 200 steps'."""
    text = markdown("04_cosine_loss.ipynb")
    assert (
        "the **cosine** run ends\n  highest (higher std, lower mean cosine)" in text
        and "one run per loss, one\n  seed" in text
    )
    fast = {loss: final_metrics(run_history(loss=loss, ema_m=0.9, steps=200)) for loss in ("cosine", "l2", "mse")}
    assert all(
        fast["cosine"]["std"] > fast[o]["std"] and fast["cosine"]["mean_cos"] < fast[o]["mean_cos"]
        for o in ("l2", "mse")
    )
    slow = [final_metrics(run_history(loss=loss, ema_m=0.996, steps=200)) for loss in ("cosine", "l2", "mse")]
    assert all(collapse_warning(f) is None for f in slow)


def test_05_the_corpus_is_about_9000_tokens():
    """05 § 11: '480 short sentences are about 9,000 tokens (MiniLM's tokenizer, [CLS] and [SEP] included)'."""
    from jepa_lite.data import builtin_labelled_corpus

    assert "480 short sentences are about 9,000\ntokens (MiniLM's tokenizer" in markdown("05_training.ipynb")
    texts, _ = builtin_labelled_corpus()
    tok = explore.load_tokenizer("minilm")
    assert len(texts) == 480 and 8_500 <= sum(len(tok(t)["input_ids"]) for t in texts) <= 9_500


def test_05_the_tiny_run_dips_early_recovers_and_never_warns():
    """05 § 7: std drops over the first few dozen steps, then climbs back; no collapse warning (fast mode's run)."""
    from jepa_lite.course.runs import one_thread
    from jepa_lite.train import TrainConfig, Trainer

    assert "so it printed no warning" in markdown("05_training.ipynb")
    with one_thread():
        h = Trainer(
            TrainConfig.smoke(steps=100, log_every=10, save_path=None, progress=False), log=lambda s: None
        ).fit()
    low = min(range(len(h["std"])), key=lambda i: h["std"][i])
    assert 10 < h["step"][low] <= 60 and h["std"][-1] > 1.5 * h["std"][low]
    assert all(
        collapse_warning({k: h[k][i] for k in ("std", "rank", "mean_cos")}) is None for i in range(len(h["step"]))
    )


def test_04_exercise_4_the_l2_run_is_rescued_by_a_slower_target():
    """Exercise 04.4's answer text: the L2 run near collapse at m = 0.9 is healthy at m = 0.99."""
    from jepa_lite.course.exercises import EXERCISES

    assert "near collapse at m = 0.9 (§ 4) is healthy at m = 0.99" in EXERCISES["04.4"].why
    near = final_metrics(run_history(loss="l2", ema_m=0.9, steps=200))
    rescued = final_metrics(run_history(loss="l2", ema_m=0.99, steps=200))
    assert (
        near["std"] < 1.5 * CollapseThresholds().min_std and collapse_warning(rescued) is None and rescued["std"] > 0.5
    )


def test_05_exercise_5_spans_and_single_tokens_end_close_together():
    """Exercise 05.5's answer text: 'the two runs end within a few thousandths of each other'
    (fast mode's 100 steps)."""
    from jepa_lite.course.exercises import EXERCISES

    assert "within a few thousandths of each other" in EXERCISES["05.5"].why
    spans, single = (final_metrics(run_history(mean_span_len=s, steps=100))["loss"] for s in (5.0, 1.0))
    assert abs(spans - single) < 0.005

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


def test_04_the_run_without_a_predictor_ends_healthier_after_a_shallower_dip():
    """04 § 5, on the notebook's SEEDS (STEPS = 200 in both modes): without a predictor every run ends the
    healthier; it starts with a loss far below 1 (with one: near 1) and never dips as deep; some runs with a
    predictor are still at the collapse threshold at step 200."""
    text = " ".join(markdown("04_cosine_loss.ipynb").split())
    for claim in (
        "On each of the three seeds the run **without** a predictor ends the *healthier* one",
        "Without a predictor it starts far below 1",
        "With a predictor it starts near 1",
        "The runs with a predictor go through a much deeper early dip (down to about the collapse threshold, 0.1)",
        "200 steps are not enough for every seed to climb back out",
    ):
        assert claim in text, claim
    table = explore.predictor_ablation((0, 1, 2), steps=200, ema_m=0.9)
    for with_pred, no_pred in zip(table["with predictor"], table["no predictor"]):
        assert no_pred["std"] > with_pred["std"] and no_pred["mean_cos"] < with_pred["mean_cos"]
        assert no_pred["first_loss"] < 0.5 and with_pred["first_loss"] > 0.8
        assert with_pred["min_std"] < 0.15 and no_pred["min_std"] > 2 * with_pred["min_std"]
    assert any(r["std"] < 0.11 for r in table["with predictor"])


def test_04_trained_for_600_steps_the_predictor_runs_climb_back_and_nothing_collapses():
    """04 § 5: 'Trained for 600 steps instead ..., all three runs with a predictor climb back out (std above
    0.4), on one seed it ends the healthier, and none of the runs without a predictor collapses.'"""
    text = " ".join(markdown("04_cosine_loss.ipynb").split())
    assert "all three runs with a predictor climb back out (std above 0.4), on one seed it ends the healthier" in text
    table = explore.predictor_ablation((0, 1, 2), steps=600, ema_m=0.9)
    assert all(r["std"] > 0.4 for r in table["with predictor"])
    healthier = [a["std"] > b["std"] and a["mean_cos"] < b["mean_cos"] for a, b in zip(*table.values())]
    assert sum(healthier) == 1
    assert all(collapse_warning(r) is None for rows in table.values() for r in rows)


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


@pytest.mark.parametrize("steps", [100, 400], ids=["fast", "full"])
def test_05_the_tiny_run_dips_early_recovers_and_never_warns(steps):
    """05 § 7, worded as one run's illustration: std drops over the first few dozen steps, then climbs back
    while the loss keeps falling; no collapse warning (the notebook's run: the smoke preset, log every 10)."""
    from jepa_lite.course.runs import one_thread
    from jepa_lite.train import TrainConfig, Trainer

    text = markdown("05_training.ipynb")
    assert "This is **one run** (the preset's seed)" in text and "so it printed no warning" in text
    with one_thread():
        h = Trainer(
            TrainConfig.smoke(steps=steps, log_every=10, save_path=None, progress=False), log=lambda s: None
        ).fit()
    low = min(range(len(h["std"])), key=lambda i: h["std"][i])
    assert 10 < h["step"][low] <= 60 and h["std"][-1] > 1.5 * h["std"][low]
    assert h["loss"][-1] < h["loss"][low] < h["loss"][0]
    assert all(
        collapse_warning({k: h[k][i] for k in ("std", "rank", "mean_cos")}) is None for i in range(len(h["step"]))
    )


def _probe_claims_hold(scores):
    """05 § 11's five statements, on one mode's probe scores ({name: {"test_acc", "train_acc", "chance"}})."""
    acc = {name: r["test_acc"] for name, r in scores.items()}
    chance = scores["tiny, random init"]["chance"]
    assert acc["MiniLM, pretrained"] > 0.9 and acc["MiniLM, after JEPA"] > 0.9  # far ahead, close to 1
    assert abs(acc["MiniLM, after JEPA"] - acc["MiniLM, pretrained"]) <= 1 / 120 + 1e-6  # neither helped nor hurt
    assert acc["tiny, random init"] < 2 * chance and acc["tiny, after JEPA"] < 2 * chance  # near chance
    assert scores["tiny, after JEPA"]["train_acc"] < 0.75  # cannot even fit the training sentences well
    assert acc["bag of words (no encoder)"] > acc["tiny, after JEPA"] + 0.2  # a wide margin


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_05_what_the_probe_numbers_say_holds_in_both_modes(mode):
    """05 § 11, worded as one run's illustration; full mode from the committed scores (tests/test_probe.py
    checks them against the code), fast mode computed here with the notebook's fast settings."""
    import json

    from jepa_lite.course import probe

    text = markdown("05_training.ipynb")
    assert "one** training run per encoder\nand **one** train/test split: an illustration" in text
    for claim in (
        "**MiniLM is far ahead**",
        "neither helped nor hurt MiniLM's probe",
        "stays near chance",
        "cannot even fit the 360 training sentences well",
        "beats the tiny encoder by a wide margin",
    ):
        assert claim in " ".join(text.split()), claim
    if mode == "full":
        scores = json.loads(probe.SCORES_FILE.read_text(encoding="utf-8"))["scores"]
    else:
        scores = probe.notebook_05_scores(tiny_steps=100, minilm_steps=20)
    _probe_claims_hold(scores)


def test_04_exercise_4_the_l2_run_is_rescued_by_a_slower_target():
    """Exercise 04.4's answer text: the L2 run near collapse at m = 0.9 is healthy at m = 0.99."""
    from jepa_lite.course.exercises import EXERCISES

    assert "near collapse at m = 0.9 (§ 4) is healthy at m = 0.99" in EXERCISES["04.4"].why
    near = final_metrics(run_history(loss="l2", ema_m=0.9, steps=200))
    rescued = final_metrics(run_history(loss="l2", ema_m=0.99, steps=200))
    assert (
        near["std"] < 1.5 * CollapseThresholds().min_std and collapse_warning(rescued) is None and rescued["std"] > 0.5
    )


@pytest.mark.parametrize("steps,seeds", [(100, (42, 0, 1, 2)), (400, (42,))], ids=["fast", "full"])
def test_05_exercise_5_spans_and_single_tokens_end_close_together(steps, seeds):
    """Exercise 05.5's answer text: 'the two runs end within a few thousandths of each other (one run each; the
    same holds on seeds 0, 1 and 2 ...)': the notebook's seed in both modes, and seeds 0–2 in fast mode."""
    from jepa_lite.course.exercises import EXERCISES

    assert "within a few thousandths of each other (one run each; the same holds on seeds 0" in EXERCISES["05.5"].why
    for seed in seeds:
        spans, single = (
            final_metrics(run_history(mean_span_len=s, steps=steps, seed=seed))["loss"] for s in (5.0, 1.0)
        )
        assert abs(spans - single) < 0.005, seed


@pytest.mark.parametrize("steps", [100, 200], ids=["fast", "full"])
def test_00_exercise_3_the_longer_run_ends_lower(steps):
    """Exercise 00.3's answer text: 'On the notebook's seed the longer run ends lower'
    (§ 3's run, STEPS and 2·STEPS)."""
    from jepa_lite.course.exercises import EXERCISES, is_correct

    assert "On the notebook's seed the longer run ends lower" in EXERCISES["00.3"].why
    short, longer = (final_metrics(run_history(steps=n, log_every=10))["loss"] for n in (steps, 2 * steps))
    assert longer < short
    assert is_correct("00.3", round(longer, 3), steps=2 * steps) and not is_correct("00.3", short, steps=2 * steps)


def test_01_the_loss_reached_rises_with_the_mask_ratio_in_full_mode_and_lies_together_in_fast_mode():
    """01 § 6, 'The mask ratio as a training setting' (one run per ratio, worded so): at 60 steps the loss
    reached rises with the ratio (the notebook's seed 42, and seeds 0 and 1); at fast mode's 20 steps the
    four losses lie within a few thousandths of each other (the notebook's seed)."""
    text = " ".join(markdown("01_span_masking.ipynb").split())
    assert "In full mode (60 steps) the loss reached **rises with the ratio**" in text
    assert "their losses still lie within a few thousandths of each other" in text
    assert "**one run per ratio, one seed**" in text
    ratios = (0.15, 0.3, 0.5, 0.7)  # the notebook's RATIOS
    for seed in (42, 0, 1):
        losses = [final_metrics(run_history(mask_ratio=r, steps=60, log_every=10, seed=seed))["loss"] for r in ratios]
        assert all(a < b for a, b in zip(losses, losses[1:])), (seed, losses)
    fast = [final_metrics(run_history(mask_ratio=r, steps=20, log_every=10))["loss"] for r in ratios]
    assert max(fast) - min(fast) < 0.01, fast

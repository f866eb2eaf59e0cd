"""The linear probe and the similarity helpers: exact values on tiny inputs, and one real encoder."""

import json
import re
from pathlib import Path

import pytest
import torch

from jepa_lite.course import probe
from jepa_lite.data import builtin_labelled_corpus
from jepa_lite.encoders import TinyConfig, TinyEncoder


def test_mean_pool_ignores_padding_and_counts_specials():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]]])  # (1, 3, 2), last position is padding
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(probe.mean_pool(hidden, mask), torch.tensor([[2.0, 1.0]]))
    assert torch.equal(probe.mean_pool(hidden, torch.zeros(1, 3)), torch.zeros(1, 2))  # no NaN for an empty row


def test_sentence_embeddings_do_not_depend_on_batching_or_padding(local_tokenizer, corpus_texts):
    torch.manual_seed(0)
    encoder = TinyEncoder(TinyConfig(vocab_size=len(local_tokenizer), dim=32, layers=1, heads=4))
    encoder.train()
    texts = corpus_texts[:10]
    a = probe.sentence_embeddings(encoder, local_tokenizer, texts, batch_size=10)
    b = probe.sentence_embeddings(encoder, local_tokenizer, texts, batch_size=3)
    assert a.shape == (10, 32)
    assert torch.allclose(a, b, atol=1e-5)
    assert encoder.training  # the previous mode is restored


def test_split_is_stratified_disjoint_and_deterministic():
    labels = ["a"] * 60 + ["b"] * 20 + ["c"] * 8
    train, test = probe.train_test_split(labels, test_fraction=0.25, seed=3)
    assert sorted(train + test) == list(range(len(labels)))
    assert [sum(labels[i] == c for i in test) for c in "abc"] == [15, 5, 2]
    assert (train, test) == probe.train_test_split(labels, test_fraction=0.25, seed=3)
    assert test != probe.train_test_split(labels, test_fraction=0.25, seed=4)[1]
    with pytest.raises(ValueError, match="test_fraction"):
        probe.train_test_split(labels, test_fraction=1.0)


def test_probe_reads_separable_features_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = [k % 4 for k in range(200)]
    centers = torch.randn(4, 16, generator=g) * 3
    separable = centers[labels] + torch.randn(200, 16, generator=g) * 0.3
    noise = torch.randn(200, 16, generator=g)
    good, bad = probe.linear_probe(separable, labels), probe.linear_probe(noise, labels)
    assert good.test_acc == 1.0 and good.n_test == 48 and good.n_train == 152
    assert bad.test_acc < 0.5
    assert good.chance == pytest.approx(0.25)
    assert probe.linear_probe(separable, labels).test_acc == good.test_acc  # deterministic


def test_probe_test_accuracy_uses_only_held_out_examples():
    # Features that identify each training example but carry no label information elsewhere:
    # the probe can fit the train split perfectly, yet must stay near chance on the test split.
    labels = [k % 2 for k in range(100)]
    features = torch.eye(100)
    r = probe.linear_probe(features, labels)
    assert r.train_acc == 1.0
    assert r.test_acc <= 0.6


def test_token_count_features_count_words_not_specials(local_tokenizer):
    x = probe.token_count_features(local_tokenizer, ["the dog and the cat", ""])
    the = local_tokenizer.convert_tokens_to_ids("the")
    assert x[0, the] == 2 and x[0].sum() == 5
    assert x[1].sum() == 0


def test_similarity_matrix_and_block_contrast():
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    sim = probe.similarity_matrix(x)
    assert torch.allclose(sim, torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]))
    stats = probe.block_contrast(sim, ["a", "a", "b", "b"])
    assert stats == pytest.approx({"within": 1.0, "between": 0.0, "contrast": 1.0})


def test_examples_per_topic_groups_rows_by_topic():
    texts, topics = builtin_labelled_corpus()
    rows = probe.examples_per_topic(topics, per_topic=3)
    assert len(rows) == 3 * len(set(topics))
    assert [topics[i] for i in rows] == sorted(topics[i] for i in rows)


def test_probe_on_pretrained_minilm_beats_a_random_tiny_encoder():
    """End to end on the built-in corpus: the numbers notebook 05 reports."""
    from jepa_lite.encoders import load_backbone

    texts, topics = builtin_labelled_corpus()
    split = probe.train_test_split(topics)
    torch.manual_seed(42)
    tiny, tiny_tok, _ = load_backbone("tiny", texts)
    minilm, minilm_tok, _ = load_backbone(None)
    tiny_acc = probe.linear_probe(probe.sentence_embeddings(tiny, tiny_tok, texts), topics, split).test_acc
    minilm_acc = probe.linear_probe(probe.sentence_embeddings(minilm, minilm_tok, texts), topics, split).test_acc
    assert minilm_acc > 0.9
    assert tiny_acc < 0.5


# The figures in the teaching guide (docs/teaching.md, under the notebooks' table): notebook 05 § 11 in full mode,
# via jepa_lite/resources/probe_scores.json

ROOT = Path(__file__).resolve().parent.parent
SCORES = json.loads(probe.SCORES_FILE.read_text(encoding="utf-8"))


def test_teaching_guide_probe_figures_match_the_committed_scores():
    text = " ".join((ROOT / "docs" / "teaching.md").read_text(encoding="utf-8").split())
    m = re.search(
        r"almost perfectly \((\d\.\d+) on held-out sentences\).*?stays near chance \((\d\.\d+), chance (\d\.\d+)\)",
        text,
    )
    assert m, "the teaching guide's probe sentence changed: update this test"
    minilm, tiny, chance = m.groups()
    s = SCORES["scores"]
    assert SCORES["written_by"] == "jepa_lite.course.probe" and SCORES["mode"] == "full"
    digits = lambda quoted: len(quoted.split(".")[1])  # noqa: E731
    # "a short JEPA fine-tune leaves that unchanged": both MiniLM scores round to the quoted figure
    for name in ("MiniLM, pretrained", "MiniLM, after JEPA"):
        assert f"{s[name]['test_acc']:.{digits(minilm)}f}" == minilm, (name, s[name])
    assert f"{s['tiny, after JEPA']['test_acc']:.{digits(tiny)}f}" == tiny
    assert f"{s['tiny, after JEPA']['chance']:.{digits(chance)}f}" == chance


def test_the_scores_file_follows_notebook_05s_full_mode():
    """notebook_05_scores repeats notebook 05's recipe; this fails when the notebook's settings move."""
    source = "\n".join(
        "".join(c["source"])
        for c in json.loads((ROOT / "notebooks" / "05_training.ipynb").read_text(encoding="utf-8"))["cells"]
    )
    assert f"STEPS = course.pick(fast=100, full={probe.NOTEBOOK_05_FULL['tiny_steps']})" in source
    assert f"MINILM_STEPS = course.pick(fast=20, full={probe.NOTEBOOK_05_FULL['minilm_steps']})" in source
    assert "cfg = TrainConfig.smoke(steps=STEPS, log_every=10, save_path=None, progress=False)" in source
    assert (
        "mini_cfg = TrainConfig(steps=MINILM_STEPS, warmup_steps=MINILM_STEPS // 10, max_length=64, "
        "log_every=5, save_path=None, progress=False)" in source
    )
    assert "split = probe.train_test_split(topics, test_fraction=0.25, seed=0)" in source
    assert {k: SCORES[k] for k in probe.NOTEBOOK_05_FULL} == probe.NOTEBOOK_05_FULL


def test_the_committed_scores_are_what_the_code_computes():
    """Recomputed here: the tiny encoder before and after its 400 JEPA steps, pretrained MiniLM, the bag
    of words (MiniLM's 100-step fine-tune is left to the file: minutes on 2 cores). Equal on the torch
    that wrote the file; elsewhere within one of the 120 test sentences (other kernels, other sums)."""
    now = probe.notebook_05_scores(**probe.NOTEBOOK_05_FULL, minilm="pretrained")
    assert set(now) == set(SCORES["scores"]) - {"MiniLM, after JEPA"}
    for name, r in now.items():
        saved = SCORES["scores"][name]
        if SCORES["torch"] == torch.__version__:
            assert r == saved, name
        else:
            assert abs(r["test_acc"] - saved["test_acc"]) <= 1 / 120 + 1e-6, (name, r, saved)


def test_the_scores_command_replaces_only_its_own_file(tmp_path, capsys):
    foreign = tmp_path / "scores.json"
    foreign.write_text('{"mine": true}')
    assert probe.main(["--out", str(foreign)]) == 2
    assert "was not written by jepa_lite.course.probe" in capsys.readouterr().err
    assert foreign.read_text() == '{"mine": true}'

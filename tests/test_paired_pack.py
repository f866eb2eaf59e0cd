"""--views packed --pack_length N (several pairs per row, `paired/packing.py`) computes what the separate
rows compute: embeddings, LM loss and gradients (fp32, CPU); trains like one row per pair (its exact resume
is tested with the other packed rows', tests/test_paired_packed.py); refuses settings that cannot work with one line."""

import subprocess
import sys

import pytest
import torch
from test_paired_packed import SMALL as ONE_ROW_PER_PAIR  # the packed rows' tests, whose settings these share

from jepa_lite import paired
from jepa_lite.errors import ConfigError
from jepa_lite.paired import PairedConfig, PairedTrainer
from jepa_lite.paired.packing import enc_offsets, first_fit, longest_pair, pack_pairs, pair_tokens

SMALL = {**ONE_ROW_PER_PAIR, "max_length": 40}
IDS = {"bos": 1, "sep": 2, "eos": 3, "pad": 0, "preds": [10, 11]}


def small(**overrides) -> PairedTrainer:
    torch.set_num_threads(1)
    return PairedTrainer(PairedConfig(**{**SMALL, **overrides}), log=lambda s: None)


def _grads(model, loss):
    return torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)


def test_first_fit_places_every_item_once_in_order_without_overfilling():
    lengths = [50, 30, 60, 20, 45, 10, 90, 5]
    rows = first_fit(lengths, 100)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 100 for r in rows)
    assert rows == [[0, 1, 3], [2, 5, 7], [4], [6]]  # each item in the first row with room, in order
    assert first_fit([], 10) == [] and first_fit([10, 10], 10) == [[0], [1]]


def test_pairs_are_laid_whole_with_block_numbers_running_on_and_positions_restarting():
    a = paired.packed_pair_rows([5, 6], [7], 1, IDS)  # blocks of 6, 5, 3 tokens
    b = paired.packed_pair_rows([5], [7, 8], 1, IDS)  # 6, 4, 4
    at = [enc_offsets(2, 1, a[0], 1), enc_offsets(1, 1, b[0], 1)]
    rows = pack_pairs([a[0], b[0]], [a[1], b[1]], *zip(*at), 30, IDS["pad"])
    p = rows.packed
    assert p.input_ids.shape == (1, 30)
    assert p.block[0].tolist() == [1] * 6 + [2] * 5 + [3] * 3 + [4] * 6 + [5] * 4 + [6] * 4 + [0] * 2
    assert p.position_ids[0, :14].tolist() == [*range(6), *range(5), *range(3)]
    assert p.position_ids[0, 14:28].tolist() == [*range(6), *range(4), *range(4)]
    assert p.input_ids[0, rows.x_index[0]] == 10 and p.input_ids[0, rows.x_index[1] % 30] == 10  # the last [PRED]
    assert p.input_ids[0, rows.y_index[0]] == 7 and p.input_ids[0, rows.y_index[1] % 30] == 8  # the last Code token
    first_of_block = torch.cat([torch.tensor([True]), p.block[0, 1:] != p.block[0, :-1]])
    assert (p.labels[0][first_of_block] == paired.IGNORE).all()  # no block predicts the next block's first token
    m = paired.block_causal_mask(p.block)[0, 0]
    assert not m[14, 13] and m[15, 14] and not m[14:, :14].any()  # the second pair sees nothing of the first


@pytest.mark.parametrize("k, lm_tokens, code_position", [(0, "code", "last"), (2, "all", "eos")])
def test_pairs_in_rows_give_the_separate_rows_embeddings_losses_and_gradients(k, lm_tokens, code_position):
    t = small(steps=1, predictors=k, lm_tokens=lm_tokens, code_position=code_position, views="packed", pack_length=160)
    t.model.train()
    idx = t.batch_indices(0)
    pairs = [paired.packed_pair_rows(t.train_text[i], t.train_code[i], k, t.ids, lm_tokens)[0] for i in idx]
    sizes = [sum(map(len, b)) for b in pairs]
    assert max(sizes) <= longest_pair(40, k) <= 160
    layout = first_fit(sizes, 160)
    assert 1 < len(layout) < len(idx)  # several rows, and several pairs in a row: not a trivial packing
    lm_s, x_s, y_s = t.separate_forward(idx)  # the readable reference
    lm_p, x_p, y_p = t.pairs_in_rows_forward(idx)
    torch.testing.assert_close(x_p, x_s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y_p, y_s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lm_p, lm_s, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(x_s, y_s, atol=1e-3)
    loss_s = lm_s / t.scored_tokens(idx) + paired.jepa_distance(x_s, y_s)
    loss_p = lm_p / t.scored_tokens(idx) + paired.jepa_distance(x_p, y_p)
    for a, b in zip(_grads(t.model, loss_s), _grads(t.model, loss_p)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_every_step_of_a_run_has_one_shape():
    """The micro-batches are padded to the most rows any batch of the first epoch needs (the shape a
    compiled forward pass is built for); pair_tokens counts a pair's blocks exactly."""
    t = small(steps=40, views="packed", pack_length=160, predictors=2, grad_accum=2, batch_size=4)
    for i in range(len(t.train_pairs)):
        blocks = paired.packed_pair_rows(t.train_text[i], t.train_code[i], 2, t.ids)[0]
        assert sum(map(len, blocks)) == pair_tokens(len(t.train_text[i]), len(t.train_code[i]), 2)
    shapes, needed = set(), set()
    for step in range(40):
        for chunk in t.micro_batches(step):
            sizes = [pair_tokens(len(t.train_text[i]), len(t.train_code[i]), 2) for i in chunk]
            needed.add(len(first_fit(sizes, 160)))
            shapes.add(tuple(pack_pairs(*_packed(t, chunk, 2), 160, 0, t.rows_per_batch).packed.input_ids.shape))
    assert shapes == {(t.rows_per_batch, 160)} and t.rows_per_batch == max(needed) and len(needed) > 1


def _packed(t, chunk, k):
    pairs = [paired.packed_pair_rows(t.train_text[i], t.train_code[i], k, t.ids) for i in chunk]
    at = [enc_offsets(len(t.train_text[i]), k, b, 0) for i, (b, _) in zip(chunk, pairs)]
    return [b for b, _ in pairs], [lab for _, lab in pairs], [x for x, _ in at], [y for _, y in at]


def test_the_lm_rows_alone_in_rows_give_the_lm_loss_and_gradients():
    """Steps without the JEPA term (λ = 0, loss dropout) pack the LM rows alone, to their own most rows."""
    t = small(steps=1, views="packed", pack_length=longest_pair(40, 0), lbd=0.0)
    t.model.train()
    idx = t.batch_indices(0)
    lm_rows = [len(t.train_text[i]) + len(t.train_code[i]) + 3 for i in idx]
    assert 1 < len(first_fit(lm_rows, t.config.pack_length)) <= t.lm_rows_per_batch < t.rows_per_batch
    padded, in_rows = t.lm_forward(idx), t.lm_in_rows_forward(idx)
    torch.testing.assert_close(in_rows, padded, rtol=1e-5, atol=1e-4)
    for a, b in zip(_grads(t.model, padded), _grads(t.model, in_rows)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("settings", [{}, {"lbd": 0.0}, {"loss_dropout": 0.5}])
def test_training_with_pairs_in_rows_follows_one_row_per_pair(settings):
    one = small(steps=5, views="packed", predictors=1, **settings).fit()
    many = small(steps=5, views="packed", predictors=1, pack_length=longest_pair(40, 1), **settings).fit()
    for key in ("step_lm_loss", "step_jepa_loss"):
        a, b = torch.tensor(one[key], dtype=torch.float64), torch.tensor(many[key], dtype=torch.float64)
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, equal_nan=True)
    if settings:  # the steps without the JEPA term ran, and on the LM rows alone
        assert torch.tensor(one["step_jepa_loss"], dtype=torch.float64).isnan().any()


@torch.no_grad()
def test_the_flex_block_mask_gives_the_dense_masks_states():
    """FlexAttention has no backward on the CPU: the forward pass is compared here, training on CUDA
    (tests/test_paired_cuda.py)."""
    from jepa_lite.paired.packing import flex_block_mask

    t = small(steps=1, views="packed", pack_length=256)
    t.model.eval()
    idx = t.batch_indices(0)
    pairs = [paired.packed_pair_rows(t.train_text[i], t.train_code[i], 0, t.ids)[0] for i in idx]
    rows = pack_pairs(pairs, [[[paired.IGNORE] * len(b) for b in p] for p in pairs], [1] * 8, [2] * 8, 256, 0)
    p = rows.packed
    _, dense = paired.run_model(t.model, p.input_ids, paired.block_causal_mask(p.block, t.model), p.position_ids)
    t.model.set_attn_implementation("flex_attention")
    _, flex = paired.run_model(t.model, p.input_ids, flex_block_mask(p.block), p.position_ids)
    real = p.attention_mask.bool()
    torch.testing.assert_close(flex[real], dense[real], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(attention="flex"), "--attention flex runs the packed rows: it needs --views packed and --pack_length"),
        (
            dict(attention="flex", views="packed", pack_length=512),
            "--attention flex trains on CUDA only",
        ),
        (dict(pack_length=-1), "pack_length must be an integer ≥ 0"),
        (dict(pack_length=512), "pack_length 512 packs pairs into rows: it needs --views packed"),
        (dict(pack_length=100, views="packed"), "pack_length must hold the longest pair: at least 116 tokens"),
    ],
)
def test_settings_that_cannot_work_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        PairedConfig(**{**SMALL, **settings}).validate()
    # max_length 40, k = 0: Text and Code cut to 37 tokens; LM row 2·37 + 3, Code view 37 + 2
    assert longest_pair(40, 0) == 116 and longest_pair(40, 2) == (2 * 35 + 3) + (35 + 2 + 2) + (35 + 2)


def test_the_command_line_takes_pack_length_and_refuses_it_alone_in_one_line():
    r = subprocess.run(
        [sys.executable, "-m", "jepa_lite.paired", "--device", "cpu", "--no_progress", "--pack_length", "512"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: pack_length 512 packs pairs into rows: it needs --views packed"), r.stderr


def test_the_docs_figure_for_the_shortest_row_is_the_codes():
    from pathlib import Path

    text = " ".join((Path(__file__).resolve().parent.parent / "docs" / "paper.md").read_text().split())
    assert f"N must hold the longest pair: with `--max_length 128` and k = 0, {longest_pair(128, 0)} tokens." in text


def test_a_run_may_resume_with_or_without_compile_and_flex_but_not_with_other_rows(tmp_path):
    """compile and attention are how a machine runs the same arithmetic (as device and precision): a
    checkpoint written with them resumes without them; pack_length, the rows themselves, must match."""
    from jepa_lite.checkpoint import CheckpointError
    from jepa_lite.paired.config import check_compatible

    saved = {**PairedConfig(**SMALL, views="packed", pack_length=200).__dict__, "compile": True, "attention": "flex"}
    check_compatible(saved, {**saved, "compile": False, "attention": "default"}, "run.pt")
    with pytest.raises(CheckpointError, match="pack_length"):
        check_compatible(saved, {**saved, "pack_length": 400}, "run.pt")

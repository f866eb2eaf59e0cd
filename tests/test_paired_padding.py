"""Less work on padding and unscored positions, the same step: the LM head applied only where the loss
scores (`rows.head_loss_sum`, used with `--views packed`) gives the loss and gradients of the whole-row
logits; `--length_groups` (a step's pairs sorted by length and cut into forward passes) trains as the
single batch does, refuses what it cannot combine with in one line, and may change on `--resume`."""

import subprocess
import sys

import pytest
import torch
from test_paired_packed import SMALL, small

from jepa_lite.errors import ConfigError
from jepa_lite.paired import IGNORE, PairedConfig
from jepa_lite.paired.graphed import unsupported
from jepa_lite.paired.rows import (
    attention_implementation,
    head_apart,
    head_loss_sum,
    lm_loss_sum,
    model_states,
    pack_rows,
    pad_rows,
    position_ids,
    run_model,
    scored_at,
)


def _lm_batch(t, side):
    idx = t.batch_indices(0)
    rows, input_ids, mask, labels = t._lm_rows(idx, side)
    assert len({len(r) for r in rows}) > 1  # rows of different lengths: padding really happens
    return input_ids, mask, labels


@pytest.mark.parametrize("lm_tokens", ["code", "all"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_the_head_at_the_scored_positions_gives_the_loss_and_gradients_of_the_whole_rows(lm_tokens, side):
    t = small(steps=1, lm_tokens=lm_tokens)
    t.model.train()
    input_ids, mask, labels = _lm_batch(t, side)
    positions = position_ids(mask)
    logits, h = run_model(t.model, input_ids, mask, positions)
    whole = lm_loss_sum(logits, labels)
    states = model_states(t.model, input_ids, mask, positions)
    torch.testing.assert_close(states, h, rtol=0, atol=0)  # the body's states are the same numbers
    at, targets = scored_at(labels)
    assert len(at) == int((labels[:, 1:] != IGNORE).sum()) and (targets != IGNORE).all()
    scored = head_loss_sum(t.model, states, at, targets)
    torch.testing.assert_close(scored, whole, rtol=1e-6, atol=1e-4)
    params = [p for p in t.model.parameters() if p.requires_grad]
    g_whole = torch.autograd.grad(whole, params)
    g_scored = torch.autograd.grad(scored, params)
    for name_p, a, b in zip([n for n, p in t.model.named_parameters() if p.requires_grad], g_whole, g_scored):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name_p)
    assert sum(bool(g.abs().sum() > 0) for g in g_whole) > len(g_whole) // 2  # not a comparison of zeros


def test_scored_at_names_each_position_whose_next_label_is_scored():
    labels = torch.tensor([[IGNORE, IGNORE, 5, 6, IGNORE], [IGNORE, 7, IGNORE, IGNORE, 8]])
    at, targets = scored_at(labels)
    assert at.tolist() == [1, 2, 5, 8] and targets.tolist() == [5, 6, 7, 8]  # flat (B·L) positions t of label t+1


def test_a_head_that_does_more_than_the_output_embedding_keeps_the_whole_row_logits(monkeypatch):
    t = small(steps=1, views="packed")
    assert head_apart(t.model) and t.scored_head
    forward = type(t.model).forward

    def scaled(self, *args, **kwargs):  # a logit scale, as some hub models have
        out = forward(self, *args, **kwargs)
        out.logits = out.logits * 2.0
        return out

    monkeypatch.setattr(type(t.model), "forward", scaled)
    assert not head_apart(t.model)
    assert t.model.training  # the probe leaves the model's mode as it found it
    t2 = small(steps=1, views="packed")
    assert not t2.scored_head
    lm, _, _ = t2.packed_forward(t2.batch_indices(0))
    assert torch.isfinite(lm)


def test_only_the_packed_views_of_one_row_per_pair_use_the_scored_head():
    assert not small(steps=1).scored_head  # --views separate: the readable rows, whole logits
    assert small(steps=1, views="packed").scored_head


# ---------------------------------------------------------------------------------------------
# --length_groups
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [
        dict(),  # separate rows
        dict(views="packed", predictors=2, lm_tokens="all"),
        dict(views="packed", loss_dropout=0.5, lbd=2.0),  # steps with the term and without it
        dict(lbd=0.0),
        dict(objective="stp"),
        dict(views="packed", grad_accum=2, batch_size=4),
    ],
)
def test_length_groups_train_as_the_single_batch_does(extra):
    one, groups = small(steps=4, **extra), small(steps=4, length_groups=3, **extra)
    idx = groups.micro_batches(0)[0]
    cut = groups.length_groups(idx)
    assert len(cut) == 3 and sorted(i for g in cut for i in g) == sorted(idx)
    longest = [max(len(groups.train_text[i]) + len(groups.train_code[i]) for i in g) for g in cut]
    assert longest[0] < longest[-1]  # sorted: the first group pads to less
    train_alike(one, groups, steps=4)


def train_alike(a, b, steps: int) -> None:
    """Train `a` and `b` side by side: each step's losses equal, and so the weights at the end, which moved."""
    start = [p.detach().clone() for p in a.model.parameters()]
    for _ in range(steps):
        (lm_a, jepa_a), (lm_b, jepa_b) = a.train_step(), b.train_step()
        torch.testing.assert_close(lm_b, lm_a, rtol=1e-5, atol=1e-6)
        assert (jepa_a is None) == (jepa_b is None)
        if jepa_a is not None:
            torch.testing.assert_close(jepa_b, jepa_a, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-5, msg=name)
    assert sum(not torch.equal(p, p0) for p, p0 in zip(a.model.parameters(), start)) > len(start) // 2


def test_length_groups_of_a_small_batch_are_never_empty():
    t = small(steps=1, batch_size=2, length_groups=3)
    assert [len(g) for g in t.length_groups(t.batch_indices(0))] == [1, 1]


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(length_groups=0), "length_groups must be a positive integer; got 0"),
        (dict(views="packed", pack_length=400, length_groups=2), "--pack_length has no padding to cut"),
    ],
)
def test_length_groups_it_cannot_use_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        PairedConfig(**{**SMALL, **settings}).validate()
    c = PairedConfig(**{**SMALL, "views": "packed", "length_groups": 2})
    assert "--length_groups 1" in unsupported(c, torch.device("cuda"), False, False)  # one recorded pass a step


def test_cli_length_groups_zero_is_one_line(tmp_path):
    save = tmp_path / "run.pt"
    r = subprocess.run(
        [sys.executable, "-m", "jepa_lite.paired", "--device", "cpu", "--no_progress", "--length_groups", "0"]
        + ["--save_path", str(save)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and r.stderr.strip() == "error: length_groups must be a positive integer; got 0"
    assert not save.exists()


def test_a_run_may_be_resumed_with_other_length_groups(tmp_path):
    from jepa_lite.paired.config import RESUMABLE_CHANGES

    assert "length_groups" in RESUMABLE_CHANGES
    whole = small(steps=4)
    whole.fit()
    t = small(steps=2, save_path=str(tmp_path / "a.pt"))
    t.fit()
    resumed = small(steps=4, length_groups=2, resume=str(tmp_path / "a.pt"))
    assert resumed.step == 2
    resumed.fit()
    for (name, p), q in zip(whole.model.named_parameters(), resumed.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-5, msg=name)


def test_the_bench_counts_the_lm_head_only_where_it_runs():
    from jepa_lite.paired.bench import paired_flops

    whole, scored = small(steps=1), small(steps=1, views="packed")  # whole-row logits; the scored head
    idx = whole.batch_indices(0)
    V, d = whole.model.config.vocab_size, whole.model.config.hidden_size
    (f_whole, T), (f_scored, T_scored) = paired_flops(whole, idx, False), paired_flops(scored, idx, False)
    assert T == T_scored == sum(len(whole.train_text[i]) + len(whole.train_code[i]) + 3 for i in idx)
    assert f_whole - f_scored == 6 * V * d * (T - scored.scored_tokens(idx)) > 0


def test_rows_and_scored_positions_rounded_up_to_multiples_add_nothing():
    ids, mask = pad_rows([[1, 2, 3], [4]], 0, "left", multiple=4)
    assert ids.tolist() == [[0, 1, 2, 3], [0, 0, 0, 4]] and mask.sum().item() == 4
    ids, mask = pad_rows([[1, 2, 3, 4, 5], [6]], 0, "right", multiple=4)
    assert ids.shape == (2, 8) and mask.sum().item() == 6 and ids[0, 5:].tolist() == [0, 0, 0]
    packed = pack_rows([[[1, 2, 3], [4, 5]]], [[[IGNORE] * 3, [IGNORE] * 2]], 0, "right", multiple=8)
    assert packed.input_ids.shape == (1, 8) and packed.block[0].tolist() == [1, 1, 1, 2, 2, 0, 0, 0]
    labels = torch.tensor([[IGNORE, IGNORE, 5, 6, IGNORE], [IGNORE, 7, IGNORE, IGNORE, 8]])
    at, targets = scored_at(labels, multiple=64)
    assert len(at) == 64 and at[:4].tolist() == [1, 2, 5, 8] and targets[:4].tolist() == [5, 6, 7, 8]
    assert (targets[4:] == IGNORE).all() and (at[4:] == 0).all()
    t = small(steps=1)
    states = torch.randn(2, 5, t.model.config.hidden_size, requires_grad=True)
    exact = head_loss_sum(t.model, states, *scored_at(labels))
    padded = head_loss_sum(t.model, states, at, targets)
    torch.testing.assert_close(padded, exact, rtol=0, atol=0)
    g_exact, g_padded = (torch.autograd.grad(loss, states)[0] for loss in (exact, padded))
    torch.testing.assert_close(g_padded, g_exact, rtol=0, atol=0)


@pytest.mark.parametrize(
    "extra",
    [
        dict(views="packed"),
        dict(views="packed", lbd=0.0, length_groups=3),
        dict(views="separate"),
        dict(objective="stp"),
    ],
)
def test_rows_padded_to_a_multiple_train_as_rows_padded_to_the_longest(extra):
    """What the CPU in bf16 does (`row_multiple` 8, `scored_multiple` 64), checked in fp32 against no rounding."""
    plain, rounded = small(steps=4, **extra), small(steps=4, **extra)
    rounded.row_multiple, rounded.scored_multiple = 8, 64
    lengths = [plain._lm_rows(plain.batch_indices(s))[1].shape[1] for s in range(4)]
    assert any(n % 8 for n in lengths)  # rounding really adds columns
    assert all(rounded._lm_rows(rounded.batch_indices(s))[1].shape[1] % 8 == 0 for s in range(4))
    train_alike(plain, rounded, steps=4)


def test_the_cpu_in_bf16_trains_with_eager_attention_and_rounded_shapes():
    fp32, bf16 = small(steps=2, views="packed"), small(steps=2, views="packed", precision="bf16")
    assert (attention_implementation(fp32.model), fp32.row_multiple, fp32.scored_multiple) == ("sdpa", 1, 1)
    assert (attention_implementation(bf16.model), bf16.row_multiple, bf16.scored_multiple) == ("eager", 8, 64)
    idx = bf16.batch_indices(0)
    assert bf16._lm_rows(idx)[1].shape[1] % 8 == 0
    lm_32, jepa_32 = fp32.train_step()
    lm_16, jepa_16 = bf16.train_step()  # the same start (seed): the same losses, to bf16's precision
    torch.testing.assert_close(lm_16, lm_32, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(jepa_16, jepa_32, rtol=5e-2, atol=2e-2)

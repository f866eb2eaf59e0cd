"""Semantic Tube Prediction (`--objective stp`, jepa_lite/paired/stp.py): the batched loss equals the
loop written from the formula, spans stay on Text and Code tokens, the draws are a pure function of
(seed, step, pair), the one-page version equals the trainer, one forward pass per step, exact resume."""

import dataclasses
import random

import pytest
import torch

from jepa_lite.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jepa_lite.errors import ConfigError
from jepa_lite.paired import PairedConfig, PairedTrainer, check_compatible, stp
from jepa_lite.paired.cli import build_parser
from jepa_lite.paired.cli import main as paired_main
from jepa_lite.paired.pairs import regex_pairs, save_jsonl

SMALL = dict(
    n_train=120,
    n_test=16,
    batch_size=8,
    tiny_dim=48,
    tiny_layers=2,
    log_every=3,
    progress=False,
    device="cpu",
    lr=3e-3,
    warmup_steps=2,
    monitor_size=8,
    objective="stp",
    lbd=0.5,
)


def small(**overrides) -> PairedTrainer:
    torch.set_num_threads(1)
    return PairedTrainer(PairedConfig(**{**SMALL, **overrides}), log=lambda s: None)


def random_rows(seed, side="right"):
    """Random hidden states of 5 rows with random Text / Code lengths, padded on `side`, and their spans."""
    g = random.Random(seed)
    n_texts, n_codes = [g.randint(1, 7) for _ in range(5)], [g.randint(1, 6) for _ in range(5)]
    lengths = [a + b + 3 for a, b in zip(n_texts, n_codes)]  # [BOS] Text [SEP] Code [EOS]
    L = max(lengths)
    starts = [L - n if side == "left" else 0 for n in lengths]
    spans = [stp.draw_span(a + b, seed, 0, i) for i, (a, b) in enumerate(zip(n_texts, n_codes))]
    h = torch.randn(5, L, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return h, n_texts, n_codes, spans, starts, L


# ---------------------------------------------------------------------------------------------
# the formula: batched = readable loop; the telescoping form; a planted mistake is caught
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("seed", range(6))
def test_batched_tube_cosine_equals_the_loop_over_tokens(seed, side):
    h, n_texts, n_codes, spans, starts, L = random_rows(seed, side)
    content, span = stp.span_masks(n_texts, n_codes, spans, L, starts)
    batched = stp.tube_cosine(h, content, span)
    for i in range(5):
        one = stp.tube_cosine_one(h[i, starts[i] :], n_texts[i], n_codes[i], *spans[i])
        assert batched[i].item() == pytest.approx(one.item(), abs=1e-9)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("seed", range(8))
def test_the_masks_are_the_content_positions_and_the_span_among_them(seed, side):
    """`span_masks` (whole-batch comparisons) marks exactly `content_positions` of each row, and of them the
    span's [s, t) in content order; a row without a span (None) gets an empty span."""
    h, n_texts, n_codes, spans, starts, L = random_rows(seed, side)
    spans[seed % 5] = None
    content, span = stp.span_masks(n_texts, n_codes, spans, L, starts)
    assert content.shape == span.shape == (5, L) and content.dtype == span.dtype == torch.bool
    for i, (a, b, st) in enumerate(zip(n_texts, n_codes, spans)):
        pos = [p + starts[i] for p in stp.content_positions(a, b)]
        assert content[i].nonzero().flatten().tolist() == pos
        assert span[i].nonzero().flatten().tolist() == ([] if st is None else pos[st[0] : st[1]])


def test_a_span_inside_text_or_code_is_the_difference_of_its_end_states():
    """patch = h(t−1) − h(s−1) in the row's positions; rest = before + after, the Code part counted from [SEP]."""
    n_text, n_code = 6, 5
    h = torch.randn(n_text + n_code + 3, 4, dtype=torch.float64)
    pos = stp.content_positions(n_text, n_code)
    for s, t in [(1, 4), (7, 10), (0, 6)]:
        content, span = stp.span_masks([n_text], [n_code], [(s, t)], h.shape[0])
        ps, pt = pos[s], pos[t - 1] + 1  # the span's first row position and one past its last
        patch = h[pt - 1] - h[ps - 1]
        before_after = (
            (h[n_text] - h[0]) + (h[n_text + 1 + n_code] - h[n_text + 1]) - patch
        )  # Text from [BOS], Code from [SEP]
        expected = torch.nn.functional.cosine_similarity(before_after, patch, dim=0)
        assert stp.tube_cosine(h[None], content, span).item() == pytest.approx(expected.item(), abs=1e-9)


def test_counting_the_step_into_sep_is_a_different_loss():
    """The test can fail: with [SEP]'s step counted as content (what `--random_span_e2e` does), cos changes."""
    h, n_texts, n_codes, spans, starts, L = random_rows(1)
    content, span = stp.span_masks(n_texts, n_codes, spans, L, starts)
    wrong = content.clone()
    for i, a in enumerate(n_texts):
        wrong[i, a + 1] = True  # [SEP]
    assert (stp.tube_cosine(h, wrong, span) - stp.tube_cosine(h, content, span)).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------
# spans: on Text and Code only, never the whole, reproducible, the official rules and weights
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["right", "left"])
def test_spans_cover_only_text_and_code_tokens_never_special_or_padding(side):
    t = small(steps=1)
    ids = t.ids
    for step in range(5):
        idx = t.batch_indices(step)
        rows = [[ids["bos"], *t.train_text[i], ids["sep"], *t.train_code[i], ids["eos"]] for i in idx]
        L = max(map(len, rows))
        starts = [L - len(r) if side == "left" else 0 for r in rows]
        padded = torch.tensor([[ids["pad"]] * s + r + [ids["pad"]] * (L - len(r) - s) for r, s in zip(rows, starts)])
        spans = [s for s, _ in t.stp_spans(idx, step)]
        content, span = stp.span_masks(
            [len(t.train_text[i]) for i in idx], [len(t.train_code[i]) for i in idx], spans, L, starts
        )
        special = torch.isin(padded, torch.tensor([ids["bos"], ids["sep"], ids["eos"], ids["pad"]]))
        assert not (content & special).any() and not (span & ~content).any()
        assert (content.sum(1) == torch.tensor([len(t.train_text[i]) + len(t.train_code[i]) for i in idx])).all()
        assert ((span.sum(1) > 0) & (span.sum(1) < content.sum(1))).all()  # a span, never all of C
        for r in range(len(idx)):  # one run of consecutive content tokens (it may jump over [SEP] only)
            where = content[r].nonzero().flatten().tolist()
            chosen = [k for k, p in enumerate(where) if span[r, p]]
            assert chosen == list(range(chosen[0], chosen[-1] + 1))


@pytest.mark.parametrize("rule", stp.SPAN_RULES)
def test_draws_are_a_pure_function_of_seed_step_pair_and_follow_the_rules(rule):
    draws = [stp.draw_span(9, 3, step, pair, rule) for step in range(200) for pair in range(10)]
    assert draws == [stp.draw_span(9, 3, step, pair, rule) for step in range(200) for pair in range(10)]
    assert draws != [stp.draw_span(9, 4, step, pair, rule) for step in range(200) for pair in range(10)]
    assert all(0 <= s < t <= 9 and t - s < 9 for s, t in draws)
    every = {(s, t) for s in range(9) for t in range(s + 1, 10) if t - s < 9}
    assert set(draws) == every  # every allowed span happens
    starts = [s for s, _ in draws]
    if rule == "start_end":  # s is uniform on 0…n−1 (the official get_s_t): each start about 1/9 of the draws
        assert all(abs(starts.count(k) / len(starts) - 1 / 9) < 0.03 for k in range(9))
    else:  # uniform over the 44 spans: short spans at the end are as likely as long ones at the start
        assert all(abs(draws.count(sp) / len(draws) - 1 / len(every)) < 0.012 for sp in every)
    assert all(t - s <= 3 for s, t in (stp.draw_span(9, 3, k, 0, rule, max_len=3) for k in range(300)))
    assert stp.draw_span(1, 0, 0, 0, rule) is None and stp.draw_span(2, 0, 0, 0, rule) in [(0, 1), (1, 2)]


def test_length_weights_are_the_official_formulas():
    assert stp.span_weight(10, 3) == 1.0
    assert stp.span_weight(10, 3, "cosine_like") == pytest.approx(2 * 7 * 3 / (49 + 9))
    assert stp.span_weight(10, 3, "jaccard_like") == pytest.approx(1 - 4 / 10)
    assert (
        stp.span_weight(10, 5, "cosine_like") == stp.span_weight(10, 5, "jaccard_like") == 1.0
    )  # half and half: full weight


# ---------------------------------------------------------------------------------------------
# the one-page stp_loss = the trainer; one forward pass
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "weighting, lm_tokens, rule",
    [("none", "code", "start_end"), ("cosine_like", "all", "uniform"), ("jaccard_like", "code", "start_end")],
)
def test_the_one_page_loss_and_gradients_equal_the_trainers(weighting, lm_tokens, rule):
    t = small(steps=1, stp_weighting=weighting, lm_tokens=lm_tokens, stp_span=rule)
    t.model.train()
    idx = t.batch_indices(0)
    total, lm, term = t.objective(0)
    spans = [s for s, _ in t.stp_spans(idx, 0)]
    ours, our_lm, our_term = stp.stp_loss(
        t.model,
        [t.train_text[i] for i in idx],
        [t.train_code[i] for i in idx],
        t.ids,
        spans,
        lbd=0.5,
        lm_tokens=lm_tokens,
        weighting=weighting,
    )
    assert our_lm.item() == pytest.approx(lm.item(), rel=1e-6) and our_term.item() == pytest.approx(
        term.item(), rel=1e-5
    )
    params = [p for p in t.model.parameters() if p.requires_grad]
    for a, b in zip(
        torch.autograd.grad(total, params, allow_unused=True), torch.autograd.grad(ours, params, allow_unused=True)
    ):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)
    other = [stp.draw_span(len(t.train_text[i]) + len(t.train_code[i]), 1, 0, i) for i in idx]
    wrong = stp.stp_loss(
        t.model, [t.train_text[i] for i in idx], [t.train_code[i] for i in idx], t.ids, other, weighting=weighting
    )[2]
    assert abs(wrong.item() - term.item()) > 1e-4  # other spans, another term: the comparison can fail


def test_gradient_accumulation_trains_on_the_same_loss():
    whole, split = (
        small(steps=1, batch_size=8, stp_weighting="cosine_like"),
        small(steps=1, batch_size=2, grad_accum=4, stp_weighting="cosine_like"),
    )
    assert whole.batch_indices(0) == split.batch_indices(0)
    lw, jw = whole.train_step()
    ls, js = split.train_step()
    assert ls.item() == pytest.approx(lw.item(), rel=1e-5) and js.item() == pytest.approx(jw.item(), rel=1e-5)
    for a, b in zip(whole.model.parameters(), split.model.parameters()):  # the step's gradients, still in .grad
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("objective, passes", [("stp", 1), ("llm_jepa", 3)])
def test_stp_runs_one_forward_pass_per_step_llm_jepa_three(objective, passes):
    t = small(steps=1, objective=objective)
    calls = []
    hook = t.model.register_forward_hook(lambda module, args, out: calls.append(1))
    try:
        t.train_step()
    finally:
        hook.remove()
    assert len(calls) == passes


# ---------------------------------------------------------------------------------------------
# checkpoints: exact resume; old checkpoints still resume; the flag and its errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stop_at", [2, 5])
def test_a_stopped_stp_run_resumes_exactly(stop_at, tmp_path):
    cfg = dict(SMALL, steps=7, log_every=3, stp_weighting="cosine_like")
    straight = PairedTrainer(PairedConfig(**cfg, save_path=str(tmp_path / "straight.pt")), log=lambda s: None).fit()
    first = PairedTrainer(PairedConfig(**cfg, save_path=str(tmp_path / "c.pt")), log=lambda s: None)
    step = first.train_step

    def step_then_stop():
        out = step()
        first.stop_requested = first.step == stop_at
        return out

    first.train_step = step_then_stop
    first.fit()
    resumed = PairedTrainer(
        PairedConfig(**cfg, save_path=str(tmp_path / "c.pt"), resume=str(tmp_path / "c.pt")), log=lambda s: None
    )
    assert resumed.step == stop_at
    history = resumed.fit()
    assert {k: v for k, v in history.items() if k != "seconds"} == {k: v for k, v in straight.items() if k != "seconds"}
    a, b = load_checkpoint(tmp_path / "c.pt")["model"], load_checkpoint(tmp_path / "straight.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert not any(x != x for x in straight["step_jepa_loss"])  # the STP term was there at every step


def test_a_checkpoint_from_before_stp_resumes_and_an_stp_one_does_not_resume_as_llm_jepa(tmp_path):
    t = small(steps=2, objective="llm_jepa", save_path=str(tmp_path / "old.pt"))
    t.fit()
    state = load_checkpoint(tmp_path / "old.pt")
    for k in ("objective", "stp_span", "stp_max_span", "stp_weighting"):
        del state["config"][k]  # as written before these settings existed
    save_checkpoint(tmp_path / "old.pt", state)
    now = dataclasses.asdict(PairedConfig(**{**SMALL, "objective": "llm_jepa", "steps": 4}))
    check_compatible(state["config"], now, "old.pt")  # the missing settings count as their defaults
    resumed = PairedTrainer(
        PairedConfig(**{**SMALL, "objective": "llm_jepa", "steps": 4, "resume": str(tmp_path / "old.pt")}),
        log=lambda s: None,
    )
    assert resumed.step == 2
    with pytest.raises(CheckpointError, match="objective"):
        PairedTrainer(PairedConfig(**{**SMALL, "steps": 4, "resume": str(tmp_path / "old.pt")}), log=lambda s: None)


def test_the_flags_and_the_errors(tmp_path, capsys):
    text = " ".join(build_parser().format_help().split())  # argparse wraps the lines
    assert "--objective" in text and "Semantic Tube Prediction" in text and "--stp_weighting" in text
    for bad in (
        dict(predictors=1),
        dict(views="packed"),
        dict(distance="l2"),
        dict(stp_span="zero"),
        dict(stp_max_span=-1),
    ):
        with pytest.raises(ConfigError):
            PairedConfig(**{**SMALL, **bad}).validate()
    train, test = regex_pairs(36, 4, seed=3)
    save_jsonl(train + test, tmp_path / "pairs.jsonl")
    code = paired_main(
        [
            "--data",
            str(tmp_path / "pairs.jsonl"),
            "--objective",
            "stp",
            "--lbd",
            "0.02",
            "--steps",
            "2",
            "--batch_size",
            "4",
            "--max_length",
            "32",
            "--log_every",
            "1",
            "--device",
            "cpu",
            "--no_progress",
            "--save_path",
            str(tmp_path / "c.pt"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert load_checkpoint(tmp_path / "c.pt")["config"]["objective"] == "stp"


def test_left_padded_rows_give_the_same_loss_as_right_padded_ones():
    """The content and span masks follow the rows wherever the padding is (generation pads on the left)."""
    t = small(steps=1, stp_weighting="jaccard_like")
    t.model.eval()
    idx = t.batch_indices(0)
    assert len({len(t.train_text[i]) + len(t.train_code[i]) for i in idx}) > 1  # padding happens
    with torch.no_grad():
        right = t.losses(idx, with_jepa=True, side="right", step=0)
        left = t.losses(idx, with_jepa=True, side="left", step=0)
    torch.testing.assert_close(left[1], right[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(left[0], right[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("objective", ["stp", "llm_jepa"])
def test_the_4d_mask_path_gives_the_same_loss(objective):
    """On CUDA the trainer passes the padding mask as a (B, 1, L, L) block-causal mask (`mask_4d`); the
    STP states and LLM-JEPA's Enc read through it equal those of the plain (B, L) mask (run here on the CPU)."""
    t = small(steps=1, objective=objective)
    t.model.eval()
    with torch.no_grad():
        plain = t.objective(0)
        t.mask_4d = True
        four_d = t.objective(0)
    for a, b in zip(plain, four_d):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_a_steps_spans_are_drawn_once_and_are_the_pure_draws(monkeypatch):
    """`stp_spans` keeps the draws of the step under way (the step's count and its passes share them) and
    gives, for any step and order, what `draw_span` gives for (seed, step, pair)."""
    import jepa_lite.paired.trainer as trainer_module

    t = small(stp_weighting="cosine_like")
    calls, real = [], stp.draw_span
    monkeypatch.setattr(trainer_module, "draw_span", lambda *a, **k: calls.append(a[2:4]) or real(*a, **k))
    idx = t.batch_indices(0)
    for step in (0, 0, 1, 0):
        for i, (span, w) in zip(reversed(idx), t.stp_spans(list(reversed(idx)), step)):
            n = len(t.train_text[i]) + len(t.train_code[i])
            assert span == real(n, t.config.seed, step, i)
            assert w == stp.span_weight(n, span[1] - span[0], "cosine_like")
    assert len(calls) == 3 * len(idx)  # steps 0, 1, then 0 again: the second call of step 0 drew nothing

"""--views packed computes what --views separate computes; --grad_accum N trains like an N-times
larger batch; checkpoints resume bit-identically; bad input is one line. (fp32, CPU.)"""

import subprocess
import sys

import pytest
import torch

from jepa_lite import paired
from jepa_lite.checkpoint import CheckpointError, save_checkpoint
from jepa_lite.errors import ConfigError
from jepa_lite.paired import PairedConfig, PairedTrainer
from jepa_lite.paired import cli as paired_cli
from jepa_lite.paired import trainer as paired_trainer  # the module whose globals PairedTrainer reads

SMALL = dict(
    n_train=160,
    n_test=20,
    batch_size=8,
    tiny_dim=48,
    tiny_layers=2,
    log_every=3,
    progress=False,
    device="cpu",
    lr=3e-3,
    warmup_steps=2,
    monitor_size=8,
)


def small(**overrides) -> PairedTrainer:
    torch.set_num_threads(1)
    return PairedTrainer(PairedConfig(**{**SMALL, **overrides}), log=lambda s: None)


def _grads(model, loss):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params, allow_unused=True)


# ---------------------------------------------------------------------------------------------
# packed == separate
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k, lm_tokens, code_position", [(0, "code", "last"), (2, "code", "eos"), (1, "all", "last")])
@pytest.mark.parametrize("side", ["right", "left"])
def test_packed_views_give_the_same_embeddings_losses_and_gradients(k, lm_tokens, code_position, side):
    t = small(steps=1, predictors=k, lm_tokens=lm_tokens, code_position=code_position, views="packed")
    t.model.train()
    idx = t.batch_indices(0)
    lengths = {len(t.train_text[i]) + len(t.train_code[i]) for i in idx}
    assert len(lengths) > 1  # rows of different lengths: padding really happens
    lm_s, x_s, y_s = t.separate_forward(idx, side="right")  # the readable reference, right-padded
    lm_p, x_p, y_p = t.packed_forward(idx, side=side)
    torch.testing.assert_close(x_p, x_s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y_p, y_s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lm_p, lm_s, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(x_s, y_s, atol=1e-3)  # Text and Code embeddings differ: not a trivial equality
    loss_s = lm_s / t.scored_tokens(idx) + paired.jepa_distance(x_s, y_s)
    loss_p = lm_p / t.scored_tokens(idx) + paired.jepa_distance(x_p, y_p)
    for a, b in zip(_grads(t.model, loss_s), _grads(t.model, loss_p)):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_packed_mask_is_block_causal_and_positions_restart():
    ids = {"bos": 1, "sep": 2, "eos": 3, "pad": 0, "preds": [10, 11]}
    blocks, labels = paired.packed_pair_rows([5, 6], [7], 1, ids)
    assert blocks == [[1, 5, 6, 2, 7, 3], [1, 5, 6, 2, 10], [1, 7, 3]]
    assert labels[1] == [paired.IGNORE] * 5 and labels[2] == [paired.IGNORE] * 3  # only the LM block is scored
    short, short_labels = paired.packed_pair_rows([5], [7], 1, ids)
    for side in ("right", "left"):
        p = paired.pack_rows([blocks, short], [labels, short_labels], 0, side)
        assert p.position_ids[0].tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 0, 1, 2]
        m = paired.block_causal_mask(p.block)[:, 0]  # (B, L, L) boolean
        assert m[0, 7, 6] and not m[0, 7, 5] and not m[0, 6, 7]  # own block, earlier tokens only
        assert not m[0, 12, 9] and m[0, 12, 11]  # the Code block does not see the Text block
        pad = (p.attention_mask[1] == 0).nonzero().flatten()
        assert (
            len(pad) == 2 and not m[1][:, pad].any(dim=1)[p.attention_mask[1] == 1].any()
        )  # nobody attends to padding


def test_packed_path_refuses_a_model_that_cannot_take_a_custom_mask():
    t = small(steps=1)
    t.config.views = "packed"
    t.model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ConfigError, match="--views separate"):
        paired.check_custom_mask(t)


def test_packed_path_refuses_a_model_that_ignores_the_mask(monkeypatch):
    t = small(steps=1)
    t.config.views = "packed"
    real = paired_trainer.run_model
    monkeypatch.setattr(
        paired_trainer,
        "run_model",
        lambda model, ids, mask, pos: real(model, ids, torch.ones(ids.shape, dtype=torch.long), pos),
    )
    with pytest.raises(ConfigError, match="ignores a custom attention mask.*--views separate"):
        paired.check_custom_mask(t)


# ---------------------------------------------------------------------------------------------
# gradient accumulation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("views", ["separate", "packed"])
def test_grad_accum_follows_the_loss_curve_of_the_larger_batch(views):
    big = small(steps=6, batch_size=12, grad_accum=1, views=views, loss_dropout=0.3)
    acc = small(steps=6, batch_size=4, grad_accum=3, views=views, loss_dropout=0.3)
    assert acc.batch_indices(2) == big.batch_indices(2) and len(acc.micro_batches(2)) == 3
    hb, ha = big.fit(), acc.fit()
    torch.testing.assert_close(torch.tensor(ha["step_lm_loss"]), torch.tensor(hb["step_lm_loss"]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        torch.tensor(ha["step_jepa_loss"]), torch.tensor(hb["step_jepa_loss"]), rtol=1e-4, atol=1e-5, equal_nan=True
    )
    for a, b in zip(acc.model.parameters(), big.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
    plain = small(steps=6, batch_size=4, grad_accum=1, views=views, loss_dropout=0.3)
    assert plain.fit()["step_lm_loss"][-1] != pytest.approx(
        hb["step_lm_loss"][-1], rel=1e-4
    )  # a smaller batch trains differently


# ---------------------------------------------------------------------------------------------
# checkpoints and exact resume
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [
        dict(),
        dict(loss_dropout=0.5, predictors=1, views="packed"),
        dict(loss_dropout=0.5, views="packed", pack_length=400),
    ],
)
def test_resumed_run_is_bit_identical_to_the_uninterrupted_one(tmp_path, extra):
    full = small(steps=8, **extra).fit()
    ckpt = tmp_path / "run.pt"
    first = small(steps=8, save_path=str(ckpt), **extra)
    step = first.train_step

    def step_then_stop():  # what the first Ctrl-C does: finish the step, checkpoint, stop
        out = step()
        first.stop_requested = first.step == 5
        return out

    first.train_step = step_then_stop
    first.fit()
    resumed = small(steps=8, resume=str(ckpt), **extra)
    assert resumed.step == 5
    history = resumed.fit()
    assert history["step_lm_loss"] == full["step_lm_loss"]  # bit-identical floats
    assert history["step_jepa_loss"] == pytest.approx(full["step_jepa_loss"], rel=0, abs=0, nan_ok=True)
    assert len(history["step_lm_loss"]) == 8 and history["step"][-1] == 8
    if extra:
        assert any(v != v for v in full["step_jepa_loss"])  # loss dropout really skipped some steps (NaN)


def test_resume_refuses_a_masked_span_checkpoint_and_other_data(tmp_path):
    masked = tmp_path / "masked.pt"
    save_checkpoint(masked, {"config": {"mask_ratio": 0.3}, "step": 3, "model": {}})
    with pytest.raises(CheckpointError, match="masked-span checkpoint.*jepa_lite.train"):
        small(steps=4, resume=str(masked))
    ckpt = tmp_path / "p.pt"
    small(steps=2, save_path=str(ckpt)).fit()
    with pytest.raises(CheckpointError, match="different config: lbd"):
        small(steps=4, lbd=0.5, resume=str(ckpt))
    from jepa_lite.paired.pairs import regex_pairs, save_jsonl

    train, test = regex_pairs(60, 10, seed=1)
    data = tmp_path / "pairs.jsonl"
    save_jsonl(train + test, data)
    small(steps=2, data=str(data), save_path=str(tmp_path / "q.pt")).fit()
    save_jsonl(train[::-1] + test, data)  # same file name, other order: other batches
    with pytest.raises(CheckpointError, match="different pairs"):
        small(steps=4, data=str(data), resume=str(tmp_path / "q.pt"))


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "jepa_lite.paired", "--device", "cpu", "--no_progress", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--grad_accum", "0"], "error: grad_accum must be a positive integer; got 0"),
        (["--steps", "-1"], "error: steps must be an integer ≥ 0"),
        (["--predictors", "17"], "error: predictors must be an integer in 0..16"),
    ],
)
def test_cli_bad_settings_are_one_line(args, message):
    r = _cli(*args)
    assert r.returncode == 2 and r.stderr.startswith(message) and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_refuses_a_masked_span_checkpoint_and_a_foreign_save_path(tmp_path):
    masked = tmp_path / "masked.pt"
    save_checkpoint(masked, {"kind": "masked_span", "config": {"mask_ratio": 0.3}, "step": 3})
    r = _cli("--resume", str(masked))
    assert r.returncode == 2 and "is a masked-span checkpoint" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    r = _cli("--save_path", str(notes), "--steps", "1")
    assert r.returncode == 2 and "not a jepa_lite checkpoint" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert notes.read_text() == "my notes"


def test_cli_packed_with_a_model_without_custom_masks_names_separate(monkeypatch, capsys):
    real = paired_trainer.load_causal_lm

    def flash(*a, **k):
        model, tok = real(*a, **k)
        model.config._attn_implementation = "flash_attention_2"
        return model, tok

    monkeypatch.setattr(paired_trainer, "load_causal_lm", flash)
    code = paired_cli.main(["--views", "packed", "--steps", "1", "--device", "cpu", "--no_progress"])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.startswith("error: --views packed needs attention that takes a custom")
        and "--views separate" in err
    )


@pytest.mark.parametrize("side", ["right", "left"])
def test_the_4d_padding_mask_of_the_gpu_path_computes_what_the_2d_mask_computes(side):
    t = small(steps=1, predictors=1)
    idx = t.batch_indices(0)
    lm2, x2, y2 = t.separate_forward(idx, side)
    t.mask_4d = True  # what CUDA runs use (no host sync inside transformers)
    lm4, x4, y4 = t.separate_forward(idx, side)
    torch.testing.assert_close(lm4, lm2, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(x4, x2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y4, y2, rtol=1e-5, atol=1e-5)


def test_cli_resume_continues_from_the_checkpoint_with_its_settings(tmp_path):
    from jepa_lite.paired.pairs import regex_pairs, save_jsonl

    train, test = regex_pairs(80, 10, seed=5)
    save_jsonl(train + test, tmp_path / "pairs.jsonl")
    ckpt = tmp_path / "run.pt"
    r = _cli(
        "--data",
        str(tmp_path / "pairs.jsonl"),
        "--steps",
        "4",
        "--log_every",
        "2",
        "--batch_size",
        "8",
        "--predictors",
        "1",
        "--save_path",
        str(ckpt),
    )
    assert r.returncode == 0, r.stderr
    r2 = _cli("--resume", str(ckpt), "--steps", "6", "--log_every", "2")
    assert r2.returncode == 0, r2.stderr
    assert f"resumed from {ckpt} at step 4" in r2.stdout and "k=1" in r2.stdout  # the checkpoint's settings came back
    assert "step     6" in r2.stdout and "step     2" not in r2.stdout
    r3 = _cli("--resume", str(ckpt), "--lbd", "0.5")
    assert r3.returncode == 2 and "different config: lbd" in r3.stderr and len(r3.stderr.strip().splitlines()) == 1

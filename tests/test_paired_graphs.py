"""`--cuda_graphs` (paired/graphed.py): the fixed-shape step a CUDA graph records computes what the eager
step computes — losses, then weights after several optimizer steps (fp32, CPU, where the step runs without
being recorded); its batches pad to multiples of 8 and read the embeddings where the packed rows do; the
settings it cannot record are refused in one line. The recorded step itself runs in tests/test_paired_cuda.py."""

import subprocess
import sys

import pytest
import torch
from test_paired_packed import SMALL

from jepa_lite.errors import ConfigError
from jepa_lite.paired import IGNORE, PairedConfig, PairedTrainer, graphed
from jepa_lite.paired.graphed import LENGTH_MULTIPLE, can_record, padded_length, unsupported
from jepa_lite.paired.rows import code_back, pack_rows, packed_enc_index, packed_pair_rows


def small(**overrides) -> PairedTrainer:
    torch.set_num_threads(1)
    return PairedTrainer(
        PairedConfig(**{**SMALL, "views": "packed", "precision": "fp32", **overrides}), log=lambda s: None
    )


def fixed_shape_train_step(t: PairedTrainer):
    """What `_graphed_step` replays, run eagerly: the step a CUDA graph records."""
    with_jepa = t.config.lbd > 0 and not t.jepa_dropped(t.step)
    out = t._fixed_shape_update(t.step_rows(t.batch_indices(t.step), with_jepa), with_jepa)
    t.scheduler.step()
    t.step += 1
    return out[0], (out[1] if with_jepa else None)


@pytest.mark.parametrize(
    "extra",
    [
        dict(),  # k = 0, Code scored, Enc(Code) at the last Code token
        dict(predictors=2, lm_tokens="all", code_position="eos", distance="l2"),
        dict(lbd=0.0, views="separate"),
        dict(loss_dropout=0.5, gamma=0.5, lbd=2.0),  # steps with the term and without it
    ],
)
def test_the_fixed_shape_step_trains_as_the_eager_step_does(extra):
    eager, fixed = small(steps=5, **extra), small(steps=5, **extra)
    start = [p.detach().clone() for p in eager.model.parameters()]
    for p, q in zip(start, fixed.model.parameters()):
        assert torch.equal(p, q)
    for _ in range(5):
        lm_e, jepa_e = eager.train_step()
        lm_f, jepa_f = fixed_shape_train_step(fixed)
        torch.testing.assert_close(lm_f, lm_e, rtol=1e-5, atol=1e-6)
        assert (jepa_e is None) == (jepa_f is None)
        if jepa_e is not None:
            torch.testing.assert_close(jepa_f, jepa_e, rtol=1e-5, atol=1e-6)
    assert eager.scheduler.get_last_lr() == fixed.scheduler.get_last_lr()
    # the rows padded to a multiple of 8 sum in another order: the weights agree to rounding (Adam divides
    # each gradient by its own scale, so an element whose gradient is ~0 moves by its rounding)
    for (name, p), q in zip(eager.model.named_parameters(), fixed.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-5, msg=name)
    moved = [not torch.equal(p, p0) for p, p0 in zip(eager.model.parameters(), start)]
    assert sum(moved) > len(moved) // 2  # the comparison is of trained weights


@pytest.mark.parametrize("with_jepa, k, back", [(True, 0, 1), (True, 2, 0), (False, 0, 1)])
def test_step_rows_pad_to_a_multiple_of_8_and_read_the_embeddings_where_the_packed_rows_do(with_jepa, k, back):
    t = small(steps=1, predictors=k, code_position="eos" if back == 0 else "last")
    idx = t.batch_indices(0)
    b = t.step_rows(idx, with_jepa)
    B, L = b.input_ids.shape
    assert B == len(idx) and L % LENGTH_MULTIPLE == 0 and all(x.shape == (B, L) for x in b.tensors()[:4])
    if with_jepa:
        text = [t.train_text[i] for i in idx]
        blocks, labels = zip(*(packed_pair_rows(x, t.train_code[i], k, t.ids) for x, i in zip(text, idx)))
        p = pack_rows(blocks, labels, t.ids["pad"])
        n = p.input_ids.shape[1]
        assert L == padded_length(n) and L - n < LENGTH_MULTIPLE
        assert torch.equal(b.input_ids[:, :n], p.input_ids) and torch.equal(b.block[:, :n], p.block)
        assert torch.equal(b.labels[:, :n], p.labels) and torch.equal(b.position_ids[:, :n], p.position_ids)
        x, y = packed_enc_index(p, [len(s) for s in text], k, back)
        assert torch.equal(b.x_index, x) and torch.equal(b.y_index, y)
        tail = slice(n, L)
    else:
        lengths = [len(t.train_text[i]) + len(t.train_code[i]) + 3 for i in idx]  # [BOS] Text [SEP] Code [EOS]
        assert b.block.sum(1).tolist() == lengths and L == padded_length(max(lengths))
        tail = slice(max(lengths), L)
    assert (b.input_ids[:, tail] == t.ids["pad"]).all() and (b.labels[:, tail] == IGNORE).all()
    assert (b.block[:, tail] == 0).all()


@pytest.mark.parametrize(
    "settings, reason",
    [
        (dict(), "it records CUDA steps, and this run trains on cpu"),
        (dict(device="cuda", grad_accum=2), "--grad_accum 1"),
        (dict(device="cuda", views="separate"), "with the JEPA term it records the packed views"),
        (dict(device="cuda", objective="stp", lbd=0.02), "with the JEPA term it records the packed views"),
        (dict(device="cuda", views="packed", pack_length=512), "--pack_length and --compile are the other fast path"),
    ],
)
def test_what_cuda_graphs_cannot_record_is_named(settings, reason):
    c = PairedConfig(**{**SMALL, **settings})
    why = unsupported(c, torch.device(c.device), False, False)
    assert why is not None and reason in why
    assert (
        unsupported(PairedConfig(**{**SMALL, "device": "cuda", "views": "packed"}), torch.device("cuda"), False, False)
        is None
    )
    assert "several (torchrun)" in unsupported(c, torch.device("cuda"), True, False)
    assert "fp16" in unsupported(c, torch.device("cuda"), False, True)
    # λ = 0 trains the LM rows alone, whatever the views: those steps can be recorded
    assert unsupported(PairedConfig(**{**SMALL, "lbd": 0.0}), torch.device("cuda"), False, False) is None
    assert not can_record(PairedConfig(**SMALL))  # the studies' question, on this CPU


def test_cuda_graphs_on_the_cpu_is_refused_in_one_line_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="--cuda_graphs: it records CUDA steps, and this run trains on cpu"):
        PairedConfig(**{**SMALL, "cuda_graphs": True}).validate()
    save = tmp_path / "run.pt"
    r = subprocess.run(
        [sys.executable, "-m", "jepa_lite.paired", "--device", "cpu", "--no_progress", "--cuda_graphs"]
        + ["--save_path", str(save)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: --cuda_graphs: it records CUDA steps"), r.stderr
    assert not save.exists()


def test_a_run_may_be_resumed_with_or_without_cuda_graphs(tmp_path):
    """How the machine runs the same arithmetic may change on --resume, as --compile may."""
    from jepa_lite.paired.config import RESUMABLE_CHANGES

    assert "cuda_graphs" in RESUMABLE_CHANGES
    t = small(steps=2, save_path=str(tmp_path / "a.pt"))
    t.fit()
    resumed = small(steps=3, resume=str(tmp_path / "a.pt"))  # a checkpoint from a run without the flag
    assert resumed.step == 2 and resumed.graphs is None
    assert all(isinstance(g["lr"], float) for g in resumed.optimizer.param_groups)


@pytest.mark.parametrize("k, lm_tokens", [(0, "code"), (2, "all")])
def test_a_steps_rows_taken_from_all_pairs_rows_are_the_rows_built_for_its_pairs(k, lm_tokens):
    t = small(steps=1, predictors=k, lm_tokens=lm_tokens)
    for step in (0, 1, 19, 45, 3):  # batches of three epochs (8 pairs of 160 a step: 20 steps an epoch)
        idx = t.batch_indices(step)
        for with_jepa in (True, False):
            text, code = [t.train_text[i] for i in idx], [t.train_code[i] for i in idx]
            built = graphed.step_rows(text, code, t.ids, with_jepa, k, lm_tokens, code_back("last"))
            taken = t.step_rows(idx, with_jepa)
            for name, a, b in zip(
                ("input_ids", "labels", "position_ids", "block", "x", "y"), taken.tensors(), built.tensors()
            ):
                assert a.dtype == b.dtype and torch.equal(a, b), (step, with_jepa, name)

"""`jepa_lite/paired/nano.py`, the paper's objective on one page, computes PairedTrainer's loss and
gradients on its separate-rows path (CPU, fp32)."""

import ast
import inspect

import pytest
import torch

from jepa_lite.paired import PairedConfig, PairedTrainer, nano
from jepa_lite.paired.rows import code_back

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
    views="separate",
)


def small(**overrides) -> PairedTrainer:
    torch.set_num_threads(1)
    return PairedTrainer(PairedConfig(**{**SMALL, **overrides}), log=lambda s: None)


def grads(model, loss):
    return torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad], allow_unused=True)


def nano_loss(t: PairedTrainer, idx):
    c = t.config
    return nano.paired_loss(
        t.model,
        [t.train_text[i] for i in idx],
        [t.train_code[i] for i in idx],
        t.ids,
        k=c.predictors,
        lbd=c.lbd,
        gamma=c.gamma,
        lm_tokens=c.lm_tokens,
        back=code_back(c.code_position),
    )


@pytest.mark.parametrize(
    "k, lm_tokens, code_position, lbd, gamma",
    [
        (0, "code", "last", 1.0, 1.0),
        (2, "code", "eos", 0.3, 1.0),
        (1, "all", "last", 2.0, 0.5),
        (3, "code", "last", 0.0, 1.0),
    ],
)
def test_loss_and_gradients_equal_the_trainers_separate_rows(k, lm_tokens, code_position, lbd, gamma):
    t = small(steps=1, predictors=k, lm_tokens=lm_tokens, code_position=code_position, lbd=lbd, gamma=gamma)
    t.model.train()
    idx = t.batch_indices(0)
    assert (
        len({len(t.train_text[i]) + len(t.train_code[i]) for i in idx}) > 1
    )  # rows of different lengths: padding happens
    total, lm, jepa = t.objective(0)
    ours, our_lm, our_jepa = nano_loss(t, idx)
    assert our_lm.item() == pytest.approx(lm.item(), rel=1e-6)
    if lbd == 0:
        assert jepa is None and our_jepa is None
    else:
        assert our_jepa.item() == pytest.approx(jepa.item(), rel=1e-5, abs=1e-7)
    assert ours.item() == pytest.approx(total.item(), rel=1e-6)
    kit_grads, our_grads = grads(t.model, total), grads(t.model, ours)
    assert sum(g is not None for g in kit_grads) > 0
    for a, b in zip(kit_grads, our_grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)


def test_a_wrong_objective_is_seen():
    """The comparison can fail: reading Enc(Code) at the wrong token changes the JEPA term."""
    t = small(steps=1, predictors=1, code_position="last")
    idx = t.batch_indices(0)
    _, _, jepa = t.objective(0)
    c = t.config
    _, _, wrong = nano.paired_loss(
        t.model, [t.train_text[i] for i in idx], [t.train_code[i] for i in idx], t.ids, k=1, lbd=c.lbd, back=0
    )
    assert abs(wrong.item() - jepa.item()) > 1e-4


def test_train_step_lowers_the_loss_on_its_batch():
    t = small(steps=1, predictors=1)
    idx = t.batch_indices(0)
    texts, codes = [t.train_text[i] for i in idx], [t.train_code[i] for i in idx]
    optimizer = torch.optim.AdamW(t.model.parameters(), lr=3e-3)
    first = [nano.train_step(t.model, optimizer, texts, codes, t.ids, k=1) for _ in range(15)]
    assert first[-1][0] < first[0][0] and first[-1][1] < first[0][1]


def test_paired_nano_is_one_short_page_importing_only_torch():
    source = inspect.getsource(nano)
    assert len(source.splitlines()) <= 120
    tree = ast.parse(source)
    imports = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imports |= {("." * n.level) + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imports == {"torch"}  # nothing from the kit: the page stands alone
    assert all(f.end_lineno - f.lineno + 1 <= 20 for f in ast.walk(tree) if isinstance(f, ast.FunctionDef))

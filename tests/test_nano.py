"""`jepa_lite/nano.py`, the algorithm on one page, computes what the kit's trainer computes (CPU, fp32,
one process, no compile): the same span masks draw for draw, the same loss, and the same weights
after every step."""

import ast
import copy
import inspect

import pytest
import torch

from jepa_lite import masking, nano
from jepa_lite.fastpath import pred_capacity, with_pred_capacity
from jepa_lite.train import TrainConfig, Trainer

SMALL = dict(
    device="cpu",
    save_path=None,
    progress=False,
    compile=False,
    batch_size=8,
    max_length=32,
    tiny_dim=32,
    tiny_layers=2,
    log_every=10,
    warmup_steps=5,
)


def trainer(steps=30, **overrides) -> Trainer:
    return Trainer(TrainConfig.smoke(steps=steps, **{**SMALL, **overrides}), log=lambda s: None)


def nano_copy(t: Trainer) -> nano.JEPA:
    """nano's JEPA holding exactly the trainer's weights (context encoder, predictor, target encoder)."""
    model = nano.JEPA(
        copy.deepcopy(t.model.context_encoder), t.model.predictor.net[0].in_features, t.config.pred_hidden_mult
    )
    ours, theirs = list(model.parameters()), list(t.model.parameters())
    assert [p.shape for p in ours] == [p.shape for p in theirs]  # same order: context, predictor, target
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            a.copy_(b)
    return model


def adamw_like(t: Trainer, model: nano.JEPA) -> torch.optim.AdamW:
    """The optimizer the trainer builds on the CPU (fused AdamW), for nano's parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=t.config.lr, weight_decay=t.config.weight_decay, fused=True)


# ---------------------------------------------------------------------------------------------
# span mask and views
@pytest.mark.parametrize("mean_span_len", [1.0, 2.5, 5.0])
def test_span_mask_is_masking_sample_span_mask_draw_for_draw(mean_span_len):
    rows = [[True] * 40, [False] + [True] * 10 + [False] + [True] * 20 + [False] * 5, [False, True, False], [False] * 6]
    for seed in range(20):
        for row in rows:
            g_nano, g_kit = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
            ours = nano.span_mask(row, 0.3, mean_span_len, g_nano)
            kit = masking.sample_span_mask(row, 0.3, mean_span_len, g_kit)
            assert torch.equal(ours, kit), (seed, row)
            assert torch.equal(g_nano.get_state(), g_kit.get_state())  # the same number of draws


def test_two_views_masks_each_row_as_span_mask_and_never_a_special(tokenized):
    tok = tokenized.tokenizer
    input_ids, attention_mask = tokenized.padded(list(range(6)))
    views = nano.two_views(
        input_ids, attention_mask, tok.all_special_ids, tok.mask_token_id, 0.3, 3.0, torch.Generator().manual_seed(1)
    )
    g = torch.Generator().manual_seed(1)
    maskable = attention_mask.bool() & ~masking.special_tokens_mask(input_ids, tok.all_special_ids)
    expected = torch.stack([masking.sample_span_mask(row.tolist(), 0.3, 3.0, g) for row in maskable])
    assert torch.equal(views.pred_mask, expected) and not (views.pred_mask & ~maskable).any()
    assert torch.equal(views.masked_input_ids[views.pred_mask], torch.full((int(expected.sum()),), tok.mask_token_id))
    assert torch.equal(views.masked_input_ids[~views.pred_mask], input_ids[~views.pred_mask])
    assert torch.equal(views.input_ids, input_ids)


# ---------------------------------------------------------------------------------------------
# the loss
def test_loss_equals_jepa_forward_and_the_fixed_shape_loss():
    t = trainer()
    model = nano_copy(t).train()
    t.model.train()
    for step in range(3):
        batch = t.get_batch(step)
        ours = model(batch)
        assert torch.equal(ours, t.model(batch).loss)
        padded = with_pred_capacity(batch, pred_capacity(*batch.input_ids.shape, t.config.mask_ratio))
        assert padded.pred_index.numel() > batch.pred_index.numel()  # filler rows are present, and must not count
        assert ours.item() == pytest.approx(t.model.fixed_shape_loss(padded).item(), rel=1e-6)


def test_cosine_loss_is_the_kits():
    from jepa_lite.losses import cosine_distance

    pred, target = torch.randn(23, 8), torch.randn(23, 8)
    assert torch.equal(nano.cosine_loss(pred, target), cosine_distance(pred, target))
    assert nano.cosine_loss(pred, 3.0 * pred).item() == pytest.approx(0.0, abs=1e-6)


def test_lr_factor_lives_once_and_is_the_trainers():
    from jepa_lite.paired import trainer as paired_trainer
    from jepa_lite.train import lr_factor

    assert lr_factor is nano.lr_factor and paired_trainer.lr_factor is nano.lr_factor  # one formula, both trainers
    assert [round(nano.lr_factor(s, 4, 12), 6) for s in (0, 3, 4, 8, 12, 20)] == [0.25, 1.0, 1.0, 0.5, 0.0, 0.0]


# ---------------------------------------------------------------------------------------------
# the step and the loop
def test_train_step_equals_trainer_train_step_for_30_steps():
    """Identical losses every step and identical weights (all three parts) after 30 steps."""
    t = trainer(steps=30)
    model = nano_copy(t)
    optimizer = adamw_like(t, model)
    before = [p.detach().clone() for p in model.parameters()]
    for step in range(30):
        for group in optimizer.param_groups:  # the LR of this step, as the trainer's scheduler set it
            group["lr"] = t.config.lr * nano.lr_factor(step, t.config.warmup_steps, t.config.steps)
        assert optimizer.param_groups[0]["lr"] == t.optimizer.param_groups[0]["lr"]
        batch = t.get_batch(step)
        ours = nano.train_step(model, optimizer, batch, t.momentum(step), t.config.grad_clip)
        kit = t.train_step(batch)
        assert torch.equal(ours, kit), step
    for (name, a), b in zip(model.named_parameters(), t.model.parameters()):
        assert torch.equal(a, b), name
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert all(changed[: len(list(model.context_encoder.parameters()))])  # every context weight moved
    assert any(
        not torch.equal(a, b) for a, b in zip(before[-3:], list(model.target_encoder.parameters())[-3:])
    )  # the EMA too


def test_train_matches_fit_step_losses():
    t = trainer(steps=30)
    model = nano_copy(t)
    c = t.config
    losses = nano.train(
        model,
        t.get_batch,
        c.steps,
        lr=c.lr,
        warmup_steps=c.warmup_steps,
        ema_m=c.ema_m,
        weight_decay=c.weight_decay,
        grad_clip=c.grad_clip,
    )
    history = t.fit()
    assert len(losses) == len(history["step_loss"]) == 30
    assert losses == pytest.approx(history["step_loss"], abs=1e-6)
    assert losses[-1] < 0.8 * losses[0]  # it trained


def test_loop_trains_on_its_own_views(tokenized):
    """nano alone: its own views, its own loop; the loss falls."""
    from jepa_lite.encoders import TinyConfig, TinyEncoder

    tok = tokenized.tokenizer
    torch.manual_seed(0)
    model = nano.JEPA(TinyEncoder(TinyConfig(vocab_size=len(tok), dim=32, layers=2, heads=2)), 32, hidden_mult=2)

    def batches(step):
        rows = [(8 * step + i) % len(tokenized) for i in range(8)]
        g = torch.Generator().manual_seed(step)
        return nano.two_views(*tokenized.padded(rows), tok.all_special_ids, tok.mask_token_id, 0.3, 3.0, g)

    losses = nano.train(model, batches, 60, lr=3e-3, warmup_steps=5)
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5]), losses


# ---------------------------------------------------------------------------------------------
# the page stays a page
def page_problems(source: str) -> list:
    """What keeps `source` from being nano's one page: over 150 lines, a function over 20 lines (the
    loop over 12), an import other than torch, math, copy, or a missing part."""
    problems, tree = [], ast.parse(source)
    if len(source.splitlines()) > 150:
        problems.append(f"{len(source.splitlines())} lines")
    for node in ast.walk(tree):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or "."]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        if isinstance(node, ast.ImportFrom) and node.level:
            names = ["." + (node.module or "")]
        problems += [f"imports {n}" for n in names if n.split(".")[0] not in ("torch", "math", "copy")]
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    problems += [
        f"no {name}"
        for name in ("span_mask", "two_views", "JEPA", "cosine_loss", "ema_update", "lr_factor", "train_step", "train")
        if name not in functions
    ]
    for f in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        limit = 12 if f.name == "train" and f.col_offset == 0 else 20
        if f.end_lineno - f.lineno + 1 > limit:
            problems.append(f"{f.name} is {f.end_lineno - f.lineno + 1} lines")
    return problems


def test_nano_is_one_short_page_importing_only_torch_math_copy():
    source = inspect.getsource(nano)
    assert page_problems(source) == []
    tree = ast.parse(source)
    assert {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} == {
        "torch",
        "math",
        "copy",
    }


def test_the_page_guard_sees_a_kit_import_a_long_function_and_a_long_page():
    source = inspect.getsource(nano)
    assert page_problems(source + "\nfrom .model import JEPA as KitJEPA\nimport numpy\n") == [
        "imports .model",
        "imports numpy",
    ]
    long_def = "\ndef helper():\n" + "    x = 1\n" * 25
    assert page_problems(source + long_def) == [f"{len((source + long_def).splitlines())} lines", "helper is 26 lines"]
    assert page_problems(source.replace("def lr_factor(", "def learning_rate(")) == ["no lr_factor"]

"""The fast paths compute what the readable ones do: same loss, same gradients, same masks (CPU, fp32)."""

import dataclasses

import pytest
import torch

from jepa_lite.data import collate
from jepa_lite.encoders import TinyConfig, TinyEncoder
from jepa_lite.fastpath import FastJEPA, pred_capacity, pred_length_step, with_pred_capacity
from jepa_lite.losses import get_loss, token_losses
from jepa_lite.model import JEPA
from jepa_lite.train import TrainConfig, Trainer


def tiny_jepa(tokenizer, loss="cosine", dim=32, kind=FastJEPA):
    torch.manual_seed(0)
    return kind(
        TinyEncoder(TinyConfig(vocab_size=len(tokenizer), dim=dim, layers=2, heads=2)),
        dim,
        pred_hidden_mult=2,
        loss=loss,
    )


def grads(model):
    return [p.grad.detach().clone() for p in model.trainable_parameters()]


@pytest.mark.parametrize("name", ["cosine", "l2", "mse", "smooth_l1"])
def test_mean_of_token_losses_is_the_loss(name):
    pred, target = torch.randn(37, 16), torch.randn(37, 16)
    assert token_losses(name, pred, target).shape == (37,)
    assert token_losses(name, pred, target).mean().item() == pytest.approx(
        get_loss(name)(pred, target).item(), rel=1e-6
    )


@pytest.mark.parametrize("name", ["cosine", "l2", "mse", "smooth_l1"])
def test_the_trainers_indexed_rows_give_the_readable_jepas_loss_and_gradients(tokenized, name):
    """FastJEPA (rows taken by the host-side pred_index) = JEPA (rows z[pred_mask]): the same weights
    give exactly the same loss, predictions and gradients."""
    readable, fast = tiny_jepa(tokenized.tokenizer, name, kind=JEPA), tiny_jepa(tokenized.tokenizer, name)
    fast.load_state_dict(readable.state_dict())
    batch = collate(tokenized.ids[:10], tokenized.tokenizer, 0.3, 3, torch.Generator().manual_seed(4))
    a, b = readable(batch), fast(batch)
    a.loss.backward()
    b.loss.backward()
    assert torch.equal(a.loss, b.loss) and torch.equal(a.pred, b.pred) and a.n_masked == b.n_masked > 0
    assert all(torch.equal(x, y) for x, y in zip(grads(readable), grads(fast)))


@pytest.mark.parametrize("name", ["cosine", "l2", "mse", "smooth_l1"])
def test_fixed_shape_loss_equals_gathered_loss_and_gradients(tokenized, name):
    """FastJEPA.fixed_shape_loss (pred_index padded with filler rows, weights 0/1) = JEPA.forward (the N
    masked rows), value and gradients."""
    model = tiny_jepa(tokenized.tokenizer, loss=name).train()
    batch = collate(
        tokenized.ids[:10], tokenized.tokenizer, 0.3, 3, torch.Generator().manual_seed(4), pad_to_multiple_of=8
    )
    assert batch.attention_mask.eq(0).any()  # padding is present, and must not count
    gathered = model(batch).loss
    gathered.backward()
    g_gathered = grads(model)
    capacity = pred_capacity(*batch.input_ids.shape, 0.3)
    padded = with_pred_capacity(batch, capacity)
    assert padded.pred_index.numel() == capacity > batch.pred_index.numel() + 10  # real filler
    model.zero_grad(set_to_none=True)
    fixed = model.fixed_shape_loss(padded)
    fixed.backward()
    assert fixed.item() == pytest.approx(gathered.item(), rel=1e-5, abs=1e-7)
    for a, b in zip(g_gathered, grads(model)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_fixed_shape_loss_differs_from_a_mean_over_all_rows(tokenized):
    """The equality above is not trivially true: counting the filler rows gives another value."""
    model = tiny_jepa(tokenized.tokenizer).eval()
    batch = collate(tokenized.ids[:10], tokenized.tokenizer, 0.3, 3, torch.Generator().manual_seed(4))
    padded = with_pred_capacity(batch, pred_capacity(*batch.input_ids.shape, 0.3))
    with torch.no_grad():
        z_ctx = model.encode_context(batch.masked_input_ids, batch.attention_mask).flatten(0, 1)[padded.pred_index]
        z_tgt = model.encode_target(batch.input_ids, batch.attention_mask).flatten(0, 1)[padded.pred_index]
        everywhere = token_losses("cosine", model.predictor(z_ctx), z_tgt).mean()
        assert abs(everywhere.item() - model.fixed_shape_loss(padded).item()) > 1e-3


def test_fixed_shape_loss_with_nothing_masked_is_zero_and_backpropagates(tokenized):
    model = tiny_jepa(tokenized.tokenizer)
    batch = collate(tokenized.ids[:6], tokenized.tokenizer, 0.3, 3, torch.Generator().manual_seed(0))
    batch.pred_mask[:] = False
    batch.pred_index = batch.pred_index[:0]
    loss = model.fixed_shape_loss(with_pred_capacity(batch, pred_capacity(*batch.input_ids.shape, 0.3)))
    loss.backward()
    assert loss.item() == 0.0
    assert all(torch.isfinite(p.grad).all() for p in model.context_encoder.parameters() if p.grad is not None)


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.9])
def test_pred_capacity_holds_every_mask_the_sampler_draws(tokenized, ratio):
    """The capacity is a bound, not an estimate: over many batches (lengths 1..L, all padded to L)
    no mask exceeds it. Too small a bound would raise in `with_pred_capacity` during training."""
    for seed in range(40):
        rows = torch.randint(0, len(tokenized), (16,), generator=torch.Generator().manual_seed(seed)).tolist()
        batch = collate(
            [tokenized.ids[r] for r in rows],
            tokenized.tokenizer,
            ratio,
            3,
            torch.Generator().manual_seed(seed),
            pad_to_multiple_of=8,
        )
        capacity = pred_capacity(*batch.input_ids.shape, ratio)
        assert batch.pred_index.numel() <= capacity
        assert with_pred_capacity(batch, capacity).pred_index.shape == (capacity,)
        # the CPU's looser bound (length rounded up to 32) holds too, and is shared by the lengths under one step
        B, L = batch.input_ids.shape
        assert capacity <= pred_capacity(B, L, ratio, 32) == pred_capacity(B, -(-L // 32) * 32, ratio)


def test_with_pred_capacity_refuses_an_index_that_does_not_fit(tokenized):
    batch = collate(tokenized.ids[:4], tokenized.tokenizer, 0.3, 3, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="do not fit"):
        with_pred_capacity(batch, batch.pred_index.numel() - 1)


def test_trainer_static_shape_step_trains_like_the_default_step():
    """The trainer's CUDA-graph path (fixed-shape loss and padded index, cloned loss) run eagerly on CPU: the same
    loss curve."""
    cfg = TrainConfig.smoke(progress=False, save_path=None, steps=30, log_every=10, device="cpu")
    default = Trainer(cfg, log=lambda s: None)
    static = Trainer(cfg, log=lambda s: None)
    static.fixed_pred, static.forward = True, static.model.fixed_shape_loss  # what compile wraps on CUDA
    static.plan.fixed_pred_index = True  # pred_index padded to pred_capacity, as on CUDA
    a, b = default.fit()["step_loss"], static.fit()["step_loss"]
    assert len(a) == len(b) == 30 and a[-1] < a[0]
    assert torch.allclose(torch.tensor(a), torch.tensor(b), rtol=1e-4, atol=1e-5), (a, b)
    for p, q in zip(default.model.parameters(), static.model.parameters()):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-4)  # Adam turns last-bit differences into lr-sized steps


def test_bf16_on_the_cpu_runs_the_predictor_on_rows_fixed_by_the_shape_and_trains_like_n_rows():
    """In bf16 on the CPU the step takes `fixed_shape_loss` with `pred_index` padded to `pred_capacity` (oneDNN keeps
    kernels per shape: N would bring new ones each step); in fp32 the N masked rows. Both train alike."""
    cfg = TrainConfig.smoke(progress=False, save_path=None, steps=20, log_every=10, device="cpu", precision="bf16")
    fixed, rows = Trainer(cfg, log=lambda s: None), Trainer(cfg, log=lambda s: None)
    assert fixed.fixed_pred and fixed.plan.fixed_pred_index and not fixed.static_shapes
    batches = [fixed.plan[s] for s in range(20)]
    capacities = {pred_capacity(*batch.input_ids.shape, cfg.mask_ratio, 32): batch for batch in batches}
    assert fixed.plan.length_step == pred_length_step(fixed.device) == 32
    for capacity, batch in capacities.items():  # at most max_length / 32 row counts
        assert batch.pred_index.numel() == capacity > batch.pred_mask.sum()
    assert len(capacities) <= -(-cfg.max_length // 32)
    rows.fixed_pred, rows.forward, rows.plan.fixed_pred_index = False, rows.model, False  # the N-row step
    assert rows.plan[3].pred_index.numel() == rows.plan[3].pred_mask.sum()
    a, b = fixed.fit()["step_loss"], rows.fit()["step_loss"]
    assert len(a) == len(b) == 20 and a[-1] < a[0]
    assert torch.allclose(torch.tensor(a), torch.tensor(b), rtol=2e-2, atol=1e-3), (a, b)
    fp32 = Trainer(dataclasses.replace(cfg, precision="fp32"), log=lambda s: None)
    assert not fp32.fixed_pred and not fp32.plan.fixed_pred_index


def test_cuda_graphs_are_used_only_with_compile_on_cuda():
    cfg = TrainConfig.smoke(progress=False, save_path=None, compile=False)
    assert not Trainer(cfg, log=lambda s: None).static_shapes


# ---------------------------------------------------------------------------------------------
# Masking: the vectorised sampler was rewritten with fewer tensor operations per round; it must
# give the very same masks as the version it replaced (kept here as the reference).
# ---------------------------------------------------------------------------------------------
def previous_mask_spans(maskable, mask_ratio, mean_span_len, generator=None):
    """The earlier `masking.mask_spans`, line for line: run ids, and a cumulative sum to clip to the budget."""
    import math

    from jepa_lite.masking import span_rate

    B, L = maskable.shape
    maskable = maskable.bool()
    n = maskable.sum(dim=1)
    u = torch.rand(B, generator=generator)
    budget = torch.floor(mask_ratio * n + u).long().clamp(min=1)
    remaining = torch.where(n > 0, budget, torch.zeros_like(budget))
    pos = torch.arange(L)
    run_id = torch.cumsum(~maskable, dim=1)
    rate = span_rate(mean_span_len)
    pred_mask = torch.zeros(B, L, dtype=torch.bool)
    free = maskable.clone()
    span_lens = torch.empty(B, 0, dtype=torch.long)
    it = 0
    while bool((remaining > 0).any()):
        if it == span_lens.shape[1]:
            if math.isinf(rate):
                span_lens = torch.ones(B, it + 8, dtype=torch.long)
            else:
                e = -torch.log1p(-torch.rand(B, 8, generator=generator)) / rate
                span_lens = torch.cat([span_lens, torch.ceil(e).long().clamp_(min=1)], dim=1)
        span_len = span_lens[:, it : it + 1]
        it += 1
        free_count = torch.cumsum(free, dim=1)
        r = (torch.rand(B, 1, generator=generator) * free_count[:, -1:]).long()
        start = (free_count <= r).sum(dim=1, keepdim=True).clamp_(max=L - 1)
        offset = pos - start
        new = (offset >= 0) & (offset < span_len) & (run_id == run_id.gather(1, start)) & free
        running = torch.cumsum(new, dim=1)
        new &= running <= remaining[:, None]
        pred_mask |= new
        free &= ~new
        remaining -= torch.minimum(running[:, -1], remaining)
    return pred_mask


@pytest.mark.parametrize("ratio,span", [(0.3, 5.0), (0.15, 3.0), (0.6, 8.0), (0.3, 1.0), (0.5, 2.5)])
def test_mask_spans_gives_the_same_masks_as_the_previous_version(tokenized, ratio, span):
    from jepa_lite.masking import mask_spans, special_tokens_mask

    input_ids, attention_mask = tokenized.padded(list(range(300)))
    maskable = attention_mask.bool() & ~special_tokens_mask(input_ids, tokenized.tokenizer.all_special_ids)
    maskable[::7, 5] = False  # more barriers inside rows, so spans get cut
    maskable[3] = False  # a row with nothing to mask
    for seed in range(3):
        new = mask_spans(maskable, ratio, span, torch.Generator().manual_seed(seed))
        old = previous_mask_spans(maskable, ratio, span, torch.Generator().manual_seed(seed))
        assert torch.equal(new, old), (ratio, span, seed, (new != old).sum())


def test_cuda_graphs_flag_reaches_the_config():
    from jepa_lite.train import build_parser, config_from_args

    assert config_from_args(vars(build_parser().parse_args(["--compile"]))).cuda_graphs
    assert not config_from_args(vars(build_parser().parse_args(["--compile", "--no_cuda_graphs"]))).cuda_graphs


def test_bench_warmup_meets_every_timed_length_as_often_as_needed():
    """The bench's warm-up must record every CUDA graph the timed steps replay: after it, each
    padded length of the timed steps has been met at least twice."""
    from collections import Counter

    from jepa_lite.bench import mixed_length_lines, warmup_covering

    trainer = Trainer(
        TrainConfig.smoke(batch_size=16, steps=10, device="cpu"), texts=mixed_length_lines(2000), log=lambda s: None
    )
    trainer.static_shapes, trainer.pad_to_multiple_of = True, 8  # as on CUDA with --compile

    def padded(step):
        return -(-int(trainer.corpus.lengths[trainer.batch_lines(step)].max()) // 8) * 8

    warm = warmup_covering(trainer, 3, 40)
    assert warm > 3  # 3 steps cannot have met the lengths of 40 others twice
    seen = Counter(padded(s) for s in range(warm))
    assert all(seen[padded(s)] >= 2 for s in range(warm, warm + 40))
    trainer.static_shapes = False  # CPU in bf16 (lengths in steps of 8): each timed length met once
    warm = warmup_covering(trainer, 3, 40)
    seen = Counter(padded(s) for s in range(warm))
    assert warm > 3 and all(seen[padded(s)] >= 1 for s in range(warm, warm + 40))
    trainer.pad_to_multiple_of = 1
    assert warmup_covering(trainer, 3, 40) == 3  # fp32 on the CPU: no per-length cost, no extension


def test_checkpoints_store_learning_rates_as_numbers_and_load_on_any_path():
    """On the CUDA-graph path the LR is a tensor (the graph reads it in place); checkpoints keep a
    plain number, so a run saved there resumes without graphs, on any device. Shown on the CPU with
    an optimizer built as the graph path builds it, but with a CPU tensor."""
    from jepa_lite.train import lr_factor, plain_lrs

    p = torch.nn.Parameter(torch.randn(4))
    opt = torch.optim.AdamW([p], lr=torch.tensor(1e-3), fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, 2, 10))
    for _ in range(3):
        p.sum().backward()
        opt.step()
        sched.step()
    saved_opt, saved_sched = plain_lrs(opt.state_dict()), plain_lrs(sched.state_dict())
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)  # the live optimizer is untouched
    assert type(saved_opt["param_groups"][0]["lr"]) is float and type(saved_sched["_last_lr"][0]) is float
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = torch.optim.AdamW([q], lr=1e-3)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: lr_factor(s, 2, 10))
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert opt2.param_groups[0]["lr"] == pytest.approx(1e-3 * lr_factor(3, 2, 10))
    q.sum().backward()
    opt2.step()  # a plain float LR: steps as usual


def test_the_trainers_ema_with_momentum_as_a_tensor_moves_the_target_as_the_readable_one(tokenized):
    """FastJEPA.update_target(tensor m), the CUDA-graph path, = JEPA.update_target(m): parameters and buffers."""
    readable, fast = tiny_jepa(tokenized.tokenizer, kind=JEPA), tiny_jepa(tokenized.tokenizer)
    with torch.no_grad():
        for model in (readable, fast):
            for p in model.context_encoder.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    readable.update_target(0.7)
    fast.update_target(torch.tensor(0.7))
    for a, b in zip(readable.target_encoder.state_dict().values(), fast.target_encoder.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(
        next(fast.target_encoder.parameters()), next(fast.context_encoder.parameters())
    )  # the target moved part of the way, not all of it

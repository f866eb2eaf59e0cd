"""EMA invariants, the loss, and where gradients go."""

import math

import pytest
import torch

from jepa_lite.data import collate
from jepa_lite.ema import ema_update, ema_update_modules, half_life, momentum_schedule
from jepa_lite.encoders import TinyConfig, TinyEncoder
from jepa_lite.fastpath import ema_update_tensor_m
from jepa_lite.losses import cosine_distance
from jepa_lite.model import JEPA


def tiny_jepa(tokenizer, dim=32):
    return JEPA(TinyEncoder(TinyConfig(vocab_size=len(tokenizer), dim=dim, layers=1, heads=2)), dim, pred_hidden_mult=2)


def tiny_batch(tokenized, n=6, seed=0):
    return collate(tokenized.ids[:n], tokenized.tokenizer, 0.3, 3, torch.Generator().manual_seed(seed))


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_ema_formula_on_tensors():
    tgt, on = [torch.randn(3, 4), torch.randn(5)], [torch.randn(3, 4), torch.randn(5)]
    expected = [0.9 * t + 0.1 * o for t, o in zip(tgt, on)]
    ema_update(tgt, on, 0.9)
    for t, e in zip(tgt, expected):
        assert torch.allclose(t, e, atol=1e-6)


def test_m_one_leaves_target_unchanged_and_m_zero_copies(local_tokenizer):
    model = tiny_jepa(local_tokenizer)
    with torch.no_grad():
        for p in model.context_encoder.parameters():
            p.add_(torch.randn_like(p))
    before = params(model.target_encoder)
    model.update_target(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.target_encoder.parameters()))
    model.update_target(0.0)
    assert all(torch.equal(a, b) for a, b in zip(model.context_encoder.parameters(), model.target_encoder.parameters()))


def test_target_encoder_never_receives_gradient_and_moves_only_by_ema(tokenized):
    model = tiny_jepa(tokenized.tokenizer)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    before = params(model.target_encoder)
    out = model(tiny_batch(tokenized))
    out.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.target_encoder.parameters())
    assert all(p.grad is not None for p in model.context_encoder.parameters())
    assert all(p.grad is not None for p in model.predictor.parameters())
    opt.step()
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.target_encoder.parameters())
    )  # optimizer did not touch it
    model.update_target(0.5)
    for b0, t, c in zip(before, model.target_encoder.parameters(), model.context_encoder.parameters()):
        assert torch.allclose(t, 0.5 * b0 + 0.5 * c.detach(), atol=1e-6)


def test_target_stays_in_eval_mode(local_tokenizer):
    model = tiny_jepa(local_tokenizer).train()
    assert model.context_encoder.training and not model.target_encoder.training


def test_ema_modules_copy_buffers():
    a, b = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    b.running_mean.fill_(2.0)
    ema_update_modules(a, b, 0.9)
    assert torch.equal(a.running_mean, b.running_mean)


def test_half_life_and_schedules():
    assert half_life(0.5) == pytest.approx(1.0)
    assert half_life(0.99) == pytest.approx(68.97, abs=0.01)
    assert half_life(1.0) == math.inf
    lin = momentum_schedule("linear", 0.996, 1.0, 101)
    assert lin(0) == 0.996 and lin(100) == pytest.approx(1.0) and lin(50) == pytest.approx(0.998)
    cos = momentum_schedule("cosine", 0.99, 1.0, 11)
    assert cos(0) == pytest.approx(0.99) and cos(10) == pytest.approx(1.0) and cos(5) == pytest.approx(0.995)
    assert momentum_schedule("constant", 0.9, 1.0, 10)(7) == 0.9
    with pytest.raises(ValueError):
        momentum_schedule("exponential", 0.9, 1.0, 10)


def test_cosine_distance_values():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    assert cosine_distance(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_distance(x, -x).item() == pytest.approx(2.0)
    assert cosine_distance(x[:1], x[1:2]).item() == pytest.approx(1.0)
    assert cosine_distance(x, 5 * x).item() == pytest.approx(0.0, abs=1e-6)  # scale does not matter


def test_loss_is_cosine_distance_at_masked_positions_only(tokenized):
    model = tiny_jepa(tokenized.tokenizer).eval()
    batch = tiny_batch(tokenized)
    out = model(batch)
    with torch.no_grad():
        z_ctx = model.context_encoder(
            input_ids=batch.masked_input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        z_tgt = model.target_encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        pred = model.predictor(z_ctx)
    rows = [(pred[b, i], z_tgt[b, i]) for b, i in batch.pred_mask.nonzero().tolist()]
    manual = sum(1 - torch.cosine_similarity(p, t, dim=0) for p, t in rows) / len(rows)
    assert out.loss.item() == pytest.approx(manual.item(), abs=1e-5)
    assert out.n_masked == len(rows)


def test_empty_mask_gives_zero_loss_that_still_backpropagates(tokenized):
    model = tiny_jepa(tokenized.tokenizer)
    batch = tiny_batch(tokenized)
    batch.pred_mask[:] = False
    batch.pred_index = batch.pred_index[:0]
    out = model(batch)
    assert out.loss.item() == 0.0
    out.loss.backward()  # no NaN, no error
    assert all(torch.isfinite(p.grad).all() for p in model.context_encoder.parameters() if p.grad is not None)


def test_ema_with_momentum_as_a_tensor_matches_the_number():
    """The CUDA-graph path passes m as a 0-dim tensor (read when the kernels run): same update."""
    torch.manual_seed(0)
    online = [torch.randn(5, 3), torch.randn(7)]
    for m in (0.0, 0.5, 0.99, 1.0):
        a = [torch.randn(5, 3), torch.randn(7)]
        b = [t.clone() for t in a]
        ema_update(a, online, m)
        ema_update_tensor_m(b, online, torch.tensor(m))
        for x, y in zip(a, b):
            assert torch.allclose(x, y, atol=1e-6)

"""Runs trained as one (paired/batched.py): K runs that differ in seed, λ and learning rate, trained together,
end where each would alone — per-step losses, logged history and weights (fp32, CPU, where the step runs
without being recorded); the per-run clipping and AdamW equal torch's for each run; settings that cannot
be batched are refused in one line. The recorded step runs on a GPU in tests/test_paired_cuda.py."""

import pytest
import torch
from test_paired_packed import SMALL

from jepa_lite.errors import ConfigError
from jepa_lite.paired import PairedConfig, PairedTrainer
from jepa_lite.paired.batched import BatchedRuns, adamw_per_run, clip_per_run, why_not_batched

RUNS = [(1.0, 3e-3, 1), (0.0, 2e-3, 2), (0.3, 6e-3, 3)]  # (λ, lr, seed): a λ = 0 run among them


def small(lbd, lr, seed, **overrides) -> PairedTrainer:
    torch.set_num_threads(1)
    config = {**SMALL, "views": "packed", "precision": "fp32", "steps": 6, "lbd": lbd, "lr": lr, "seed": seed}
    return PairedTrainer(PairedConfig(**{**config, **overrides}), log=lambda s: None)


@pytest.mark.parametrize("extra", [dict(), dict(predictors=2, lm_tokens="all", code_position="eos", distance="l2")])
def test_runs_trained_as_one_end_where_each_run_alone_ends(extra):
    alone = [small(*r, **extra) for r in RUNS]
    together = [small(*r, **extra) for r in RUNS]
    start = [[p.detach().clone() for p in t.model.parameters()] for t in alone]
    histories = [t.fit() for t in alone]
    batched = BatchedRuns(together).fit()
    for k, (a, b) in enumerate(zip(histories, batched)):
        assert b is together[k].history and together[k].step == 6
        assert a["step"] == b["step"] == [3, 6] and a["lr"] == b["lr"]
        torch.testing.assert_close(b["step_lm_loss"], a["step_lm_loss"], rtol=1e-5, atol=1e-6)
        if RUNS[k][0] == 0:  # no JEPA term: NaN in the history, as alone
            assert all(v != v for v in b["step_jepa_loss"] + a["step_jepa_loss"])
        else:
            torch.testing.assert_close(b["step_jepa_loss"], a["step_jepa_loss"], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b["jepa_monitor"], a["jepa_monitor"], rtol=1e-4, atol=1e-6)
        # sums in another order: the weights agree to rounding — on average to ~1e-7, and each element to 1e-4
        # (Adam divides each gradient by its own scale, so an element whose gradient is ~0 moves by its
        # rounding: one element in 18,432 differs by 3e-5 here) — and they are trained weights, not the start
        named = dict(together[k].model.named_parameters())
        for name, p in alone[k].model.named_parameters():
            torch.testing.assert_close(named[name], p, rtol=1e-3, atol=1e-4, msg=name)
            assert (named[name] - p).abs().mean() < 1e-6, name
        moved = [not torch.equal(p, p0) for p, p0 in zip(together[k].model.parameters(), start[k])]
        assert sum(moved) > len(moved) // 2
    # the runs did not train each other: their weights differ
    assert not torch.equal(next(together[0].model.parameters()), next(together[2].model.parameters()))


def test_each_trained_model_generates_as_the_run_alone_does():
    alone, together = small(*RUNS[0]), small(*RUNS[0])
    alone.fit()
    BatchedRuns([together, small(*RUNS[2])]).fit()
    texts = [p.text for p in alone.test_pairs[:6]]
    assert together.generate(texts) == alone.generate(texts)


def test_clipping_and_adamw_per_run_are_torch_s_for_each_run():
    torch.manual_seed(0)
    K, lrs = 3, torch.tensor([1e-3, 5e-3, 2e-2])
    shapes = [(4, 5), (7,), (2, 3, 2)]
    stacked = [torch.randn(K, *s) for s in shapes]
    alone = [[torch.nn.Parameter(p[k].clone()) for p in stacked] for k in range(K)]
    opts = [torch.optim.AdamW(ps, lr=float(lrs[k]), weight_decay=0.01) for k, ps in enumerate(alone)]
    m, v, step = [torch.zeros_like(p) for p in stacked], [torch.zeros_like(p) for p in stacked], torch.zeros(())
    config = PairedConfig(weight_decay=0.01)
    for i in range(4):
        grads = [torch.randn(K, *s) * (10.0 if i % 2 else 0.1) for s in shapes]  # clipped on odd steps only
        for k in range(K):
            for p, g in zip(alone[k], grads):
                p.grad = g[k].clone()
            norm = torch.nn.utils.clip_grad_norm_(alone[k], 1.0)
            opts[k].step()
        norms = clip_per_run(grads, 1.0)
        torch.testing.assert_close(norms[K - 1], norm)
        adamw_per_run(stacked, grads, m, v, step, lrs, config)
        for k in range(K):
            for p, q in zip(stacked, alone[k]):
                torch.testing.assert_close(p[k], q.detach(), rtol=1e-5, atol=1e-7)
    assert step.item() == 4


@pytest.mark.parametrize(
    "overrides, why",
    [
        ([{}, {"steps": 7}], "differ in steps"),
        ([{}, {"batch_size": 4}], "differ in batch_size"),
        ([{}, {"tiny_dim": 32}], "differ in tiny_dim"),
        ([{"views": "separate"}] * 2, "packed views"),
        ([{"grad_accum": 2}, {}], "one forward and backward"),
        ([{"save_path": "x.pt"}, {}], "no checkpoints"),
    ],
)
def test_what_cannot_be_trained_as_one_is_refused_in_one_line(overrides, why):
    configs = [
        PairedConfig(**{**SMALL, "views": "packed", "lbd": 1.0, "seed": k, **o}) for k, o in enumerate(overrides)
    ]
    assert why in why_not_batched(configs)
    assert why_not_batched([PairedConfig(**{**SMALL, "views": "packed", "seed": s, "lr": s}) for s in (1, 2)]) == ""


def test_trainers_that_cannot_be_batched_are_refused_before_any_step():
    trainers = [small(*RUNS[0]), small(*RUNS[1], steps=7)]
    with pytest.raises(ConfigError, match="runs trained as one: the runs differ in steps"):
        BatchedRuns(trainers)
    assert all(t.step == 0 for t in trainers)

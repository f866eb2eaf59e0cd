"""The paired trainer's GPU path (run on a CUDA machine; skipped without one)."""

import pytest
import torch

from jepa_lite.paired import PairedConfig, PairedTrainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SMALL = dict(
    n_train=200, n_test=20, batch_size=8, tiny_dim=64, tiny_layers=2, log_every=4, progress=False, monitor_size=8
)


@pytest.mark.parametrize(
    "extra",
    [
        dict(views="separate"),
        dict(views="packed", predictors=2),
        dict(views="packed", grad_accum=2),
        dict(lbd=0.0),
        dict(views="packed", pack_length=512),
        dict(views="packed", pack_length=512, attention="flex"),
        dict(views="packed", pack_length=512, attention="flex", lbd=0.0),
    ],
)
def test_gpu_steps_never_make_the_host_wait(extra):
    t = PairedTrainer(PairedConfig(steps=6, **{**SMALL, **extra}), log=lambda s: None)
    assert t.device.type == "cuda" and t.precision.name == "bf16"  # device "auto", precision "auto"
    assert t.mask_4d == (extra.get("attention") != "flex")  # FlexAttention's rows take a BlockMask instead
    assert all(g.get("fused") for g in t.optimizer.param_groups)
    t.train_step()  # first step: allocations, kernel choices
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            t.train_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def test_gpu_run_checkpoints_resumes_and_matches_separate_when_packed(tmp_path):
    full = PairedTrainer(PairedConfig(steps=6, views="packed", predictors=1, **SMALL), log=lambda s: None).fit()
    ckpt = tmp_path / "gpu.pt"
    first = PairedTrainer(
        PairedConfig(steps=6, views="packed", predictors=1, save_path=str(ckpt), **SMALL), log=lambda s: None
    )
    step = first.train_step

    def stop_at_3():
        out = step()
        first.stop_requested = first.step == 3
        return out

    first.train_step = stop_at_3
    first.fit()
    resumed = PairedTrainer(
        PairedConfig(steps=6, views="packed", predictors=1, resume=str(ckpt), **SMALL), log=lambda s: None
    )
    torch.testing.assert_close(
        torch.tensor(resumed.fit()["step_lm_loss"]), torch.tensor(full["step_lm_loss"]), rtol=1e-3, atol=1e-3
    )
    sep = PairedTrainer(
        PairedConfig(steps=1, views="separate", predictors=1, precision="fp32", **SMALL), log=lambda s: None
    )
    idx = sep.batch_indices(0)
    a, b = sep.separate_forward(idx), sep.packed_forward(idx)
    for u, v in zip(a, b):
        torch.testing.assert_close(v, u, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("attention", ["default", "flex"])
def test_gpu_pairs_in_rows_give_the_separate_rows_losses_and_gradients(attention):
    """fp32 on CUDA: several pairs per row (SDPA with the dense block-causal mask, or FlexAttention's
    BlockMask) against the three separate rows per pair."""
    t = PairedTrainer(
        PairedConfig(
            steps=1, views="packed", pack_length=512, attention=attention, precision="fp32", predictors=1, **SMALL
        ),
        log=lambda s: None,
    )
    assert (t.model.config._attn_implementation == "flex_attention") == (attention == "flex")
    t.model.train()
    idx = t.batch_indices(0)
    lm_s, x_s, y_s = t.separate_forward(idx)
    lm_p, x_p, y_p = t.pairs_in_rows_forward(idx)
    for a, b in ((x_s, x_p), (y_s, y_p)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(lm_p, lm_s, rtol=1e-4, atol=1e-3)
    params = list(t.model.parameters())
    g_s = torch.autograd.grad(lm_s / 100 + (1 - torch.cosine_similarity(x_s, y_s)).mean(), params, allow_unused=True)
    g_p = torch.autograd.grad(lm_p / 100 + (1 - torch.cosine_similarity(x_p, y_p)).mean(), params, allow_unused=True)
    for a, b in zip(g_s, g_p):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)
    # the steps without the JEPA term: the LM rows alone, several in a row
    torch.testing.assert_close(t.lm_in_rows_forward(idx), t.lm_forward(idx), rtol=1e-4, atol=1e-3)


def test_gpu_compiled_pairs_in_rows_train_like_the_eager_ones():
    runs = {}
    for compiled in (False, True):
        config = PairedConfig(steps=5, views="packed", pack_length=512, compile=compiled, precision="fp32", **SMALL)
        runs[compiled] = PairedTrainer(config, log=lambda s: None).fit()["step_lm_loss"]
    torch.testing.assert_close(torch.tensor(runs[True]), torch.tensor(runs[False]), rtol=1e-3, atol=1e-4)


def test_gpu_graphed_steps_train_like_the_eager_ones_resume_and_never_make_the_host_wait(tmp_path):
    """--cuda_graphs (graphed.py), fp32: the recorded steps give the eager run's losses, with the JEPA term and
    without it (loss dropout); a run stopped and resumed with graphs continues the eager run; a step replayed
    from a recorded graph never makes the host wait."""
    settings = dict(views="packed", loss_dropout=0.5, precision="fp32", **SMALL)
    runs = {
        g: PairedTrainer(PairedConfig(steps=30, cuda_graphs=g, **settings), log=lambda s: None) for g in (False, True)
    }
    losses = {g: t.fit()["step_lm_loss"] for g, t in runs.items()}
    torch.testing.assert_close(torch.tensor(losses[1]), torch.tensor(losses[0]), rtol=1e-3, atol=1e-4)
    graphs = runs[1].graphs
    assert graphs[True].graphs and graphs[False].graphs  # shapes recorded with the term and without it
    ckpt = tmp_path / "g.pt"
    first = PairedTrainer(PairedConfig(steps=12, save_path=str(ckpt), **settings), log=lambda s: None)
    first.fit()
    resumed = PairedTrainer(PairedConfig(steps=30, cuda_graphs=True, resume=str(ckpt), **settings), log=lambda s: None)
    assert all(torch.is_tensor(g["lr"]) and g["capturable"] for g in resumed.optimizer.param_groups)
    torch.testing.assert_close(
        torch.tensor(resumed.fit()["step_lm_loss"]), torch.tensor(losses[0]), rtol=1e-3, atol=1e-4
    )
    t = runs[1]
    t.config.steps = 60

    def recorded() -> bool:
        with_jepa = not t.jepa_dropped(t.step)
        return tuple(t.step_rows(t.batch_indices(t.step), with_jepa).input_ids.shape) in t.graphs[with_jepa].graphs

    assert replays_without_waiting(t.train_step, recorded, 30) >= 10


def replays_without_waiting(step, recorded, n: int) -> int:
    """Take `n` steps; those whose shape has a recorded graph (`recorded()`) run under CUDA's sync debug mode
    "error" (any host wait raises); the others, a new shape run eagerly and then recorded, may sync. Returns
    how many steps were replayed."""
    replayed = 0
    for _ in range(n):
        if not recorded():
            step()
            continue
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        replayed += 1
    torch.cuda.synchronize()
    return replayed


def test_gpu_runs_trained_as_one_train_like_each_run_alone_and_never_make_the_host_wait():
    """batched.py, fp32: K runs (λ, lr and seed differ; a λ = 0 run among them) trained as one, their steps
    recorded as CUDA graphs, give each run's losses alone; a replayed step never makes the host wait."""
    from jepa_lite.paired.batched import BatchedRuns

    runs = [(1.0, 3e-3, 1), (0.0, 2e-3, 2), (0.3, 6e-3, 3)]

    def make(lbd, lr, seed, steps=30):
        config = PairedConfig(steps=steps, views="packed", precision="fp32", lbd=lbd, lr=lr, seed=seed, **SMALL)
        return PairedTrainer(config, log=lambda s: None)

    alone = [make(*r).fit() for r in runs]
    together = [make(*r) for r in runs]
    batched = BatchedRuns(together)
    for a, b in zip(alone, batched.fit()):
        torch.testing.assert_close(
            torch.tensor(b["step_lm_loss"]), torch.tensor(a["step_lm_loss"]), rtol=1e-3, atol=1e-4
        )
        torch.testing.assert_close(
            torch.tensor(b["jepa_monitor"]), torch.tensor(a["jepa_monitor"]), rtol=1e-3, atol=1e-4
        )
    assert batched.graphs.graphs  # steps were replayed from recorded graphs

    def recorded() -> bool:
        return tuple(batched.batch(batched.step).input_ids.shape) in batched.graphs.graphs

    assert replays_without_waiting(batched.train_step, recorded, 20) >= 5

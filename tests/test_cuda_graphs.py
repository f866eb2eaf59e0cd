"""The whole-step CUDA graphs (graphs.py, Trainer with compile + cuda_graphs). These need a CUDA GPU
and are skipped without one; the CPU tests in test_speed_paths.py cover the parts that run anywhere
(the dense loss, the EMA with a tensor momentum, checkpoints with tensor learning rates)."""

import shutil

import pytest
import torch
import torch.nn.functional as F

from jepa_lite.data import Batch
from jepa_lite.graphs import StepGraphs
from jepa_lite.train import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def batch_of(values, L=8):
    ids = torch.as_tensor(values).view(-1, 1).repeat(1, L)
    ones = torch.ones_like(ids)
    return Batch(ids, ones, ids.clone(), ones.bool(), torch.arange(ids.numel()))


def test_a_recorded_step_reads_each_new_batch_and_draws_new_random_numbers():
    dev = torch.device("cuda")
    graphs = StepGraphs(lambda b: (b.input_ids.float() * 2).sum(), dev)
    sums = [graphs(batch_of([k, k + 1])).item() for k in range(4)]
    assert sums == [2 * 8 * (2 * k + 1) for k in range(4)]  # eager, recorded, replayed, replayed
    assert len(graphs.graphs) == 1
    noise = torch.ones(10_000, device=dev)
    graphs = StepGraphs(lambda b: F.dropout(noise, 0.5).sum() + 0 * b.input_ids.sum(), dev)
    draws = [graphs(batch_of([1, 2])).item() for _ in range(4)]
    assert len(set(draws)) == 4  # every replay draws its own dropout mask


def run(steps, stop=None, path=None, resume=None, **kw):
    cfg = TrainConfig.smoke(
        device="cuda", precision="fp32", progress=False, save_path=path, save_every=0, steps=steps, log_every=10, **kw
    )
    trainer = Trainer(cfg, log=lambda s: None)
    if resume:
        trainer.resume(resume)
    if stop:
        trainer.callbacks.append(lambda t, rec: setattr(t, "stop_requested", rec["step"] == stop))
    return trainer, trainer.fit()["step_loss"]


def test_whole_step_graphs_train_like_the_eager_step():
    graphed, a = run(60, compile=True)
    eager, b = run(60, compile=False)
    assert graphed.graphs is not None and len(graphed.graphs.graphs) >= 1 and eager.graphs is None
    assert a[-1] < a[0]
    assert torch.allclose(torch.tensor(a), torch.tensor(b), rtol=2e-3, atol=2e-4), (a, b)
    for p, q in zip(graphed.model.parameters(), eager.model.parameters()):
        assert torch.allclose(p, q, rtol=1e-2, atol=1e-4)


def test_a_graph_run_resumes_from_its_checkpoint(tmp_path):
    _, full = run(60, compile=True)
    path = str(tmp_path / "g.pt")
    first, _ = run(60, stop=30, path=path, compile=True)
    assert first.step == 30
    shutil.copy(path, tmp_path / "copy.pt")
    _, rest = run(60, path=path, resume=path, compile=True)
    assert len(rest) == 60
    assert torch.allclose(torch.tensor(rest), torch.tensor(full), rtol=2e-3, atol=2e-4)
    _, eager = run(
        60, path=str(tmp_path / "e.pt"), resume=str(tmp_path / "copy.pt"), compile=False
    )  # and without graphs
    assert torch.allclose(torch.tensor(eager), torch.tensor(full), rtol=2e-3, atol=2e-4)


def test_a_recorded_step_never_makes_the_host_wait_for_the_gpu():
    """After each length has been recorded, a step only queues work: any host sync (a GPU value read
    on the host, a copy from pageable memory) raises under CUDA's sync debug mode."""
    trainer = Trainer(
        TrainConfig.smoke(device="cuda", compile=True, progress=False, save_path=None), log=lambda s: None
    )
    batches = [trainer.get_batch(s) for s in range(12)]
    for b in batches + batches:  # every shape met twice: compiled, then recorded
        trainer.train_step(b)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for b in batches:
            trainer.train_step(b)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(trainer.graphs.graphs) == len({tuple(b.input_ids.shape) for b in batches})

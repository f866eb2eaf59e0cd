"""The precision rule (precision.py) wired into the masked-span Trainer: fp16 autocast with loss
scaling on CUDA GPUs below compute capability 8, its scaler in checkpoints, exact resume.

On the CPU the GPU is simulated: the trainer's precision is resolved as on a T4 (capability 7.5),
and the fp16 path (autocast in fp16, GradScaler) then runs on the CPU, which torch supports. The GPU
tests at the end are skipped without a CUDA GPU; they force fp16 on whatever GPU there is."""

import shutil

import pytest
import torch

from jepa_lite import precision as P
from jepa_lite import train
from jepa_lite.train import TrainConfig, Trainer, main

# fp16 on the CPU has no fast kernels: a smaller model than the smoke test's keeps these tests short
SMALL = dict(max_length=24, batch_size=8, tiny_dim=32, tiny_layers=1, pred_hidden_mult=1, lr=1e-3, warmup_steps=5)


def quiet(**kw):
    return TrainConfig.smoke(progress=False, save_every=0, log_every=10, **{**SMALL, **kw})


@pytest.fixture
def on_a_t4(monkeypatch):
    """The trainer resolves its precision as on a CUDA GPU of compute capability 7.5 (a T4)."""
    monkeypatch.setattr(
        train,
        "resolve_precision",
        lambda name, device: P.resolve_precision(name, torch.device("cuda"), capability=(7, 5)),
    )


def with_big_scale(trainer: Trainer, scale: float = 2.0**24) -> Trainer:
    """Start the loss scale S so high that the first steps overflow: skipped steps and backoff happen."""
    trainer.scaler = torch.amp.GradScaler(trainer.device.type, init_scale=scale)
    return trainer


def test_auto_on_an_old_gpu_means_fp16_with_loss_scaling(on_a_t4):
    t = Trainer(quiet(steps=40, save_path=None), log=lambda s: None)
    assert t.precision == P.FP16 and t.autocast_dtype == torch.float16
    assert isinstance(t.scaler, torch.amp.GradScaler)
    losses = t.fit()["step_loss"]
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5])
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_cpu_auto_stays_fp32_without_a_scaler():
    t = Trainer(quiet(steps=1, device="cpu", save_path=None), log=lambda s: None)
    assert t.precision == P.FP32 and t.autocast_dtype is None and t.scaler is None
    assert t.state()["scaler"] is None


def test_overflowing_steps_are_skipped_and_the_scale_backs_off(on_a_t4):
    t = with_big_scale(Trainer(quiet(steps=12, save_path=None), log=lambda s: None))
    before = [p.detach().clone() for p in t.model.context_encoder.parameters()]
    t.train_step(t.get_batch(0))  # S·loss overflows fp16 in the backward pass: no update, S halves
    assert t.scaler.get_scale() == 2.0**23
    assert all(torch.equal(a, b) for a, b in zip(before, t.model.context_encoder.parameters()))
    t.fit()
    assert t.scaler.get_scale() < 2.0**23  # more back-offs, until the gradients fit in fp16
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.context_encoder.parameters()))


def test_fp16_checkpoint_keeps_the_scaler_and_resumes_exactly(on_a_t4, tmp_path):
    full = with_big_scale(Trainer(quiet(steps=40, save_path=None), log=lambda s: None))
    scales = []
    full.callbacks.append(lambda t, rec: scales.append(t.scaler.get_scale()))
    reference = full.fit()["step_loss"]

    path = str(tmp_path / "fp16.pt")
    first = with_big_scale(Trainer(quiet(steps=40, save_path=path), log=lambda s: None))
    first.callbacks.append(lambda t, rec: setattr(t, "stop_requested", rec["step"] == 20))
    first.fit()
    assert first.step == 20
    saved = torch.load(path, weights_only=True)["scaler"]
    assert saved["scale"] == scales[1] < 2.0**24  # the scale S at step 20, lowered by the overflows
    shutil.copy(path, tmp_path / "copy.pt")

    resumed = with_big_scale(Trainer(quiet(steps=40, save_path=path), log=lambda s: None))  # a fresh S = 2^24 ...
    resumed.resume(str(tmp_path / "copy.pt"))
    assert resumed.scaler.get_scale() == saved["scale"]  # ... replaced by the checkpoint's
    assert resumed.fit()["step_loss"] == reference
    assert resumed.scaler.get_scale() == full.scaler.get_scale()


def test_fp16_on_the_cpu_is_one_line_and_nothing_is_written(tmp_path, capsys):
    path = tmp_path / "x.pt"
    assert (
        main(["--smoke_test", "--device", "cpu", "--precision", "fp16", "--save_path", str(path), "--no_progress"]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: precision fp16 needs a CUDA GPU") and len(err.strip().splitlines()) == 1
    assert not path.exists()


def test_cli_offers_every_precision():
    action = next(a for a in train.build_parser()._actions if "--precision" in a.option_strings)
    assert tuple(action.choices) == P.CHOICES == ("auto", "fp32", "bf16", "fp16")


# ------------------------------------------------------------------------------------------------
# On a real GPU (skipped without one)
# ------------------------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_fp16_trains_like_fp32_on_the_gpu():
    runs = {}
    for name in ("fp32", "fp16"):
        t = Trainer(
            TrainConfig.smoke(steps=80, device="cuda", precision=name, save_path=None, progress=False, log_every=20),
            log=lambda s: None,
        )
        runs[name] = (t, torch.tensor(t.fit()["step_loss"]))
    t16, fp16 = runs["fp16"]
    fp32 = runs["fp32"][1]
    assert t16.precision == P.FP16 and t16.scaler is not None and t16.scaler.get_scale() > 0
    gap = (fp16 - fp32).abs()
    print(
        f"fp32 loss {fp32[0]:.4f} -> {fp32[-1]:.4f}; fp16 {fp16[0]:.4f} -> {fp16[-1]:.4f}; "
        f"max |fp16 - fp32| per step {gap.max():.4f}, mean {gap.mean():.4f}; final scale {t16.scaler.get_scale():g}"
    )
    assert fp16[-10:].mean() < 0.8 * fp16[:10].mean()  # it trains
    assert gap.mean() < 0.02 and abs(fp16[-10:].mean() - fp32[-10:].mean()) < 0.05  # and like fp32
    for p, q in zip(runs["fp16"][0].model.parameters(), runs["fp32"][0].model.parameters()):
        assert torch.isfinite(p).all() and p.dtype == q.dtype == torch.float32  # fp32 master weights


@cuda
def test_fp16_with_compile_runs_without_cuda_graphs_and_says_so():
    lines = []
    t = Trainer(quiet(steps=1, device="cuda", precision="fp16", compile=True, save_path=None), log=lines.append)
    assert t.graphs is None and not t.static_shapes
    assert any("without CUDA graphs" in line for line in lines)

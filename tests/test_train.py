"""End-to-end training, collapse detection, checkpoints and exact resume."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from jepa_lite.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from jepa_lite.diagnostics import collapse_warning
from jepa_lite.train import TrainConfig, Trainer, TrainingDiverged, lr_factor


def quiet(**overrides):
    return TrainConfig.smoke(progress=False, **overrides)


def fit(config, callbacks=()):
    trainer = Trainer(config, callbacks=callbacks, log=lambda s: None)
    return trainer, trainer.fit()


def test_end_to_end_loss_falls_and_history_is_complete(tmp_path):
    _, h = fit(quiet(steps=120, save_path=str(tmp_path / "c.pt")))
    assert h["step"] == list(range(20, 121, 20))
    assert len(h["step_loss"]) == 120
    assert h["loss"][-1] < 0.5 * h["loss"][0], h["loss"]
    for key in ("lr", "ema_m", "rank", "std", "mean_cos", "masked_frac"):
        assert len(h[key]) == len(h["step"])
    assert all(abs(f - 0.3) < 0.1 for f in h["masked_frac"])
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["step"] == 120 and state["config"]["steps"] == 120


def test_m_zero_collapses_and_a_slow_target_does_not():
    """The collapse warning fires at the end of an m = 0 run and not at the end of an m = 0.996 run."""
    _, fast = fit(quiet(ema_m=0.0, save_path=None))
    _, slow = fit(quiet(ema_m=0.996, save_path=None))
    end = lambda h: {k: h[k][-1] for k in ("rank", "std", "mean_cos")}  # noqa: E731
    assert collapse_warning(end(fast)) is not None, end(fast)
    assert collapse_warning(end(slow)) is None, end(slow)
    assert end(fast)["mean_cos"] > end(slow)["mean_cos"] + 0.2
    assert end(fast)["std"] < 0.5 * end(slow)["std"]


def test_collapse_warning_is_printed(capsys):
    Trainer(quiet(ema_m=0.0, save_path=None, steps=100)).fit()
    assert "warning: representations are collapsing" in capsys.readouterr().out


def test_lr_schedule_warmup_then_cosine_to_zero():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0, abs=1e-12)


def stop_at(step):
    def callback(trainer, record):
        if record["step"] == step:
            trainer.stop_requested = True

    return callback


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16 on the CPU: the fixed-shape predictor rows
def test_resume_continues_exactly(tmp_path, precision):
    """Stopped at step 40 and resumed, the loss curve is identical to an uninterrupted run's."""
    cfg = quiet(steps=80, save_every=0, save_path=str(tmp_path / "a.pt"), precision=precision)
    _, full = fit(cfg)
    path = str(tmp_path / "b.pt")
    first, _ = fit(quiet(steps=80, save_every=0, save_path=path, precision=precision), callbacks=[stop_at(40)])
    assert first.step == 40 and load_checkpoint(path)["step"] == 40
    assert first.fixed_pred == (precision == "bf16")
    second = Trainer(quiet(steps=80, save_every=0, save_path=path, precision=precision), log=lambda s: None)
    second.resume(path)
    resumed = second.fit()
    assert resumed["step_loss"] == full["step_loss"]  # exact, not approximate
    a, b = Trainer(cfg, log=lambda s: None), second
    a.resume(cfg.save_path)
    for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(p, q)


def test_resume_restores_dropout_rng(tmp_path, monkeypatch):
    """With dropout on, the RNG state must come back too; compare 6 steps straight vs 3 + 3."""
    import jepa_lite.train as train_mod

    original = train_mod.TinyConfig
    monkeypatch.setattr(train_mod, "TinyConfig", lambda **kw: original(**{**kw, "dropout": 0.2}))
    cfg = dict(steps=6, save_every=0, log_every=1, warmup_steps=2)
    _, full = fit(quiet(save_path=str(tmp_path / "a.pt"), **cfg))
    path = str(tmp_path / "b.pt")
    fit(quiet(save_path=path, **cfg), callbacks=[stop_at(3)])
    t = Trainer(quiet(save_path=path, **cfg), log=lambda s: None)
    t.resume(path)
    assert t.fit()["step_loss"] == full["step_loss"]


def test_resume_refuses_other_config_or_text(tmp_path):
    path = str(tmp_path / "c.pt")
    fit(quiet(steps=20, save_path=path))
    with pytest.raises(CheckpointError, match="mask_ratio"):
        Trainer(quiet(steps=40, save_path=path, mask_ratio=0.5)).resume(path)
    other = Trainer(quiet(steps=40, save_path=path), texts=["a different line of text"] * 20, log=lambda s: None)
    with pytest.raises(CheckpointError, match="different text"):
        other.resume(path)


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    trainer = Trainer(quiet(steps=60, save_every=20, log_every=10, save_path=str(path)), log=lambda s: None)
    forward = trainer.model.forward

    def poisoned(batch):
        out = forward(batch)
        if trainer.step >= 25:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(trainer.model, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="NaN"):
        trainer.fit()
    state = load_checkpoint(path)
    assert state["step"] == 20
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_interrupted_save_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.ones(3)})

    def dies_mid_write(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["c.pt"]  # no temporary file left behind


def test_killed_process_never_leaves_a_broken_checkpoint(tmp_path):
    """SIGKILL a process that saves a 40 MB checkpoint in a loop, at several moments."""
    path = tmp_path / "c.pt"
    script = textwrap.dedent(f"""
        import torch
        from jepa_lite.checkpoint import save_checkpoint
        w = torch.randn(10_000_000)
        i = 0
        while True:
            i += 1
            save_checkpoint({str(path)!r}, {{"step": i, "w": w}})
    """)
    for delay in (0.8, 1.1, 1.45):
        proc = subprocess.Popen([sys.executable, "-c", script])
        deadline = time.time() + 30
        while not path.exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert load_checkpoint(path)["step"] >= 1


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    torch.save({"weights": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a jepa_lite checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")

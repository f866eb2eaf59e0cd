"""What the kit guarantees (docs/guarantees.md): a run never destroys a file it did not
create, checks what it can before step 1, keeps only finite checkpoints, stops cleanly on signals,
resumes its whole history exactly, and answers bad input with one line.

Behaviour that belongs to a process (signals, the lock, file-size limits) is tested on real processes."""

import contextlib
import dataclasses
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from jepa_lite.checkpoint import CheckpointError, SaveTarget, load_checkpoint, remove_stale_temps, save_checkpoint
from jepa_lite.errors import ConfigError
from jepa_lite.train import TrainConfig, Trainer, TrainingDiverged, main

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--batch_size", "4", "--max_length", "32"]  # CI runs these on 2 cores
FAST = ["--smoke_test", "--steps", "4", "--log_every", "2", "--no_progress", *SMALL]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread here and in the child processes (OMP_NUM_THREADS in `env`): the tiny model gains
    nothing from more, and on busy CI cores spinning threads slow it down many times. A history
    compared bit for bit across processes needs the same thread count on both sides."""
    from jepa_lite.course.runs import one_thread as single

    with single():
        yield


def run(argv, capsys, cli=main):
    """`cli(argv)` in this process (jepa_lite.train's main by default): (exit code, stdout, stderr)."""
    try:
        code = cli(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    e.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )
    return e


def train_process(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "jepa_lite.train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        **kw,
    )


def quiet(**overrides):
    return TrainConfig.smoke(**{"progress": False, "batch_size": 4, "max_length": 32, **overrides})


# ---------------------------------------------------------------------------------------------
# 1. A run never destroys a file it did not create
# ---------------------------------------------------------------------------------------------
def test_training_text_as_save_path_is_refused(tmp_path, capsys):
    data = tmp_path / "data.txt"
    data.write_text("the training text\nof a user\n")
    code, out, err = run(FAST + ["--text_file", str(data), "--save_path", str(data)], capsys)
    assert code == 2 and "not a jepa_lite checkpoint" in one_error_line(err)
    assert data.read_text() == "the training text\nof a user\n"
    assert "step" not in out


def test_source_file_folder_fifo_and_file_parent_are_refused(tmp_path, capsys):
    source = tmp_path / "ema.py"
    source.write_bytes((ROOT / "jepa_lite" / "ema.py").read_bytes())
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    cases = {
        str(source): "not a jepa_lite checkpoint",
        str(fifo): "not a regular file",
        str(tmp_path / "folder"): "is a folder",
        str(source / "run.pt"): "is a file, not a folder",
    }
    for path, expected in cases.items():
        code, _, err = run(FAST + ["--save_path", path, "--overwrite"], capsys)
        assert code == 2 and expected in one_error_line(err), (path, err)
    assert source.read_bytes() == (ROOT / "jepa_lite" / "ema.py").read_bytes()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and sorted(os.listdir(tmp_path / "folder")) == []


def test_device_file_is_refused_and_stays_a_device(capsys):
    """As root, replacing /dev/null by a checkpoint would succeed, so the refusal is what protects it."""
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null on this system")
    code, _, err = run(FAST + ["--save_path", "/dev/null", "--overwrite"], capsys)
    assert code == 2 and "not a regular file" in one_error_line(err)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_read_only_checkpoint_and_folder_are_refused_even_as_root(tmp_path, capsys):
    ckpt = tmp_path / "ro.pt"
    save_checkpoint(ckpt, {"kind": "masked_span", "run_id": "x", "step": 1})
    before = ckpt.read_bytes()
    ckpt.chmod(0o444)
    code, _, err = run(FAST + ["--save_path", str(ckpt), "--overwrite"], capsys)
    assert code == 2 and "read-only" in one_error_line(err)
    assert ckpt.read_bytes() == before
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run(FAST + ["--save_path", str(folder / "c.pt")], capsys)
        assert code == 2 and "read-only" in one_error_line(err)
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o755)


def test_another_runs_checkpoint_needs_overwrite_and_own_run_continues(tmp_path, capsys):
    path = str(tmp_path / "c.pt")
    assert run(FAST + ["--save_path", path], capsys)[0] == 0
    first = load_checkpoint(path)
    code, out, err = run(FAST + ["--save_path", path], capsys)  # a new run, same path
    line = one_error_line(err)
    assert code == 2 and "another masked_span run" in line and "--overwrite" in line and "--resume" in line
    assert load_checkpoint(path)["run_id"] == first["run_id"] and "step" not in out
    code, _, err = run(
        ["--resume", path, "--steps", "6", "--no_progress"], capsys
    )  # the same run continues in its file
    assert code == 0, err
    assert load_checkpoint(path)["run_id"] == first["run_id"] and load_checkpoint(path)["step"] == 6
    code, _, err = run(FAST + ["--save_path", path, "--overwrite"], capsys)
    assert code == 0, err
    assert load_checkpoint(path)["run_id"] != first["run_id"]


def test_runs_are_named_by_default_and_never_share_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, out, err = run(FAST, capsys)
        assert code == 0, err
    files = sorted(os.listdir(tmp_path / "checkpoints"))
    assert len(files) == 2 and all(f.startswith("smoke_test-") and f.endswith(".pt") for f in files), files
    ids = {load_checkpoint(tmp_path / "checkpoints" / f)["run_id"] for f in files}
    assert len(ids) == 2


@contextlib.contextmanager
def lock_held_by_another_process(path):
    """A live process that holds the kit's lock on `path` (SaveTarget.prepare); yields its pid, and
    is SIGKILLed at the end (the kernel then drops its lock)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import time
            from jepa_lite.checkpoint import SaveTarget
            t = SaveTarget({str(path)!r}, "holder")
            t.prepare(1000)
            print("locked", flush=True)
            time.sleep(120)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_process_on_the_same_path_is_refused_and_a_killed_one_leaves_no_lock(tmp_path, capsys):
    path = tmp_path / "c.pt"
    with lock_held_by_another_process(path) as pid:
        code, out, err = run(FAST + ["--save_path", str(path)], capsys)
        line = one_error_line(err)
        assert code == 2 and "being written by another run" in line and str(pid) in line
        assert not path.exists()
    code, _, err = run(FAST + ["--save_path", str(path)], capsys)  # the kernel dropped the dead process's lock
    assert code == 0, err
    assert load_checkpoint(path)["step"] == 4
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]  # no lock file, no temporary file


# ---------------------------------------------------------------------------------------------
# 2. Checked before the first step
# ---------------------------------------------------------------------------------------------
def test_file_size_limit_is_refused_before_step_1(tmp_path):
    """A process limited to 1 MB files (ulimit -f) cannot hold a ~12 MB checkpoint: refused at once."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

    path = tmp_path / "c.pt"
    p = train_process(
        "--smoke_test", "--steps", "50", "--log_every", "1", "--no_progress", "--save_path", str(path), preexec_fn=limit
    )
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, err
    assert "ulimit -f" in one_error_line(err) and "step " not in out
    assert os.listdir(tmp_path) == []


def test_no_room_on_the_disk_is_refused_before_step_1(tmp_path, capsys, monkeypatch):
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=100_000))
    code, out, err = run(FAST + ["--save_path", str(tmp_path / "c.pt")], capsys)
    line = one_error_line(err)
    assert code == 2 and "not enough room" in line and "MB (estimate)" in line and "step " not in out


def test_max_length_beyond_the_encoders_positions_is_refused(tmp_path, capsys):
    code, _, err = run(["--max_length", "600", "--steps", "2", "--save_path", str(tmp_path / "c.pt")], capsys)
    assert code == 2 and "512 positions" in one_error_line(err)
    assert not (tmp_path / "c.pt").exists()


def test_sizes_that_cannot_fit_in_memory_are_refused_with_the_figure():
    t0 = time.perf_counter()
    with pytest.raises(
        ConfigError, match=r"would need about [\d.]+ (GB|TB|PB) of memory \(estimate\); cpu has [\d.]+ \w+ available"
    ):
        Trainer(quiet(tiny_dim=1 << 20, save_path=None, device="cpu"), log=lambda s: None)
    assert time.perf_counter() - t0 < 60  # refused from the estimate, not after trying to allocate
    texts = ["a line of text to train on"] * 100_000
    with pytest.raises(ConfigError, match="batch 100000 × max_length 512"):
        Trainer(
            quiet(batch_size=100_000, max_length=512, tiny_dim=1024, save_path=None, device="cpu"),
            texts=texts,
            log=lambda s: None,
        )


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--seed", "123456789012345"], "seed must be between 0 and 4294967295; got 123456789012345"),
        (["--seed", "-1"], "seed must be between 0 and 4294967295"),
        (["--steps", str(10**30)], "steps must be between"),
        (["--max_length", str(10**8)], "max_length must be between 4 and"),
        (["--weight_decay", "inf"], "weight_decay must be a finite number"),
        (["--lr", "nan"], "lr must be a finite number"),
        (["--ema_m", "nan"], "ema_m must be a finite number"),
        (["--mean_span_len", "inf"], "mean_span_len must be a finite number"),
    ],
)
def test_integer_ranges_and_non_finite_floats_are_one_line(flags, expected, tmp_path, capsys):
    code, out, err = run(FAST + flags + ["--save_path", str(tmp_path / "c.pt")], capsys)
    assert code == 2 and expected in one_error_line(err)
    assert not (tmp_path / "c.pt").exists()


def test_every_float_field_rejects_inf_and_nan():
    floats = [f.name for f in dataclasses.fields(TrainConfig) if f.type in ("float", float)]
    assert len(floats) >= 7, floats
    for name in floats:
        for bad in (float("inf"), float("-inf"), float("nan")):
            with pytest.raises(ConfigError, match=f"^{name} must be a finite number"):
                TrainConfig(**{name: bad}).validate()


# ---------------------------------------------------------------------------------------------
# 3. The last good checkpoint is good
# ---------------------------------------------------------------------------------------------
def test_lr_10_names_a_finite_checkpoint_of_this_run(tmp_path, capsys):
    path = tmp_path / "c.pt"
    flags = ["--smoke_test", "--no_progress", "--lr", "10", "--save_every", "1", "--steps", "40", "--log_every", "5"]
    code, _, err = run(flags + ["--save_path", str(path)], capsys)
    line = one_error_line(err)
    assert code == 1 and "NaN or infinite" in line and f"last good checkpoint is {path}" in line, line
    state = load_checkpoint(path)
    assert f"(step {state['step']}," in line
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_nan_weights_are_never_saved_and_no_checkpoint_is_said_so(tmp_path):
    """Weights poisoned by an update (the loss of that step still finite) are caught before the save."""
    path = tmp_path / "c.pt"
    trainer = Trainer(quiet(steps=30, save_every=10, log_every=10, save_path=str(path)), log=lambda s: None)
    update = trainer._update

    def poisoned(batch, m):
        loss = update(batch, m)
        if trainer.step == 5:
            with torch.no_grad():
                next(trainer.model.predictor.parameters()).fill_(float("nan"))
        return loss

    trainer._update = poisoned
    with pytest.raises(TrainingDiverged, match="This run saved no checkpoint"):
        trainer.fit()
    assert not path.exists()
    # with an earlier save, the message names it, and it is finite
    trainer = Trainer(quiet(steps=30, save_every=2, log_every=10, save_path=str(path)), log=lambda s: None)
    update2 = trainer._update

    def poisoned2(batch, m):
        loss = update2(batch, m)
        if trainer.step == 5:  # the update of step 6, a save step
            with torch.no_grad():
                next(trainer.model.predictor.parameters()).fill_(float("nan"))
        return loss

    trainer._update = poisoned2
    with pytest.raises(TrainingDiverged, match=rf"weights became NaN.*last good checkpoint is {path} \(step 4,"):
        trainer.fit()
    assert load_checkpoint(path)["step"] == 4


# ---------------------------------------------------------------------------------------------
# 4. Signals, stale temporary files, a full disk
# ---------------------------------------------------------------------------------------------
def uninterrupted(tmp_path, **cfg):
    return Trainer(quiet(save_path=str(tmp_path / "straight.pt"), **cfg), log=lambda s: None).fit()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_first_signal_saves_and_stops_non_zero_and_resume_is_exact(sig, code, tmp_path, capsys):
    path = tmp_path / "c.pt"
    cfg = dict(steps=30, log_every=2, save_every=7)
    p = train_process(
        "--smoke_test",
        "--steps",
        "30",
        "--log_every",
        "2",
        "--save_every",
        "7",
        "--no_progress",
        *SMALL,
        "--save_path",
        str(path),
    )
    while "step" not in p.stdout.readline():  # wait for the first log line, then signal
        assert p.poll() is None, p.stderr.read()
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    assert "done" not in out
    stopped = load_checkpoint(path)["step"]
    assert 2 <= stopped < 30
    assert f"stopped early by {sig.name} at step {stopped} of 30" in err and f"--resume {path}" in err
    assert run(["--resume", str(path), "--no_progress"], capsys)[0] == 0
    assert load_checkpoint(path)["history"] == uninterrupted(tmp_path, **cfg)


def test_stale_temp_files_are_removed_at_the_next_save(tmp_path):
    """Temporary files left by killed saves (of this checkpoint, or of another whose process is gone)
    go at the next save; a live process's temporary file stays."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    live = os.getppid()
    names = [
        f".c.pt.jepa_lite-{dead}-abcd1234.tmp",
        f".c.pt.jepa_lite-{live}-abcd1234.tmp",
        f".other.pt.jepa_lite-{dead}-x1.tmp",
        f".other.pt.jepa_lite-{live}-x2.tmp",
        "user.tmp",
    ]
    for n in names:
        (tmp_path / n).write_bytes(b"x" * 1000)
    t = SaveTarget(tmp_path / "c.pt", "run")
    with t.prepared(1000):
        t.save({"step": 1, "w": torch.ones(2)}, 1)
    assert sorted(os.listdir(tmp_path)) == sorted(["c.pt", f".other.pt.jepa_lite-{live}-x2.tmp", "user.tmp"])


def test_killed_saves_leave_temp_files_that_the_next_save_removes(tmp_path):
    path = tmp_path / "c.pt"
    script = (
        "import torch\nfrom jepa_lite.checkpoint import save_checkpoint\nw = torch.randn(10_000_000)\nwhile "
        f"True:\n    save_checkpoint({str(path)!r}, {{'w': w}})\n"
    )
    left = 0
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", script], env=env())
        while not any(n.endswith(".tmp") for n in os.listdir(tmp_path)):  # a save is under way
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = len([n for n in os.listdir(tmp_path) if n.endswith(".tmp")])
        if left:
            break
    assert left, "no kill landed during a save in 20 tries"
    remove_stale_temps(tmp_path)  # the writers are dead
    assert [n for n in os.listdir(tmp_path) if n != "c.pt"] == []


def test_disk_full_during_a_save_is_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    """The file-size limit drops under the checkpoint's size after the first save (as a disk fills
    up during a run): the second save fails in one line; the first checkpoint and nothing else remains."""
    path = tmp_path / "c.pt"
    script = textwrap.dedent(f"""
        import resource, sys
        from jepa_lite.checkpoint import CheckpointError
        from jepa_lite.train import TrainConfig, Trainer

        def fill_disk(trainer, record):
            if record["step"] == 4:  # after the save of step 2, before that of step 4
                resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

        config = TrainConfig.smoke(steps=6, log_every=2, save_every=2, progress=False, save_path={str(path)!r})
        t = Trainer(config, callbacks=[fill_disk])
        try:
            t.fit()
        except CheckpointError as e:
            print(f"error: {{e}}", file=sys.stderr)
            sys.exit(1)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env(), timeout=120)
    assert r.returncode == 1, r.stderr
    line = one_error_line(r.stderr)
    assert (
        "could not write the checkpoint" in line
        and "ulimit -f" in line
        and "previous checkpoint there is intact" in line
    )
    assert load_checkpoint(path)["step"] == 2
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]


# ---------------------------------------------------------------------------------------------
# 5. Exact resume of everything
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("save_every, log_every, stop", [(15, 10, 15), (7, 5, 13), (4, 6, 9), (0, 3, 11)])
def test_resumed_history_equals_the_uninterrupted_one(save_every, log_every, stop, tmp_path):
    """Stopped at `stop` (as a Ctrl-C does: after that step, with a save) and resumed: every field of
    every step of the history is the uninterrupted run's, bit for bit."""
    cfg = dict(steps=20, save_every=save_every, log_every=log_every)
    full = uninterrupted(tmp_path, **cfg)
    path = str(tmp_path / "c.pt")
    first = Trainer(quiet(save_path=path, **cfg), log=lambda s: None)
    step = first.train_step

    def train_step(batch):
        loss = step(batch)
        first.stop_requested = first.step == stop
        return loss

    first.train_step = train_step
    first.fit()
    assert first.step == stop
    second = Trainer(quiet(save_path=path, **cfg), log=lambda s: None)
    second.resume(path)
    assert second.fit() == full
    assert len(full["step_loss"]) == 20


# ---------------------------------------------------------------------------------------------
# 6. One line everywhere
# ---------------------------------------------------------------------------------------------
def edited_checkpoint(tmp_path, capsys, edit):
    path = tmp_path / "c.pt"
    assert run(FAST + ["--save_path", str(path)], capsys)[0] == 0
    state = load_checkpoint(path)
    edit(state)
    save_checkpoint(path, {k: v for k, v in state.items() if k != "format"})
    return path


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda s: s.pop("window"), "lacks 'window'"),
        (lambda s: s.update(future_key=1), "has unknown 'future_key'"),
        (lambda s: s["config"].pop("overwrite"), "its config lacks 'overwrite'"),
        (lambda s: s["config"].update(new_flag=3), "its config has unknown 'new_flag'"),
        (lambda s: s.update(kind="paired"), "checkpoint of the paired trainer"),
    ],
)
def test_checkpoints_of_other_versions_or_kinds_are_one_line(edit, expected, tmp_path, capsys):
    path = edited_checkpoint(tmp_path, capsys, edit)
    before = path.read_bytes()
    code, _, err = run(["--resume", str(path), "--steps", "8", "--no_progress"], capsys)
    assert code == 2 and expected in one_error_line(err)
    assert path.read_bytes() == before
    with pytest.raises(CheckpointError, match=expected.replace("(", r"\(")):
        Trainer(quiet(steps=8, save_path=None), log=lambda s: None).resume(path)


@pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their permissions")
def test_unreadable_text_file_is_one_line(tmp_path, capsys):
    data = tmp_path / "secret.txt"
    data.write_text("some text\n")
    data.chmod(0)
    code, _, err = run(FAST + ["--text_file", str(data), "--save_path", str(tmp_path / "c.pt")], capsys)
    assert code == 2 and "cannot read the text file" in one_error_line(err)


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
def test_a_regular_file_that_fails_to_read_is_one_line(tmp_path, capsys):
    """/proc/self/mem looks like a regular file, and reading it fails, for root too."""
    code, _, err = run(FAST + ["--text_file", "/proc/self/mem", "--save_path", str(tmp_path / "c.pt")], capsys)
    assert code == 2 and "cannot read the text file /proc/self/mem" in one_error_line(err)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(mask_ratio="0.3"), "mask_ratio must be a number; got '0.3' (str)"),
        (dict(steps=2.5), "steps must be an integer; got 2.5 (float)"),
        (dict(batch_size=True), "batch_size must be an integer; got True (bool)"),
        (dict(model_name=3), "model_name must be a string or None; got 3 (int)"),
        (dict(progress="no"), "progress must be True or False; got 'no' (str)"),
        (dict(save_path=""), "save_path is empty"),
    ],
)
def test_python_api_checks_types_and_names_the_field(kwargs, expected):
    with pytest.raises(ConfigError, match=f"^{expected.replace('(', '[(]').replace(')', '[)]')}"):
        Trainer(TrainConfig.smoke(**{"save_path": None, "progress": False, **kwargs}), log=lambda s: None)


@pytest.mark.parametrize(
    "texts, expected",
    [
        ([], "texts is empty"),
        ([1, 2], r"texts\[0\] is 1 \(int\)"),
        (["ok", None], r"texts\[1\] is None"),
        ("a single string", "not a single string"),
        ({"a", "b"}, "got set"),
    ],
)
def test_texts_must_be_a_sequence_of_strings(texts, expected):
    with pytest.raises(ConfigError, match=expected):
        Trainer(quiet(save_path=None), texts=texts, log=lambda s: None)


NO_TRAIN = ["--skip", "masking,corpus,original", "--steps", "1", "--warmup", "0"]


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--batch_size", "0"] + NO_TRAIN, "batch_size must be between 1 and"),
        (["--steps", "0", "--skip", "masking"], "steps must be between 1 and"),
        (["--warmup", "-2", "--skip", "masking"], "warmup must be between 0 and"),
        (["--objective", "paired", "--batch_size", "0"], "batch_size must be between 1 and"),
        (["--objective", "paired", "--device", "tpu"], "unknown device"),
        (["--lines", "0"], "lines must be between 1 and"),
        (["--lines", str(10**12)], "lines must be between 1 and"),
        (["--mask_batch", "0"], "mask_batch must be at least 1"),
        (["--lines", "100", "--skip", "train,corpus"], "--lines must be at least 3200"),
        (["--lines", "50", "--skip", "masking,corpus"], "--lines must be at least batch_size × (warm-up + steps) = 96"),
        (["--peak_tflops", "inf"], "peak_tflops must be a positive number"),
        (["--skip", "trian"], "--skip knows masking, train, corpus, original; got trian"),
        (["--tokenise", "--skip", "train"], "with --tokenise, --skip knows today, streamed, cached; got train"),
        (["--device", "tpu"], "unknown device"),
        (["--precision", "fp8"], "invalid choice"),
        (["--max_length", "2"], "max_length must be between 4 and"),
        (["--max_length", "600", "--lines", "200"] + NO_TRAIN, "the fast worker failed: max_length 600 is beyond what"),
        (["--seed", "1"], "unrecognized arguments"),
        (["--steps", "many"], "invalid int value"),
    ],
)
def test_bench_flags_are_one_line(flags, expected, capsys, monkeypatch):
    from jepa_lite import bench

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        code = bench.main(flags)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and expected in one_error_line(err), err


def test_bench_profile_never_replaces_a_file(tmp_path, capsys):
    from jepa_lite import bench

    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    assert bench.main(["--profile", str(mine), "--skip", "masking,corpus,original"]) == 2
    assert "does not replace files" in one_error_line(capsys.readouterr().err)
    assert mine.read_text() == "mine"


def test_jsonl_round_trip_of_any_string_save_jsonl_writes(tmp_path):
    import random

    from jepa_lite.paired.pairs import Pair, PairsError, load_jsonl, save_jsonl

    tricky = [
        "a\u2028b",
        "c\u2029d",
        "e\x85f",
        "g\x0bh\x0ci",
        "x\x1c\x1d\x1ey",
        "j\rk\nl\r\nm",
        "\ufeffbom",
        'tab\tq"uote\\',
        "nul\x00x",
        "😀 emoji",
        " spaced ",
    ]
    rng = random.Random(0)
    codepoints = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    randoms = ["x" + "".join(chr(rng.choice(codepoints)) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    pairs = [Pair(text=t, code=c) for t, c in zip(tricky + randoms, reversed(tricky + randoms))]
    save_jsonl(pairs, tmp_path / "p.jsonl")
    assert load_jsonl(tmp_path / "p.jsonl") == pairs
    (tmp_path / "crlf.jsonl").write_bytes((tmp_path / "p.jsonl").read_bytes().replace(b"\n", b"\r\n"))
    assert load_jsonl(tmp_path / "crlf.jsonl") == pairs
    for bad, expected in ((Pair("lone \ud800 surrogate", "x"), "lone surrogate"), (Pair("text", "   "), "empty")):
        with pytest.raises(PairsError, match=expected):
            save_jsonl([bad], tmp_path / "bad.jsonl")
        assert not (tmp_path / "bad.jsonl").exists()


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--seed", "123456789012345"], "seed must be between 0 and 4294967295"),
        (["--lr", "inf"], "lr must be a finite number"),
        (["--save_path", "/dev/null"], "is not a regular file"),
        (["--save_path", "SRC"], "exists and is not a jepa_lite checkpoint"),
        (["--save_path", "RO/run.pt"], "the folder is read-only"),
    ],
)
def test_paired_cli_flags_and_save_path_are_one_line(flags, expected, tmp_path, capsys):
    from jepa_lite.paired.cli import main as paired_main

    src = tmp_path / "ema.py"
    src.write_bytes((ROOT / "jepa_lite" / "ema.py").read_bytes())
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    flags = [str(src) if f == "SRC" else str(ro / "run.pt") if f == "RO/run.pt" else f for f in flags]
    try:
        code = paired_main(["--steps", "2", *flags])
    except SystemExit as e:
        code = e.code
    finally:
        ro.chmod(0o755)
    assert code == 2 and expected in one_error_line(capsys.readouterr().err)
    assert src.read_bytes() == (ROOT / "jepa_lite" / "ema.py").read_bytes()


def test_paired_config_checks_types_and_names_the_field():
    from jepa_lite.paired import PairedConfig

    for kwargs, expected in (
        (dict(lbd="0.1"), "lbd must be a number"),
        (dict(steps=2.5), "steps must be an integer"),
        (dict(gamma=float("nan")), "gamma must be a finite number"),
    ):
        with pytest.raises(ConfigError, match=f"^{expected}"):
            PairedConfig(**kwargs).validate()

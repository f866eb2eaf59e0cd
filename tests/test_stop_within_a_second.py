"""SIGTERM is honoured within a second at any stage (issue 24, item 3): on real processes fed a line of
6 MB, the time from the signal to the exit is measured (and printed) while the data is read, after it
is read and during a training step; a stop during a step drops the step (`jepa_lite/stopping.py`),
saves the state of the step before, and the resumed run equals the uninterrupted one.

The bound asserted is 3 s: one second promised, plus room for a loaded 2-core CI machine (a save's
fsync and the process's own exit share those cores).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_guarantees import env, one_thread, quiet  # noqa: F401 (one_thread: autouse fixture)

from jepa_lite.checkpoint import load_checkpoint
from jepa_lite.train import Trainer

BOUND_S = 3.0
BIG = 6_000_000  # characters of the one pathological line


def big_string(seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefgh ()[]*+.0123456789") for _ in range(BIG))


@pytest.fixture(scope="module")
def big_jsonl(tmp_path_factory):
    """40 chat-format pairs, one of them with a 6 MB Code."""

    def row(text, code):
        return json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": code}]})

    rows = [row(f"lines with {i} digits", f"[0-9]{{{i}}}") for i in range(40)]
    rows[3] = row("a long one", big_string(0))
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def big_text(tmp_path_factory):
    """200 short lines and one of 6 MB."""
    lines = [f"the quick brown fox number {i} jumps over the lazy dog" for i in range(200)]
    lines[5] = big_string(1)
    path = tmp_path_factory.mktemp("big") / "big.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start(module, args):
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )


def sigterm_when(p, marker: str):
    """Wait for a stdout line starting with `marker` (None: do not wait), send SIGTERM; return
    (seconds from the signal to the exit, stdout, stderr)."""
    seen = []
    while marker is not None:
        line = p.stdout.readline()
        assert line or p.poll() is None, "".join(seen) + p.stderr.read()
        seen.append(line)
        if line.startswith(marker):
            break
    sent = time.perf_counter()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    return time.perf_counter() - sent, "".join(seen) + out, err


PAIRED = ["--steps", "50", "--log_every", "1", "--device", "cpu", "--no_progress", "--overwrite"]
MASKED = ["--model", "tiny", "--steps", "200", "--log_every", "1", "--device", "cpu", "--no_progress", "--overwrite"]


@pytest.mark.parametrize(
    "trainer, marker, saved",
    [
        ("paired", "step", True),  # a training step under way (the 6 MB row is in the data)
        ("paired", "36 train", False),  # the data read, the model built: the first step is starting
        ("masked", "step", True),
        ("masked", "text:", False),  # the text read and tokenised, the encoder being built
    ],
)
def test_sigterm_to_exit_within_the_bound(trainer, marker, saved, big_jsonl, big_text, tmp_path):
    path = tmp_path / "c.pt"
    if trainer == "paired":
        p = start("jepa_lite.paired", ["--data", str(big_jsonl), *PAIRED, "--save_path", str(path)])
    else:
        p = start("jepa_lite.train", ["--data", str(big_text), *MASKED, "--save_path", str(path)])
    seconds, out, err = sigterm_when(p, marker)
    print(f"{trainer}, SIGTERM after the line '{marker}…': exit {p.returncode} in {seconds:.2f} s")
    assert p.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    assert seconds <= BOUND_S, f"{seconds:.2f} s from SIGTERM to exit"
    if path.exists():  # the first step may already be under way: then it is dropped and step 0 saved
        state = load_checkpoint(path)
        assert f"stopped early by SIGTERM at step {state['step']} of" in err
    else:
        assert not saved, err[-2000:]
        assert "stopped by SIGTERM before training started; nothing written" in err


def reading(pid: int, path) -> bool:
    """Does process `pid` hold `path` open (Linux: /proc/PID/fd)?"""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            pass
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to see the data file open")
@pytest.mark.parametrize("module", ["jepa_lite.paired", "jepa_lite.train"])
def test_sigterm_while_the_data_is_read_stops_at_once_and_writes_nothing(module, big_jsonl, big_text, tmp_path):
    """Signalled as soon as the process has the data file open: reading it (or, if that was quicker
    than we look, tokenising it). Exit 143, the stop message, nothing written."""
    path = tmp_path / "c.pt"
    data = big_jsonl if module == "jepa_lite.paired" else big_text
    extra = PAIRED if module == "jepa_lite.paired" else MASKED
    p = start(module, ["--data", str(data), *extra, "--save_path", str(path)])
    deadline = time.monotonic() + 120
    while not reading(p.pid, data.resolve()):
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
        time.sleep(0.002)
    seconds, out, err = sigterm_when(p, None)
    print(f"{module}, SIGTERM with the data file open: exit {p.returncode} in {seconds:.2f} s")
    assert p.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM before training started; nothing written" in err
    assert "Traceback" not in err
    assert seconds <= BOUND_S
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# A dropped step: the state of the step before, and a resumed run equal to the uninterrupted one
# ---------------------------------------------------------------------------------------------
def stop_in_backward_of(trainer, step: int):
    """Ask for a stop (as the signal handler does) in the middle of the backward of `step` (0-based)."""
    params = [p for p in trainer.model.parameters() if p.requires_grad]

    def hook(grad):
        if trainer.step == step:
            trainer.stop_requested = True
        return None

    params[len(params) // 2].register_hook(hook)


def test_masked_span_step_dropped_mid_backward_resumes_exactly(tmp_path):
    path = tmp_path / "c.pt"
    cfg = dict(steps=8, log_every=2, save_every=0)
    trainer = Trainer(quiet(save_path=str(path), **cfg), log=lambda s: None)
    stop_in_backward_of(trainer, 5)
    trainer.fit()
    stopped = load_checkpoint(path)
    assert stopped["step"] == 5 == trainer.step  # step 6 was dropped, not finished
    resumed = Trainer(quiet(save_path=str(path), **cfg), log=lambda s: None)
    resumed.resume(str(path))
    resumed.fit()
    straight = Trainer(quiet(save_path=str(tmp_path / "straight.pt"), **cfg), log=lambda s: None).fit()
    assert load_checkpoint(path)["history"] == straight


def test_paired_step_dropped_mid_backward_resumes_exactly(tmp_path):
    from jepa_lite.paired import PairedConfig, PairedTrainer
    from jepa_lite.paired.pairs import regex_pairs, save_jsonl

    data = tmp_path / "pairs.jsonl"
    save_jsonl(sum(regex_pairs(54, 6, seed=3), []), data)
    cfg = dict(data=str(data), batch_size=4, max_length=32, steps=8, log_every=3, device="cpu", progress=False)
    path = tmp_path / "c.pt"
    trainer = PairedTrainer(PairedConfig(save_path=str(path), **cfg), log=lambda s: None)
    stop_in_backward_of(trainer, 4)
    trainer.fit()
    assert load_checkpoint(path)["step"] == 4 == trainer.step
    resumed = PairedTrainer(PairedConfig(save_path=str(path), resume=str(path), **cfg), log=lambda s: None)
    resumed.fit()
    straight = PairedTrainer(PairedConfig(save_path=str(tmp_path / "s.pt"), **cfg), log=lambda s: None)
    straight.fit()
    ours, theirs = load_checkpoint(path), load_checkpoint(tmp_path / "s.pt")
    assert {k: v for k, v in ours["history"].items() if k != "seconds"} == {
        k: v for k, v in theirs["history"].items() if k != "seconds"
    }
    assert all(torch.equal(ours["model"][k], theirs["model"][k]) for k in theirs["model"])


def test_a_step_called_on_its_own_is_never_dropped():
    """Only `fit` (through `StepGuard.attempt`) drops a step: `train_step` called directly with a stop
    requested trains as before."""
    trainer = Trainer(quiet(save_path=None, steps=4), log=lambda s: None)
    trainer.stop_requested = True
    before = [p.detach().clone() for p in trainer.model.predictor.parameters()]
    trainer.train_step(trainer.get_batch(0))
    assert trainer.step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.predictor.parameters()))


def test_the_guard_is_off_under_torch_compile():
    """The guard's hooks, added and removed at every step, make torch.compile recompile the model each step
    (measured on the CPU: 8 recompiles, steps of 1.5-17 s instead of 0.02 s, then eager): under `compile`
    the step is finished before stopping, as on a GPU."""
    from jepa_lite.train import TrainConfig, Trainer

    assert Trainer(TrainConfig.smoke(steps=2, progress=False), log=lambda s: None).guard.enabled
    assert not Trainer(TrainConfig.smoke(steps=2, progress=False, compile=True), log=lambda s: None).guard.enabled

"""The save-path rules, signals and exit codes of the paper's trainer (`python -m jepa_lite.paired`):
the same rules as jepa_lite.train, through the same code (`checkpoint.SaveTarget`, `cli.run_cli`).

docs/guarantees.md. What belongs to a process (signals, the lock, file-size limits) is
tested on real processes; everything runs the tiny model on one torch thread, a few steps."""

import os
import shlex
import signal
import subprocess
import sys

import pytest
import torch
from test_guarantees import env, lock_held_by_another_process, one_error_line, one_thread, run  # noqa: F401 (one_thread: autouse fixture)

from jepa_lite.checkpoint import first_nonfinite, load_checkpoint, save_checkpoint, state_tensors
from jepa_lite.paired.cli import main as paired_main
from jepa_lite.paired.pairs import regex_pairs, save_jsonl


@pytest.fixture
def data(tmp_path):
    """60 pairs in a JSONL file: 54 train, 6 test (the default test_fraction)."""
    train, test = regex_pairs(54, 6, seed=3)
    path = tmp_path / "pairs.jsonl"
    save_jsonl(train + test, path)
    return path


def flags(data, *extra):
    return [
        "--data",
        str(data),
        "--batch_size",
        "4",
        "--max_length",
        "32",
        "--log_every",
        "2",
        "--warmup_steps",
        "2",
        "--device",
        "cpu",
        "--no_progress",
        *extra,
    ]


def process(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "jepa_lite.paired", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        **kw,
    )


def paired(argv, capsys):
    return run(argv, capsys, paired_main)


def without_seconds(history):
    """Every field of the history but wall-clock seconds, which no two runs share."""
    return {k: v for k, v in history.items() if k != "seconds"}


# ---------------------------------------------------------------------------------------------
# Signals: SIGTERM / Ctrl-C finish the step, save, exit 143 / 130; the checkpoint resumes exactly
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_stops_non_zero_and_resume_is_exact(sig, code, data, tmp_path, capsys):
    (tmp_path / "my runs").mkdir()
    path = tmp_path / "my runs" / "c.pt"  # a space: the printed command must quote it
    run = flags(data, "--steps", "24", "--save_every", "5")
    p = process(*run, "--save_path", str(path))
    while not p.stdout.readline().startswith("step"):  # the first log line: training is under way
        assert p.poll() is None, p.stderr.read()
    p.send_signal(sig)
    out, err = p.communicate(timeout=300)
    assert p.returncode == code, err
    assert "exact match" not in out  # a stopped run does not go on to evaluate
    stopped = load_checkpoint(path)
    assert 2 <= stopped["step"] < 24 and stopped["kind"] == "paired" and stopped["run_id"]
    assert f"stopped early by {sig.name} at step {stopped['step']} of 24" in err
    command = err.split("continue with: ", 1)[1].splitlines()[0]
    assert shlex.split(command) == ["python", "-m", "jepa_lite.paired", "--resume", str(path)], command
    assert "Traceback" not in err

    resumed_code, out, err = paired(["--resume", str(path), "--no_progress"], capsys)
    assert resumed_code == 0, err
    assert f"resumed from {path} at step {stopped['step']}" in out
    straight_code, _, err = paired([*run, "--save_path", str(tmp_path / "straight.pt")], capsys)
    assert straight_code == 0, err
    resumed, straight = load_checkpoint(path), load_checkpoint(tmp_path / "straight.pt")
    assert resumed["step"] == straight["step"] == 24
    assert resumed["run_id"] == stopped["run_id"]  # the same run, continued in its own file
    assert without_seconds(resumed["history"]) == without_seconds(straight["history"])
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])


@pytest.mark.parametrize("save_every, log_every, stop_at", [(0, 3, 4), (3, 2, 5), (4, 5, 7), (1, 4, 2)])
def test_resumed_history_equals_the_uninterrupted_one_for_any_intervals(save_every, log_every, stop_at, data, tmp_path):
    """Stopped (as the first Ctrl-C stops it) at a step that is not a log step, then resumed: every
    field of the history, every step, equals the uninterrupted run's (but wall-clock seconds)."""
    from jepa_lite.paired import PairedConfig, PairedTrainer

    cfg = dict(
        data=str(data),
        batch_size=4,
        max_length=32,
        warmup_steps=2,
        device="cpu",
        progress=False,
        steps=9,
        save_every=save_every,
        log_every=log_every,
        monitor_size=4,
    )
    quiet = dict(log=lambda s: None)
    straight = PairedTrainer(PairedConfig(**cfg, save_path=str(tmp_path / "straight.pt")), **quiet).fit()
    first = PairedTrainer(PairedConfig(**cfg, save_path=str(tmp_path / "c.pt")), **quiet)
    step = first.train_step

    def step_then_stop():
        out = step()
        first.stop_requested = first.step == stop_at
        return out

    first.train_step = step_then_stop
    first.fit()
    assert load_checkpoint(tmp_path / "c.pt")["step"] == stop_at and stop_at % log_every != 0
    resumed = PairedTrainer(
        PairedConfig(**cfg, save_path=str(tmp_path / "c.pt"), resume=str(tmp_path / "c.pt")), **quiet
    )
    assert resumed.step == stop_at
    assert without_seconds(resumed.fit()) == without_seconds(straight)
    assert len(straight["step_lm_loss"]) == 9


# ---------------------------------------------------------------------------------------------
# One process per path; another run's checkpoint only with --overwrite; anything else never
# ---------------------------------------------------------------------------------------------
def test_a_second_process_on_the_same_path_is_refused_and_a_killed_one_leaves_no_lock(data, tmp_path, capsys):
    path = tmp_path / "c.pt"
    with lock_held_by_another_process(path) as pid:
        code, out, err = paired([*flags(data, "--steps", "2"), "--save_path", str(path)], capsys)
        line = one_error_line(err)
        assert code == 2 and "being written by another run" in line and str(pid) in line
        assert not path.exists() and "exact match" not in out
    code, _, err = paired(
        [*flags(data, "--steps", "2"), "--save_path", str(path)], capsys
    )  # the kernel dropped the lock
    assert code == 0, err
    assert load_checkpoint(path)["step"] == 2
    assert sorted(os.listdir(tmp_path)) == ["c.pt", "pairs.jsonl"]  # no lock file, no temporary file


def test_another_runs_checkpoint_is_replaced_only_with_overwrite(data, tmp_path, capsys):
    path = tmp_path / "c.pt"
    code, _, err = paired([*flags(data, "--steps", "2"), "--save_path", str(path)], capsys)
    assert code == 0, err
    before = path.read_bytes()
    first_id = load_checkpoint(path)["run_id"]

    code, out, err = paired([*flags(data, "--steps", "2", "--seed", "1"), "--save_path", str(path)], capsys)
    line = one_error_line(err)
    assert code == 2 and "holds the checkpoint of another paired run (step 2)" in line and "--overwrite" in line
    assert path.read_bytes() == before and "exact match" not in out

    code, _, err = paired(
        [*flags(data, "--steps", "2", "--seed", "1"), "--save_path", str(path), "--overwrite"], capsys
    )
    assert code == 0, err
    assert load_checkpoint(path)["run_id"] not in (None, first_id)


def test_a_masked_span_checkpoint_or_a_users_file_is_not_replaced(data, tmp_path, capsys):
    masked = tmp_path / "masked.pt"
    save_checkpoint(masked, {"kind": "masked_span", "run_id": "someone", "step": 7, "config": {}})
    before = masked.read_bytes()
    code, _, err = paired([*flags(data, "--steps", "2"), "--save_path", str(masked)], capsys)
    assert code == 2 and "another masked_span run (step 7)" in one_error_line(err)
    code, _, err = paired([*flags(data, "--steps", "2"), "--save_path", str(data)], capsys)  # the training data itself
    assert code == 2 and "not a jepa_lite checkpoint" in one_error_line(err)
    assert masked.read_bytes() == before and load_checkpoint(masked)["step"] == 7


def test_the_python_api_takes_the_same_rules(data, tmp_path):
    from jepa_lite.checkpoint import CheckpointError
    from jepa_lite.paired import PairedConfig, PairedTrainer

    path = tmp_path / "c.pt"
    cfg = dict(
        data=str(data), batch_size=4, max_length=32, log_every=2, warmup_steps=2, device="cpu", progress=False, steps=2
    )
    PairedTrainer(PairedConfig(**cfg, save_path=str(path)), log=lambda s: None).fit()
    other = PairedTrainer(PairedConfig(**cfg, save_path=str(path), seed=1), log=lambda s: None)
    with pytest.raises(CheckpointError, match="another paired run"):
        other.fit()
    assert sorted(os.listdir(tmp_path)) == ["c.pt", "pairs.jsonl"]  # the lock was released
    with pytest.raises(CheckpointError, match="is a folder"):
        PairedTrainer(PairedConfig(**cfg, save_path=str(tmp_path)), log=lambda s: None)


# ---------------------------------------------------------------------------------------------
# Checked before step 1: room for a checkpoint; the last good checkpoint is good
# ---------------------------------------------------------------------------------------------
def test_file_size_limit_is_refused_before_step_1(data, tmp_path):
    """A process limited to 1 MB files (ulimit -f) cannot hold the tiny model's checkpoint (several MB)."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

    path = tmp_path / "out" / "c.pt"
    p = process(*flags(data, "--steps", "50"), "--save_path", str(path), preexec_fn=limit)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 2, err
    assert "ulimit -f" in one_error_line(err) and "\nstep" not in out
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("save_every", ["1", "0"])
def test_a_diverged_run_names_a_finite_checkpoint_of_this_run_or_none(save_every, data, tmp_path, capsys):
    """--lr 1e6 blows the weights up at step 2: with a save every step, the message names step 1's
    checkpoint (finite); with saves only at the end, it says this run saved none. Exit code 1."""
    path = tmp_path / "c.pt"
    code, out, err = paired(
        [
            *flags(data, "--steps", "40", "--save_every", save_every, "--log_every", "1", "--lr", "1e6"),
            "--save_path",
            str(path),
        ],
        capsys,
    )
    line = one_error_line(err)
    assert (
        code == 1
        and ("NaN or infinite" in line or "loss became nan" in line)
        and "training stopped" in line
        and "lower --lr" in line
    ), err
    if save_every == "1":
        saved = load_checkpoint(path)
        assert f"The last good checkpoint is {path} (step {saved['step']}, of this run, checked finite)" in line
        assert first_nonfinite(state_tensors(saved["model"])) is None
    else:
        assert "This run saved no checkpoint" in line and not path.exists()


def test_pairs_are_tokenised_in_pieces_so_a_stop_signal_waits_for_one_piece_only():
    """`config.encode` hands the tokenizer ENCODE_PIECE strings at a time (Python runs a signal handler only
    between calls into the tokenizer) and gives the ids one call over everything would."""
    from jepa_lite.paired import config as paired_config
    from jepa_lite.paired.causal_lm import build_pair_tokenizer

    strings = [f"lines with {i} numbers" for i in range(2 * paired_config.ENCODE_PIECE + 5)]
    tokenizer = build_pair_tokenizer(strings, 1)
    calls = []

    def counting(texts, **kw):
        calls.append(len(texts))
        return tokenizer(texts, **kw)

    ids = paired_config.encode(counting, strings, 3)
    assert calls == [paired_config.ENCODE_PIECE, paired_config.ENCODE_PIECE, 5]
    whole = tokenizer(strings, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert ids == [w[:3] for w in whole] and all(len(w) > 3 for w in whole)  # truncation really happened

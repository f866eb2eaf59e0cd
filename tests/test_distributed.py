"""torchrun DDP on the CPU (gloo): two processes train as one with the same global batch (issue 16).

Tolerance: fp32 on the CPU. The two runs differ only in how sums are ordered (two half batches and
a gradient all-reduce against one batch), so losses agree to 1e-5 relative and weights to 1e-5."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from jepa_lite.checkpoint import load_checkpoint
from jepa_lite.data import collate
from jepa_lite.distributed import Dist, check_batch, digest, shard
from jepa_lite.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = [
    "--smoke_test",
    "--device",
    "cpu",
    "--no_progress",
    "--log_every",
    "2",
    "--batch_size",
    "8",
    "--max_length",
    "32",
]


def torchrun_available():
    return shutil.which("torchrun") or os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun"))


def run(tmp_path, *args, procs=0):
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    head = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(procs),
            "-m",
            "jepa_lite.train",
        ]
        if procs
        else [sys.executable, "-m", "jepa_lite.train"]
    )
    r = subprocess.run(
        head + ARGS + list(map(str, args)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    single = run(tmp, "--steps", "6", "--save_path", "single.pt")
    ddp = run(tmp, "--steps", "6", "--save_path", "ddp.pt", procs=2)
    run(tmp, "--steps", "3", "--save_path", "half.pt", procs=2)
    resumed = run(tmp, "--resume", "half.pt", "--steps", "6", procs=2)
    return tmp, single, ddp, resumed


def test_two_processes_give_the_loss_curve_of_one(runs):
    tmp, *_ = runs
    one, two = load_checkpoint(tmp / "single.pt"), load_checkpoint(tmp / "ddp.pt")
    a, b = torch.tensor(one["history"]["step_loss"]), torch.tensor(two["history"]["step_loss"])
    assert len(a) == len(b) == 6
    assert torch.allclose(a, b, rtol=1e-5, atol=0), (a, b)
    for name, w in one["model"].items():
        assert torch.allclose(w, two["model"][name], atol=1e-5, rtol=0), name


def test_target_encoders_are_identical_across_ranks(runs):
    tmp, _, ddp, _ = runs
    (line,) = [x for x in ddp.stdout.splitlines() if x.startswith("ranks in sync")]
    digests = line.split("sha256 ")[1].split(" on the")[0].split(", ")
    assert len(digests) == 2 and len(set(digests)) == 1
    saved = load_checkpoint(tmp / "ddp.pt")["model"]
    target = torch.nn.Module()
    target.load_state_dict = None
    from collections import OrderedDict

    class Holder(torch.nn.Module):
        def state_dict(self, *a, **k):
            return OrderedDict(
                (k[len("target_encoder.") :], v) for k, v in saved.items() if k.startswith("target_encoder.")
            )

    assert digests[0] == digest(Holder())  # what the ranks agreed on is what rank 0 saved


def test_a_run_resumed_under_ddp_continues_exactly(runs):
    tmp, *_ = runs
    full, resumed = load_checkpoint(tmp / "ddp.pt"), load_checkpoint(tmp / "half.pt")
    assert resumed["step"] == 6 and resumed["history"]["step_loss"] == full["history"]["step_loss"]
    assert all(torch.equal(w, resumed["model"][k]) for k, w in full["model"].items())


def test_only_rank_0_logs(runs):
    _, single, ddp, _ = runs

    def logs(r):
        return [x for x in r.stdout.splitlines() if x.startswith("step ")]

    assert len(logs(ddp)) == len(logs(single)) == 3


def test_shard_splits_the_global_batch_and_weights_the_loss(tokenized):
    batch = collate(tokenized.ids[:8], tokenized.tokenizer, 0.4, 3, torch.Generator().manual_seed(0))
    parts = [shard(batch, Dist(r, 2)) for r in range(2)]
    assert torch.equal(torch.cat([p.input_ids for p, _ in parts]), batch.input_ids)
    assert torch.equal(torch.cat([p.pred_mask for p, _ in parts]), batch.pred_mask)
    for p, _ in parts:
        assert torch.equal(p.pred_mask.flatten().nonzero().squeeze(1), p.pred_index)
    assert sum(w for _, w in parts) == pytest.approx(2.0)  # Σ_r (n_r / N) · W = W


def test_batch_must_split_evenly_across_processes():
    check_batch(8, Dist(0, 4))
    for b in (3, 6):
        with pytest.raises(ConfigError, match="multiple of the 4 processes"):
            check_batch(b, Dist(0, 4))


def test_torchrun_with_more_processes_than_lines_per_batch_is_refused(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "jepa_lite.train",
        *ARGS,
        "--batch_size",
        "1",
        "--steps",
        "2",
        "--save_path",
        "x.pt",
    ]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    # each rank prints one error line and exits 2; torchrun's launcher then reports the failed children
    assert (
        r.returncode != 0
        and "error: --batch_size 1 is the global batch" in r.stderr
        and "[rank0]: Traceback" not in r.stderr
    )
    assert not (tmp_path / "x.pt").exists()


# ---------------------------------------------------------------------------------------------
# The paired trainer (python -m jepa_lite.paired) under torchrun
# ---------------------------------------------------------------------------------------------
def write_pairs(path, n=48):
    import json

    from jepa_lite.paired.pairs import regex_pairs

    train, test = regex_pairs(n, 16, seed=0)
    rows = [
        {
            "messages": [
                {"role": "system", "content": "regex"},
                {"role": "user", "content": p.text},
                {"role": "assistant", "content": p.code},
            ]
        }
        for p in train + test
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def run_paired(tmp_path, *args, procs=0):
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    head = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
        if procs
        else [sys.executable]
    )
    common = [
        "--data",
        "pairs.jsonl",
        "--device",
        "cpu",
        "--no_progress",
        "--batch_size",
        "8",
        "--log_every",
        "2",
        "--lbd",
        "1",
        "--warmup_steps",
        "10",
        "--max_length",
        "48",
    ]
    # warm-up past the last step: the LR of a step does not depend on --steps, so a run of 2 steps resumed to 4 is
    # the run of 4
    r = subprocess.run(
        head + ["-m", "jepa_lite.paired", *common, *map(str, args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_paired_trainer_under_torchrun_matches_one_process_and_resumes_exactly(tmp_path):
    write_pairs(tmp_path / "pairs.jsonl")
    run_paired(tmp_path, "--steps", "4", "--save_path", "one.pt")
    two = run_paired(tmp_path, "--steps", "4", "--save_path", "two.pt", procs=2)
    run_paired(tmp_path, "--steps", "2", "--save_path", "half.pt", procs=2)
    run_paired(tmp_path, "--resume", "half.pt", "--steps", "4", procs=2)
    one, two_ck, resumed = (load_checkpoint(tmp_path / f) for f in ("one.pt", "two.pt", "half.pt"))
    for key in ("step_lm_loss", "step_jepa_loss"):
        a, b = torch.tensor(one["history"][key]), torch.tensor(two_ck["history"][key])
        assert len(a) == 4 and torch.allclose(a, b, rtol=1e-5, atol=0), (key, a, b)
        assert resumed["history"][key] == two_ck["history"][key]
    for name, w in one["model"].items():
        assert torch.allclose(w, two_ck["model"][name], atol=1e-5, rtol=0), name
        assert torch.equal(resumed["model"][name], two_ck["model"][name]), name
    assert sum(x.startswith("step ") for x in two.stdout.splitlines()) == 2  # rank 0 alone logs


def test_sigterm_under_torchrun_stops_all_ranks_after_one_step_with_a_checkpoint(tmp_path):
    """torchrun forwards SIGTERM to every rank; the ranks agree on stopping (Dist.any), rank 0 saves,
    and the saved run resumes under torchrun."""
    import signal

    from jepa_lite.distributed import digest  # noqa: F401  (the module under test)

    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "jepa_lite.train",
        *ARGS,
        "--steps",
        "100000",
        "--log_every",
        "1",
        "--save_every",
        "0",
        "--save_path",
        "run.pt",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("step "):
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    state = load_checkpoint(tmp_path / "run.pt")
    assert 1 <= state["step"] < 100000, err[-2000:]
    assert "stopped early by SIGTERM" in err, err[-2000:]
    run(tmp_path, "--resume", "run.pt", "--steps", str(state["step"] + 2), procs=2)
    assert load_checkpoint(tmp_path / "run.pt")["step"] == state["step"] + 2


def test_token_cache_under_torchrun_is_built_once_by_rank_0(tmp_path, corpus_texts):
    (tmp_path / "mine.txt").write_text("\n".join(corpus_texts) + "\n", encoding="utf-8")
    run(tmp_path, "--text_file", "mine.txt", "--steps", "2", "--token_cache", "off", "--save_path", "mem.pt", procs=2)
    run(
        tmp_path,
        "--text_file",
        "mine.txt",
        "--steps",
        "2",
        "--token_cache",
        "cache",
        "--save_path",
        "cached.pt",
        procs=2,
    )
    assert len(list((tmp_path / "cache").glob("mine.*.tokens"))) == 1 and not list((tmp_path / "cache").glob("*.tmp"))
    a, b = load_checkpoint(tmp_path / "mem.pt"), load_checkpoint(tmp_path / "cached.pt")
    assert a["history"]["step_loss"] == b["history"]["step_loss"]

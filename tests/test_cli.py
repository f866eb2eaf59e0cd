"""The command line: every bad input ends with one line on stderr, exit code 2, and nothing written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jepa_lite.checkpoint import load_checkpoint, save_checkpoint
from jepa_lite.train import main

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--smoke_test", "--steps", "4", "--log_every", "2", "--no_progress"]


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def precious(tmp_path):
    """An existing checkpoint of another run whose bytes must survive any failed run (the runs below
    pass --overwrite, so that only the bad input stops them)."""
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"kind": "masked_span", "run_id": "earlier", "step": 7, "work": torch.arange(5.0)})
    return path


def text_file(tmp_path, content: bytes, name="data.txt"):
    p = tmp_path / name
    p.write_bytes(content)
    return str(p)


BAD_INPUTS = {
    "missing file": (lambda t: ["--text_file", str(t / "nope.txt")], "not found"),
    "directory": (lambda t: ["--text_file", str(t)], "not a regular file"),
    "empty file": (lambda t: ["--text_file", text_file(t, b"")], "no text"),
    "blank lines only": (lambda t: ["--text_file", text_file(t, b"\n   \n\t\n")], "no text"),
    "binary file": (lambda t: ["--text_file", text_file(t, bytes(range(256)) * 4)], "binary"),
    "not utf-8": (lambda t: ["--text_file", text_file(t, "café au lait\n".encode("latin-1"))], "not valid UTF-8"),
    "mask_ratio 1.5": (lambda t: ["--mask_ratio", "1.5"], "mask_ratio must be in (0, 1)"),
    "mask_ratio 0": (lambda t: ["--mask_ratio", "0"], "mask_ratio must be in (0, 1)"),
    "mask_ratio text": (lambda t: ["--mask_ratio", "lots"], "invalid float"),
    "mean_span_len 0.5": (lambda t: ["--mean_span_len", "0.5"], "mean_span_len must be at least 1"),
    "max_length 3": (lambda t: ["--max_length", "3"], "max_length must be at least 4"),
    "steps 0": (lambda t: ["--steps", "0"], "steps must be a positive integer"),
    "batch_size 0": (lambda t: ["--batch_size", "0"], "batch_size must be a positive integer"),
    "ema_m 1.2": (lambda t: ["--ema_m", "1.2"], "ema_m must be in [0, 1]"),
    "unknown device": (lambda t: ["--device", "tpu7"], "device"),
    "cuda missing": (lambda t: ["--device", "cuda:3"], "not available"),
    "corrupt checkpoint": (
        lambda t: ["--resume", text_file(t, b"\x80\x02garbage", "bad.pt")],
        "not a readable checkpoint",
    ),
    "missing checkpoint": (lambda t: ["--resume", str(t / "none.pt")], "checkpoint not found"),
    "unknown flag": (lambda t: ["--mask-ratio", "0.3"], "unrecognized arguments"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_exit_2_nothing_written(case, tmp_path, precious, capsys):
    make_args, expected = BAD_INPUTS[case]
    before = precious.read_bytes()
    code, out, err = run(FAST + make_args(tmp_path) + ["--save_path", str(precious), "--overwrite"], capsys)
    assert code == 2, (case, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err + out
    assert precious.read_bytes() == before


def test_model_without_mask_token_names_suitable_models(tmp_path, capsys):
    """A causal-LM style tokenizer (no [MASK]) is refused with a list of masked encoders."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"<unk>": 0, "<eos>": 1, "hello": 2}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>").save_pretrained(
        tmp_path / "gptish"
    )
    code, _, err = run(
        ["--model_name", str(tmp_path / "gptish"), "--steps", "2", "--save_path", str(tmp_path / "c.pt")], capsys
    )
    assert code == 2
    assert "no mask token" in err and "distilbert-base-uncased" in err and "roberta-base" in err
    assert not (tmp_path / "c.pt").exists()


def test_hub_name_offline_fails_fast_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run(
        ["--model_name", "bert-base-uncased", "--steps", "2", "--save_path", str(tmp_path / "c.pt")], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "offline" in err


def test_batch_larger_than_data_trains_with_a_notice(tmp_path, capsys):
    data = text_file(tmp_path, b"one small line of text\nanother small line\nand a third one here\n")
    code, out, err = run(
        FAST + ["--text_file", data, "--batch_size", "8", "--save_path", str(tmp_path / "c.pt")], capsys
    )
    assert code == 0, err
    assert "batch_size 8 is larger than the data; using 3" in out
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 4


def test_resume_with_conflicting_flag_is_refused(tmp_path, capsys):
    path = str(tmp_path / "c.pt")
    assert run(FAST + ["--save_path", path], capsys)[0] == 0
    code, _, err = run(["--resume", path, "--mask_ratio", "0.5", "--steps", "8"], capsys)
    assert code == 2 and "different config" in err and "mask_ratio" in err
    code, out, err = run(["--resume", path, "--steps", "8", "--no_progress"], capsys)
    assert code == 0, err
    assert "resumed from" in out and load_checkpoint(path)["step"] == 8


def cli(*args, env_extra=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    # Any attempt to reach the network goes to a closed local port and fails at once.
    env.update(
        {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}, **(env_extra or {})
    )
    return subprocess.run(
        [sys.executable, "-m", "jepa_lite.train", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def test_real_process_bad_input_exit_code_and_no_traceback(tmp_path):
    r = cli("--mask_ratio", "1.5", "--save_path", str(tmp_path / "c.pt"))
    assert r.returncode == 2
    assert r.stderr.strip() == "error: mask_ratio must be in (0, 1); got 1.5"
    assert not (tmp_path / "c.pt").exists()


def test_smoke_test_runs_offline_without_downloads(tmp_path):
    r = cli("--smoke_test", "--steps", "20", "--save_path", str(tmp_path / "s.pt"))
    assert r.returncode == 0, r.stderr
    assert "step     20 | loss" in r.stdout and "ema_m" in r.stdout and "mean_cos" in r.stdout
    assert load_checkpoint(tmp_path / "s.pt")["step"] == 20


def test_default_backbone_is_the_offline_pretrained_minilm(tmp_path):
    r = cli(
        "--steps",
        "2",
        "--batch_size",
        "2",
        "--max_length",
        "24",
        "--log_every",
        "1",
        "--no_progress",
        "--save_path",
        str(tmp_path / "m.pt"),
    )
    assert r.returncode == 0, r.stderr
    state = load_checkpoint(tmp_path / "m.pt")
    assert state["config"]["model_name"] is None
    assert state["model"]["context_encoder.embeddings.word_embeddings.weight"].shape == (30522, 384)  # MiniLM-L6


def test_any_local_masked_encoder_folder_trains(tmp_path, capsys):
    """A Hugging Face encoder saved in a folder (here a 2-layer BERT) is loaded by path and trained."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from jepa_lite.encoders import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    config = AutoConfig.for_model(
        "bert",
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    )
    AutoModel.from_config(config).save_pretrained(tmp_path / "bert-mini")
    tokenizer.save_pretrained(tmp_path / "bert-mini")
    code, out, err = run(
        [
            "--model_name",
            str(tmp_path / "bert-mini"),
            "--steps",
            "3",
            "--log_every",
            "1",
            "--no_progress",
            "--save_path",
            str(tmp_path / "c.pt"),
        ],
        capsys,
    )
    assert code == 0, err
    assert "step      3 | loss" in out
    assert load_checkpoint(tmp_path / "c.pt")["model"]["predictor.net.0.weight"].shape == (4 * 64, 64)


def help_entry(module: str, flag: str) -> str:
    """The `--help` text of one flag of `python -m module`, from a real process, on one line."""
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    entries = re.split(r"\n  (?=-)", r.stdout.split("\noptions:\n", 1)[1])  # one entry per flag
    [entry] = [e for e in entries if e.startswith(f"{flag} ")]
    return " ".join(entry.split())


def test_help_says_batch_size_is_the_global_batch_under_torchrun():
    """Under torchrun --batch_size is what all processes train on together (distributed.shard, check_batch);
    for the paired trainer the global batch of a step is batch_size × grad_accum pairs (micro_batches)."""
    train = help_entry("jepa_lite.train", "--batch_size")
    assert "lines per optimizer step" in train and "under torchrun the global batch, all processes together" in train
    assert "a multiple of their number" in train and "batch_size / processes" in train
    paired = help_entry("jepa_lite.paired", "--batch_size")
    assert "batch_size × grad_accum pairs, under torchrun in all processes together (the global batch)" in paired
    accum = help_entry("jepa_lite.paired", "--grad_accum")
    assert "must be a multiple of the processes" in accum and "passes of at most batch_size pairs" in accum

"""Bad input is one `error:` line and exit 2 before any work, and no input line is tokenised whole (issue 24,
items 3-4). Each case here was a traceback, a silent acceptance or a hang before."""

import os

import pytest
import torch

from jepa_lite.paired.cli import main as paired_main
from jepa_lite.train import main as train_main

SMALL_PAIRED = ["--steps", "1", "--no_progress", "--device", "cpu", "--batch_size", "4"]
SMALL_TRAIN = ["--steps", "1", "--no_progress", "--batch_size", "4", "--max_length", "32"]


def refused(cli, argv, capsys) -> str:
    """The one error line of `cli(argv)`, which must exit 2."""
    try:
        code = cli(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "line, words",
    [
        ("[" * 100_000, "nested too deeply"),
        (
            '{"messages": [{"role": "user", "content": "a \\ud800 b"}, {"role": "assistant", "content": "x"}]}',
            "lone surrogate",
        ),
    ],
)
def test_a_jsonl_line_that_python_cannot_hold_as_text_is_one_line(tmp_path, capsys, line, words):
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"messages": [{"role": "user", "content": "t"}, {"role": "assistant", "content": "c"}]}\n' + line + "\n"
    )
    line = refused(paired_main, ["--data", str(data), *SMALL_PAIRED], capsys)
    assert words in line and "d.jsonl:2:" in line


class Recording:
    """A stand-in tokenizer that records the longest string it was asked to tokenise."""

    all_special_ids = [0]

    def __init__(self):
        self.longest = 0

    def __len__(self):
        return 100

    def __call__(self, strings, **kwargs):
        strings = [strings] if isinstance(strings, str) else strings
        self.longest = max([self.longest, *map(len, strings)])
        return {"input_ids": [[1 + ord(c) % 90 for c in s][: kwargs.get("max_length") or len(s)] for s in strings]}


def test_no_line_is_tokenised_whole_only_to_be_truncated():
    """A 10 MB Code or text line is cut to max_length × MAX_CHARS_PER_TOKEN characters first (before: the whole
    string was tokenised, minutes of work with SIGTERM unheard); what is kept is the same."""
    from jepa_lite.data import MAX_CHARS_PER_TOKEN, tokenize_lines
    from jepa_lite.paired.config import encode

    huge = "ab cd " * 2_000_000
    tok = Recording()
    ids = encode(tok, [huge, "short"], 16)
    assert (
        tok.longest == 16 * MAX_CHARS_PER_TOKEN and ids[0] == [1 + ord(c) % 90 for c in huge[:16]] and len(ids[1]) == 5
    )
    tok = Recording()
    tokenize_lines([huge, "short"], tok, 16, lambda ids: None)
    assert tok.longest == 16 * MAX_CHARS_PER_TOKEN


@pytest.mark.parametrize("name, words", [("random:t5", "encoder-decoder"), ("random:gpt2", "not a masked encoder")])
def test_the_masked_span_trainer_refuses_architectures_that_are_not_masked_encoders(capsys, name, words):
    """(Before: random:gpt2 trained silently, although the README says decoder-only models are refused;
    random:t5 passed every check and failed at step 1.)"""
    assert words in refused(train_main, ["--model_name", name, *SMALL_TRAIN], capsys)


def test_token_cache_that_names_a_file_or_an_unwritable_place_is_one_line(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("".join(f"line {i} of a small text file with words\n" for i in range(64)))
    (tmp_path / "afile").write_text("mine")
    base = ["--model_name", "tiny", "--text_file", str(text), *SMALL_TRAIN]
    assert "is a file" in refused(train_main, [*base, "--token_cache", str(tmp_path / "afile")], capsys)
    assert "cannot write" in refused(train_main, [*base, "--token_cache", "/proc/jepa_lite_cache"], capsys)
    assert (tmp_path / "afile").read_text() == "mine"


def test_save_path_with_a_trailing_slash_is_refused(tmp_path, capsys):
    """(Before: `--save_path dir/` wrote a checkpoint file named `dir`.)"""
    assert "names a folder" in refused(
        train_main, ["--smoke_test", *SMALL_TRAIN, "--save_path", f"{tmp_path / 'newdir'}/"], capsys
    )
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def paired_ckpt(tmp_path_factory):
    from jepa_lite.checkpoint import load_checkpoint
    from jepa_lite.paired import PairedConfig, PairedTrainer

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("paired") / "p.pt"
    t = PairedTrainer(
        PairedConfig(
            n_train=32,
            n_test=8,
            batch_size=4,
            tiny_dim=32,
            tiny_layers=1,
            steps=1,
            progress=False,
            device="cpu",
            save_path=str(path),
        ),
        log=lambda s: None,
    )
    t.fit()
    return path, load_checkpoint(path)


@pytest.mark.parametrize(
    "change, words",
    [
        ("drop optimizer", "lacks 'optimizer'"),
        ("drop config", "lacks 'config'"),
        ("add extra", "unknown 'extra'"),
        ("config bogus", "unknown 'bogus'"),
    ],
)
def test_paired_resume_of_a_checkpoint_with_missing_or_other_keys_is_one_line(
    tmp_path, capsys, paired_ckpt, change, words
):
    from jepa_lite.checkpoint import save_checkpoint

    _, state = paired_ckpt
    state = {k: v for k, v in state.items() if k != "format"}
    verb, key = change.split()
    if verb == "drop":
        del state[key]
    elif verb == "add":
        state[key] = 1
    else:
        state["config"] = {**state["config"], key: 1}
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, state)
    assert words in refused(paired_main, ["--resume", str(bad), "--steps", "2", "--no_progress"], capsys)


@pytest.fixture(scope="module")
def train_ckpt(tmp_path_factory):
    from jepa_lite.checkpoint import load_checkpoint
    from jepa_lite.train import TrainConfig, Trainer

    path = tmp_path_factory.mktemp("train") / "c.pt"
    Trainer(TrainConfig.smoke(steps=1, progress=False, save_path=str(path)), log=lambda s: None).fit()
    return path, load_checkpoint(path)


CRAFTED = [
    ("step", "7"),
    ("step", -3),
    ("history", [1, 2]),
    ("rng", None),
    ("rng", "bytes"),
    ("model", [1]),
    ("window", "x"),
    ("kind", 5),
]


@pytest.mark.parametrize("field, value", CRAFTED)
def test_resuming_a_crafted_checkpoint_is_one_line(tmp_path, capsys, train_ckpt, paired_ckpt, field, value):
    """(Before: TypeError, IndexError or AttributeError tracebacks from deep inside the resume.)"""
    from jepa_lite.checkpoint import save_checkpoint

    for cli, (_, state) in ((train_main, train_ckpt), (paired_main, paired_ckpt)):
        state = {k: v for k, v in state.items() if k != "format"}
        state[field] = torch.zeros(5, dtype=torch.uint8) if value == "bytes" else value
        if value == "bytes":
            state[field] = {"torch": state[field]}
        bad = tmp_path / "bad.pt"
        save_checkpoint(bad, state)
        refused(cli, ["--resume", str(bad), "--steps", "4", "--no_progress"], capsys)


def test_a_local_encoder_decoder_folder_is_refused_before_loading(tmp_path, capsys):
    """An encoder-decoder (BART) has a [MASK] token, so the tokenizer check alone let it through to step 1."""
    from transformers import AutoConfig, AutoModel

    from jepa_lite.encoders import load_backbone

    folder = tmp_path / "bart"
    _, tokenizer, _ = load_backbone("random:bert")
    config = AutoConfig.for_model(
        "bart",
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        max_position_embeddings=64,
    )
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert "encoder-decoder" in refused(train_main, ["--model_name", str(folder), *SMALL_TRAIN], capsys)


class _Planted:
    """Pickles to a call of os.mkdir: a plain `torch.load` (weights_only=False) would make the folder."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("cli", [train_main, paired_main], ids=["masked", "paired"])
def test_a_checkpoint_that_would_run_code_is_refused_and_never_runs_it(tmp_path, capsys, cli):
    """Checkpoints load with `torch.load(weights_only=True)`: a crafted pickle is one line, its code never runs."""
    marker = tmp_path / "ran"
    bad = tmp_path / "crafted.pt"
    torch.save({"format": 1, "model": {"w": torch.zeros(2)}, "x": _Planted(marker)}, bad)
    line = refused(cli, ["--resume", str(bad), "--steps", "4", "--no_progress"], capsys)
    assert str(bad) in line or "crafted.pt" in line, line
    assert not marker.exists()
    torch.load(bad, weights_only=False)  # the control: loaded without the guard, the planted code runs
    assert marker.is_dir()

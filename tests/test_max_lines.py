"""--max_lines: a big text file is used whole by default, cut only on purpose, and the run says which."""

import pytest

from jepa_lite.data import MappedTokens, TextFile
from jepa_lite.train import TrainConfig, Trainer, main

N_LINES = 50_010  # more than the 50,000 lines the kit used to cut every file to


@pytest.fixture(scope="module")
def big_file(tmp_path_factory, corpus_texts):
    """50,010 distinct short lines (a number and a corpus sentence), with blank lines among them."""
    path = tmp_path_factory.mktemp("big") / "big.txt"
    words = [t.split()[:4] for t in corpus_texts]
    path.write_text(
        "".join(f"{k} {' '.join(words[k % len(words)])}\n" + ("\n" if k % 7 == 0 else "") for k in range(N_LINES)),
        encoding="utf-8",
    )
    return path


def test_text_file_tells_whether_max_lines_cut_it(big_file):
    assert TextFile(big_file).cut is False and len(TextFile(big_file)) == N_LINES
    assert TextFile(big_file, N_LINES).cut is False
    cut = TextFile(big_file, 50_000)
    assert cut.cut is True and len(cut) == 50_000 and len(list(cut)) == 50_000


@pytest.mark.parametrize("token_cache", ["off", "cache"])
def test_the_whole_file_is_used_by_default_in_memory_and_from_the_token_cache(big_file, tmp_path, token_cache):
    assert TrainConfig().max_lines is None
    said = []
    cache = "off" if token_cache == "off" else str(tmp_path / "cache")
    trainer = Trainer(
        TrainConfig.smoke(
            text_file=str(big_file), token_cache=cache, steps=2, log_every=1, save_path=None, progress=False
        ),
        log=said.append,
    )
    assert len(trainer.corpus) == N_LINES
    assert isinstance(trainer.corpus.flat, MappedTokens) == (token_cache == "cache")
    assert f"text: {N_LINES:,} lines of {big_file} (the whole file)" in said
    trainer.fit()


def test_max_lines_limits_on_purpose_and_the_run_says_so(big_file, tmp_path, capsys):
    code = main(
        [
            "--smoke_test",
            "--text_file",
            str(big_file),
            "--max_lines",
            "300",
            "--steps",
            "2",
            "--log_every",
            "1",
            "--no_progress",
            "--save_path",
            str(tmp_path / "c.pt"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"text: the first 300 lines of {big_file} (--max_lines 300; the file has more)" in out


def test_an_old_checkpoint_with_max_lines_50000_resumes_on_the_same_lines(big_file, tmp_path, capsys):
    """Checkpoints of the kit before this change hold max_lines 50000 (the old default) in their config:
    resumed without --max_lines they read the same first 50,000 lines (the text fingerprint matches)
    and continue exactly as the uninterrupted run."""
    common = dict(text_file=str(big_file), token_cache="off", log_every=2, progress=False)
    whole = Trainer(TrainConfig.smoke(max_lines=50_000, steps=6, save_path=None, **common), log=lambda s: None).fit()
    ckpt = tmp_path / "old.pt"
    Trainer(TrainConfig.smoke(max_lines=50_000, steps=3, save_path=str(ckpt), **common), log=lambda s: None).fit()
    code = main(["--resume", str(ckpt), "--steps", "6", "--no_progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"text: the first 50,000 lines of {big_file} (--max_lines 50000; the file has more)" in out
    from jepa_lite.checkpoint import load_checkpoint

    state = load_checkpoint(ckpt)
    assert state["config"]["max_lines"] == 50_000 and state["step"] == 6
    assert state["history"]["step_loss"] == whole["step_loss"]

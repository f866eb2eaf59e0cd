"""Training from a streamed text file and its token cache gives the run an in-memory corpus gives."""

from jepa_lite.data import MappedTokens
from jepa_lite.train import TrainConfig, Trainer


def test_training_on_the_token_cache_equals_training_in_memory(tmp_path, corpus_texts):
    text = tmp_path / "mine.txt"
    text.write_text("\n".join(corpus_texts) + "\n", encoding="utf-8")
    common = dict(text_file=str(text), steps=6, log_every=3, save_path=None, progress=False)
    in_memory = Trainer(TrainConfig.smoke(token_cache="off", **common), log=lambda s: None)
    cached = Trainer(TrainConfig.smoke(token_cache=str(tmp_path / "cache"), **common), log=lambda s: None)
    assert isinstance(cached.corpus.flat, MappedTokens) and not isinstance(in_memory.corpus.flat, MappedTokens)
    assert len(list((tmp_path / "cache").glob("mine.*.tokens"))) == 1
    assert in_memory.fit()["step_loss"] == cached.fit()["step_loss"]


def test_auto_cache_only_for_big_files_next_to_the_checkpoint(tmp_path, corpus_texts, monkeypatch):
    import jepa_lite.train as train

    text = tmp_path / "mine.txt"
    text.write_text("\n".join(corpus_texts) + "\n", encoding="utf-8")
    cfg = TrainConfig.smoke(text_file=str(text), steps=1, save_path=str(tmp_path / "run" / "ckpt.pt"), progress=False)
    assert Trainer(cfg, log=lambda s: None).token_cache_folder(None) is None
    small = Trainer(cfg, log=lambda s: None)
    assert not isinstance(small.corpus.flat, MappedTokens)  # a small file stays in memory
    monkeypatch.setattr(train, "AUTO_CACHE_BYTES", 1000)
    big = Trainer(cfg, log=lambda s: None)
    assert isinstance(big.corpus.flat, MappedTokens) and list((tmp_path / "run").glob("mine.*.tokens"))

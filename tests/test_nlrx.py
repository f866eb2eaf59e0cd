"""The official NL-RX-SYNTH files ship unchanged, and the validation carve-out is clean."""

import json

import pytest

from jepa_lite.paired import nlrx
from jepa_lite.paired.pairs import PairsError


def test_shipped_files_are_the_official_ones():
    for split, path in nlrx.FILES.items():
        assert nlrx.sha256(path) == nlrx.SHA256[split]
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == nlrx.SIZES[split]
        first = json.loads(lines[0])["messages"]
        assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert (nlrx.FOLDER / "LICENSE").read_text().lstrip().startswith("Apache License")
    notice = (nlrx.FOLDER / "NOTICE.md").read_text()
    assert "galilai-group/llm-jepa" in notice and "1608.03000" in notice


def test_splits_sizes_and_disjointness():
    s = nlrx.splits()
    assert {k: len(v) for k, v in s.items()} == {"train": 7000, "val": 1000, "test": 2000}
    assert not set(s["val"]) & set(s["train"])  # no validation pair is also a training pair
    assert len(set(s["val"])) == 1000
    assert nlrx.splits() == s  # deterministic
    assert nlrx.splits(seed=1)["val"] != s["val"]


def test_a_changed_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "synth_test.jsonl"
    bad.write_bytes(nlrx.FILES["test"].read_bytes().replace(b"dog", b"cat", 1))
    monkeypatch.setitem(nlrx.FILES, "test", bad)
    with pytest.raises(PairsError, match="not the official"):
        nlrx.load("test")
    monkeypatch.setitem(nlrx.FILES, "test", tmp_path / "absent.jsonl")
    with pytest.raises(PairsError, match="missing"):
        nlrx.load("test")


def test_pretrained_start_never_saw_test_or_validation():
    """The kit's pretraining corpus (jepa_lite/resources/kit_lm's recipe) holds no Text or Code of the test file or
    of the validation split; SEEN_IN_PRETRAINING lists exactly the training lines it does hold."""
    from jepa_lite.paired.pretrain import PretrainConfig, fingerprint, load_recipe, pretraining_corpus

    recipe = load_recipe()
    documents = pretraining_corpus(PretrainConfig(**recipe["config"]))
    assert fingerprint(documents) == recipe["corpus"]["fingerprint"]  # the corpus the shipped model saw
    docs = set(documents)
    train = nlrx.load("train")
    assert tuple(i for i, p in enumerate(train) if p.text in docs or p.code in docs) == nlrx.SEEN_IN_PRETRAINING
    s = nlrx.splits()
    for split in ("val", "test"):
        assert not [p for p in s[split] if p.text in docs or p.code in docs], split

"""Export: a masked-span checkpoint → Hugging Face folder + sentence-transformers model (issue 16)."""

import json
import subprocess
import sys

import pytest
import torch

from jepa_lite.course.probe import sentence_embeddings
from jepa_lite.export import MARKER, export
from jepa_lite.train import TrainConfig, Trainer

SENTENCES = ["the cat sat on the mat", "a quick brown fox jumps over the lazy dog", "rain"]


def trained(tmp_path_factory, name, **cfg):
    path = tmp_path_factory.mktemp(name) / "ckpt.pt"
    trainer = Trainer(TrainConfig(save_path=str(path), progress=False, save_every=0, **cfg), log=lambda s: None)
    trainer.fit()
    return path, trainer


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    return trained(tmp_path_factory, "minilm", steps=1, batch_size=4, max_length=32, warmup_steps=0, lr=1e-3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    preset = {k: v for k, v in TrainConfig.smoke().__dict__.items() if k not in ("save_path", "save_every", "progress")}
    return trained(tmp_path_factory, "tiny", **{**preset, "steps": 3})


def kit_token_states(encoder, tokenizer, texts):
    enc = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        return encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state, enc[
            "attention_mask"
        ]


@pytest.mark.parametrize("which", ["target", "context"])
def test_minilm_export_reloads_with_automodel_and_sentence_transformers(tmp_path, minilm_run, which):
    from transformers import AutoModel, AutoTokenizer

    ckpt, trainer = minilm_run
    out = export(ckpt, tmp_path / "out", which, log=lambda s: None)
    assert (out / "model.safetensors").is_file() and json.loads((out / MARKER).read_text())["encoder"] == which
    kit = trainer.model.target_encoder if which == "target" else trainer.model.context_encoder
    kit.eval()
    model, tokenizer = AutoModel.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)
    ours, mask = kit_token_states(kit, trainer.tokenizer, SENTENCES)
    theirs, _ = kit_token_states(model, tokenizer, SENTENCES)
    assert torch.allclose(ours[mask.bool()], theirs[mask.bool()], atol=1e-5, rtol=0)
    # the two encoders differ after a step, so this checks that the right one was written
    other = trainer.model.context_encoder if which == "target" else trainer.model.target_encoder
    assert not torch.allclose(kit_token_states(other.eval(), trainer.tokenizer, SENTENCES)[0], theirs, atol=1e-5)

    sentence_transformers = pytest.importorskip("sentence_transformers")
    st = sentence_transformers.SentenceTransformer(str(out), device="cpu")
    got = st.encode(SENTENCES, convert_to_tensor=True)
    want = sentence_embeddings(kit, trainer.tokenizer, SENTENCES, max_length=32)
    assert torch.allclose(got.cpu(), want, atol=1e-5, rtol=0)


def test_tiny_export_loads_as_a_transformers_model(tmp_path, tiny_run):
    from transformers import AutoModel, AutoTokenizer

    ckpt, trainer = tiny_run
    out = export(ckpt, tmp_path / "tiny_out", log=lambda s: None)
    # its only code is the two-line modeling file (no copies of the kit's modules, which transformers 5.0 could not
    # load back)
    assert [f.name for f in out.glob("*.py")] == ["modeling_jepa_lite_tiny.py"]
    assert (
        json.loads((out / "config.json").read_text())["auto_map"]["AutoConfig"]
        == "modeling_jepa_lite_tiny.JepaLiteTinyConfig"
    )
    model = AutoModel.from_pretrained(out, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.get_vocab() == trainer.tokenizer.get_vocab()
    ours, mask = kit_token_states(trainer.model.target_encoder.eval(), trainer.tokenizer, SENTENCES)
    theirs, _ = kit_token_states(model, tokenizer, SENTENCES)
    assert torch.allclose(ours[mask.bool()], theirs[mask.bool()], atol=1e-6, rtol=0)
    sentence_transformers = pytest.importorskip("sentence_transformers")
    st = sentence_transformers.SentenceTransformer(str(out), device="cpu", trust_remote_code=True)
    want = sentence_embeddings(trainer.model.target_encoder, trainer.tokenizer, SENTENCES, max_length=64)
    assert torch.allclose(st.encode(SENTENCES, convert_to_tensor=True).cpu(), want, atol=1e-5, rtol=0)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "jepa_lite.export", *map(str, args)], capture_output=True, text=True)


def test_export_refuses_other_checkpoints_and_folders_in_one_line(tmp_path, tiny_run):
    from jepa_lite.checkpoint import load_checkpoint, save_checkpoint

    ckpt, _ = tiny_run
    paired = tmp_path / "paired.pt"
    save_checkpoint(paired, {**load_checkpoint(ckpt), "kind": "paired"})
    not_a_ckpt = tmp_path / "notes.txt"
    not_a_ckpt.write_text("hello")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    for args, words in [
        ((paired, tmp_path / "o1"), "paired"),
        ((not_a_ckpt, tmp_path / "o2"), "not a readable checkpoint"),
        ((ckpt, busy), "not empty"),
        ((ckpt, tmp_path / "o3", "--encoder", "both"), "invalid choice"),
    ]:
        r = run_cli(*args)
        assert (
            r.returncode == 2
            and r.stderr.startswith("error:")
            and words in r.stderr
            and len(r.stderr.strip().splitlines()) == 1
        ), r.stderr
    assert (busy / "mine.txt").read_text() == "keep me" and not (tmp_path / "o1").exists()

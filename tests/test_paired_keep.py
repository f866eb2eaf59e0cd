"""jepa_lite.paired keeps its result and follows the official code where asked: save_pretrained /
--model DIR, --test_data, --steps 0, random:llama-135m, --lm_tokens, --code_position."""

import json
import subprocess
import sys

import pytest
import torch

from jepa_lite import paired
from jepa_lite.paired import PairedConfig, PairedTrainer
from jepa_lite.paired.causal_lm import KIT_FILE, PREDS, SEP, CausalLMError, check_save_dir, llama_135m
from jepa_lite.paired.pairs import regex_pairs, save_jsonl

SMALL = dict(
    n_train=200, n_test=24, batch_size=16, tiny_dim=48, tiny_layers=2, log_every=5, progress=False, device="cpu"
)


def small(**overrides) -> PairedTrainer:
    torch.set_num_threads(1)
    return PairedTrainer(PairedConfig(**{**SMALL, **overrides}), log=lambda s: None)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A short LM + JEPA run (k = 2) written with save_pretrained."""
    out = tmp_path_factory.mktemp("kept") / "model"
    t = small(steps=40, predictors=2, lr=5e-3, warmup_steps=2, save_dir=str(out))
    t.fit()
    return t, out


def _greedy_with_plain_transformers(folder, texts, max_new_tokens):
    """Greedy decoding from `[BOS] Text [SEP]` with nothing but transformers and the saved folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    sep = tok.convert_tokens_to_ids(SEP)
    outputs = []
    for text in texts:
        ids = [tok.bos_token_id, *tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"], sep]
        with torch.no_grad():
            out = model.generate(
                torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False
            )  # eos/pad from generation_config.json
        new = out[0, len(ids) :].tolist()
        new = new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
        outputs.append(tok.decode(new))
    return outputs


def test_saved_folder_reloads_with_plain_transformers_and_decodes_like_the_kit(saved):
    trainer, folder = saved
    assert (folder / "model.safetensors").is_file() and (folder / KIT_FILE).is_file()
    texts = [p.text for p in trainer.test_pairs]
    max_new = max(len(c) for c in trainer.train_code) + 8
    kit = trainer.generate(texts, max_new_tokens=max_new)
    assert len(set(kit)) > 1  # the model says different things for different texts: a real comparison
    assert _greedy_with_plain_transformers(folder, texts, max_new) == kit
    info = json.loads((folder / KIT_FILE).read_text())
    assert info["special_tokens"]["preds"] == list(PREDS) and info["step"] == 40


def test_model_dir_continues_from_the_saved_weights_and_special_tokens(saved):
    trainer, folder = saved
    again = small(steps=0, predictors=2, model=str(folder))
    assert again.ids == trainer.ids  # [SEP], [PRED_1] … read back, same ids: nothing added
    assert len(again.tokenizer) == len(trainer.tokenizer)
    for a, b in zip(again.model.state_dict().values(), trainer.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert again.evaluate() == trainer.evaluate()


def test_save_dir_refuses_a_folder_it_did_not_write(tmp_path, saved):
    _, folder = saved
    check_save_dir(folder)  # its own folder may be replaced
    check_save_dir(tmp_path / "new")  # a new one
    (tmp_path / "empty").mkdir()
    check_save_dir(tmp_path / "empty")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CausalLMError, match="not a model folder written by jepa_lite"):
        check_save_dir(tmp_path / "mine")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CausalLMError, match="is a file"):
        check_save_dir(tmp_path / "file")


def test_steps_0_only_evaluates_and_test_data_is_the_test_split(tmp_path):
    train, test = regex_pairs(120, 15, seed=2)
    save_jsonl(train, tmp_path / "train.jsonl")
    save_jsonl(test, tmp_path / "test.jsonl")
    t = small(steps=0, data=str(tmp_path / "train.jsonl"), test_data=str(tmp_path / "test.jsonl"))
    assert t.train_pairs == train and t.test_pairs == test  # all of --data trains, the file tests
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    history = t.fit()
    assert t.step == 0 and history["step"] == []
    assert all(torch.equal(before[k], v) for k, v in t.model.state_dict().items())
    assert t.evaluate()["total"] == 15


def test_random_llama_135m_has_smollm2_135m_shape():
    from transformers import LlamaConfig, LlamaForCausalLM

    c = llama_135m()
    hf = LlamaConfig(
        vocab_size=49152,
        hidden_size=c.dim,
        intermediate_size=c.mlp,
        num_hidden_layers=c.layers,
        num_attention_heads=c.heads,
        num_key_value_heads=c.kv_heads,
        tie_word_embeddings=True,
    )
    with torch.device("meta"):
        model = LlamaForCausalLM(hf)
    # transformers 5.0 does not tie on the meta device by itself (on the CPU, where the kit builds, it does)
    model.tie_weights()
    n = sum(p.numel() for p in model.parameters())
    assert 134_000_000 < n < 135_000_000  # SmolLM2-135M: 134.5 M parameters with its 49,152-token vocabulary


def test_random_llama_135m_is_built_offline_with_the_kit_tokenizer():
    from jepa_lite.paired.causal_lm import load_causal_lm

    with torch.device("meta"):
        model, tok = load_causal_lm("random:llama-135m", ["lines with a digit", ".*[0-9].*"] * 3)
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads) == (30, 576, 9, 3)
    assert cfg.vocab_size == len(tok) and tok.convert_tokens_to_ids(PREDS[-1]) is not None
    with pytest.raises(CausalLMError, match="unknown random model"):
        load_causal_lm("random:llama-7b", ["a"])


def test_lm_tokens_all_scores_every_token_after_bos():
    ids = {"bos": 1, "sep": 2, "eos": 3, "pad": 0, "preds": [10, 11]}
    tokens, labels = paired.lm_row([5, 6], [7, 8, 9], ids, lm_tokens="all")
    assert tokens == [1, 5, 6, 2, 7, 8, 9, 3]
    assert labels == [paired.IGNORE, 5, 6, 2, 7, 8, 9, 3]  # position t predicts label t+1: all but [BOS]
    _, code_only = paired.lm_row([5, 6], [7, 8, 9], ids, lm_tokens="code")
    assert code_only == [paired.IGNORE] * 4 + [7, 8, 9, 3]
    t = small(steps=1, lm_tokens="all")
    idx = t.batch_indices(0)
    assert t.scored_tokens(idx) == sum(len(paired.lm_row(t.train_text[i], t.train_code[i], t.ids)[0]) - 1 for i in idx)
    rows, labels = zip(*(paired.lm_row(t.train_text[i], t.train_code[i], t.ids, "all") for i in idx))
    ids_, mask = paired.pad_rows(rows, t.ids["pad"])
    label_ids, _ = paired.pad_rows(labels, paired.IGNORE)
    label_ids[mask == 0] = paired.IGNORE
    hf = t.model(input_ids=ids_, attention_mask=mask, labels=label_ids).loss  # Hugging Face's own loss over all tokens
    torch.testing.assert_close(t.losses(idx, with_jepa=False)[0], hf)


@pytest.mark.parametrize("position, back", [("last", 1), ("eos", 0)])
def test_code_position_reads_the_last_code_token_or_eos(position, back):
    t = small(steps=1, code_position=position)
    t.model.eval()
    pair = t.test_pairs[0]
    code = paired.encode(t.tokenizer, [pair.code], 100)[0]
    row = paired.code_view(code, t.ids)
    with torch.no_grad():
        h = t.model(torch.tensor([row]), output_hidden_states=True).hidden_states[-1][0]  # (L, D)
        _, y = t.embed([pair])
    expected = h[len(row) - 1 - back]
    torch.testing.assert_close(y[0], expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(h[-1], h[-2], atol=1e-3)  # the two positions really differ


def test_cli_save_dir_then_model_dir_with_steps_0(tmp_path):
    train, test = regex_pairs(100, 12, seed=4)
    save_jsonl(train, tmp_path / "train.jsonl")
    save_jsonl(test, tmp_path / "test.jsonl")
    base = [
        sys.executable,
        "-m",
        "jepa_lite.paired",
        "--data",
        str(tmp_path / "train.jsonl"),
        "--test_data",
        str(tmp_path / "test.jsonl"),
        "--no_progress",
        "--log_every",
        "5",
        "--device",
        "cpu",
    ]
    r = subprocess.run(
        base + ["--steps", "10", "--save_dir", str(tmp_path / "m")], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    first = [line for line in r.stdout.splitlines() if line.startswith("exact match")]
    r2 = subprocess.run(
        base + ["--steps", "0", "--model", str(tmp_path / "m")], capture_output=True, text=True, timeout=300
    )
    assert r2.returncode == 0, r2.stderr
    assert "step " not in r2.stdout  # no training
    assert (
        [line for line in r2.stdout.splitlines() if line.startswith("exact match")]
        == first
        == ["exact match on 12 test pairs: " + first[0].split(": ", 1)[1]]
    )
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "a.txt").write_text("mine")
    r3 = subprocess.run(
        base + ["--steps", "1", "--save_dir", str(tmp_path / "theirs")], capture_output=True, text=True, timeout=300
    )
    assert r3.returncode == 2 and r3.stderr.startswith("error: --save_dir") and len(r3.stderr.strip().splitlines()) == 1
    assert (tmp_path / "theirs" / "a.txt").read_text() == "mine" and len(list((tmp_path / "theirs").iterdir())) == 1

"""The kit's pretrained LM (jepa_lite/resources/kit_lm): its corpus never holds the benchmark, its recipe reproduces."""

import json

import pytest

from jepa_lite.paired import pretrain
from jepa_lite.paired.causal_lm import load_causal_lm, pair_token_ids
from jepa_lite.paired.pretrain import (
    KIT_LM,
    PretrainConfig,
    Pretrainer,
    benchmark_splits,
    load_recipe,
)

RECIPE = load_recipe(KIT_LM)


@pytest.fixture(scope="module")
def trainer():
    """The recipe's pretrainer at step 0, on the CPU (builds the same corpus and tokenizer)."""
    return Pretrainer(PretrainConfig(**{**RECIPE["config"], "device": "cpu"}), log=lambda s: None)


def test_the_corpus_holds_no_benchmark_text_or_regex(trainer):
    documents = set(trainer.train_docs) | set(trainer.heldout_docs)
    splits = benchmark_splits()
    for name, pairs in splits.items():
        assert not documents & {p.code for p in pairs}, f"a {name} regex is a pretraining document"
        assert not documents & {p.text for p in pairs}, f"a {name} description is a pretraining document"
    codes = {p.code for p in splits["train"]}
    assert not codes & {p.code for p in splits["test"]} and not codes & {p.code for p in splits["val"]}
    # both languages are there, as separate documents, with the course's sentences
    assert any(d.startswith("lines ") for d in documents) and any(d.endswith(".*") for d in documents)
    assert set(pretrain.course_sentences()) <= documents


def test_the_corpus_is_the_recipe_corpus(trainer):
    assert trainer.fingerprint == RECIPE["corpus"]["fingerprint"]
    assert len(trainer.train_docs) == RECIPE["corpus"]["train_documents"]


def test_the_shipped_tokenizer_is_the_one_the_recipe_builds(trainer):
    from transformers import AutoTokenizer

    shipped = AutoTokenizer.from_pretrained(KIT_LM)
    assert shipped.get_vocab() == trainer.tokenizer.get_vocab()
    assert len(shipped) == RECIPE["vocab_size"]


def test_the_recipe_first_steps_reproduce_its_losses():
    losses = pretrain.reproduce_first_steps(RECIPE, steps=4)
    assert losses == pytest.approx(RECIPE["first_losses"][:4], abs=1e-4)
    assert losses[3] < losses[0]  # it learns


def test_the_shipped_weights_reach_the_recorded_heldout_loss(trainer):
    from transformers import AutoModelForCausalLM

    shipped = AutoModelForCausalLM.from_pretrained(KIT_LM)
    trainer.model.load_state_dict(shipped.state_dict())
    assert trainer.heldout_loss() == pytest.approx(RECIPE["heldout_loss"], abs=2e-3)
    assert RECIPE["heldout_loss"] < 0.3 * RECIPE["first_losses"][0]  # well below the untrained loss


def test_the_folder_loads_as_a_paired_model_and_is_small():
    splits = benchmark_splits()
    model, tokenizer = load_causal_lm(str(KIT_LM), codes=[p.code for p in splits["test"]])  # exact round trip
    ids = pair_token_ids(tokenizer)
    assert len(set(ids[k] for k in ("pad", "bos", "eos", "sep"))) == 4
    preds = [tokenizer.convert_tokens_to_ids(t) for t in pretrain.pred_tokens()]
    assert len(set(preds)) == pretrain.N_PRED_TOKENS and tokenizer.unk_token_id not in preds
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()) == RECIPE["parameters"]
    assert sum(f.stat().st_size for f in KIT_LM.iterdir()) <= 25 * 2**20
    assert (KIT_LM / "model.safetensors").is_file()


def test_cli_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert pretrain.main(["--out", str(mine), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "other files" in err[0]
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert pretrain.main(["--out", str(KIT_LM), "--steps", "1"]) == 2  # a kit result, but no --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_cli_writes_a_loadable_folder_with_its_recipe(tmp_path):
    out = tmp_path / "lm"
    small = [
        "--n_descriptions",
        "300",
        "--n_regexes",
        "300",
        "--no_course_sentences",
        "--heldout",
        "50",
        "--dim",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--mlp",
        "32",
        "--steps",
        "3",
        "--log_every",
        "1",
        "--first_steps",
        "2",
        "--batch_size",
        "8",
    ]
    assert pretrain.main(["--out", str(out), *small]) == 0
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["history"]["step"] == [1, 2, 3] and len(recipe["first_losses"]) == 2
    args = vars(pretrain.build_parser().parse_args(recipe["command"].split()[3:]))  # the command re-makes the recipe
    del args["out"], args["overwrite"]
    assert {**args, "device": "cpu"} == recipe["config"]
    assert pretrain.reproduce_first_steps(recipe, 2) == pytest.approx(recipe["first_losses"], abs=1e-5)
    model, tokenizer = load_causal_lm(str(out))
    assert model.config.hidden_size == 16


def test_the_shipped_model_has_a_short_name_and_the_old_clone_path_still_works(tmp_path, monkeypatch, capsys):
    from jepa_lite.paired.causal_lm import packaged_folder

    monkeypatch.chdir(tmp_path)  # where the user runs: no assets/ folder here
    assert packaged_folder("kit_lm") == KIT_LM and (KIT_LM / "model.safetensors").is_file()
    assert capsys.readouterr().err == ""
    for old in ("assets/kit_lm", "./assets/kit_lm/"):
        assert packaged_folder(old) == KIT_LM
        assert (
            capsys.readouterr().err.strip()
            == f"note: '{old}' is now package data; reading the shipped 'kit_lm' (say --model kit_lm)"
        )
    (tmp_path / "assets" / "kit_lm").mkdir(parents=True)  # a folder of the user's own by that name wins
    assert (
        packaged_folder("assets/kit_lm") is None and packaged_folder("tiny") is None and packaged_folder("gpt2") is None
    )

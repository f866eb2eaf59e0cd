"""The paper's objective (jepa_lite.paired): LM + λ·JEPA on (Text, Code) pairs."""

import json
import math
import random
import re
import subprocess
import sys

import pytest
import torch

from jepa_lite import paired
from jepa_lite.diagnostics import linear_map_residual, pca_2d, svd_spectrum
from jepa_lite.paired import PairedConfig, PairedTrainer, last_hidden, pad_rows
from jepa_lite.paired.causal_lm import (
    PRED,
    PREDS,
    CausalLMError,
    add_pair_tokens,
    build_pair_tokenizer,
    check_round_trip,
)
from jepa_lite.paired.pairs import Pair, PairsError, load_jsonl, regex_pairs, save_jsonl

SMALL = dict(
    n_train=240, n_test=40, batch_size=16, tiny_dim=64, tiny_layers=2, log_every=10, progress=False, device="cpu"
)


def small_trainer(**overrides) -> PairedTrainer:
    torch.set_num_threads(1)
    return PairedTrainer(PairedConfig(**{**SMALL, **overrides}), log=lambda s: None)


@pytest.fixture(scope="module")
def trainer():
    return small_trainer(steps=20, predictors=2)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def test_regex_pairs_are_valid_deterministic_and_split_by_regex():
    train, test = regex_pairs(500, 80, seed=3)
    assert (len(train), len(test)) == (500, 80)
    assert regex_pairs(500, 80, seed=3) == (train, test)
    assert regex_pairs(500, 80, seed=4) != (train, test)
    assert not {p.code for p in train} & {p.code for p in test}  # no test regex is seen in training
    assert len(set(train + test)) == 580  # no repeated pair
    for p in train + test:
        re.compile(p.code)
        assert p.text.startswith("lines ")
    # several phrasings of one idea map to one regex
    digit_texts = {p.text for p in train if p.code == ".*[0-9].*"}
    assert len(digit_texts) >= 2


def test_generated_regexes_match_what_they_describe():
    """Spot checks that the grammar's English and regex agree, by running the regex."""
    train, _ = regex_pairs(2000, 10, seed=0)
    by_text = {p.text: p.code for p in train}
    checks = [
        ("lines containing a digit", "ab7c", "abc"),
        ("lines starting with a capital letter", "Abc", "abc"),
        ("lines made of exactly 3 digits", "123", "1234"),
    ]
    found = 0
    for text, good, bad in checks:
        if text in by_text:
            found += 1
            assert re.fullmatch(by_text[text], good) and not re.fullmatch(by_text[text], bad)
    assert found >= 1


def test_jsonl_round_trip(tmp_path):
    pairs = [Pair("lines with a digit", ".*[0-9].*"), Pair('Ünïcode, "quotes"', "^\\d{2,}$")]
    path = tmp_path / "pairs.jsonl"
    save_jsonl(pairs, path)
    assert load_jsonl(path) == pairs


@pytest.mark.parametrize(
    "line, expected",
    [
        ("{not json", r"data.jsonl:2: not valid JSON"),
        ('{"text": "a"}', r'data.jsonl:2: expected an object with a "messages" list'),
        ('{"messages": "hello"}', r"data.jsonl:2: \"messages\" must be a list"),
        ('{"messages": [{"role": "user", "content": "a"}]}', r'data.jsonl:2: no "assistant" message'),
        (
            '{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}',
            r"data.jsonl:2: unknown role 'bot'",
        ),
        (
            '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": 3}]}',
            r'data.jsonl:2: the "assistant" message has no text',
        ),
        (
            '{"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "b"}]}',
            r'data.jsonl:2: the "user" message is empty',
        ),
        (
            '{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "c"}, '
            '{"role": "assistant", "content": "b"}]}',
            r'data.jsonl:2: more than one "user"',
        ),
    ],
)
def test_jsonl_errors_name_the_line_and_the_problem(tmp_path, line, expected):
    good = json.dumps(
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
            ]
        }
    )
    path = tmp_path / "data.jsonl"
    path.write_text(good + "\n" + line + "\n" + good + "\n", encoding="utf-8")
    with pytest.raises(PairsError, match=expected):
        load_jsonl(path)


def test_jsonl_file_level_errors(tmp_path):
    with pytest.raises(PairsError, match="not found"):
        load_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(PairsError, match="not a regular file"):
        load_jsonl(tmp_path)
    (tmp_path / "blank.jsonl").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(PairsError, match="holds no examples"):
        load_jsonl(tmp_path / "blank.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(PairsError, match="not valid UTF-8"):
        load_jsonl(tmp_path / "latin1.jsonl")


# ---------------------------------------------------------------------------------------------
# tokenizer
# ---------------------------------------------------------------------------------------------
def test_tokenizer_round_trips_code_exactly_and_is_deterministic():
    train, test = regex_pairs(300, 30)
    texts = [s for p in train for s in (p.text, p.code)]
    tok = build_pair_tokenizer(texts)
    assert build_pair_tokenizer(texts).get_vocab() == tok.get_vocab()
    odd = ["[A-Z]{2,}", "  two  spaces\tand tab", "Ünïcode ✓", "MiXeD.*CaSe\\b", "(dog|cat)?"]
    check_round_trip(tok, [p.code for p in train + test] + odd)
    words = tok(" containing", add_special_tokens=False)["input_ids"]
    assert len(words) == 1  # frequent words are single tokens, not bytes


def test_pred_and_sep_are_single_special_tokens_added_to_the_vocabulary():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"a": 0, "b": 1, "<unk>": 2}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    bare = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")  # like a hub LM without our tokens
    before = len(bare)
    assert add_pair_tokens(bare) == 20  # [PAD], [BOS], [EOS], [SEP], [PRED_1] … [PRED_16]
    assert len(bare) == before + 20
    assert add_pair_tokens(bare) == 0  # idempotent
    pred = bare.convert_tokens_to_ids(PRED)
    assert bare("a [PRED_1] b", add_special_tokens=False)["input_ids"] == [0, pred, 1]
    preds = [bare.convert_tokens_to_ids(t) for t in PREDS]
    assert len(set(preds)) == 16 and bare.unk_token_id not in preds  # distinct tokens, each in the vocabulary


def test_a_tokenizer_that_loses_characters_is_refused():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"dog": 0, "<unk>": 1}, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    lossy = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")
    with pytest.raises(CausalLMError, match="does not give back"):
        check_round_trip(lossy, ["DOG"])


def test_pred_tokens_are_appended_to_text_only(trainer):
    ids = trainer.ids
    text, code = trainer.train_text[0], trainer.train_code[0]
    view = paired.text_view(text, 3, ids)
    assert view[-3:] == ids["preds"][:3] and view[-4] == ids["sep"]  # [PRED_1] [PRED_2] [PRED_3]
    assert len(set(view[-3:])) == 3 and ids["pred"] == ids["preds"][0]
    assert not set(ids["preds"]) & set(paired.code_view(code, ids))
    tokens, labels = paired.lm_row(text, code, ids)
    assert not set(ids["preds"]) & set(tokens)  # the LM row (what the model generates from) has no [PRED_i]
    # only Code and [EOS] are scored by the LM loss
    assert [t for t, lab in zip(tokens, labels) if lab != paired.IGNORE] == [*code, ids["eos"]]
    assert paired.text_view(text, 0, ids)[-1] == ids["sep"]


# ---------------------------------------------------------------------------------------------
# Enc: the last non-pad token, whichever side is padded
# ---------------------------------------------------------------------------------------------
def test_enc_reads_the_last_real_token_with_padding_on_either_side(trainer):
    model = trainer.model.eval()
    rows = [paired.code_view(trainer.train_code[i], trainer.ids) for i in range(6)]
    assert len({len(r) for r in rows}) > 1  # the rows really need padding
    with torch.no_grad():
        alone = torch.stack(
            [last_hidden(model, torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long))[1][0] for r in rows]
        )
        for side in ("right", "left"):
            ids, mask = pad_rows(rows, trainer.ids["pad"], side=side)
            _, enc = last_hidden(model, ids, mask)
            torch.testing.assert_close(enc, alone, atol=1e-5, rtol=1e-4)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert paired.last_token_index(right).tolist() == [2, 4]
    assert paired.last_token_index(right.flip(dims=[1])).tolist() == [4, 4]


def test_greedy_decoding_does_not_depend_on_the_batch(trainer):
    texts = [p.text for p in trainer.test_pairs[:8]]
    together = trainer.generate(texts, batch_size=8)
    one_by_one = [trainer.generate([t], batch_size=1)[0] for t in texts]
    assert together == one_by_one


# ---------------------------------------------------------------------------------------------
# the objective
# ---------------------------------------------------------------------------------------------
def test_lambda_zero_is_plain_lm_fine_tuning():
    t = small_trainer(steps=5, lbd=0.0)
    calls = []
    real = paired.trainer.last_hidden  # the module whose globals PairedTrainer reads
    paired.trainer.last_hidden = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        total, lm, jepa = t.objective(0)
    finally:
        paired.trainer.last_hidden = real
    assert jepa is None and len(calls) == 1  # no JEPA views are even built
    # the same batch through Hugging Face's own causal-LM loss
    rows, labels = zip(*(paired.lm_row(t.train_text[i], t.train_code[i], t.ids) for i in t.batch_indices(0)))
    ids, mask = pad_rows(rows, t.ids["pad"])
    label_ids, _ = pad_rows(labels, paired.IGNORE)
    hf = t.model(input_ids=ids, attention_mask=mask, labels=label_ids).loss
    torch.testing.assert_close(total, hf)
    g1 = torch.autograd.grad(total, list(t.model.parameters()), allow_unused=True)
    g2 = torch.autograd.grad(
        t.model(input_ids=ids, attention_mask=mask, labels=label_ids).loss,
        list(t.model.parameters()),
        allow_unused=True,
    )
    for a, b in zip(g1, g2):
        if a is not None or b is not None:
            torch.testing.assert_close(a, b)


def test_the_jepa_term_is_lambda_times_one_minus_cosine(trainer):
    total, lm, jepa = trainer.objective(0)
    idx = trainer.batch_indices(0)
    x, y = [], []
    for i in idx:
        for view, out, back in (
            (paired.text_view(trainer.train_text[i], 2, trainer.ids), x, 0),
            (paired.code_view(trainer.train_code[i], trainer.ids), y, 1),
        ):  # code_position "last": before [EOS]
            out.append(
                last_hidden(trainer.model, torch.tensor([view]), torch.ones(1, len(view), dtype=torch.long), back)[1][0]
            )
    expected = (1 - torch.nn.functional.cosine_similarity(torch.stack(x), torch.stack(y), dim=-1)).mean()
    torch.testing.assert_close(jepa, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(total, lm + 1.0 * jepa)


def test_loss_dropout_skips_the_jepa_term_on_about_that_fraction_of_steps():
    t = small_trainer(steps=5, loss_dropout=0.25)
    dropped = [t.jepa_dropped(s) for s in range(4000)]
    assert abs(sum(dropped) / 4000 - 0.25) < 0.03
    step = dropped.index(True)
    assert t.objective(step)[2] is None and t.objective(dropped.index(False))[2] is not None


def test_batches_are_a_pure_function_of_seed_and_step(trainer):
    assert trainer.batch_indices(7) == trainer.batch_indices(7)
    epoch = [i for s in range(len(trainer.train_pairs) // 16) for i in trainer.batch_indices(s)]
    assert len(set(epoch)) == len(epoch)  # one pass visits each pair at most once
    # the order a fresh trainer draws, whatever steps were asked before (each epoch's order is kept once drawn)
    n, bs = len(trainer.train_pairs), trainer.config.batch_size * trainer.config.grad_accum
    for step in (3 * (n // bs) + 2, 0, n // bs + 1, 0, 5 * (n // bs)):
        epoch, k = divmod(step, n // bs)
        order = list(range(n))
        random.Random(trainer.config.seed * 1_000_003 + epoch).shuffle(order)
        assert trainer.batch_indices(step) == order[k * bs : (k + 1) * bs]


def test_a_short_run_lowers_the_jepa_loss_and_the_lm_loss():
    t = small_trainer(steps=60, lbd=1.0, predictors=0, lr=3e-3, warmup_steps=5)
    first_jepa = t.monitor_jepa()
    history = t.fit()
    assert history["jepa_monitor"][-1] < 0.5 * first_jepa
    assert history["lm_loss"][-1] < history["lm_loss"][0]
    assert all(math.isfinite(v) for v in history["jepa_loss"])


def test_config_errors_are_one_line():
    for bad in (
        dict(lbd=-1),
        dict(predictors=-1),
        dict(predictors=17),
        dict(loss_dropout=1.0),
        dict(distance="dot"),
        dict(lbd=0, gamma=0),
        dict(steps=-1),
        dict(grad_accum=0),
        dict(views="fused"),
        dict(lm_tokens="text"),
        dict(code_position="first"),
        dict(precision="fp8"),
    ):
        with pytest.raises(paired.ConfigError):
            PairedConfig(**bad).validate()


# ---------------------------------------------------------------------------------------------
# analyses
# ---------------------------------------------------------------------------------------------
def test_analyses_on_known_geometry():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g)
    w = torch.randn(8, 8, generator=g)
    assert linear_map_residual(x, x @ w)["relative"] < 1e-5  # an exact linear map (up to float32 rounding)
    noisy = linear_map_residual(x, torch.randn(200, 8, generator=g))
    assert 0.9 < noisy["relative"] < 1.01  # unrelated views: nothing explained
    s = svd_spectrum(x, x)
    assert s.shape == (8,) and float(s.max()) < 1e-9
    s2 = svd_spectrum(x, torch.zeros_like(x))
    assert torch.all(s2[:-1] >= s2[1:])  # largest first
    a, b = pca_2d(x, x + 5.0)
    assert a.shape == (200, 2) and b.shape == (200, 2)
    assert float((b - a).mean(dim=0).norm()) > 1.0  # the shift between views shows in the projection


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def _cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "jepa_lite.paired", *args], capture_output=True, text=True, timeout=timeout
    )


def test_cli_runs_offline_and_reports(tmp_path):
    train, test = regex_pairs(150, 20, seed=1)
    data = tmp_path / "pairs.jsonl"
    save_jsonl(train + test, data)
    r = _cli(
        "--data", str(data), "--steps", "20", "--lbd", "1", "--predictors", "1", "--log_every", "10", "--no_progress"
    )
    assert r.returncode == 0, r.stderr
    assert "step    20  lm " in r.stdout and "jepa" in r.stdout
    assert re.search(r"exact match on 17 test pairs: \d\.\d{3}", r.stdout)
    assert "largest singular value" in r.stdout
    assert re.search(r"retrieval@1 Text → Code among the 17 test pairs: \d\.\d{3} \(chance 0\.059\)", r.stdout)
    assert re.search(r"cosine of true pairs -?\d\.\d{3}, of shuffled pairs -?\d\.\d{3}: gap -?\d\.\d{3}", r.stdout)
    # 17 test pairs, D = 128: a linear map would fit any data exactly, so no residual is printed
    assert "not measured: 8 fitting pairs for 129 unknowns per output" in r.stdout and "residual" not in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lbd", "-2"], "error: lbd and gamma must be finite numbers"),
        (["--predictors", "x"], "error: argument --predictors: invalid int value"),
        (["--data", "nowhere.jsonl"], "error: data file not found: nowhere.jsonl"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    r = _cli(*args, "--steps", "1")
    assert r.returncode == 2
    assert r.stderr.strip().startswith(message) and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_cli_names_the_bad_jsonl_line(tmp_path):
    data = tmp_path / "bad.jsonl"
    save_jsonl([Pair("a", "b")] * 3, data)
    data.write_text(data.read_text() + '{"messages": []}\n', encoding="utf-8")
    r = _cli("--data", str(data), "--steps", "1")
    assert r.returncode == 2 and f'{data}:4: no "user" message' in r.stderr


def test_a_local_causal_lm_folder_loads_offline(tmp_path, trainer):
    from jepa_lite.paired.causal_lm import load_causal_lm

    trainer.model.save_pretrained(tmp_path / "lm")
    trainer.tokenizer.save_pretrained(tmp_path / "lm")
    model, tok = load_causal_lm(str(tmp_path / "lm"), codes=[p.code for p in trainer.test_pairs])
    assert tok.get_vocab() == trainer.tokenizer.get_vocab()
    ids = torch.tensor([paired.code_view(trainer.train_code[0], trainer.ids)])
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(ids).logits, trainer.model.eval()(ids).logits)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CausalLMError, match="could not load the causal LM"):
        load_causal_lm(str(tmp_path / "empty"))

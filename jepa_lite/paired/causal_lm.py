"""The decoder LLM of the paper's objective: a causal LM from `transformers`, and its tokenizer.

`load_causal_lm(name, texts)` returns (model, tokenizer). Names it understands:

- "tiny" (default): a Llama-style causal LM with random weights, 4 layers, hidden 128 (≈ 0.9 M
  parameters), and a byte-level tokenizer whose vocabulary is built from `texts`, here, in well under
  a second. No network.
- "random:llama-135m": random weights in the shape of SmolLM2-135M (30 layers, hidden 576, 9 heads,
  3 KV heads), for GPU runs and the benchmark; the same local tokenizer. No network.
- "kit_lm": the kit's own LM-only pretrained small Llama, shipped in the package
  (`jepa_lite/resources/kit_lm`). No network: package data.
- a folder written by `--save_dir` (save_pretrained): the fine-tuned model and tokenizer of an
  earlier run. No network.
- a hub name or a local folder: that causal LM and its tokenizer, e.g. "gpt2",
  "HuggingFaceTB/SmolLM2-135M". The network only for a hub name you give.

Every tokenizer gets the kit's special tokens: `[SEP]` (the end of Text, where Code begins) and
the k ≤ 16 distinct predictor tokens `[PRED_1]` … `[PRED_16]` appended to Text (distinct, as the
official code's `<|predictor_1|>` … : each predictor position has its own learned embedding), plus
`[PAD]`, `[BOS]` and `[EOS]` where it lacks them; the model's embedding matrix grows to match. A
folder saved by `save_pretrained` keeps them as special tokens, so reloading it adds nothing and the
ids stay the same. Regexes are case- and symbol-sensitive, so `check_round_trip` refuses a tokenizer
that does not give back exactly the Code it was given.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from ..data import RESOURCES_DIR
from ..encoders import _first_line, local_or_hub

MAX_PREDICTORS = 16  # the config's limit on k
SEP = "[SEP]"
PREDS = tuple(f"[PRED_{i}]" for i in range(1, MAX_PREDICTORS + 1))  # [PRED_1] … [PRED_16]
PRED = PREDS[0]  # the first predictor token (k = 1 uses only it)
PAD, BOS, EOS = "[PAD]", "[BOS]", "[EOS]"
RANDOM_SIZES = ("random:llama-135m",)
PACKAGED = {"kit_lm": RESOURCES_DIR / "kit_lm"}  # short names of the model folders the package ships
OLD_PATHS = {"assets/kit_lm": "kit_lm"}  # where a clone kept them before they became package data


def packaged_folder(name: str) -> Optional[Path]:
    """The shipped folder that `name` means ("kit_lm"; the old clone path "assets/kit_lm" too, with a
    note on stderr, unless such a folder exists where the user runs), else None."""
    if name in PACKAGED:
        return PACKAGED[name]
    short = OLD_PATHS.get(Path(name).as_posix().rstrip("/").removeprefix("./"))
    if short is None or Path(name).is_dir():
        return None
    print(f"note: '{name}' is now package data; reading the shipped '{short}' (say --model {short})", file=sys.stderr)
    return PACKAGED[short]


class CausalLMError(ValueError):
    """A causal LM or tokenizer that cannot be used; the message says why and what to do."""


@dataclass
class TinyLMConfig:
    """Sizes of the "tiny" causal LM (a Llama architecture, random init)."""

    dim: int = 128  # hidden size D
    layers: int = 4  # decoder blocks
    heads: int = 4  # attention heads (dim must divide by it)
    mlp: int = 384  # hidden size of each block's gated MLP
    max_len: int = 256  # longest sequence the rotary embeddings are set up for
    min_count: int = 3  # a pre-token (word, number, run of symbols) seen this often gets its own id
    kv_heads: Optional[int] = None  # key/value heads (grouped-query attention); None = heads
    rope_theta: float = 10_000.0  # base of the rotary position embeddings


def llama_135m() -> TinyLMConfig:
    """SmolLM2-135M's shape (HuggingFaceTB/SmolLM2-135M config.json): 30 blocks, hidden 576, 9 query
    heads and 3 key/value heads, MLP 1536, rotary base 100,000, tied embeddings. Only the vocabulary
    differs: it is the kit's local tokenizer, so ~106 M parameters instead of 135 M (SmolLM2's
    49,152-token embedding is 28 M of them)."""
    return TinyLMConfig(dim=576, layers=30, heads=9, kv_heads=3, mlp=1536, max_len=2048, rope_theta=100_000.0)


# ---------------------------------------------------------------------------------------------
# The local tokenizer
# ---------------------------------------------------------------------------------------------
def build_pair_tokenizer(texts: Sequence[str], min_count: int = 3):
    """A byte-level tokenizer whose vocabulary is the 256 bytes plus the frequent pre-tokens of `texts`.

    Text is first split GPT-2 style into words (with their leading space), numbers and runs of
    symbols. A piece seen at least `min_count` times in `texts` is one token; any other piece falls
    back to its bytes. Bytes cover everything, so decoding always gives back the exact input
    (capitals, symbols, spaces, non-ASCII). Built by counting, not by a trainer, so the same texts
    always give the same vocabulary.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    counts = Counter(piece for t in texts for piece, _ in split.pre_tokenize_str(t))
    vocab = {byte: i for i, byte in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for piece, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):  # frequent first, ties by text
        if n >= min_count and piece not in vocab:
            vocab[piece] = len(vocab)
    # ignore_merges: a piece in the vocabulary is one token; no merges, so other pieces stay bytes
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], ignore_merges=True))
    core.pre_tokenizer = split
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS, extra_special_tokens=[SEP, *PREDS]
    )


def add_pair_tokens(tokenizer) -> int:
    """Give `tokenizer` the kit's special tokens where it lacks them; returns how many were added."""
    added = 0
    missing = {
        k: v for k, v in (("pad_token", PAD), ("bos_token", BOS), ("eos_token", EOS)) if getattr(tokenizer, k) is None
    }
    if missing:
        added += tokenizer.add_special_tokens(missing)
    new = [t for t in (SEP, *PREDS) if t not in tokenizer.get_vocab()]
    if new:
        added += tokenizer.add_tokens(new, special_tokens=True)  # special: never split, skipped by decode
    return added


def check_round_trip(tokenizer, codes: Sequence[str]) -> None:
    """Raise CausalLMError if decode(encode(code)) differs from code for any of `codes`."""
    for code in codes:
        ids = tokenizer(code, add_special_tokens=False)["input_ids"]
        back = tokenizer.decode(ids)
        if back != code:
            raise CausalLMError(
                f"this tokenizer does not give back the Code it was given ({code!r} comes back as {back!r}); "
                "exact-match evaluation needs an exact round trip: use the default model, or one "
                "with a byte-level tokenizer"
            )


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def tiny_causal_lm(tokenizer, config: Optional[TinyLMConfig] = None):
    """A random-init Llama-style causal LM sized by `config`, with `tokenizer`'s vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = config or TinyLMConfig()
    hf = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=c.dim,
        intermediate_size=c.mlp,
        num_hidden_layers=c.layers,
        num_attention_heads=c.heads,
        num_key_value_heads=c.kv_heads or c.heads,
        max_position_embeddings=c.max_len,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        rope_theta=c.rope_theta,
    )
    model = LlamaForCausalLM(hf)
    set_generation_ids(model, tokenizer)
    return model


def set_generation_ids(model, tokenizer) -> None:
    """Make `model.generate` stop at the kit's [EOS] and pad with [PAD] on its own, so that a saved
    folder decodes like the kit with plain `transformers` (generation_config.json)."""
    ids = pair_token_ids(tokenizer)
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id, cfg.pad_token_id, cfg.bos_token_id = ids["eos"], ids["pad"], ids["bos"]


def load_causal_lm(
    name: str = "tiny", texts: Sequence[str] = (), codes: Sequence[str] = (), tiny: Optional[TinyLMConfig] = None
):
    """(model, tokenizer) for `name` (see the table at the top), ready for Text/Code pairs.

    `texts` builds the tiny model's vocabulary (give it the training Texts and Codes); `codes` are
    checked for an exact tokenizer round trip. Hub names are the only case that may touch the network.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    name = str(packaged_folder(name) or name)
    if name == "tiny" or name in RANDOM_SIZES:
        cfg = (tiny or TinyLMConfig()) if name == "tiny" else llama_135m()
        tokenizer = build_pair_tokenizer(texts, cfg.min_count)
        model = tiny_causal_lm(tokenizer, cfg)
    elif name.startswith("random:"):
        raise CausalLMError(f"unknown random model '{name}'; use tiny or {', '.join(RANDOM_SIZES)}")
    else:
        local_only = local_or_hub(name, CausalLMError, 'use the default model "tiny"')
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(name, local_files_only=local_only)
        except Exception as e:  # misspelt name, not a causal LM, missing files, ...
            raise CausalLMError(f"could not load the causal LM '{name}': {_first_line(e)}") from None
        if add_pair_tokens(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        set_generation_ids(model, tokenizer)
    check_round_trip(tokenizer, codes)
    return model, tokenizer


def pair_token_ids(tokenizer) -> dict:
    """The ids the paired objective needs: pad, bos, eos, sep; "preds" = the ids of [PRED_1] …
    [PRED_16] in order, "pred" = the first of them."""
    unk = getattr(tokenizer, "unk_token_id", None)
    preds = [tokenizer.convert_tokens_to_ids(t) for t in PREDS]
    ids = {
        "pad": tokenizer.pad_token_id,
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
        "sep": tokenizer.convert_tokens_to_ids(SEP),
        "pred": preds[0],
    }
    if None in ids.values() or None in preds or (unk is not None and unk in [ids["sep"], *preds]):
        raise CausalLMError(
            f"the tokenizer lacks some of the special tokens {PAD} {BOS} {EOS} {SEP} {PREDS[0]}…{PREDS[-1]}"
        )
    if len(set(preds)) != len(preds):
        raise CausalLMError("the predictor tokens [PRED_1] … [PRED_16] must be distinct tokens")
    return {**ids, "preds": preds}


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct trainable parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())


# ---------------------------------------------------------------------------------------------
# Keeping the result: a folder that plain `transformers` reloads
# ---------------------------------------------------------------------------------------------
KIT_FILE = "jepa_lite_paired.json"  # marks a folder written by `save_model_folder`


def check_save_dir(path, nbytes: int = 0) -> None:
    """CausalLMError unless `path` may receive a model, checked before any work: absent, an empty
    folder, or a folder that `save_model_folder` wrote before (which it then replaces), in a writable
    folder (`writer.check_folder_output`) with room for `nbytes` (the model's size; 0: not checked).
    Anything else is the user's."""
    from ..writer import WriteError, check_folder_output, check_room

    try:
        real = check_folder_output(path, KIT_FILE, "--save_dir", "a model folder")
        if nbytes:
            check_room(real.parent, nbytes, "the --save_dir model")
    except WriteError as e:
        raise CausalLMError(str(e)) from None


def save_model_folder(model, tokenizer, path, meta: dict) -> None:
    """Write `model` (safetensors) and `tokenizer` with `save_pretrained`, plus `meta` (what trained
    it) in jepa_lite_paired.json. `AutoModelForCausalLM.from_pretrained(path)` and
    `AutoTokenizer.from_pretrained(path)` load it back without the kit; the kit reads its special
    tokens back from the tokenizer (`pair_token_ids`).

    The folder is written beside `path` and swapped in (`writer.replacing_folder`), so `--model DIR
    --save_dir DIR` replaces the model it started from only once the new one is whole, and a failure
    (a full disk) leaves the old folder as it was. Non-finite weights are refused, nothing written."""
    import json

    from ..checkpoint import first_nonfinite
    from ..writer import WriteError, replacing_folder

    bad = first_nonfinite(model.state_dict().items())
    if bad is not None:
        raise CausalLMError(f"the model holds NaN or infinite weights ({bad}); not saved to --save_dir {path}")
    ids = pair_token_ids(tokenizer)
    tokens = {
        "sep": SEP,
        "preds": list(PREDS),
        "pad": tokenizer.pad_token,
        "bos": tokenizer.bos_token,
        "eos": tokenizer.eos_token,
    }
    info = {"format": "jepa_lite-paired-model-v1", "special_tokens": tokens, "ids": ids, **meta}
    try:
        with replacing_folder(path, KIT_FILE, "--save_dir", "a model folder") as p:
            model.save_pretrained(p, safe_serialization=True)
            tokenizer.save_pretrained(p)
            (p / KIT_FILE).write_text(json.dumps(info, indent=1, default=str) + "\n", encoding="utf-8")
    except WriteError as e:
        raise CausalLMError(str(e)) from None

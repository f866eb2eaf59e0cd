"""The decoder LLM of the paper's objective: a causal LM from `transformers`, and its tokenizer.

`load_causal_lm(name, texts)` returns (model, tokenizer). Names it understands:

| name                         | what you get                                              | network? |
|------------------------------|-----------------------------------------------------------|----------|
| "tiny" (default)             | a Llama-style causal LM with random weights, 4 layers,    | no: the tokenizer is built here, |
|                              | hidden 128 (≈ 0.9 M parameters), and a byte-level         | from your texts, in well under a |
|                              | tokenizer whose vocabulary is built from `texts`          | second                           |
| a hub name or a local folder | that causal LM and its tokenizer, e.g. "gpt2",            | only for a hub name you give     |
|                              | "HuggingFaceTB/SmolLM2-135M"                              |                                  |

Every tokenizer gets the kit's special tokens: `[SEP]` (the end of Text, where Code begins) and
`[PRED]` (the predictor tokens appended to Text), plus `[PAD]`, `[BOS]` and `[EOS]` where it lacks
them; the model's embedding matrix grows to match. Regexes are case- and symbol-sensitive, so
`check_round_trip` refuses a tokenizer that does not give back exactly the Code it was given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .encoders import _first_line, local_or_hub

SEP, PRED = "[SEP]", "[PRED]"
PAD, BOS, EOS = "[PAD]", "[BOS]", "[EOS]"


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
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   extra_special_tokens=[SEP, PRED])


def add_pair_tokens(tokenizer) -> int:
    """Give `tokenizer` the kit's special tokens where it lacks them; returns how many were added."""
    added = 0
    missing = {k: v for k, v in (("pad_token", PAD), ("bos_token", BOS), ("eos_token", EOS)) if getattr(tokenizer, k) is None}
    if missing:
        added += tokenizer.add_special_tokens(missing)
    new = [t for t in (SEP, PRED) if t not in tokenizer.get_vocab()]
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
                "exact-match evaluation needs an exact round trip: use the default model, or one with a byte-level tokenizer"
            )


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def tiny_causal_lm(tokenizer, config: Optional[TinyLMConfig] = None):
    """A random-init Llama-style causal LM sized by `config`, with `tokenizer`'s vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = config or TinyLMConfig()
    hf = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=c.dim, intermediate_size=c.mlp, num_hidden_layers=c.layers,
        num_attention_heads=c.heads, num_key_value_heads=c.heads, max_position_embeddings=c.max_len,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(hf)


def load_causal_lm(name: str = "tiny", texts: Sequence[str] = (), codes: Sequence[str] = (),
                   tiny: Optional[TinyLMConfig] = None):
    """(model, tokenizer) for `name` (see the table at the top), ready for Text/Code pairs.

    `texts` builds the tiny model's vocabulary (give it the training Texts and Codes); `codes` are
    checked for an exact tokenizer round trip. Hub names are the only case that may touch the network.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if name == "tiny":
        cfg = tiny or TinyLMConfig()
        tokenizer = build_pair_tokenizer(texts, cfg.min_count)
        model = tiny_causal_lm(tokenizer, cfg)
    else:
        local_only = local_or_hub(name, CausalLMError, 'use the default model "tiny"')
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(name, local_files_only=local_only)
        except Exception as e:  # misspelt name, not a causal LM, missing files, ...
            raise CausalLMError(f"could not load the causal LM '{name}': {_first_line(e)}") from None
        if add_pair_tokens(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
    check_round_trip(tokenizer, codes)
    return model, tokenizer


def pair_token_ids(tokenizer) -> dict:
    """The ids the paired objective needs: pad, bos, eos, sep and pred."""
    ids = {"pad": tokenizer.pad_token_id, "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id,
           "sep": tokenizer.convert_tokens_to_ids(SEP), "pred": tokenizer.convert_tokens_to_ids(PRED)}
    if None in ids.values():
        raise CausalLMError(f"the tokenizer lacks some of the special tokens {PAD} {BOS} {EOS} {SEP} {PRED}: {ids}")
    return ids


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct trainable parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())

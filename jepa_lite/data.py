"""Text in, training batches out.

    lines of text ──tokenise once──▶ TokenizedCorpus ──(seed, step)──▶ indices ──collate──▶ Batch

A `Batch` carries both views of the same lines: the target view (`input_ids`, the text as is) and the
context view (`masked_input_ids`, spans replaced by [MASK]), plus `pred_mask`, the positions where
the loss is computed.

Every line is tokenised once, up front, with the fast tokenizer in batched mode; a training step only
pads and masks token ids, which is cheap. Which lines go into the batch of step s, and how they are
masked, is a pure function of (seed, s): a resumed run sees exactly the batches the uninterrupted run
would have seen.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from .masking import mask_batch

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
BUILTIN_CORPUS = ASSETS_DIR / "corpus" / "sentences.tsv"


class DataError(ValueError):
    """Input text that cannot be used; the message says what is wrong and what to do."""


# ---------------------------------------------------------------------------------------------
# Corpora
# ---------------------------------------------------------------------------------------------
def builtin_labelled_corpus() -> tuple[List[str], List[str]]:
    """The kit's own corpus: 480 short sentences on 8 topics, and each sentence's topic.

    Returns (sentences, topics). The topics are not used by JEPA training (it is self-supervised);
    they serve the linear probe that checks what the representations learned.
    """
    if not BUILTIN_CORPUS.is_file():
        raise DataError(
            f"the built-in corpus {BUILTIN_CORPUS} is missing; install the kit from its repository "
            "(pip install -e .) so that assets/ sits next to jepa_lite/"
        )
    with open(BUILTIN_CORPUS, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [r["topic"] for r in rows]


def builtin_corpus() -> List[str]:
    """The sentences of the built-in corpus (see `builtin_labelled_corpus`)."""
    return builtin_labelled_corpus()[0]


def load_text_file(path: str | os.PathLike, max_lines: Optional[int] = None) -> List[str]:
    """Non-blank lines of a UTF-8 text file, stripped, at most `max_lines` of them.

    Raises DataError for a missing path, a directory, a binary or non-UTF-8 file, or a file with no
    text, so that a bad `--text_file` ends with one clear line instead of a failure later on.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"text file not found: {p}")
    if not p.is_file():
        raise DataError(f"text file is not a regular file: {p}")
    raw = p.read_bytes()
    if b"\x00" in raw[:65536]:
        raise DataError(f"{p} looks like a binary file (it contains NUL bytes); give a UTF-8 text file, one example per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not valid UTF-8 (byte {e.start}); re-save it as UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(f"{p} has no text: it is empty or holds only blank lines")
    if max_lines is not None:
        lines = lines[:max_lines]
    return lines


# ---------------------------------------------------------------------------------------------
# Tokenisation, batching
# ---------------------------------------------------------------------------------------------
class TokenizedCorpus:
    """Lines tokenised once: `ids[i]` is the id list of line i, with [CLS]/[SEP] (or the model's own
    special tokens) added and truncated to `max_length`.

    Lines that tokenise to nothing but special tokens are dropped (they have nothing to mask).
    """

    def __init__(self, texts: Sequence[str], tokenizer, max_length: int):
        if max_length < 4:
            raise DataError(f"max_length must be at least 4; got {max_length}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
        special = set(tokenizer.all_special_ids)
        kept = [(t, ids) for t, ids in zip(texts, enc["input_ids"]) if any(i not in special for i in ids)]
        if not kept:
            raise DataError("no line has any token to mask after tokenisation")
        self.texts = [t for t, _ in kept]
        self.ids: List[List[int]] = [ids for _, ids in kept]

    def __len__(self) -> int:
        return len(self.ids)

    def n_tokens(self) -> int:
        """Total number of tokens, special tokens included."""
        return sum(len(x) for x in self.ids)


@dataclass
class Batch:
    """Both views of B lines, padded to the longest line L of the batch."""

    input_ids: torch.Tensor  # (B, L) target view: the text as is
    attention_mask: torch.Tensor  # (B, L) 1 = real token, 0 = padding
    masked_input_ids: torch.Tensor  # (B, L) context view: [MASK] at the masked spans
    pred_mask: torch.Tensor  # (B, L) bool: positions where the loss is computed

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in (self.input_ids, self.attention_mask, self.masked_input_ids, self.pred_mask)))


def pad_ids(id_lists: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to the longest one. Returns input_ids (B, L) and attention_mask (B, L)."""
    L = max(len(x) for x in id_lists)
    input_ids = torch.full((len(id_lists), L), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(id_lists), L), dtype=torch.long)
    for row, ids in enumerate(id_lists):
        input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def collate(
    id_lists: Sequence[Sequence[int]],
    tokenizer,
    mask_ratio: float,
    mean_span_len: float,
    generator: Optional[torch.Generator] = None,
    device=None,
) -> Batch:
    """Pad token ids, then mask spans (`masking.mask_batch`) to build the context view.

    Masking runs on `device` (the training device) when given, so a GPU run never loops over tokens
    on the host.
    """
    input_ids, attention_mask = pad_ids(id_lists, tokenizer.pad_token_id)
    if device is not None:
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    masked_input_ids, pred_mask = mask_batch(
        input_ids, attention_mask, tokenizer.all_special_ids, tokenizer.mask_token_id, mask_ratio, mean_span_len, generator
    )
    return Batch(input_ids, attention_mask, masked_input_ids, pred_mask)


def batch_indices(n_items: int, batch_size: int, step: int, seed: int) -> List[int]:
    """Indices of the lines in the batch of optimizer step `step` (0-based).

    Each epoch is a fresh permutation of the lines, drawn from a generator seeded with (seed, epoch);
    an epoch holds ⌊n_items / batch_size⌋ batches (the incomplete last batch is dropped). Being a
    pure function of its arguments, it needs no state to resume.
    """
    if batch_size > n_items:
        raise DataError(f"batch_size {batch_size} is larger than the data ({n_items} lines)")
    per_epoch = n_items // batch_size
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n_items, generator=g)
    return perm[k * batch_size : (k + 1) * batch_size].tolist()


def step_generator(seed: int, step: int, device="cpu") -> torch.Generator:
    """The random generator that masks the batch of step `step`: seeded with (seed, step)."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + 7919 * step + 1)

"""Text in, training batches out.

    lines of text ──tokenise once──▶ TokenizedCorpus ──(seed, epoch)──▶ batches of indices ──collate──▶ Batch

A `Batch` carries both views of the same lines: the target view (`input_ids`, the text as is) and the
context view (`masked_input_ids`, spans replaced by [MASK]), plus `pred_mask`, the positions where
the loss is computed.

Every line is tokenised once, up front, with the fast tokenizer in batched mode; a training step only
pads and masks token ids, which is cheap. Which lines go into the batch of step s, and how they are
masked, is a pure function of (seed, s): a resumed run sees exactly the batches the uninterrupted run
would have seen, and a GPU run sees the same batches as a CPU run.
"""

from __future__ import annotations

import csv
import dataclasses
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
    pred_index: torch.Tensor  # (N,) the same positions as flat indices into B·L (see JEPA.forward)

    def to(self, device) -> "Batch":
        """Copy to `device`. From pinned host memory the copy is asynchronous: the host goes on."""
        return Batch(*(t.to(device, non_blocking=True) for t in dataclasses.astuple(self)))

    def pin_memory(self) -> "Batch":
        return Batch(*(t.pin_memory() for t in dataclasses.astuple(self)))

    @property
    def n_real_tokens(self) -> int:
        """Non-padding tokens in the batch (what throughput is counted in)."""
        return int(self.attention_mask.sum())


def pad_ids(id_lists: Sequence[Sequence[int]], pad_id: int, pad_to_multiple_of: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to the longest one (rounded up to a multiple of `pad_to_multiple_of`).

    Returns input_ids (B, L) and attention_mask (B, L).
    """
    L = max(len(x) for x in id_lists)
    L = -(-L // pad_to_multiple_of) * pad_to_multiple_of
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
    pad_to_multiple_of: int = 1,
) -> Batch:
    """Pad token ids, then mask spans (`masking.mask_batch`) to build the context view. On the host.

    Masking on the host (vectorised, about a millisecond for 64 rows of 128 tokens) lets a GPU run
    the previous step meanwhile, and gives the GPU the masked positions as ready-made indices: the
    GPU never has to stop and report how many tokens were masked.
    """
    input_ids, attention_mask = pad_ids(id_lists, tokenizer.pad_token_id, pad_to_multiple_of)
    masked_input_ids, pred_mask = mask_batch(
        input_ids, attention_mask, tokenizer.all_special_ids, tokenizer.mask_token_id, mask_ratio, mean_span_len, generator
    )
    pred_index = pred_mask.flatten().nonzero().squeeze(1)  # (N,)
    return Batch(input_ids, attention_mask, masked_input_ids, pred_mask, pred_index)


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool = False) -> List[List[int]]:
    """The batches of one epoch, as lists of line indices.

    A fresh permutation of the lines per epoch, drawn from a generator seeded with (seed, epoch); the
    incomplete last batch is dropped. With `group_by_length`, the permutation is cut into chunks of
    64 batches, each chunk sorted by line length and split into batches, and the batches shuffled:
    lines of similar length share a batch, so little compute goes to padding, and batches still come
    in random order.
    """
    n_items = len(lengths)
    if batch_size > n_items:
        raise DataError(f"batch_size {batch_size} is larger than the data ({n_items} lines)")
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n_items, generator=g).tolist()
    n_batches = n_items // batch_size
    perm = perm[: n_batches * batch_size]
    if group_by_length:
        chunk = 64 * batch_size
        perm = [i for c in range(0, len(perm), chunk) for i in sorted(perm[c : c + chunk], key=lambda i: lengths[i])]
    batches = [perm[k * batch_size : (k + 1) * batch_size] for k in range(n_batches)]
    if group_by_length:
        order = torch.randperm(n_batches, generator=g).tolist()
        batches = [batches[k] for k in order]
    return batches


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random generator that masks the batch of step `step`: seeded with (seed, step)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + 7919 * step + 1)

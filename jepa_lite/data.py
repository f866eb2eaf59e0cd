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
import math
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence as SequenceABC
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
    try:
        raw = p.read_bytes()
    except OSError as e:  # no permission, an I/O error, …
        raise DataError(f"cannot read the text file {p}: {e.strerror or e}") from None
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
    """Lines tokenised once, with [CLS]/[SEP] (or the model's own special tokens) added and truncated
    to `max_length`.

    Stored as one flat tensor of ids (`flat`) plus where each line starts (`offsets`) and how long it
    is (`lengths`): 50,000 lines take one tensor, not 50,000 Python lists, and a batch is cut out
    with a few tensor operations (`padded`). `ids[i]` gives line i as a list. Lines that tokenise to
    nothing but special tokens are dropped (they have nothing to mask).
    """

    def __init__(self, texts: Sequence[str], tokenizer, max_length: int):
        if max_length < 4:
            raise DataError(f"max_length must be at least 4; got {max_length}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)["input_ids"]
        special = set(tokenizer.all_special_ids)
        keep = [k for k, ids in enumerate(enc) if any(i not in special for i in ids)]
        if not keep:
            raise DataError("no line has any token to mask after tokenisation")
        self.texts = [texts[k] for k in keep]
        self.lengths = torch.tensor([len(enc[k]) for k in keep], dtype=torch.long)  # (N,)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths  # (N,) start of each line in `flat`
        self.flat = torch.tensor([i for k in keep for i in enc[k]], dtype=torch.long)  # (total tokens,)
        self.ids = _Lines(self)

    def __len__(self) -> int:
        return len(self.lengths)

    def n_tokens(self) -> int:
        """Total number of tokens, special tokens included."""
        return int(self.lengths.sum())

    def padded(self, rows: Sequence[int], pad_to_multiple_of: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Lines `rows`, right-padded: input_ids (B, L) and attention_mask (B, L). Same as `pad_ids`."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        lengths = self.lengths[rows]  # (B,)
        L = -(-int(lengths.max()) // pad_to_multiple_of) * pad_to_multiple_of
        col = torch.arange(L)
        attention_mask = col[None, :] < lengths[:, None]  # (B, L)
        index = (self.offsets[rows][:, None] + col[None, :]).clamp_(max=len(self.flat) - 1)  # (B, L) into flat
        input_ids = self.flat.index_select(0, index.flatten()).view(len(rows), L)
        input_ids.masked_fill_(~attention_mask, self.tokenizer.pad_token_id)
        return input_ids, attention_mask.long()


class _Lines(SequenceABC):
    """Read-only list view of a TokenizedCorpus: `ids[i]` is line i's token ids as a list."""

    def __init__(self, corpus: TokenizedCorpus):
        self.c = corpus

    def __len__(self) -> int:
        return len(self.c)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        start = int(self.c.offsets[i])
        return self.c.flat[start : start + int(self.c.lengths[i])].tolist()


@dataclass
class Batch:
    """Both views of B lines, padded to the longest line L of the batch."""

    input_ids: torch.Tensor  # (B, L) target view: the text as is
    attention_mask: torch.Tensor  # (B, L) 1 = real token, 0 = padding
    masked_input_ids: torch.Tensor  # (B, L) context view: [MASK] at the masked spans
    pred_mask: torch.Tensor  # (B, L) bool: positions where the loss is computed
    pred_index: torch.Tensor  # (N,) the same positions as flat indices into B·L (see JEPA.forward); padded for CUDA graphs (with_pred_capacity)

    def tensors(self) -> tuple:
        """The fields, in order, as the tensors themselves (`dataclasses.astuple` would deep-copy each)."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def to(self, device) -> "Batch":
        """Copy to `device`. To a GPU the tensors go through pinned (page-locked) host memory first:
        a copy from ordinary memory makes the host wait until the GPU has finished all the work
        queued before it, a copy from pinned memory is only queued, so the next batch can be
        prepared while the GPU still runs the current step."""
        device = torch.device(device)
        batch = self.pinned() if device.type == "cuda" and self.input_ids.device.type == "cpu" else self
        return Batch(*(t.to(device, non_blocking=True) for t in batch.tensors()))

    def with_pred_capacity(self, capacity: int) -> "Batch":
        """The same batch with `pred_index` lengthened to `capacity` entries: the N masked positions,
        then copies of the first position that is not masked (filler that `JEPA.fixed_shape_loss`
        weights 0). For CUDA graphs, whose shapes must not change with N (`pred_capacity`)."""
        n = self.pred_index.numel()
        if n > capacity:
            raise ValueError(f"{n} masked positions do not fit in a predictor index of {capacity}")
        filler = (~self.pred_mask.flatten()).nonzero()[:1, 0]  # (1,) the first unmasked position
        if filler.numel() == 0:
            raise ValueError("every position is masked: no filler position for the predictor index")
        index = torch.cat([self.pred_index, filler.expand(capacity - n)])
        return dataclasses.replace(self, pred_index=index)

    def pinned(self) -> "Batch":
        """The same batch in pinned host memory (a no-op for tensors already pinned)."""
        return Batch(*(t.pin_memory() for t in self.tensors()))

    @property
    def n_real_tokens(self) -> int:
        """Non-padding tokens in the batch (what throughput is counted in)."""
        return int(self.attention_mask.sum())


def pred_capacity(batch_size: int, length: int, mask_ratio: float) -> int:
    """The most positions `masking.mask_batch` can mask in a (batch_size, length) batch, plus slack.

    A row with n maskable tokens gets k = max(1, ⌊mask_ratio·n + U⌋) masked positions, U < 1, and
    n ≤ length, so k ≤ ⌈mask_ratio·length⌉ + 1 (the +1 also absorbs float rounding). A function of
    the shape alone: the CUDA-graph path pads `pred_index` to this size (`Batch.with_pred_capacity`).
    """
    return batch_size * (math.ceil(mask_ratio * length) + 1)


def pad_ids(id_lists: Sequence[Sequence[int]], pad_id: int, pad_to_multiple_of: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to the longest one (rounded up to a multiple of `pad_to_multiple_of`).

    Returns input_ids (B, L) and attention_mask (B, L).
    """
    lengths = torch.tensor([len(x) for x in id_lists])  # (B,)
    L = int(lengths.max())
    L = -(-L // pad_to_multiple_of) * pad_to_multiple_of
    attention_mask = (torch.arange(L)[None, :] < lengths[:, None]).long()  # (B, L)
    input_ids = torch.full((len(id_lists), L), pad_id, dtype=torch.long)
    # one flat tensor of all ids, scattered row by row into the real positions (row-major order)
    input_ids[attention_mask.bool()] = torch.tensor([i for ids in id_lists for i in ids], dtype=torch.long)
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
    return make_batch(input_ids, attention_mask, tokenizer, mask_ratio, mean_span_len, generator)


def make_batch(input_ids, attention_mask, tokenizer, mask_ratio: float, mean_span_len: float, generator=None) -> Batch:
    """Padded target view (B, L) → Batch with the context view, `pred_mask` and `pred_index`."""
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


class StepBatches:
    """The batches of a training run, indexed by optimizer step: `plan[step]` is the host-side Batch
    of step `step`, and `plan.lines(step)` the corpus lines in it.

    Step s is batch s mod E of epoch s div E (E = batches per epoch, see `epoch_batches`), masked with
    `step_generator(seed, s)`: a pure function of (seed, s), so the batches can be made in any order
    and by any thread.
    """

    def __init__(
        self, corpus: TokenizedCorpus, batch_size: int, seed: int, mask_ratio: float, mean_span_len: float, group_by_length: bool,
        pad_to_multiple_of: int = 1, fixed_pred_index: bool = False,
    ):  # fmt: skip
        self.corpus, self.batch_size, self.seed = corpus, batch_size, seed
        self.mask_ratio, self.mean_span_len = mask_ratio, mean_span_len
        self.group_by_length, self.pad_to_multiple_of = group_by_length, pad_to_multiple_of
        self.fixed_pred_index = fixed_pred_index  # pad pred_index to `pred_capacity` (CUDA graphs)
        self.per_epoch = len(corpus) // batch_size
        self._epoch: tuple[int, list] = (-1, [])  # the batches of the last epoch asked for

    def lines(self, step: int) -> List[int]:
        """Indices of the corpus lines in the batch of step `step`."""
        epoch, k = divmod(step, self.per_epoch)
        if self._epoch[0] != epoch:
            lengths = self.corpus.lengths.tolist()
            self._epoch = (epoch, epoch_batches(lengths, self.batch_size, self.seed, epoch, self.group_by_length))
        return self._epoch[1][k]

    def __getitem__(self, step: int) -> Batch:
        input_ids, attention_mask = self.corpus.padded(self.lines(step), self.pad_to_multiple_of)
        generator = step_generator(self.seed, step)
        batch = make_batch(input_ids, attention_mask, self.corpus.tokenizer, self.mask_ratio, self.mean_span_len, generator)
        if self.fixed_pred_index:
            batch = batch.with_pred_capacity(pred_capacity(*input_ids.shape, self.mask_ratio))
        return batch

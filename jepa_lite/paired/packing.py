"""Several pairs in one row: `--views packed --pack_length N`, the fast path of the paper's objective.

`--views packed` alone gives each pair a row of its own, [LM row | Text view | Code view] (`rows.py`).
With `pack_length` N the pairs of a micro-batch are laid one after another in rows of exactly N
tokens, each pair whole in one row (first fit, in the batch's order):

    row 0   [a: LM | Text | Code][b: LM | Text | Code][c: LM | Text | Code] pad …
    row 1   [d: LM | Text | Code][e: …] pad …

Every block still sees only the earlier tokens of its own block (`rows.block_causal_mask`: block
numbers run on across the pairs of a row) and its positions restart at 0, so each block computes what
it computes alone and the losses and gradients are those of the separate rows
(`tests/test_paired_pack.py`). Long rows of one length waste little on padding (NL-RX-SYNTH pairs are
~70 tokens packed; one row per pair pads each to the batch's longest) and give an accelerator the
same shapes step after step. Not on the reading path: `PairedTrainer.separate_forward` is the
readable version this one is tested equal to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Sequence

import torch

from .rows import IGNORE, Packed


@dataclass
class PairsInRows:
    """A micro-batch packed into R rows of N tokens. `packed` holds the (R, N) tensors; `x_index` and
    `y_index` (B,) are the flat indices (row · N + column) of each pair's Pred(Enc(Text)) and Enc(Code)."""

    packed: Packed
    x_index: torch.Tensor
    y_index: torch.Tensor


def first_fit(lengths: Sequence[int], capacity: int) -> List[List[int]]:
    """Rows of item numbers: each item, in order, goes into the first row with room for it.
    Every length must be ≤ capacity (the caller checks: `PairedConfig.validate`)."""
    rows: List[List[int]] = []
    room: List[int] = []
    for i, n in enumerate(lengths):
        r = next((r for r, free in enumerate(room) if free >= n), len(rows))
        if r == len(rows):
            rows.append([])
            room.append(capacity)
        rows[r].append(i)
        room[r] -= n
    return rows


def pack_pairs(
    blocks: Sequence[Sequence[List[int]]],
    labels: Sequence[Sequence[List[int]]],
    x_at: Sequence[int],
    y_at: Sequence[int],
    length: int,
    pad_id: int,
    rows: int = 0,
) -> PairsInRows:
    """Pairs (pair i = its blocks `blocks[i]`, their `labels[i]`, Pred(Enc(Text)) at offset `x_at[i]`
    and Enc(Code) at `y_at[i]` of its concatenated blocks) → rows of exactly `length` tokens, padded
    on the right; at least `rows` of them (rows of padding alone added), so that every step of a run
    can have one shape. Block numbers start at 1 in each row and run on across its pairs; 0 = padding."""
    sizes = [sum(len(b) for b in pair) for pair in blocks]
    layout = first_fit(sizes, length)
    R = max(len(layout), rows)
    # each row laid out as Python lists, then one tensor per field: no small tensor per block on the hot path
    ids, labs, nums, pos = ([[fill] * length for _ in range(R)] for fill in (pad_id, IGNORE, 0, 0))
    x_index, y_index = [0] * len(blocks), [0] * len(blocks)
    for r, pairs in enumerate(layout):
        at, number = 0, 0
        for i in pairs:
            x_index[i], y_index[i] = r * length + at + x_at[i], r * length + at + y_at[i]
            for b, lab in zip(blocks[i], labels[i]):
                number += 1
                end = at + len(b)
                ids[r][at:end], labs[r][at:end] = b, lab
                nums[r][at:end], pos[r][at:end] = [number] * len(b), range(len(b))
                at = end
    input_ids, label_ids, block, pos = (torch.tensor(t, dtype=torch.long) for t in (ids, labs, nums, pos))
    x_index, y_index = torch.tensor(x_index, dtype=torch.long), torch.tensor(y_index, dtype=torch.long)
    packed = Packed(input_ids, label_ids, (block > 0).long(), block, pos, torch.zeros((R, 0), dtype=torch.long))
    return PairsInRows(packed, x_index, y_index)


def most_rows(batches: Iterable[Sequence[int]], length: int) -> int:
    """The most rows of `length` tokens that `first_fit` needs for any of `batches` (each a list of pair sizes)."""
    return max((len(first_fit(sizes, length)) for sizes in batches), default=1)


def enc_offsets(text_length: int, k: int, blocks: Sequence[List[int]], back: int) -> tuple[int, int]:
    """(offset of Pred(Enc(Text)), offset of Enc(Code)) in one pair's concatenated blocks
    [LM row, (Text view), Code view]: k = 0 reads Enc(Text) at the LM row's [SEP] (1 + len(Text)),
    k ≥ 1 at the Text view's last [PRED]; Enc(Code) at the Code view's end, `back` tokens before it."""
    x = 1 + text_length if k == 0 else len(blocks[0]) + len(blocks[1]) - 1
    return x, sum(len(b) for b in blocks) - 1 - back


def lm_row_tokens(n_text: int, n_code: int) -> int:
    """Tokens of one pair's LM row [BOS] Text [SEP] Code [EOS]."""
    return n_text + n_code + 3


def pair_tokens(n_text: int, n_code: int, k: int) -> int:
    """Tokens of one pair's blocks: LM row (Text + Code + 3) + Text view (Text + 2 + k; none for k = 0)
    + Code view (Code + 2)."""
    return lm_row_tokens(n_text, n_code) + (n_text + 2 + k if k > 0 else 0) + (n_code + 2)


def longest_pair(max_length: int, k: int) -> int:
    """The most tokens one pair's blocks can take when Text and Code are each cut to
    `max_length − k − 3` tokens (`PairedTrainer`)."""
    cap = max_length - k - 3
    return pair_tokens(cap, cap, k)


def flex_block_mask(block: torch.Tensor):
    """`rows.block_causal_mask` as a FlexAttention `BlockMask` (R, 1, N, N), for a model loaded with
    `attn_implementation="flex_attention"` (`--attention flex`): query q sees key k iff k ≤ q in the same
    block (numbers from `pack_pairs`, 0 = padding), and a pad query sees itself. Only the 128 × 128 tiles
    that hold an allowed pair are computed — on rows of many short blocks, a thin band along the diagonal."""
    from torch.nn.attention.flex_attention import create_block_mask

    def allowed(b, h, q, k):
        return ((block[b, q] == block[b, k]) & (k <= q) & (block[b, k] > 0)) | (q == k)

    R, N = block.shape
    return create_block_mask(allowed, B=R, H=None, Q_LEN=N, KV_LEN=N, device=block.device)

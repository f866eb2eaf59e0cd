"""The rows of the paper's objective: what one (Text, Code) pair becomes before it meets the model.

The readable way (`--views separate`, the default), three rows per pair, each its own sequence:

    LM row      [BOS] Text [SEP] Code [EOS]        next-token loss (which tokens: `lm_tokens`)
    Text view   [BOS] Text [SEP] [PRED_1]…[PRED_k]  Pred(Enc(Text)) = last layer's state at its last token
    Code view   [BOS] Code [EOS]                   Enc(Code) at [EOS], or at the last Code token
                                                   (`code_position` "eos" | "last")

The packed way (`--views packed`), one row per pair and one forward pass for all of it:

    [BOS] Text [SEP] Code [EOS] | [BOS] Text [SEP] [PRED_1]…[PRED_k] | [BOS] Code [EOS]     (k ≥ 1)
    [BOS] Text [SEP] Code [EOS] | [BOS] Code [EOS]                                         (k = 0)

with a block-causal attention mask (a token sees the earlier tokens of its own block, nothing else)
and position ids restarted at 0 in each block, so every block computes exactly what it computes
alone — the paper's "additive mask" (§ 3.2; the official code packs Text and Code that way, with
positions running on). With k = 0 the Text view `[BOS] Text [SEP]` is a prefix of the LM row, and
a causal model's state at [SEP] does not depend on what follows: Enc(Text) is read from the LM row
itself and only the Code view costs extra tokens. `tests/test_paired_packed.py` checks that both
ways give the same embeddings, losses and gradients, with padding on either side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch
import torch.nn.functional as F

from ..losses import get_loss

IGNORE = -100  # label of a position the LM loss does not score


# ---------------------------------------------------------------------------------------------
# The three rows
# ---------------------------------------------------------------------------------------------
def lm_row(text: List[int], code: List[int], ids: dict, lm_tokens: str = "code") -> tuple[List[int], List[int]]:
    """`[BOS] Text [SEP] Code [EOS]` and its labels.

    lm_tokens = "code": only Code and [EOS] are scored (IGNORE elsewhere) — fine-tuning to write Code
    from Text. "all": every token after [BOS] is scored, Text included — what the official runs
    trained (their collator rebuilt `labels = input_ids`).
    """
    tokens = [ids["bos"], *text, ids["sep"], *code, ids["eos"]]
    if lm_tokens == "all":
        return tokens, [IGNORE, *tokens[1:]]
    labels = [IGNORE] * (len(text) + 2) + [*code, ids["eos"]]
    return tokens, labels


def text_view(text: List[int], k: int, ids: dict) -> List[int]:
    """`[BOS] Text [SEP] [PRED_1] … [PRED_k]`: Pred(Enc(Text)) is read at its last token."""
    return [ids["bos"], *text, ids["sep"], *ids["preds"][:k]]


def code_view(code: List[int], ids: dict) -> List[int]:
    """`[BOS] Code [EOS]`: Enc(Code) is read at [EOS] or at the last Code token before it."""
    return [ids["bos"], *code, ids["eos"]]


def code_back(code_position: str) -> int:
    """How many tokens before the end of the Code view Enc(Code) is read: 0 at [EOS], 1 at the last
    Code token (the official Llama setting, `last_token = -2`: the token before `<|eot_id|>`)."""
    return 1 if code_position == "last" else 0


def pad_rows(
    rows: Sequence[List[int]], pad_id: int, side: str = "right", multiple: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths → (ids (B, L), attention_mask (B, L)), padded on `side` to the longest
    row's length rounded up to a multiple of `multiple` (fewer shapes: `fastpath.length_multiple`)."""
    L = -(-max(len(r) for r in rows) // multiple) * multiple
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        span = slice(0, len(r)) if side == "right" else slice(L - len(r), L)
        ids[i, span] = torch.tensor(r, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """0, 1, 2, … over the real tokens of each row, whichever side the padding is on: (B, L)."""
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def last_token_index(attention_mask: torch.Tensor, back: int = 0) -> torch.Tensor:
    """Index of the last real (non-pad) token of each row, minus `back`, for right or left padding: (B,)."""
    L = attention_mask.shape[1]
    return L - 1 - attention_mask.flip(dims=[1]).argmax(dim=1) - back


def run_model(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor):
    """(logits (B, L, V), last layer's hidden states (B, L, D)) of the causal LM."""
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        output_hidden_states=True,
        use_cache=False,
    )
    return out.logits, out.hidden_states[-1]


def last_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, back: int = 0):
    """Run the causal LM; return (logits (B, L, V), Enc (B, D) = the last layer's state at each
    row's last real token, or `back` tokens before it)."""
    logits, h = run_model(model, input_ids, attention_mask, position_ids(attention_mask))  # h: (B, L, D)
    rows = torch.arange(h.shape[0], device=h.device)
    return logits, h[rows, last_token_index(attention_mask, back).to(h.device)]  # (B, D)


def lm_sum_and_states(model, input_ids, attention_mask, positions, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ next-token CE over the scored labels, last layer's states (B, L, D)): one function, so that
    `torch.compile` fuses the loss with the model (the packed rows' fast path)."""
    logits, h = run_model(model, input_ids, attention_mask, positions)
    return lm_loss_sum(logits, labels), h


def model_states(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor):
    """The last layer's states (B, L, D) of the causal LM's body, without its LM head: the same numbers as
    `run_model`'s second output, with no (B, L, V) logits made."""
    out = model.base_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False)
    return out.last_hidden_state


def scored_at(labels: torch.Tensor, multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the LM loss scores a prediction, for `head_loss_sum`: (index into the flattened (B·L)
    positions of each position t whose next label t + 1 is scored, those labels). Built on the host,
    so the gather on the device waits for nothing. With `multiple` > 1 the count is rounded up to a
    multiple of it with position 0 and label IGNORE, which add nothing to the sum (fewer shapes for the
    LM head's products)."""
    b, t = (labels[:, 1:] != IGNORE).nonzero(as_tuple=True)
    at, targets = b * labels.shape[1] + t, labels[b, t + 1]
    extra = -len(at) % multiple
    if not extra:
        return at, targets
    return torch.cat([at, at.new_zeros(extra)]), torch.cat([targets, targets.new_full((extra,), IGNORE)])


def head_apart(model) -> bool:
    """Whether the causal LM's logits are its output embedding applied to its body's last states (a
    plain LM head: Llama, GPT-2, the kit's models) — checked on a short probe, so a model whose head
    does more (a logit scale, soft-capping) keeps the whole-row logits."""
    head = model.get_output_embeddings()
    if head is None:
        return False
    was_training, device = model.training, next(model.parameters()).device
    ids = torch.arange(1, 6, device=device).remainder(model.config.vocab_size)[None]
    mask, positions = torch.ones_like(ids), torch.arange(5, device=device)[None]
    model.eval()
    try:
        with torch.no_grad():
            logits, _ = run_model(model, ids, mask, positions)
            apart = head(model_states(model, ids, mask, positions))
        return apart.shape == logits.shape and torch.allclose(apart.float(), logits.float(), rtol=1e-4, atol=1e-4)
    except (AttributeError, TypeError, ValueError):
        return False
    finally:
        model.train(was_training)


def head_loss_sum(model, states: torch.Tensor, at: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Σ next-token CE with the LM head applied only where a label is scored: the same sum as
    `lm_loss_sum(head(states), labels)` for (at, targets) = `scored_at(labels)`, without the logits of
    the positions nothing is learned from (the Text before [SEP], the Code view's block, the padding)."""
    logits = model.get_output_embeddings()(states.flatten(0, 1)[at])  # (n scored, V)
    return F.cross_entropy(logits.float(), targets, ignore_index=IGNORE, reduction="sum")


def lm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ over scored labels of the next-token cross-entropy: position t predicts label t+1."""
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE, reduction="sum"
    )


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, mean over scored labels (what Hugging Face's `labels=` computes)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE)


def jepa_distance(pred: torch.Tensor, target: torch.Tensor, distance: str = "cosine") -> torch.Tensor:
    """mean_i d(Pred(Enc(Text_i)), Enc(Code_i)): 1 − cos for "cosine", ‖p − t‖₂ for "l2"."""
    return get_loss(distance)(pred.float(), target.float())


# ---------------------------------------------------------------------------------------------
# Packed rows: several blocks in one sequence, a block-causal mask
# ---------------------------------------------------------------------------------------------
@dataclass
class Packed:
    """A batch of packed rows. `input_ids`, `labels`, `attention_mask` (1 = real), `block` (block
    number from 1 per token, 0 = pad) and `position_ids` are (B, L); `starts` (B, n_blocks) is the
    index in the row where each block begins."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor
    block: torch.Tensor
    position_ids: torch.Tensor
    starts: torch.Tensor


def pack_rows(
    rows: Sequence[Sequence[List[int]]],
    labels: Sequence[Sequence[List[int]]],
    pad_id: int,
    side: str = "right",
    multiple: int = 1,
) -> Packed:
    """Rows made of blocks (row i = blocks rows[i][0], rows[i][1], …, the same number in every row),
    with their labels → one padded Packed batch (`pad_rows`' `multiple`). Positions restart at 0 in each block."""
    flat = [[t for block in r for t in block] for r in rows]
    flat_labels = [[t for block in r for t in block] for r in labels]
    input_ids, mask = pad_rows(flat, pad_id, side, multiple)
    label_ids, _ = pad_rows(flat_labels, IGNORE, side, multiple)
    B, L = input_ids.shape
    block = torch.zeros((B, L), dtype=torch.long)
    pos = torch.zeros((B, L), dtype=torch.long)
    starts = torch.zeros((B, len(rows[0])), dtype=torch.long)
    for i, r in enumerate(rows):
        at = 0 if side == "right" else L - len(flat[i])
        for b, blk in enumerate(r):
            starts[i, b] = at
            block[i, at : at + len(blk)] = b + 1
            pos[i, at : at + len(blk)] = torch.arange(len(blk))
            at += len(blk)
    return Packed(input_ids, label_ids, mask, block, pos, starts)


def block_causal_mask(block: torch.Tensor, model=None) -> torch.Tensor:
    """(B, 1, L, L) attention mask: query i sees key j iff j ≤ i and both are real tokens of the same
    block. A pad query sees only itself (a row with nothing to attend to would give NaN, which the
    next layer would spread). Boolean (True = attend) for SDPA; additive (0 / most negative number)
    for the eager implementation, which adds the mask to the scores."""
    L = block.shape[1]
    same = (block[:, :, None] == block[:, None, :]) & (block[:, None, :] > 0)  # (B, L, L)
    causal = torch.ones(L, L, dtype=torch.bool, device=block.device).tril()
    allowed = (same & causal) | torch.eye(L, dtype=torch.bool, device=block.device)
    allowed = allowed[:, None]  # (B, 1, L, L)
    if attention_implementation(model) == "eager":
        dtype = next(model.parameters()).dtype
        return torch.zeros(allowed.shape, dtype=dtype, device=block.device).masked_fill(
            ~allowed, torch.finfo(dtype).min
        )
    return allowed


def attention_implementation(model) -> str:
    """The attention kernel family a Hugging Face model was loaded with ("sdpa", "eager", …)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) or "sdpa"


CUSTOM_MASK_IMPLEMENTATIONS = ("sdpa", "eager")  # the ones that take a (B, 1, L, L) mask as given


def packed_pair_rows(text: List[int], code: List[int], k: int, ids: dict, lm_tokens: str = "code"):
    """The blocks of one pair's packed row and their labels: [LM row, (Text view if k ≥ 1), Code view]."""
    tokens, labels = lm_row(text, code, ids, lm_tokens)
    views = ([text_view(text, k, ids)] if k > 0 else []) + [code_view(code, ids)]
    return [tokens, *views], [labels, *[[IGNORE] * len(v) for v in views]]


def packed_enc_index(
    packed: Packed, text_lengths: Sequence[int], k: int, back: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(index of Pred(Enc(Text)), index of Enc(Code)) in each packed row: (B,), (B,).

    k = 0: [SEP] of the LM block, at 1 + len(Text) from its start. k ≥ 1: the last [PRED] token,
    the end of block 2. Code: the end of the last block (the row's last real token), minus `back`.
    """
    if k == 0:
        x = packed.starts[:, 0] + 1 + torch.tensor(list(text_lengths), dtype=torch.long)
    else:
        x = packed.starts[:, 2] - 1
    return x, last_token_index(packed.attention_mask, back)

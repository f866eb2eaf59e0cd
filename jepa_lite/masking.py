"""Span masking: choose which tokens the context encoder must not see.

JEPA hides contiguous *spans* of a sentence, not scattered single tokens. A single hidden word can
often be guessed from its neighbours' spelling; a hidden span of five words forces the model to
infer meaning from the surrounding context.

The sampling process (the same in both versions below):

1. The *maskable* positions of a row are its real tokens minus special tokens ([CLS], [SEP], [PAD],
   ...). Let n be their number.
2. The row's budget is  b = ⌊mask_ratio · n + U⌋,  U ~ Uniform(0, 1)   (stochastic rounding, so that
   E[b] = mask_ratio · n exactly), and at least 1 when n > 0.
3. Repeat until b positions are masked:
     - draw a span length  ℓ ~ Geometric(p = 1 / mean_span_len)  on {1, 2, ...}, the discrete
       exponential law: P(ℓ) = p (1 − p)^(ℓ−1), E[ℓ] = mean_span_len. It is sampled as ℓ = ⌈E⌉ with
       E ~ Exponential(rate λ = −ln(1 − p)).
     - pick a start uniformly among the maskable positions not yet masked;
     - mask the positions start, start+1, ... for ℓ steps, stopping early at a special token, at the
       end of the row, or when the budget b is reached.

Because each span is clipped to the remaining budget, a row ends with exactly b masked positions:
the masked fraction is unbiased. (The script of the article the kit grew from overshoots: it adds whole
spans until it has *at least* its target; notebook 01 § 3 measures by how much on the kit's corpus.)

`sample_span_mask` is the readable one-row version, written as loops that follow the list above.
`mask_batch` is the vectorised version the trainer uses: the same process for a whole batch at once,
on whatever device the batch lives on. `tests/test_masking.py` checks that the two agree in
distribution.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import torch


def check_masking_args(mask_ratio: float, mean_span_len: float) -> None:
    """Raise ValueError unless 0 < mask_ratio < 1 and mean_span_len ≥ 1."""
    if not (isinstance(mask_ratio, (int, float)) and 0.0 < mask_ratio < 1.0):
        raise ValueError(f"mask_ratio must be in (0, 1); got {mask_ratio}")
    if not (isinstance(mean_span_len, (int, float)) and math.isfinite(mean_span_len) and mean_span_len >= 1):
        raise ValueError(f"mean_span_len must be at least 1; got {mean_span_len}")


def span_rate(mean_span_len: float) -> float:
    """λ = −ln(1 − 1/mean_span_len), so that ⌈Exponential(λ)⌉ has mean `mean_span_len`.

    For mean_span_len = 1 every span has length 1 (λ = ∞).
    """
    p = 1.0 / mean_span_len
    return math.inf if p >= 1.0 else -math.log1p(-p)


def sample_span_length(mean_span_len: float, generator: Optional[torch.Generator] = None) -> int:
    """One span length ℓ ≥ 1 with P(ℓ) = p (1 − p)^(ℓ−1), p = 1 / mean_span_len."""
    rate = span_rate(mean_span_len)
    if math.isinf(rate):
        return 1
    u = torch.rand((), generator=generator).item()  # U ~ Uniform[0, 1)
    e = -math.log1p(-u) / rate  # E ~ Exponential(rate)
    return max(1, math.ceil(e))


def sample_span_mask(
    maskable: Sequence[bool],
    mask_ratio: float,
    mean_span_len: float,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Readable span masking of one row.

    Args:
        maskable: one flag per position, True where the token may be masked (real, non-special).
        mask_ratio: fraction of the maskable positions to mask, in (0, 1).
        mean_span_len: mean span length, ≥ 1.
        generator: optional torch.Generator for reproducibility.

    Returns:
        BoolTensor of the row's length, True at masked positions. Exactly b positions are True with
        b = max(1, ⌊mask_ratio · n + U⌋), n = number of maskable positions (0 if n = 0).
    """
    check_masking_args(mask_ratio, mean_span_len)
    maskable = [bool(x) for x in maskable]
    length = len(maskable)
    mask = [False] * length
    n = sum(maskable)
    if n == 0:
        return torch.zeros(length, dtype=torch.bool)

    u = torch.rand((), generator=generator).item()
    budget = max(1, math.floor(mask_ratio * n + u))  # step 2: stochastic rounding

    n_masked = 0
    while n_masked < budget:  # step 3
        span_len = sample_span_length(mean_span_len, generator)
        free = [i for i in range(length) if maskable[i] and not mask[i]]
        start = free[torch.randint(len(free), (), generator=generator).item()]
        i = start
        while span_len > 0 and i < length and maskable[i] and n_masked < budget:
            if not mask[i]:
                mask[i] = True
                n_masked += 1
            i += 1
            span_len -= 1
    return torch.tensor(mask, dtype=torch.bool)


def special_tokens_mask(input_ids: torch.Tensor, special_ids: Iterable[int]) -> torch.Tensor:
    """True where `input_ids` holds one of `special_ids` ([CLS], [SEP], [PAD], [MASK], ...). Shape kept."""
    ids = torch.tensor(sorted(set(int(i) for i in special_ids)), dtype=input_ids.dtype, device=input_ids.device)
    if len(ids) <= 8:  # the usual case: a few ==, cheaper than a general set lookup
        found = torch.zeros_like(input_ids, dtype=torch.bool)
        for i in ids.tolist():
            found |= input_ids == i
        return found
    return torch.isin(input_ids, ids)


def mask_spans(
    maskable: torch.Tensor,
    mask_ratio: float,
    mean_span_len: float,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Vectorised span masking of a batch: the process of `sample_span_mask`, all rows at once.

    Args:
        maskable: (B, L) bool, True where a token may be masked.

    Returns:
        pred_mask: (B, L) bool, True at masked positions; every row with a maskable position has
        exactly max(1, ⌊mask_ratio · n + U⌋) of them.

    Each loop iteration places one span in every row that still has budget left, so the loop runs
    about budget / mean_span_len times, not once per token. The loop's ~20 small tensor operations
    run in inference mode, which skips autograd's bookkeeping: ~10% faster on a CPU, where the
    per-operation overhead is most of the cost. The result is copied out of inference mode so that
    it is an ordinary tensor (it can be changed in place, or saved for a backward pass).
    """
    check_masking_args(mask_ratio, mean_span_len)
    with torch.inference_mode():
        pred_mask = _place_spans(maskable, mask_ratio, mean_span_len, generator)
    return pred_mask.clone()


def _place_spans(
    maskable: torch.Tensor, mask_ratio: float, mean_span_len: float, generator: Optional[torch.Generator]
) -> torch.Tensor:
    """The loop of `mask_spans`: (B, L) maskable → (B, L) pred_mask."""
    B, L = maskable.shape
    device = maskable.device
    maskable = maskable.bool()
    n = maskable.sum(dim=1)  # (B,)
    u = torch.rand(B, device=device, generator=generator)
    budget = torch.floor(mask_ratio * n + u).long().clamp(min=1)
    remaining = torch.where(n > 0, budget, torch.zeros_like(budget))[:, None]  # (B, 1) positions still to mask

    pos = torch.arange(L, device=device)  # (L,)
    # A span may not cross a special token: run_end[b, i] is the first non-maskable position at or
    # after i (L if none), so a span starting at i ends before run_end[b, i].
    barrier = torch.where(maskable, L, pos)  # (B, L) own index at non-maskable positions, else L
    run_end = barrier.flip(1).cummin(dim=1).values.flip(1)  # (B, L) suffix minimum
    rate = span_rate(mean_span_len)

    pred_mask = torch.zeros(B, L, dtype=torch.bool, device=device)
    free = maskable.clone()  # maskable and not yet masked
    span_lens = torch.empty(B, 0, dtype=torch.long, device=device)
    it = 0
    while bool((remaining > 0).any()):
        if it == span_lens.shape[1]:  # draw span lengths ℓ = ⌈Exponential(rate)⌉ ≥ 1, 8 rounds at a time
            if math.isinf(rate):
                span_lens = torch.ones(B, it + 8, dtype=torch.long, device=device)
            else:
                e = -torch.log1p(-torch.rand(B, 8, device=device, generator=generator)) / rate
                span_lens = torch.cat([span_lens, torch.ceil(e).long().clamp_(min=1)], dim=1)
        span_len = span_lens[:, it : it + 1]  # (B, 1)
        it += 1
        # start: uniform over the f free positions of the row — draw r ∈ {0, …, f − 1}; the (r + 1)-th
        # free position is the first one whose running count of free slots reaches r + 1
        free_count = torch.cumsum(free, dim=1)  # (B, L) free positions up to and including each one
        r = (torch.rand(B, 1, device=device, generator=generator) * free_count[:, -1:]).long()  # (B, 1)
        start = torch.searchsorted(free_count, r + 1).clamp_(max=L - 1)  # (B, 1); rows with f = 0: L − 1
        end = torch.minimum(start + span_len, run_end.gather(1, start))  # (B, 1) span is [start, end)
        # newly masked: the free positions of [start, end), at most `remaining` of them. A free
        # position p is at or after start exactly when free_count[p] > r, and it is the
        # (free_count[p] − r)-th free position of the span: keep it if that is ≤ remaining.
        new = (free_count > r) & (free_count <= r + remaining) & (pos < end) & free  # (B, L)
        pred_mask |= new
        free ^= new  # new ⊆ free: this clears them
        remaining -= new.sum(dim=1, keepdim=True)
    return pred_mask


def mask_batch(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_ids: Iterable[int],
    mask_token_id: int,
    mask_ratio: float,
    mean_span_len: float,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build the context view of a batch.

    Args:
        input_ids, attention_mask: (B, L) as produced by a tokenizer (attention_mask 1 = real token).
        special_ids: token ids that are never masked.
        mask_token_id: id of [MASK], written at every masked position.

    Returns:
        masked_input_ids: (B, L) the context view, [MASK] at masked positions.
        pred_mask: (B, L) bool, where the JEPA loss is computed.
    """
    maskable = attention_mask.bool() & ~special_tokens_mask(input_ids, special_ids)  # (B, L)
    pred_mask = mask_spans(maskable, mask_ratio, mean_span_len, generator)
    masked_input_ids = input_ids.masked_fill(pred_mask, mask_token_id)
    return masked_input_ids, pred_mask

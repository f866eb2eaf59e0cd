"""Semantic Tube Prediction on one page (arXiv 2602.22617; official code `stp.py --linear=random_span`).

LLM-JEPA needs a second view (Text vs Code) and two or three forward passes. STP keeps the one LM row
`[BOS] Text [SEP] Code [EOS]` and asks its own hidden-state trajectory to be locally straight:

    Δ_p    = h_p − h_{p−1}                        the step into content token p (last layer's states)
    C      = the Text and Code tokens of the row   ([BOS], [SEP], [EOS] and padding are not content)
    [s, t) = a random span of C, in content order  (0 ≤ s < t ≤ n = |C|, t − s < n: never all of C)
    patch  = Σ_{p ∈ span} Δ_p                       = h(last span token) − h(token before the span), inside Text or Code
    rest   = Σ_{p ∈ C \\ span} Δ_p                  = before + after
    L      = γ · L_LM(row) + λ · Σ_i w_i (1 − cos(rest_i, patch_i)) / Σ_i w_i

The steps of the template tokens between Text and Code are skipped, as the official code skips Llama's
`<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n`: there the Text span starts after the user
header's "\\n\\n" and Code after the assistant header's; here the kit's template is the one [SEP], so the
step into [SEP] is left out, and Code's first step starts from [SEP]'s state. [EOS], like `<|eot_id|>`,
is not content. Spans: the official default (`get_s_t`) draws s uniformly from 0…n−1, then t from
s+1…n, again while t − s = n; "uniform" draws uniformly among all spans but the whole. Weights w
(`get_weights`, `--length_adjustment`): "none" (w = 1, the official default), "cosine_like"
2·r·l/(r² + l²) or "jaccard_like" 1 − |r − l|/(r + l), with l = t − s and r = n − l. The paper's runs
(`run_stp.py`) use λ = 0.02, γ = 1, the default span rule, no weights and no linear predictor (which
the kit leaves out). A row with fewer than 2 content tokens has no span: it gets w = 0.

`draw_span` is a pure function of (seed, step, pair), so a resumed run draws the same spans.
`tests/test_paired_stp.py` checks the batched `tube_cosine` against `tube_cosine_one` (a loop over
tokens), and `stp_loss` against `PairedTrainer` with `objective="stp"`.
"""

import random

import torch
import torch.nn.functional as F

from .nano import IGNORE, lm_loss, lm_row, pad

SPAN_RULES = ("start_end", "uniform")
WEIGHTINGS = ("none", "cosine_like", "jaccard_like")


def content_positions(n_text, n_code):
    """Indices of the Text and Code tokens in `[BOS] Text [SEP] Code [EOS]` (no padding before it)."""
    return [*range(1, 1 + n_text), *range(n_text + 2, n_text + 2 + n_code)]


def draw_span(n, seed, step, pair, rule="start_end", max_len=0):
    """(s, t), 0 ≤ s < t ≤ n, t − s < n, for pair `pair` at step `step`; None when n < 2. max_len > 0 caps t − s."""
    if n < 2:
        return None
    rng = random.Random(f"stp/{seed}/{step}/{pair}")  # a string seed: the same draws in every process
    cap = max_len if max_len > 0 else n - 1
    while True:
        if rule == "uniform":
            s, t = sorted(rng.sample(range(n + 1), 2))
        else:
            s = rng.randrange(n)
            t = rng.randint(s + 1, min(n, s + cap))
        if t - s < n and t - s <= cap:
            return s, t


def span_weight(n, length, weighting="none"):
    """w of a span of `length` among n content tokens: 1, or 2·r·l/(r²+l²), or 1 − |r−l|/(r+l), r = n − l."""
    r, ell = n - length, length
    if weighting == "cosine_like":
        return 2.0 * r * ell / (r * r + ell * ell)
    if weighting == "jaccard_like":
        return 1.0 - abs(r - ell) / (r + ell)
    return 1.0


def tube_cosine_one(h, n_text, n_code, s, t):
    """cos(rest, patch) for one row, written from the formula: h (L, D) from [BOS] on; a loop over tokens."""
    patch, rest = torch.zeros_like(h[0]), torch.zeros_like(h[0])
    for o, p in enumerate(content_positions(n_text, n_code)):
        step = h[p] - h[p - 1]  # Δ_p: (D,)
        if s <= o < t:
            patch = patch + step
        else:
            rest = rest + step
    return F.cosine_similarity(rest, patch, dim=0)


def span_masks(n_texts, n_codes, spans, length, starts=None):
    """(content (B, L), span (B, L)) boolean masks of right-padded rows (or rows starting at `starts`).

    Row i holds `[BOS] Text [SEP] Code [EOS]` from position starts[i]: with q = position − starts[i] and
    a = n_texts[i], content is q ∈ [1, a] (Text) or q ∈ [a + 2, a + 1 + n_codes[i]] (Code), and the content
    index o of q (its place among the content tokens, `content_positions`) is q − 1 in Text, q − 2 in Code;
    span is content with s ≤ o < t. Built with whole-batch comparisons: no loop over the rows."""
    B = len(n_texts)
    a, b = torch.tensor(n_texts, dtype=torch.long)[:, None], torch.tensor(n_codes, dtype=torch.long)[:, None]
    q = torch.arange(length)[None, :] - (torch.tensor(starts, dtype=torch.long)[:, None] if starts is not None else 0)
    text, code = (q >= 1) & (q <= a), (q >= a + 2) & (q <= a + 1 + b)  # (B, L) each
    o = torch.where(q <= a, q - 1, q - 2)  # the content index, where `content` holds
    s, t = (torch.tensor([st[k] if st is not None else 0 for st in spans], dtype=torch.long)[:, None] for k in (0, 1))
    content = (text | code).expand(B, length)
    return content, content & (o >= s) & (o < t)  # a row without a span: s = t = 0, an empty span


def tube_cosine(h, content, span):
    """cos(rest_i, patch_i) for every row at once: h (B, L, D), content and span (B, L) → (B,)."""
    h = h.to(torch.promote_types(h.dtype, torch.float32))  # bf16 / fp16 states summed in fp32
    step = torch.cat([torch.zeros_like(h[:, :1]), h[:, 1:] - h[:, :-1]], dim=1)  # (B, L, D): Δ_p, 0 at p = 0
    patch = (step * span[..., None]).sum(dim=1)  # (B, D)
    rest = (step * (content & ~span)[..., None]).sum(dim=1)  # (B, D)
    return F.cosine_similarity(rest, patch, dim=-1)  # (B,)


def stp_loss(model, texts, codes, ids, spans, lbd=0.02, gamma=1.0, lm_tokens="code", weighting="none"):
    """(L, L_LM, STP term) for one batch from ONE forward pass of the LM rows; spans[i] = (s, t) or None."""
    rows, labels = zip(*(lm_row(t, c, ids, lm_tokens) for t, c in zip(texts, codes)))
    x, mask = pad(list(rows), ids["pad"])
    device = next(model.parameters()).device
    x, mask = x.to(device), mask.to(device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # 0, 1, 2, … over the real tokens
    out = model(input_ids=x, attention_mask=mask, position_ids=positions, output_hidden_states=True, use_cache=False)
    lm = lm_loss(out.logits, pad(list(labels), IGNORE)[0])
    content, span = (
        m.to(device) for m in span_masks([len(t) for t in texts], [len(c) for c in codes], spans, x.shape[1])
    )
    n = [len(t) + len(c) for t, c in zip(texts, codes)]
    w = torch.tensor(
        [0.0 if st is None else span_weight(k, st[1] - st[0], weighting) for k, st in zip(n, spans)], device=device
    )
    term = (w * (1 - tube_cosine(out.hidden_states[-1], content, span))).sum() / w.sum().clamp(min=1e-12)
    return gamma * lm + lbd * term, lm, term

"""The paper's objective on one page (arXiv 2509.14252, eq. 2), for one batch of (Text, Code) pairs:

    L = γ · L_LM(Text ⊕ Code) + λ · (1 − cos(Pred(Enc(Text)), Enc(Code)))

Three rows per pair, each run through the same causal LM; no separate predictor network, no EMA, no
stop-gradient: Pred is k appended [PRED] tokens and the LM itself does the predicting.
`tests/test_paired_nano.py` checks that this page computes the loss and the gradients of
`jepa_lite.paired.PairedTrainer` (its separate-rows path, `--views separate`). The trainer adds
batching, gradient accumulation, loss dropout, packed rows, precision and checkpoints.
"""

import torch
import torch.nn.functional as F

IGNORE = -100  # the label of a token the LM loss does not score


# 1. The three rows of a pair (token ids; `ids` holds bos, sep, eos, pad and preds = [PRED_1], …).
def lm_row(text, code, ids, lm_tokens="code"):
    """`[BOS] Text [SEP] Code [EOS]` and its labels: Code and [EOS] scored ("code"), or every token ("all")."""
    tokens = [ids["bos"], *text, ids["sep"], *code, ids["eos"]]
    if lm_tokens == "all":
        return tokens, [IGNORE, *tokens[1:]]
    return tokens, [IGNORE] * (len(text) + 2) + [*code, ids["eos"]]


def text_view(text, k, ids):
    """`[BOS] Text [SEP] [PRED_1] … [PRED_k]`: Pred(Enc(Text)) is the state at its last token."""
    return [ids["bos"], *text, ids["sep"], *ids["preds"][:k]]


def code_view(code, ids):
    """`[BOS] Code [EOS]`: Enc(Code) is the state at [EOS] (back = 0) or the last Code token (back = 1)."""
    return [ids["bos"], *code, ids["eos"]]


# 2. A batch of rows: right-padded to the longest one.
def pad(rows, value):
    """Lists of ids → (ids (B, L), attention mask (B, L), 1 = real token)."""
    L = max(len(r) for r in rows)
    ids = torch.tensor([r + [value] * (L - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (L - len(r)) for r in rows])
    return ids, mask


# 3. Run the LM: logits, and Enc = the last layer's hidden state at a row's last real token.
def run(model, rows, pad_id, back=0):
    """(logits (B, L, V), Enc (B, D) at the last real token minus `back`) of right-padded rows."""
    device = next(model.parameters()).device
    ids, mask = (t.to(device) for t in pad(rows, pad_id))
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # 0, 1, 2, … over the real tokens
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True, use_cache=False)
    h = out.hidden_states[-1]  # (B, L, D)
    last = mask.sum(dim=1) - 1 - back  # (B,) index of the last real token, minus back
    return out.logits, h[torch.arange(h.shape[0], device=device), last]  # (B, D)


# 4. The LM loss: next-token cross-entropy, position t predicts token t + 1, mean over scored labels.
def lm_loss(logits, labels):
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(logits.device), ignore_index=IGNORE
    )


# 5. The JEPA term: mean over pairs of 1 − cos(Pred(Enc(Text)), Enc(Code)); both sides get gradients.
def jepa_loss(x, y):
    return (1.0 - (F.normalize(x.float(), dim=-1) * F.normalize(y.float(), dim=-1)).sum(dim=-1)).mean()


# 6. The objective for one batch of pairs (lists of token ids).
def paired_loss(model, texts, codes, ids, k=0, lbd=1.0, gamma=1.0, lm_tokens="code", back=1):
    """Returns (L, L_LM, JEPA). λ = 0 skips the two views (nothing to compute)."""
    rows, labels = zip(*(lm_row(t, c, ids, lm_tokens) for t, c in zip(texts, codes)))
    logits, _ = run(model, list(rows), ids["pad"])
    lm = lm_loss(logits, pad(list(labels), IGNORE)[0])
    if lbd == 0:
        return gamma * lm, lm, None
    _, x = run(model, [text_view(t, k, ids) for t in texts], ids["pad"])  # (B, D) Pred(Enc(Text))
    _, y = run(model, [code_view(c, ids) for c in codes], ids["pad"], back)  # (B, D) Enc(Code)
    jepa = jepa_loss(x, y)
    return gamma * lm + lbd * jepa, lm, jepa


# 7. One optimizer step on one batch: the same loss, backward, clip, AdamW.
def train_step(model, optimizer, texts, codes, ids, grad_clip=1.0, **objective):
    model.train()
    loss, lm, jepa = paired_loss(model, texts, codes, ids, **objective)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return lm.detach(), None if jepa is None else jepa.detach()

"""The whole masked-span JEPA on one page: read it after the course, top to bottom.

Each part sits under the formula it computes; `tests/test_nano.py` checks that every part computes
exactly what the kit's trainer computes (`jepa_lite.train.Trainer`: the same losses and weights,
step for step). The trainer adds what this page leaves out: precision, loss scaling, several GPUs,
checkpoints, logging and the fast paths.
"""

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# 1. Span mask: which tokens the context encoder must not see (masking.py has the long story).
#    budget b = max(1, ⌊r·n + U⌋), U ~ Uniform(0, 1), n maskable tokens; spans of length
#    ℓ = ⌈E⌉, E ~ Exponential(λ = −ln(1 − 1/mean_span_len)), each from a free start, cut at a
#    special token, the row's end or the budget.
def span_mask(maskable, mask_ratio, mean_span_len, generator=None):
    """One row: list of bools (True = may be masked) → BoolTensor, True at exactly b positions."""
    length, n = len(maskable), sum(maskable)
    mask = [False] * length
    if n == 0:
        return torch.tensor(mask, dtype=torch.bool)
    budget = max(1, math.floor(mask_ratio * n + torch.rand((), generator=generator).item()))
    rate = math.inf if mean_span_len <= 1 else -math.log1p(-1.0 / mean_span_len)
    masked = 0
    while masked < budget:
        span = 1  # a span's length: geometric with mean mean_span_len (1 when mean_span_len ≤ 1)
        if not math.isinf(rate):
            span = max(1, math.ceil(-math.log1p(-torch.rand((), generator=generator).item()) / rate))
        free = [i for i in range(length) if maskable[i] and not mask[i]]
        i = free[torch.randint(len(free), (), generator=generator).item()]
        while span > 0 and i < length and maskable[i] and masked < budget:
            if not mask[i]:
                mask[i], masked = True, masked + 1
            i, span = i + 1, span - 1
    return torch.tensor(mask, dtype=torch.bool)


# 2. The two views. Target view: the text as is. Context view: [MASK] at every masked position.
class Views:
    """Both views of a batch of B lines padded to L tokens (`data.Batch` has the same fields)."""

    def __init__(self, input_ids, attention_mask, masked_input_ids, pred_mask):
        self.input_ids, self.attention_mask = input_ids, attention_mask  # (B, L) target view, 1 = real token
        self.masked_input_ids, self.pred_mask = masked_input_ids, pred_mask  # (B, L) context view, (B, L) bool


def two_views(input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator=None):
    """(B, L) ids → Views: spans masked row by row; special tokens and padding are never masked."""
    maskable = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(list(special_ids)))  # (B, L)
    pred_mask = torch.stack([span_mask(row.tolist(), mask_ratio, mean_span_len, generator) for row in maskable])
    return Views(input_ids, attention_mask, input_ids.masked_fill(pred_mask, mask_token_id), pred_mask)


# 3. Cosine loss:  mean over the N masked tokens of 1 − cos(ẑ, z),  cos(p, t) = p·t / (‖p‖ ‖t‖).
def cosine_loss(pred, target):
    """(N, D), (N, D) → scalar in [0, 2]; only directions count, so shrinking the vectors does not help."""
    return (1.0 - (F.normalize(pred, dim=-1) * F.normalize(target, dim=-1)).sum(dim=-1)).mean()


# 4. The JEPA model: context encoder → predictor ẑ, EMA target encoder → z, loss at masked positions.
class JEPA(nn.Module):
    """`encoder(input_ids=, attention_mask=).last_hidden_state` is (B, L, D); predictor D → h·D → D."""

    def __init__(self, encoder, dim, hidden_mult=4):
        super().__init__()
        self.context_encoder = encoder
        self.predictor = nn.Sequential(nn.Linear(dim, hidden_mult * dim), nn.GELU(), nn.Linear(hidden_mult * dim, dim))
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)  # changes only by the EMA

    def train(self, mode=True):
        super().train(mode)
        self.target_encoder.eval()  # no dropout in the target: a stable regression target
        return self

    def forward(self, views):
        z_ctx = self.context_encoder(
            input_ids=views.masked_input_ids, attention_mask=views.attention_mask
        ).last_hidden_state
        with torch.no_grad():  # no gradient ever reaches the target encoder
            z_tgt = self.target_encoder(
                input_ids=views.input_ids, attention_mask=views.attention_mask
            ).last_hidden_state
        pred = self.predictor(z_ctx[views.pred_mask])  # (B, L, D)[pred_mask] -> (N, D)
        return cosine_loss(pred, z_tgt[views.pred_mask])  # targets (N, D)


# 5. EMA update, after every optimizer step:  θ_tgt ← m·θ_tgt + (1 − m)·θ_ctx.
@torch.no_grad()
def ema_update(target, online, m):
    """lerp(θ_tgt, θ_ctx, 1 − m) = θ_tgt + (1 − m)(θ_ctx − θ_tgt) is the same formula; buffers are copied."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o, 1.0 - m)
    for t, o in zip(target.buffers(), online.buffers()):
        t.copy_(o)


# 6. Learning rate: linear warm-up, then half a cosine down to 0.
#    lr(s) = lr·(s + 1)/W for s < W;  lr(s) = lr·½(1 + cos(π·(s − W)/(T − W))) afterwards.
def lr_factor(step, warmup_steps, total_steps):
    """Multiplier of the peak LR at optimizer step `step` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# 7. One training step: loss, backward, clip ‖g‖, AdamW, then the target follows.
def train_step(model, optimizer, views, m, grad_clip=1.0):
    """Returns the step's loss (detached)."""
    model.train()
    loss = model(views)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    ema_update(model.target_encoder, model.context_encoder, m)  # after the step: follow the new weights
    return loss.detach()


# 8. The training loop. `batches(step)` gives the Views of each step (e.g. from `two_views`).
def train(model, batches, steps, lr=3e-4, warmup_steps=20, ema_m=0.996, weight_decay=0.01, grad_clip=1.0):
    """Train `model` for `steps` AdamW steps; returns the loss of every step."""
    params = [p for p in model.parameters() if p.requires_grad]  # context encoder + predictor
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(step, warmup_steps, steps)
        losses.append(train_step(model, optimizer, batches(step), ema_m, grad_clip).item())
    return losses

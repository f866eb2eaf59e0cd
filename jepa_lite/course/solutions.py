"""Worked solutions of the implement-it-yourself exercises — for teachers.

Notebooks never print these. A teacher (or a student who has given up) asks explicitly:

    from jepa_lite.course.solutions import show_solution
    show_solution("03.3")          # prints the worked solution of exercise 03.3

Each solution is written the way the notebook's section explains it, as plain loops or a few
tensor operations, and passes every property of `implement.check_function` (tests/test_implement.py
runs them all, and planted wrong versions that must fail).
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F

from ..masking import mask_spans, sample_span_length, special_tokens_mask


def span_mask_solution(maskable, mask_ratio, mean_span_len, generator=None):
    """01.3 — b = max(1, ⌊r·n + U⌋) tokens, in spans of geometric length, never on a special token."""
    length, n = len(maskable), sum(bool(x) for x in maskable)
    mask = [False] * length
    if n == 0:
        return torch.tensor(mask, dtype=torch.bool)
    u = torch.rand((), generator=generator).item()  # U ~ Uniform(0, 1): stochastic rounding
    budget = max(1, math.floor(mask_ratio * n + u))
    masked = 0
    while masked < budget:
        span = sample_span_length(mean_span_len, generator)  # ℓ ~ Geometric(1 / mean_span_len)
        free = [i for i in range(length) if maskable[i] and not mask[i]]
        i = free[torch.randint(len(free), (), generator=generator).item()]  # a start among free positions
        while span > 0 and i < length and maskable[i] and masked < budget:  # stop at a special, the end, or b
            if not mask[i]:
                mask[i] = True
                masked += 1
            i, span = i + 1, span - 1
    return torch.tensor(mask, dtype=torch.bool)


def two_views_solution(input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator=None):
    """02.4 — target view = input_ids; context view = input_ids with [MASK] at pred_mask."""
    maskable = attention_mask.bool() & ~special_tokens_mask(input_ids, special_ids)  # (B, L) real, non-special
    pred_mask = mask_spans(maskable, mask_ratio, mean_span_len, generator)  # (B, L) where the loss is computed
    masked_input_ids = input_ids.masked_fill(pred_mask, mask_token_id)  # a new tensor: input_ids stays whole
    return masked_input_ids, pred_mask


@torch.no_grad()
def ema_update_solution(target, online, m):
    """03.3 — θ_tgt ← m·θ_tgt + (1 − m)·θ_online, in place, recorded by no autograd graph."""
    for t, o in zip(target, online):
        t.mul_(m).add_(o, alpha=1.0 - m)


def masked_cosine_loss_solution(pred, target, pred_mask):
    """04.3 — mean over the N masked positions of 1 − cos(p, t)."""
    p = F.normalize(pred[pred_mask], dim=-1)  # (B, L, D)[pred_mask] -> (N, D), unit rows
    t = F.normalize(target[pred_mask], dim=-1)
    return (1.0 - (p * t).sum(dim=-1)).mean()


def train_step_solution(model, optimizer, batch, m, grad_clip):
    """05.4 — forward, zero the gradients, backward, clip, AdamW step, then the EMA update."""
    out = model(batch)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), grad_clip)
    optimizer.step()
    model.update_target(m)  # after the step: the target follows the new weights
    return out.loss.detach()


SOLUTIONS = {"01.3": span_mask_solution, "02.4": two_views_solution, "03.3": ema_update_solution,
             "04.3": masked_cosine_loss_solution, "05.4": train_step_solution}  # fmt: skip


def show_solution(exercise_id: str) -> None:
    """Print the worked solution of coding exercise `exercise_id` (e.g. "03.3")."""
    if exercise_id not in SOLUTIONS:
        raise KeyError(f"no worked solution for '{exercise_id}'; known: {', '.join(SOLUTIONS)}")
    print(f"# worked solution of exercise {exercise_id} (jepa_lite/course/solutions.py)\n")
    print(inspect.getsource(SOLUTIONS[exercise_id]))

"""Worked solutions of the implement-it-yourself exercises — for teachers.

Notebooks never print these. A teacher (or a student who has given up) asks explicitly:

    from jepa_lite.course.solutions import show_solution
    show_solution("03.3")          # prints the worked solution of exercise 03.3

Each solution is written the way the notebook's section explains it, as plain loops or a few
tensor operations, and passes every property of `implement.check_function` (tests/test_implement.py
runs them all, and planted wrong versions that must fail). Where the library already holds the
readable version (01.3's sampler, `masking.sample_span_mask`), the solution is that function, not a
copy of it.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from ..masking import mask_spans, sample_span_mask, special_tokens_mask

# 01.3 — the library's readable sampler is the worked solution: the loops of masking.py, step by step
# as notebook 01 explains them (nano.py's `span_mask` is the same loop, tested draw for draw).
span_mask_solution = sample_span_mask


def two_views_solution(
    input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator=None
):
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


def paired_t_solution(a, b):
    """06.4 — d_i = a_i − b_i; t = d̄ / (s / √n), s the standard deviation of the d_i with n − 1."""
    d = [x - y for x, y in zip(a, b)]  # (n,) one difference per seed
    n = len(d)
    mean = sum(d) / n
    s = (sum((x - mean) ** 2 for x in d) / (n - 1)) ** 0.5
    return mean / (s / n**0.5)


SOLUTIONS = {
    "01.3": span_mask_solution,
    "02.4": two_views_solution,
    "03.3": ema_update_solution,
    "04.3": masked_cosine_loss_solution,
    "05.4": train_step_solution,
    "06.4": paired_t_solution,
}


def show_solution(exercise_id: str) -> None:
    """Print the worked solution of coding exercise `exercise_id` (e.g. "03.3")."""
    if exercise_id not in SOLUTIONS:
        raise KeyError(f"no worked solution for '{exercise_id}'; known: {', '.join(SOLUTIONS)}")
    where = inspect.getsourcefile(inspect.unwrap(SOLUTIONS[exercise_id])).replace("\\", "/").split("/jepa_lite/")[-1]
    print(f"# worked solution of exercise {exercise_id} (jepa_lite/{where})\n")
    print(inspect.getsource(SOLUTIONS[exercise_id]))

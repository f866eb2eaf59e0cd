"""The EMA target encoder: a slow-moving copy of the context encoder.

After every optimizer step the target encoder's weights move a little toward the context encoder's:

    θ_tgt ← m · θ_tgt + (1 − m) · θ_ctx        (m = EMA momentum, close to 1)

No gradient ever reaches the target encoder; this update is the only way it changes. With m close to
1 the target drifts slowly, so the context encoder chases a target that does not jump to meet it —
the mechanism that keeps JEPA from collapsing to a constant embedding. With m = 0 the target is the
context encoder itself and nothing stops the collapse.

A useful way to read m is its half-life: after h = ln 0.5 / ln m steps, the target's memory of its
old weights has halved (m = 0.99 → 69 steps, m = 0.996 → 173 steps).

I-JEPA (Assran et al., 2023, §4) raises m linearly from 0.996 to 1.0 over training: `linear` below.
BYOL (Grill et al., 2020, §3.2) uses a cosine ramp toward 1: `cosine`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn as nn

SCHEDULES = ("constant", "linear", "cosine")


@torch.no_grad()
def ema_update(target: Sequence[torch.Tensor], online: Sequence[torch.Tensor], m: float) -> None:
    """θ_tgt ← m·θ_tgt + (1 − m)·θ_online, in place, for matching lists of tensors.

    One fused `foreach` call over all parameters, not a Python loop: lerp(θ_tgt, θ_online, w) =
    θ_tgt + w·(θ_online − θ_tgt) with w = 1 − m is the same formula. m = 1 leaves the target exactly
    unchanged; m = 0 copies the online weights exactly.
    """
    if len(target) != len(online):
        raise ValueError(f"target has {len(target)} tensors but online has {len(online)}")
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"EMA momentum must be in [0, 1]; got {m}")
    if m == 1.0:
        return
    torch._foreach_lerp_(list(target), list(online), 1.0 - m)


@torch.no_grad()
def ema_update_modules(target: nn.Module, online: nn.Module, m: float) -> None:
    """`ema_update` on two modules of the same architecture (parameters), and copy their buffers."""
    ema_update(list(target.parameters()), list(online.parameters()), m)
    copy_buffers(target, online)


@torch.no_grad()
def copy_buffers(target: nn.Module, online: nn.Module) -> None:
    """Buffers (running statistics, position ids) are not trained: the target takes the online ones as they are."""
    for b_tgt, b_on in zip(target.buffers(), online.buffers()):
        b_tgt.copy_(b_on)


def half_life(m: float) -> float:
    """Steps after which the weight of the target's old state has halved: h = ln 0.5 / ln m."""
    if m <= 0.0:
        return 0.0
    if m >= 1.0:
        return math.inf
    return math.log(0.5) / math.log(m)


def momentum_schedule(kind: str, m_start: float, m_end: float, total_steps: int) -> Callable[[int], float]:
    """Return step → m for optimizer steps 0 … total_steps − 1.

    constant: m(t) = m_start
    linear:   m(t) = m_start + (m_end − m_start) · t / T            (I-JEPA: 0.996 → 1.0)
    cosine:   m(t) = m_end − (m_end − m_start) · (1 + cos(π t / T)) / 2   (BYOL)
    with T = total_steps − 1 (so the last step uses m_end).
    """
    for name, m in (("m_start", m_start), ("m_end", m_end)):
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"EMA momentum {name} must be in [0, 1]; got {m}")
    T = max(1, total_steps - 1)
    if kind == "constant":
        return lambda t: m_start
    if kind == "linear":
        return lambda t: m_start + (m_end - m_start) * min(t, T) / T
    if kind == "cosine":
        return lambda t: m_end - (m_end - m_start) * (1.0 + math.cos(math.pi * min(t, T) / T)) / 2.0
    raise ValueError(f"unknown EMA schedule '{kind}'; choose one of {', '.join(SCHEDULES)}")

"""Which number format a training step computes in, by device: one rule for every trainer.

    "auto" → bf16 autocast on a CUDA GPU with native bf16 (compute capability ≥ 8: Ampere, Hopper, …)
             fp16 autocast + loss scaling (torch.amp.GradScaler) on older CUDA GPUs (T4, V100, …)
             fp32 on the CPU and on Apple's MPS

Why not ask `torch.cuda.is_bf16_supported()`? Its `including_emulation` argument defaults to True, so
it answers True on a T4 (sm_75), where bf16 is emulated and slower than fp32. fp16 has a narrow
exponent range: small gradients underflow to 0 unless the loss is multiplied by a scale S before
`backward()` and the gradients divided by S before the optimizer step — what GradScaler does,
lowering S whenever a step's gradients overflow (that step is then skipped).

The CPU stays in fp32 under "auto": exact and comparable across machines. "bf16" can still be asked
for on the CPU (oneDNN runs it fast on CPUs with AMX; see docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .errors import ConfigError

CHOICES = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    name: str  # "fp32", "bf16" or "fp16"
    autocast_dtype: Optional[torch.dtype]  # None = no autocast (plain fp32)
    grad_scaler: bool  # True for fp16: scale the loss, unscale before clipping (torch.amp.GradScaler)


FP32 = Precision("fp32", None, False)
BF16 = Precision("bf16", torch.bfloat16, False)
FP16 = Precision("fp16", torch.float16, True)


def compute_capability(device: torch.device) -> Tuple[int, int]:
    """(major, minor) of a CUDA device, e.g. (7, 5) for a T4, (9, 0) for an H100/H200."""
    return torch.cuda.get_device_capability(device)


def native_bf16(device: torch.device, capability: Optional[Tuple[int, int]] = None) -> bool:
    """True for a CUDA device whose tensor cores compute in bf16 (capability ≥ 8.0)."""
    if device.type != "cuda":
        return False
    major, _ = capability if capability is not None else compute_capability(device)
    return major >= 8


def resolve_precision(precision: str, device: torch.device, capability: Optional[Tuple[int, int]] = None) -> Precision:
    """The Precision a setting means on `device` (`capability` simulates a GPU in tests).

    "fp16" is for CUDA only (on the CPU and MPS it would be slower and less exact than fp32).
    """
    if precision not in CHOICES:
        raise ConfigError(f"precision must be one of {', '.join(CHOICES)}; got '{precision}'")
    if precision == "fp32":
        return FP32
    if precision == "bf16":
        return BF16
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError(f"precision fp16 needs a CUDA GPU; this run is on {device.type} (use auto or fp32)")
        return FP16
    if device.type != "cuda":
        return FP32
    return BF16 if native_bf16(device, capability) else FP16


def autocast(precision: Precision, device: torch.device, weight_cache: bool = True):
    """The autocast context of a step computed in `precision` (disabled for fp32). `weight_cache=False`
    for a step recorded as a CUDA graph: the graph must not keep weight casts made outside it."""
    dtype = precision.autocast_dtype
    return torch.autocast(
        device.type, dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=weight_cache
    )


def grad_scaler(precision: Precision, device: torch.device) -> Optional["torch.amp.GradScaler"]:
    """A GradScaler for fp16, None otherwise. Its state_dict() belongs in checkpoints (exact resume)."""
    return torch.amp.GradScaler(device.type) if precision.grad_scaler else None

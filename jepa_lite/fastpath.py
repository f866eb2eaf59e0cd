"""The trainer's fast paths, off the reading path: what makes a step quick without changing what it
computes. `Trainer` calls each of these; `nano.py` shows the step without any of them, and the tests
prove the two equal (tests/test_nano.py, tests/test_speed_paths.py, tests/test_cuda_graphs.py).

- `FastJEPA`: `model.JEPA` as the trainer runs it: the masked rows taken by an index listed on the host
  (no host sync), the fixed-shape loss of CUDA graphs (`FastJEPA.fixed_shape_loss`, with `pred_capacity`
  and `with_pred_capacity`; `PaddedStepBatches`), and the EMA momentum as a GPU tensor (`ema_update_tensor_m`).
- `fixed_predictor_rows`: where the step takes that fixed-shape loss (CUDA graphs; the CPU in bf16).
- `use_cuda_graphs`: whether each step is replayed as recorded CUDA graphs (`graphs.StepGraphs`), with
  the fixed-shape loss, the learning rate and the EMA momentum as GPU tensors and capturable AdamW.
- `adamw`: the fused AdamW kernel (one pass over all parameters).
- `length_multiple`: padding batches to fewer distinct lengths; `SCORED_MULTIPLE` and `cpu_attention`: the
  paired trainer's LM-head rows and attention on the CPU in bf16.
- `attention_kernels`: which attention kernels CUDA runs.
- `prefetched`: the next batch prepared by a second thread, from pinned memory (`pinned`), on a GPU.
- `keep_freed_memory`: glibc keeps big freed blocks for the next step on the CPU.
- `compiler_works`, `check_compiler`: whether `torch.compile` can build CPU kernels here (it needs a C++
  compiler), and the one-line refusal of `--compile` on a CPU where it cannot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import sys
from typing import Callable, Iterator

import torch

from .data import Batch, StepBatches
from .ema import copy_buffers
from .errors import ConfigError
from .losses import token_losses
from .model import JEPA


class FastJEPA(JEPA):
    """`model.JEPA` with the same parameters, losses and checkpoints, as the trainer runs it fast.

    - `at_masked` takes the rows by `batch.pred_index`, the masked positions as flat indices into B·L
      computed on the host by `data.collate`: the same rows as z[pred_mask], in the same order, without
      making a GPU report N first (boolean indexing waits for the GPU, and breaks a compiled graph).
    - `fixed_shape_loss`: the same loss with shapes that do not depend on N, for CUDA graphs.
    - `update_target` also takes m as a 0-dim device tensor, which a recorded graph reads at each replay.
    Tests prove each equal to `JEPA`'s readable version (tests/test_speed_paths.py, tests/test_nano.py).
    """

    def at_masked(self, z: torch.Tensor, batch: Batch) -> torch.Tensor:
        """(B, L, D) → (len(pred_index), D): z[pred_mask] through the host-side index."""
        return z.flatten(0, 1)[batch.pred_index]

    def fixed_shape_loss(self, batch: Batch) -> torch.Tensor:
        """The same loss as `forward`, computed with shapes that do not depend on N (for CUDA graphs).

        Here `batch.pred_index` has a length C fixed by (B, L) (`pred_capacity`): the N masked
        positions, then filler rows that point at a position that is not masked. Every row goes
        through the predictor; each row's loss is weighted by `pred_mask` at its position (1 for the
        N masked rows, 0 for the filler), and the sum is divided by N:

            loss = Σ_c pred_mask[index_c] · ℓ(ẑ[index_c], z[index_c])  /  max(1, Σ_c pred_mask[index_c])

        with ℓ the per-token loss (`token_losses`): the mean over the N masked tokens, exactly as in
        `forward`, which it equals for any padding of the index (tests/test_speed_paths.py). A
        recorded CUDA graph replays fixed shapes, and N changes with every batch; C does not. The
        filler costs little: C is about N + B (one spare row per line). With nothing masked the loss
        is 0, still differentiable.
        """
        z_ctx = self.encode_context(batch.masked_input_ids, batch.attention_mask)  # (B, L, D)
        z_tgt = self.encode_target(batch.input_ids, batch.attention_mask)  # (B, L, D)
        # (B, L, D) -> (C, D) each, C = len(pred_index)
        pred, target = self.predictor(self.at_masked(z_ctx, batch)), self.at_masked(z_tgt, batch)
        # (C,), in fp32
        per_token = token_losses(self.loss_name, pred.float(), target.float())
        # (C,) True for the N masked rows, False for the filler
        real = batch.pred_mask.flatten()[batch.pred_index]
        # where, not ×: a NaN at a filler row stays out
        per_token = torch.where(real, per_token, 0.0)
        # () stays on the device: no host sync
        n_masked = real.sum().clamp(min=1)
        return per_token.sum() / n_masked

    @torch.no_grad()
    def update_target(self, m) -> None:
        """`JEPA.update_target`, with m a number or a 0-dim tensor on the parameters' device."""
        if not isinstance(m, torch.Tensor):
            return super().update_target(m)
        ema_update_tensor_m(list(self.target_encoder.parameters()), list(self.context_encoder.parameters()), m)
        copy_buffers(self.target_encoder, self.context_encoder)


@torch.no_grad()
def ema_update_tensor_m(target, online, m: torch.Tensor) -> None:
    """`ema.ema_update` (θ_tgt ← m·θ_tgt + (1 − m)·θ_online) with m a 0-dim tensor on the parameters'
    device, read when the kernels run rather than when they are launched: a recorded CUDA graph
    (`graphs.py`) keeps reading the same tensor, which the trainer fills with each step's momentum.
    Every tensor gets its own lerp with the weight tensor 1 − m: one kernel per parameter, which costs
    nothing extra inside a graph."""
    if len(target) != len(online):
        raise ValueError(f"target has {len(target)} tensors but online has {len(online)}")
    target = list(target)
    torch._foreach_lerp_(target, list(online), [1.0 - m] * len(target))


def fixed_predictor_rows(device: torch.device, autocast_dtype, static_shapes: bool, distributed: bool) -> bool:
    """Whether the step runs `FastJEPA.fixed_shape_loss`, its predictor on C rows fixed by the batch's shape
    (`pred_capacity`), rather than on the N masked rows.

    - With CUDA graphs (`static_shapes`): always; a recorded graph replays fixed shapes.
    - On the CPU in bf16 (one process): also. oneDNN builds and keeps the kernels of every matrix-product shape
      it meets (`length_multiple`), and N is new nearly every step, so the predictor's kernels were built again
      step after step and kept in oneDNN's cache, whose resident memory grew for hundreds of steps. With C rows (a
      function of the padded length) it levels off, and the step is no slower (docs/performance.md, "On the CPU").
    - Otherwise (fp32 on the CPU, eager CUDA, DDP, whose wrapper must run `forward`): no, N rows.
    """
    if static_shapes:
        return True
    return device.type == "cpu" and autocast_dtype is not None and not distributed


def pred_capacity(batch_size: int, length: int, mask_ratio: float, length_step: int = 1) -> int:
    """The most positions `masking.mask_batch` can mask in a (batch_size, length) batch, plus slack.

    A row with n maskable tokens gets b = max(1, ⌊mask_ratio·n + U⌋) masked positions (its budget), U < 1,
    and n ≤ length, so b ≤ ⌈mask_ratio·length⌉ + 1 (the +1 also absorbs float rounding). A function of
    the shape alone: the CUDA-graph path pads `pred_index` to this size (`with_pred_capacity`). With
    `length_step` > 1 the bound is taken at `length` rounded up to a multiple of it (`pred_length_step`):
    a looser bound, shared by several lengths.
    """
    return batch_size * (math.ceil(mask_ratio * (-(-length // length_step) * length_step)) + 1)


def pred_length_step(device: torch.device) -> int:
    """`pred_capacity` rounds the padded length up to a multiple of this before it bounds the masked rows.

    - CPU: 32, so that at max_length 128 the predictor meets 4 row counts instead of one per padded length.
      oneDNN keeps the kernels of every bf16 matrix-product shape it meets, about a megabyte each
      (`length_multiple`): MiniLM, batch 8, compiled bf16, 110 steps met 303 shapes before and 227 after,
      and kept ~75 MB less resident memory (docs/performance.md, "On the CPU"). The extra filler rows cost
      little: the predictor is a small part of the step.
    - CUDA: 1. A recorded graph already has one shape per padded length, and filler rows are GPU time.
    """
    return 32 if device.type == "cpu" else 1


def with_pred_capacity(batch: Batch, capacity: int) -> Batch:
    """The same batch with `pred_index` lengthened to `capacity` entries: the N masked positions,
    then copies of the first position that is not masked (filler that `FastJEPA.fixed_shape_loss`
    weights 0). For CUDA graphs, whose shapes must not change with N (`pred_capacity`)."""
    n = batch.pred_index.numel()
    if n > capacity:
        raise ValueError(f"{n} masked positions do not fit in a predictor index of {capacity}")
    # (1,) the first unmasked position
    filler = (~batch.pred_mask.flatten()).nonzero()[:1, 0]
    if filler.numel() == 0:
        raise ValueError("every position is masked: no filler position for the predictor index")
    index = torch.cat([batch.pred_index, filler.expand(capacity - n)])
    return dataclasses.replace(batch, pred_index=index)


class PaddedStepBatches(StepBatches):
    """`data.StepBatches`, with each batch's `pred_index` padded to `pred_capacity` (at `length_step`) while
    `fixed_pred_index` is set (`Trainer` sets it where the step runs `FastJEPA.fixed_shape_loss`)."""

    def __init__(self, *args, fixed_pred_index: bool = False, length_step: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed_pred_index, self.length_step = fixed_pred_index, length_step

    def __getitem__(self, step: int) -> Batch:
        batch = super().__getitem__(step)
        if self.fixed_pred_index:
            capacity = pred_capacity(*batch.input_ids.shape, self.mask_ratio, self.length_step)
            batch = with_pred_capacity(batch, capacity)
        return batch


def pinned(batch: Batch) -> Batch:
    """The same batch in pinned host memory (a no-op for tensors already pinned): a copy from there to
    a GPU is only queued, and `graphs.StepGraphs` copies it straight into the buffers its graph reads."""
    return Batch(*(t.pin_memory() for t in batch.tensors()))


def use_cuda_graphs(config, device: torch.device, distributed: bool, scaler, log: Callable[[str], None]) -> bool:
    """With compile and cuda_graphs on one CUDA device, each optimizer step is replayed as one recorded
    graph (graphs.py). The loss is then `FastJEPA.fixed_shape_loss`, whose shapes depend on (B, L) only (the
    masked positions padded to `pred_capacity`), and the two numbers that change from step to step, the
    learning rate and the EMA momentum, are GPU tensors that the graph reads at every replay."""
    if not (config.compile and config.cuda_graphs and device.type == "cuda" and not distributed):
        return False
    if scaler is not None:
        # fp16's loss scaler decides on every step whether to skip it (gradients that overflowed)
        # and changes its scale S; a recorded graph would have to replay both decisions on the
        # GPU, which this kit has not verified, so fp16 compiles without graphs.
        log("note: precision fp16 (loss scaling) runs without CUDA graphs; compiling the model only")
        return False
    return True


def adamw(params, config, device: torch.device, static_shapes: bool) -> torch.optim.AdamW:
    """AdamW at `config.lr`. The fused kernel updates all parameters in one pass: on a 2-core CPU it
    takes 14 ms per step for MiniLM's 22 M parameters, against 69 ms for the default per-tensor loop.
    On the CUDA-graph path the LR is a GPU tensor and the optimizer capturable; the schedule's base LR
    stays a plain number (`initial_lr`), so the scheduler fills the LR tensor from a number instead of
    reading a GPU value (a host sync) at every step."""
    lr = torch.tensor(config.lr, device=device) if static_shapes else config.lr
    fused = device.type in ("cuda", "cpu")
    optimizer = torch.optim.AdamW(
        params, lr=lr, weight_decay=config.weight_decay, fused=fused or None, capturable=static_shapes
    )
    optimizer.param_groups[0]["initial_lr"] = config.lr
    return optimizer


def length_multiple(device: torch.device, autocast_dtype) -> int:
    """Batches are padded to a length that is a multiple of this: fewer distinct shapes, for the
    code paths that do work once per shape.

    - CUDA: 8, for tensor-core-friendly shapes; with CUDA graphs each length is also compiled,
      planned and recorded once, so at most 16 lengths at max_length 128 keeps that bounded.
    - CPU in bf16: 8. The bf16 matrix products run on oneDNN, which JIT-compiles kernels for each
      new shape it meets and keeps them (about a megabyte each), and length-grouped batches bring a new
      length nearly every step (MiniLM, batch 8: 305 ms per step on 20 new lengths, 198–207 ms on the same
      batches again). In steps of 8 each length's kernels are built once and reused, at most 16 lengths at
      max_length 128: over 120 fresh steps +9% tokens/s against no rounding (+8% in steps of 4), for 6.8%
      padded positions instead of 1.3%; and ~125 MB less resident memory than steps of 4 once every length
      has been met (docs/performance.md, "On the CPU").
    - CPU in fp32: 1. Its matrix products have no per-shape cost here, so padding is pure loss.
    """
    return 8 if device.type == "cuda" or (device.type == "cpu" and autocast_dtype is not None) else 1


# The paired trainer's LM head runs on the scored positions alone (`paired.rows.scored_at`), a count that changes
# every step: on the CPU in bf16 it is rounded up to a multiple of this, for the reason above.
SCORED_MULTIPLE = 64


def cpu_attention(device: torch.device, autocast_dtype, implementation: str) -> str:
    """The attention a Hugging Face model trains with, given the one it was loaded with: on the CPU in bf16,
    "eager" (products and a softmax, which `torch.compile` fuses) in place of "sdpa", whose fused CPU
    kernel is slow to differentiate in bf16 (docs/study.md, "In bf16");
    elsewhere the model's own."""
    if device.type == "cpu" and autocast_dtype is not None and implementation == "sdpa":
        return "eager"
    return implementation


def attention_kernels(device: torch.device, static_shapes: bool):
    """On CUDA, attention runs on the flash / memory-efficient kernels. PyTorch would otherwise
    pick cuDNN's on recent GPUs, which builds a plan for every new sequence length it meets; with
    length-grouped batches that is a new length every few steps, and the planning can cost more
    than the attention itself (compare `python -m jepa_lite.bench --sdpa default`).
    With CUDA graphs each length is planned once, when its graph is recorded, so there cuDNN
    comes first: its attention is built for Hopper, while the memory-efficient kernel PyTorch
    runs on an H100 is the A100's (sm80), which took ~16 ms of GPU time in a BERT-base,
    batch-512 step of ~67 ms (torch.profiler)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    first = [SDPBackend.CUDNN_ATTENTION] if static_shapes else []
    return sdpa_kernel(first + [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def prefetched(make: Callable[[int], object], step: int, device: torch.device) -> Iterator:
    """Yield make(step), make(step + 1), … On a GPU, the next batch is prepared by a second thread
    while this step's kernels are being launched and run (masking is torch code, which releases
    Python's lock much of the time), and it is copied from pinned memory (`Batch.to`), so the copy
    does not make the host wait for the GPU. On a CPU, where the two would only compete for the same
    cores, batches are made one after the other.

    A worker process (`torch.utils.data.DataLoader` over the step plan) was tried instead, before
    whole steps became CUDA graphs: on an H100 a compiled DistilBERT step (batch 64) took 23.2 ms
    with it against 14.5–15.8 ms with this thread, because handing each batch over between
    processes costs the launching loop more time than the thread's share of Python's lock."""
    if device.type != "cuda":
        while True:
            yield make(step)
            step += 1
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(make, step)
        while True:
            batch = pending.result()
            step += 1
            pending = pool.submit(make, step)
            yield batch


def keep_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Ask glibc's allocator to keep freed memory in the process, for the next allocation to reuse.

    By default glibc serves every block over 32 MiB with a fresh mapping from the operating system
    and hands it back when it is freed. The next such block then starts as untouched pages, and the
    first write to each 4 KiB page costs a page fault. A training step on the CPU allocates one such
    block every step: the gradient of the word embeddings (MiniLM: 30,522 × 384 floats = 47 MB),
    which PyTorch creates with zeros. Filling it took 29 ms of a 300 ms step (torch.profiler,
    `aten::fill_`); with this setting the block is reused and the fill is an ordinary memset.
    Freed memory is given back to the system only beyond `trim_threshold` bytes.

    Process-wide and Linux/glibc only; elsewhere it does nothing. Returns whether it applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # from glibc's <malloc.h>
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


@functools.lru_cache(maxsize=None)
def compiler_works() -> bool:
    """Whether `torch.compile` builds and runs CPU kernels in this process: it writes C++ and needs a
    compiler (g++ or clang on Linux and macOS, MSVC on Windows) that many laptops lack. Answered once per
    process by compiling a two-operation function and checking its result."""
    try:
        x = torch.linspace(-1.0, 1.0, 7)
        return bool(torch.allclose(torch.compile(lambda t: (t * 2).sin())(x), (x * 2).sin()))
    except Exception:  # no compiler, broken headers, a platform inductor does not support
        return False


def check_compiler(compile: bool, device: torch.device) -> None:
    """ConfigError if `--compile` asks for CPU kernels and no C++ compiler works here (both trainers ask)."""
    if compile and device.type == "cpu" and not compiler_works():
        raise ConfigError("--compile on the CPU needs a working C++ compiler (torch.compile writes C++): none here")

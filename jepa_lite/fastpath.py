"""The trainer's fast paths, off the reading path: what makes a step quick without changing what it
computes. `Trainer` calls each of these; `nano.py` shows the step without any of them, and the tests
prove the two equal (tests/test_nano.py, tests/test_speed_paths.py, tests/test_cuda_graphs.py).

- `use_cuda_graphs`: whether each step is replayed as recorded CUDA graphs (`graphs.StepGraphs`), with
  the fixed-shape loss (`JEPA.fixed_shape_loss`, `Batch.with_pred_capacity`), the learning rate and the
  EMA momentum as GPU tensors (`ema.ema_update` with a tensor m) and capturable AdamW.
- `adamw`: the fused AdamW kernel (one pass over all parameters).
- `length_multiple`: padding batches to fewer distinct lengths.
- `attention_kernels`: which attention kernels CUDA runs.
- `prefetched`: the next batch prepared by a second thread, from pinned memory, on a GPU.
- `keep_freed_memory`: glibc keeps big freed blocks for the next step on the CPU.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

import torch


def use_cuda_graphs(config, device: torch.device, distributed: bool, scaler, log: Callable[[str], None]) -> bool:
    """With compile and cuda_graphs on one CUDA device, each optimizer step is replayed as one recorded
    graph (graphs.py). The loss is then `JEPA.fixed_shape_loss`, whose shapes depend on (B, L) only (the
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
    - CPU in bf16: 4. The bf16 matrix products run on oneDNN, which JIT-compiles kernels for each
      new shape it meets, and length-grouped batches bring a new length nearly every step
      (MiniLM, batch 8: 305 ms per step on 20 new lengths, 198–207 ms on the same batches again).
      In steps of 4 each length's kernels are built once and reused: +8% tokens/s over 120 fresh
      steps, for 3.6% padded positions instead of 1.3% (README, "Performance").
    - CPU in fp32: 1. Its matrix products have no per-shape cost here, so padding is pure loss.
    """
    if device.type == "cuda":
        return 8
    return 4 if device.type == "cpu" and autocast_dtype is not None else 1


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

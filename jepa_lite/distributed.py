"""Several processes, one run: `torchrun` + DistributedDataParallel, for both trainers.

    torchrun --standalone --nproc_per_node 4 -m jepa_lite.train --text_file my.txt --batch_size 64

torchrun starts one process per GPU and tells each its RANK r, the WORLD_SIZE W and its LOCAL_RANK
(which GPU of the machine). The conventions, as in nanoGPT, I-JEPA and DINO:

* The batch sequence stays a pure function of (seed, step): every rank builds the same global batch
  of B lines (cheap: padding and masking on the host) and keeps its share, rows [r·B/W, (r+1)·B/W).
  `--batch_size` is the global batch; B must be a multiple of W.
* The loss of the global batch is the mean over its N masked tokens. Rank r holds n_r of them, and
  DDP averages gradients over the W ranks, so each rank back-propagates

      ℓ_r · (n_r / N) · W       (ℓ_r = mean over the rank's own n_r tokens)

  and the averaged gradient is exactly that of the global mean: (1/W) Σ_r W·n_r·ℓ_r / N = Σ_r n_r ℓ_r / N.
* DDP all-reduces the gradients during backward; the optimizer step is then the same on every
  rank, and every rank updates its own EMA target after it, with no communication: the copies stay
  identical because the context encoders do.
* Rank 0 alone logs, shows the progress bar and writes checkpoints; the others wait at a barrier.
  Backend gloo on the CPU, nccl on CUDA.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import ConfigError


@dataclass
class Dist:
    rank: int = 0  # this process, 0 … world_size − 1
    world_size: int = 1  # processes in the run
    local_rank: int = 0  # which GPU of this machine
    device: str = "cpu"  # where collectives put their tensors: cuda:LOCAL_RANK for nccl, cpu for gloo

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is True on any (one tiny all-reduce). A stop asked for by a
        signal becomes the whole run's decision, so all ranks stop after the same step."""
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """Σ over ranks of `x` (in place; a no-op for one process)."""
        if self.enabled:
            dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x


def setup(device: str = "auto") -> tuple[Dist, str]:
    """Join the run torchrun started (WORLD_SIZE > 1 in the environment), else a one-process Dist.

    Returns the Dist and the device this rank trains on: cuda:LOCAL_RANK (nccl) when CUDA is
    asked for or "auto" finds it, else the CPU (gloo). Ranks other than 0 print nothing to stdout.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    env = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if env.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"torchrun started {world} processes on this machine but it has {torch.cuda.device_count()} "
                f"GPUs; use --nproc_per_node {torch.cuda.device_count()}"
            )
        torch.cuda.set_device(env.local_rank)
        device = env.device = f"cuda:{env.local_rank}"
    elif device == "auto":
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if not env.is_main:
        sys.stdout = open(os.devnull, "w")
    return env, device


STOPPED_BY_SIGNAL = (128 + 2, 128 + 15)  # Ctrl-C (SIGINT), SIGTERM


def exit_process(code: int) -> None:
    """End a command-line run with exit status `code`; under torchrun, without the interpreter's shutdown.

    A gloo process group's worker threads can still be releasing the last collective's tensors when
    Python finalizes; such a thread then cannot take the interpreter lock and the rank aborts on its
    way out ("terminate called without an active exception", exit −6; seen in about 1 run in 8 of
    `tests/test_distributed.py`), after a run that finished and saved, and torchrun reports the whole
    run as failed. Checkpoints are already on disk (written, fsynced and renamed by checkpoint.py), so
    a rank of a multi-process run flushes its output and leaves with os._exit.

    A run stopped by a signal (130 Ctrl-C, 143 SIGTERM) leaves the same way: its checkpoint is on disk
    and its lock is the operating system's to drop, and the interpreter's shutdown (torch, transformers)
    takes about a second on a busy CPU, a second the scheduler that sent SIGTERM may not give.
    """
    if code in STOPPED_BY_SIGNAL or (dist.is_available() and dist.is_initialized()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def check_batch(batch_size: int, env: Dist) -> None:
    """The global batch must split evenly: each rank a share of at least one line."""
    if env.enabled and (batch_size < env.world_size or batch_size % env.world_size):
        raise ConfigError(
            f"--batch_size {batch_size} is the global batch and must be a multiple of the {env.world_size} processes "
            "torchrun started (at least one line each); use "
            f"--batch_size {max(1, batch_size // env.world_size) * env.world_size} "
            "or fewer processes"
        )


def shard(batch, env: Dist):
    """This rank's rows of a global Batch, and its loss weight (n_r / N) · W (module docstring)."""
    if not env.enabled:
        return batch, 1.0
    from .data import Batch

    B = batch.input_ids.shape[0]
    rows = slice(env.rank * B // env.world_size, (env.rank + 1) * B // env.world_size)
    pred_mask = batch.pred_mask[rows]  # (B/W, L)
    pred_index = pred_mask.flatten().nonzero().squeeze(1)  # (n_r,) into this shard's B/W · L positions
    n_global = max(1, int(batch.pred_mask.sum()))
    local = Batch(
        batch.input_ids[rows], batch.attention_mask[rows], batch.masked_input_ids[rows], pred_mask, pred_index
    )
    return local, pred_index.numel() / n_global * env.world_size


def wrap(model: torch.nn.Module, env: Dist, device: torch.device) -> torch.nn.Module:
    """`model` in DistributedDataParallel (gradients all-reduced during backward), or as is for one
    process. `find_unused_parameters`: parameters that get no gradient in a step (a pooler the loss
    never reads) are allowed. (`static_graph=True` was tried instead: on the tiny encoder, batch 8,
    the ranks' weights drifted apart within 3 steps, which `check_in_sync` caught.)"""
    if not env.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def digest(module: torch.nn.Module) -> str:
    """sha256 of a module's parameters and buffers, bit for bit: equal digests = identical weights."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode() + t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def check_in_sync(module: torch.nn.Module, env: Dist, what: str) -> list:
    """The digest of `module` on every rank (gathered); RuntimeError if any rank's differs."""
    mine = digest(module)
    if not env.enabled:
        return [mine]
    every = [None] * env.world_size
    dist.all_gather_object(every, mine)
    if len(set(every)) != 1:
        raise RuntimeError(f"the {what} differs across ranks: {every}")
    return every


def all_reduce_gradients(parameters, env: Dist) -> None:
    """g ← (1/W) Σ_r g_r for every parameter's gradient, in one flat buffer (one all-reduce).

    What DistributedDataParallel does during backward, done after it: for the paired trainer, whose
    code reads the model's own attributes (config, embeddings) and so cannot see it through a DDP
    wrapper, and whose gradient accumulation would need DDP's `no_sync` on all but the last
    micro-batch anyway. Every rank has the same parameters without a gradient (the same views are
    built on every rank at every step), so the buffers line up."""
    if not env.enabled:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])  # (Σ numel,)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= env.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()

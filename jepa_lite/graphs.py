"""Whole training steps as CUDA graphs: one launch per optimizer step.

A training step is a long list of GPU kernels: the forward and backward of both encoders and the
predictor, then gradient clipping, AdamW and the EMA update. Launching a kernel costs the host
(Python and the CUDA driver) a few microseconds. For a small model on a fast GPU the kernels finish
faster than the host can launch them, and the GPU waits: the step is bound by the host.

A CUDA graph records the kernels of one step once, with the memory addresses they read and write,
and then replays them all with a single launch. Here the *whole* step is recorded, optimizer and EMA
included, so the host's work per step shrinks to copying the next batch in, filling two numbers (the
learning rate and the EMA momentum) and one `replay()`.

What a recorded step must respect, and how the trainer does it:

- **Nothing may depend on values computed on the GPU**, only on shapes: no `loss.item()`, no
  boolean indexing whose result size depends on the data. The loss is therefore
  `fastpath.FastJEPA.fixed_shape_loss`, and the batch's index of masked positions is padded to a length
  fixed by (B, L) (`fastpath.pred_capacity`, `fastpath.with_pred_capacity`).
- **Everything that changes between steps must live at a fixed address** and be updated in place:
  the batch is copied into buffers owned by the graph; the learning rate is a GPU tensor that the LR
  scheduler fills (`AdamW(lr=tensor, capturable=True)`); the EMA momentum is a GPU tensor filled
  before each replay (`fastpath.ema_update_tensor_m`).
- **One graph per shape**: a graph replays fixed shapes, so each padded length L (a multiple of 8)
  gets its own. The first step of a new shape runs normally (it compiles, plans the attention kernel
  and, on the very first step, creates the optimizer state); the second is recorded and replayed.
- **Memory**: the tensors a graph creates while it is recorded (activations, gradients) come from a
  private memory pool and are reused at every replay. All graphs share one pool: they never run at
  the same time, and nothing they create outlives a replay except the loss, which is copied out at
  once.

Random numbers (dropout) are fine: PyTorch advances the random generator's offset at every replay,
so each step draws new dropout masks, as it would without the graph.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, Tuple

import torch

from .data import Batch


class StepGraphs:
    """Run `step(batch) -> loss` for batches of any padded shape, as CUDA graphs.

    `step` must do the whole optimizer step on the device without a host sync (see the module
    docstring). The first call for a shape runs `step` directly; the second records it as a graph and
    replays it; later calls only replay. Returns the loss (a fresh device tensor)."""

    def __init__(self, step: Callable[[Batch], torch.Tensor], device: torch.device):
        self.step = step
        self.device = device
        self.seen: Counter = Counter()
        self.graphs: Dict[Tuple[int, ...], Tuple[torch.cuda.CUDAGraph, Batch, torch.Tensor]] = {}
        self.pool = None  # the memory pool shared by all graphs, made by the first recording

    def __call__(self, batch: Batch) -> torch.Tensor:
        shape = tuple(batch.input_ids.shape)
        if shape not in self.graphs:
            self.seen[shape] += 1
            if self.seen[shape] == 1:
                return self.step(batch.to(self.device))
            self.graphs[shape] = self._record(batch)
        graph, static, loss = self.graphs[shape]
        # The new batch goes where the graph reads it. Every field's shape is fixed by (B, L): four
        # (B, L) tensors and `pred_index`, padded to `fastpath.pred_capacity` entries.
        for dst, src in zip(static.tensors(), batch.tensors()):
            dst.copy_(src, non_blocking=True)
        graph.replay()
        return loss.clone()  # the next replay of any graph may reuse this memory

    def _record(self, batch: Batch) -> Tuple[torch.cuda.CUDAGraph, Batch, torch.Tensor]:
        """Record `step` on buffers of `batch`'s shape. Recording runs nothing on the GPU: the
        caller replays the graph right after, which is this step's real work."""
        static = batch.to(self.device)
        graph = torch.cuda.CUDAGraph()
        # "thread_local": the trainer's batch thread may pin host memory while the main thread records.
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            # detached: a loss that kept its autograd graph alive would keep this recording's
            # gradient accumulators too, and the next step would find them bound to another stream
            loss = self.step(static).detach()
        self.pool = graph.pool()
        return graph, static, loss

"""The paired step as a CUDA graph: `--cuda_graphs`, what the notebook 06 study's runs use on a GPU.

A small model's step on a GPU is bound by the host: the kit's own Llama (1 M parameters, batch 32) runs
a few hundred small kernels per optimizer step, each launched from Python, and the GPU waits between
them. `graphs.StepGraphs` records a whole step once — forward, backward, gradient clipping, AdamW — and
replays it with one launch. A recorded step replays fixed shapes and must not ask the GPU for a value,
so here:

- **a batch has a fixed shape**: its rows are padded on the right to a multiple of `LENGTH_MULTIPLE`
  tokens (pad tokens, label IGNORE, block 0: `rows.block_causal_mask` lets a pad see only itself), and
  every field a step reads is a tensor of that batch (`StepRows`); a step with the JEPA term and one
  without (λ = 0, loss dropout) are different graphs;
- **the counts the losses are divided by are computed on the GPU**, from the batch: the scored labels
  and the pairs (`fixed_shape_losses`), where the eager step counts them on the host;
- **the learning rate is a GPU tensor** the scheduler fills before each replay, and AdamW is
  capturable (`fastpath.adamw`, as the masked-span trainer's graphs).

The eager step is not recorded: no torch.compile is needed, so a run pays no compile time, and the
graph replays the very kernels the eager step launches. `PairedTrainer.losses` is the readable version
of the same objective, tested equal to this one (tests/test_paired_graphs.py, fp32 on the CPU, where
the step runs without recording; a GPU checks the recorded step).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import List, Optional, Sequence

import torch

from .rows import (
    IGNORE,
    block_causal_mask,
    jepa_distance,
    lm_loss_sum,
    lm_row,
    pack_rows,
    packed_enc_index,
    packed_pair_rows,
    pad_rows,
    run_model,
)

LENGTH_MULTIPLE = 8  # rows padded to a multiple of this: a handful of shapes, so of graphs, per run


@dataclass
class StepRows:
    """One step's batch, fixed-shape: `input_ids`, `labels`, `position_ids`, `block` (block number from 1,
    0 = pad) are (B, L) with L a multiple of LENGTH_MULTIPLE; `x_index`, `y_index` (B,) are the columns of
    Pred(Enc(Text)) and Enc(Code) in each row (zeros in a step without the JEPA term)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    block: torch.Tensor
    x_index: torch.Tensor
    y_index: torch.Tensor

    def tensors(self) -> List[torch.Tensor]:
        return [getattr(self, f.name) for f in fields(self)]

    def to(self, device) -> "StepRows":
        return StepRows(*(t.to(device, non_blocking=True) for t in self.tensors()))

    def pinned(self) -> "StepRows":
        return StepRows(*(t.pin_memory() for t in self.tensors()))

    def padded(self, length: int, pad_id: int) -> "StepRows":
        """The rows padded on the right to `length` tokens: pad tokens, label IGNORE, position 0, block 0."""
        return StepRows(
            pad_right(self.input_ids, length, pad_id),
            pad_right(self.labels, length, IGNORE),
            pad_right(self.position_ids, length, 0),
            pad_right(self.block, length, 0),
            self.x_index,
            self.y_index,
        )


def padded_length(n: int, multiple: int = LENGTH_MULTIPLE) -> int:
    """The smallest multiple of `multiple` that is ≥ n."""
    return -(-n // multiple) * multiple


def pad_right(t: torch.Tensor, length: int, value: int) -> torch.Tensor:
    """(B, L) → (B, length) with `value` in the new columns on the right."""
    return torch.nn.functional.pad(t, (0, length - t.shape[1]), value=value)


def step_rows(
    text: Sequence[List[int]],
    code: Sequence[List[int]],
    ids: dict,
    with_jepa: bool,
    predictors: int = 0,
    lm_tokens: str = "code",
    back: int = 1,
) -> StepRows:
    """The fixed-shape batch of pairs (text[i], code[i]), on the host. With the JEPA term: one packed row per
    pair, [LM row | (Text view) | Code view] (`rows.pack_rows`); without it: the LM rows alone, one block each.
    `back`: Enc(Code) is read this many tokens before the Code view's end (`rows.code_back`)."""
    B = len(text)
    if with_jepa:
        blocks, labels = zip(*(packed_pair_rows(t, c, predictors, ids, lm_tokens) for t, c in zip(text, code)))
        p = pack_rows(blocks, labels, ids["pad"], "right")
        x, y = packed_enc_index(p, [len(t) for t in text], predictors, back)
        input_ids, label_ids, positions, block = p.input_ids, p.labels, p.position_ids, p.block
    else:
        rows, labels = zip(*(lm_row(t, c, ids, lm_tokens) for t, c in zip(text, code)))
        input_ids, block = pad_rows(rows, ids["pad"], "right")
        label_ids = pad_rows(labels, IGNORE, "right")[0]
        positions = torch.where(block > 0, block.cumsum(dim=1) - 1, 0)  # 0 at the pads, as pad_right puts there
        x = y = torch.zeros(B, dtype=torch.long)
    return StepRows(input_ids, label_ids, positions, block, x, y).padded(padded_length(input_ids.shape[1]), ids["pad"])


def fixed_shape_losses(model, batch: StepRows, with_jepa: bool, distance: str = "cosine"):
    """(LM loss, JEPA loss or None) of a `StepRows` batch on its device, with no host sync: the LM loss is the
    mean next-token cross-entropy over the scored labels, counted on the GPU; the JEPA loss the mean
    distance over the B pairs. The same numbers as `PairedTrainer.losses` on the same pairs."""
    mask = block_causal_mask(batch.block, model)
    logits, h = run_model(model, batch.input_ids, mask, batch.position_ids)
    scored = (batch.labels[:, 1:] != IGNORE).sum()
    lm = lm_loss_sum(logits, batch.labels) / scored
    if not with_jepa:
        return lm, None
    rows = torch.arange(h.shape[0], device=h.device)
    return lm, jepa_distance(h[rows, batch.x_index], h[rows, batch.y_index], distance)


def unsupported(config, device: torch.device, distributed: bool, grad_scaler: bool) -> Optional[str]:
    """Why `--cuda_graphs` cannot record this run's steps (None: it can)."""
    if device.type != "cuda":
        return f"it records CUDA steps, and this run trains on {device.type}"
    if distributed:
        return "it records one process's steps, and this run has several (torchrun)"
    if grad_scaler:
        return "fp16's loss scaler decides on the host whether to skip each step"
    if config.grad_accum != 1 or config.length_groups != 1:
        return "it records one forward and backward per step (--grad_accum 1, --length_groups 1)"
    if config.pack_length or config.compile:
        return "it records the step of one row per pair (--pack_length and --compile are the other fast path)"
    if config.lbd > 0 and (config.objective != "llm_jepa" or config.views != "packed"):
        return "with the JEPA term it records the packed views (--views packed, --objective llm_jepa)"
    return None


def can_record(config) -> bool:
    """Whether `--cuda_graphs` can record the steps of a one-process run of `config` (the studies ask)."""
    from ..config import pick_device
    from ..precision import resolve_precision

    device = pick_device(config.device)
    return unsupported(config, device, False, resolve_precision(config.precision, device).grad_scaler) is None

"""PairedTrainer: fine-tunes a causal LM with γ·L_LM + λ·JEPA on (Text, Code) pairs (arXiv 2509.14252).

    L = γ · L_LM(Text ⊕ Code) + λ · (1 − cos(Pred(Enc(Text)), Enc(Code)))          (paper, eq. 2)

`nano.py` holds this objective on one page for one batch; this trainer adds batches that are a pure
function of (seed, step), gradient accumulation, loss dropout, packed rows (`rows.py`), precision,
several processes, the save-path rules and exact resume, evaluation and the kept model. The package
index (`__init__.py`) says where the rest lives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import random
import time
import uuid
from typing import Dict, List, Optional, Sequence

import torch

from ..checkpoint import (
    CheckpointError,
    NonFiniteState,
    SaveTarget,
    check_save_path,
    estimate_bytes,
    first_nonfinite,
    restore_rng_state,
    save_checkpoint,
    state_tensors,
    training_state,
)
from ..config import pick_device
from ..data import clip_chars
from ..distributed import all_reduce_gradients, check_batch, setup
from ..errors import ConfigError, TrainingDiverged
from ..fastpath import SCORED_MULTIPLE, adamw, check_compiler, cpu_attention, length_multiple
from ..graphs import StepGraphs
from ..nano import lr_factor
from ..precision import autocast, resolve_precision
from ..stopping import StepGuard, can_drop_steps
from ..train import diverged_message
from .causal_lm import TinyLMConfig, check_save_dir, load_causal_lm, pair_token_ids, save_model_folder
from .config import (
    KIND,
    PairedConfig,
    check_compatible,
    encode,
    load_paired_checkpoint,  # noqa: F401
    load_pairs,
    pairs_fingerprint,
)
from .graphed import StepRows, fixed_shape_losses, padded_length, step_rows, unsupported
from .packing import enc_offsets, flex_block_mask, lm_row_tokens, most_rows, pack_pairs, pair_tokens
from .pairs import Pair
from .rows import (
    CUSTOM_MASK_IMPLEMENTATIONS,
    IGNORE,
    attention_implementation,
    block_causal_mask,
    code_back,
    code_view,
    head_apart,
    head_loss_sum,
    jepa_distance,
    last_hidden,
    last_token_index,
    lm_loss_sum,
    lm_row,
    lm_sum_and_states,
    model_states,
    pack_rows,
    packed_enc_index,
    packed_pair_rows,
    pad_rows,
    position_ids,
    run_model,
    scored_at,
    text_view,
)
from .stp import draw_span, span_masks, span_weight, tube_cosine


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------
def measuring(method):
    """A `PairedTrainer` method that measures (embeddings, generation): run eagerly under `compile`, which is
    for training (a few calls a run; generation's growing cache would compile a graph per length)."""

    @functools.wraps(method)
    def eager(self, *args, **kwargs):
        with torch.compiler.set_stance("force_eager") if self.config.compile else contextlib.nullcontext():
            return method(self, *args, **kwargs)

    return eager


class PairedTrainer:
    """Fine-tunes a causal LM with γ·L_LM + λ·JEPA on (Text, Code) pairs; evaluates and keeps it.

    `fit()` returns the history (dict of lists, one entry per log step): step, lm_loss, jepa_loss
    (on the training batch; NaN when λ = 0 or the term was dropped that step), jepa_monitor (the JEPA
    loss on fixed test pairs, measured for every run — this is how we see that LM-only training does
    not lower it), lr, seconds; and step_lm_loss / step_jepa_loss, one entry per optimizer step.
    Batches are a pure function of (seed, step), so a resumed run continues exactly.
    """

    def __init__(self, config: PairedConfig, callbacks: Sequence = (), log=print):
        config.validate()
        self.config = config
        self.dist, device = setup(config.device)  # under torchrun: this rank's process group and device
        self.callbacks = list(callbacks) if self.dist.is_main else []
        self.log = log if self.dist.is_main else (lambda line: None)  # rank 0 alone logs
        self.device = pick_device(device)
        self.precision = resolve_precision(config.precision, self.device)
        # --compile: on the CPU torch.compile writes C++; one row per pair is compiled on the CPU only (untried on
        # a GPU, where --pack_length or --cuda_graphs do the work)
        check_compiler(config.compile, self.device)
        if config.compile and self.device.type != "cpu" and not config.pack_length:
            raise ConfigError(
                "--compile without --pack_length is for the CPU; on a GPU use --pack_length N or --cuda_graphs"
            )
        # The save-path rules (checkpoint.SaveTarget), as in jepa_lite.train: `run_id` names this run in
        # its checkpoints (`resume` takes over the saved run's); a folder, a device, a read-only file or
        # one that is not a kit checkpoint is refused here, before any work; the rest in `fit`.
        self.run_id = uuid.uuid4().hex[:12]
        self.save_path = config.save_path
        self.target = None  # rank 0 writes
        if config.save_path and self.dist.is_main:
            self.target = SaveTarget(config.save_path, self.run_id, config.overwrite)
        if self.target is not None:
            check_save_path(config.save_path, overwrite=True)  # whose checkpoint it is can only be told after `resume`
        self.train_pairs, self.test_pairs = load_pairs(config)
        check_batch(min(config.batch_size * config.grad_accum, len(self.train_pairs)), self.dist)
        self.fingerprint = pairs_fingerprint(self.train_pairs, self.test_pairs)
        torch.manual_seed(config.seed)
        texts = [
            clip_chars(s, config.max_length) for p in self.train_pairs for s in (p.text, p.code)
        ]  # no string tokenised whole
        tiny = TinyLMConfig(dim=config.tiny_dim, layers=config.tiny_layers)
        codes = [clip_chars(p.code, config.max_length) for p in self.train_pairs + self.test_pairs]
        self.model, self.tokenizer = load_causal_lm(config.model, texts, codes, tiny)
        self.model.to(self.device)
        dtype = self.precision.autocast_dtype
        if config.attention == "flex":
            self.model.set_attn_implementation("flex_attention")
        elif cpu_attention(self.device, dtype, attention_implementation(self.model)) == "eager":
            self.model.set_attn_implementation("eager")  # the CPU in bf16 (fastpath.cpu_attention)
        # On the CPU in bf16 oneDNN builds kernels for each matrix shape it meets: rows are padded to a multiple
        # of 8 (`fastpath.length_multiple`) and the LM head's scored positions to one of 64; elsewhere, none.
        bf16_cpu = self.device.type == "cpu" and dtype is not None
        self.row_multiple = length_multiple(self.device, dtype) if bf16_cpu else 1
        self.scored_multiple = SCORED_MULTIPLE if bf16_cpu else 1
        self.ids = pair_token_ids(self.tokenizer)
        cap = config.max_length - config.predictors - 3  # room for [BOS], [SEP], [EOS] or the [PRED]s
        self.train_text = encode(self.tokenizer, [p.text for p in self.train_pairs], cap)
        self.train_code = encode(self.tokenizer, [p.code for p in self.train_pairs], cap)
        self._all_rows: Dict[bool, tuple] = {}  # with the JEPA term or not → (every pair's StepRows, lengths)
        self._order: tuple = (None, [])  # (epoch, its shuffled order of the training pairs): `batch_indices`
        self._build_fast_path()
        # On CUDA every training forward gets a (B, 1, L, L) mask built here: given a plain (B, L)
        # padding mask, transformers asks `mask.all()` to choose its kernel, a host sync per pass.
        self.mask_4d = (
            self.device.type == "cuda" and attention_implementation(self.model) in CUSTOM_MASK_IMPLEMENTATIONS
        )
        # packed views, one row per pair: the LM head runs only where the loss scores (rows.head_loss_sum)
        self.scored_head = config.views == "packed" and not config.pack_length and head_apart(self.model)
        if config.views == "packed":
            check_custom_mask(self)
        if config.compile and not config.pack_length:
            # one row per pair, padded per batch: the transformer compiled once for any batch and length
            # (in place: the parameters' names stay); embeddings and generation run it eagerly (`measuring`)
            self.model.base_model.compile(dynamic=True)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision.grad_scaler else None
        why = unsupported(config, self.device, self.dist.enabled, self.scaler is not None)
        if config.cuda_graphs and why:
            raise ConfigError(f"--cuda_graphs: {why}")
        # One fused AdamW kernel for all parameters (CPU and CUDA), instead of a loop over tensors; with CUDA
        # graphs the LR is a GPU tensor that the scheduler fills and AdamW is capturable (fastpath.adamw).
        self.optimizer = adamw(self.model.parameters(), config, self.device, static_shapes=config.cuda_graphs)
        self.lr_factor = lambda s: lr_factor(s, config.warmup_steps, config.steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        # with the JEPA term and without it (λ = 0, loss dropout): a graph per padded length each (graphed.py)
        self.graphs = self._new_graphs() if config.cuda_graphs else None
        self.step = 0
        self.history: Dict[str, List[float]] = {
            k: []
            for k in ("step", "lm_loss", "jepa_loss", "jepa_monitor", "lr", "seconds", "step_lm_loss", "step_jepa_loss")
        }
        self.stop_requested = False  # set by a Ctrl-C handler: checkpoint and stop after this step
        # On the CPU of one process a stop drops the step under way instead of finishing it (stopping.py)
        self.guard = StepGuard(
            lambda: self.stop_requested, can_drop_steps(self.device, self.dist.enabled, compiled=config.compile)
        )
        self._window: List[tuple] = []  # (lm_loss, jepa_loss or None) device tensors of the steps since the last log
        self._span_draws: tuple = (None, {})  # STP: (step, {pair: (span, w)}) of the step under way (`stp_spans`)
        if config.resume:
            self.resume(config.resume)

    def _build_fast_path(self) -> None:
        """Pairs in rows (`pack_length`): every micro-batch padded to the most rows the first epoch's batches
        need (a later batch that needs more gets them, and `compile` compiles once more); steps without the
        JEPA term (λ = 0, loss dropout) pack the LM rows alone, to their own most rows; `rows_forward`
        is what the packed rows run through (model and LM loss), compiled with `compile` (packing.py)."""
        c, self.rows_per_batch, self.lm_rows_per_batch = self.config, 0, 0
        self.rows_forward = functools.partial(lm_sum_and_states, self.model)
        if c.pack_length:
            pair = [pair_tokens(len(t), len(code), c.predictors) for t, code in zip(self.train_text, self.train_code)]
            lm = [lm_row_tokens(len(t), len(code)) for t, code in zip(self.train_text, self.train_code)]
            epoch = len(self.train_pairs) // min(c.batch_size * c.grad_accum, len(self.train_pairs))
            chunks = [chunk for s in range(min(c.steps, epoch)) for chunk in self.micro_batches(s)]
            self.rows_per_batch = most_rows(([pair[i] for i in chunk] for chunk in chunks), c.pack_length)
            self.lm_rows_per_batch = most_rows(([lm[i] for i in chunk] for chunk in chunks), c.pack_length)
        if c.compile:
            # the LM loss compiled with the model: its fp32 log-softmax fused, never a float copy of the logits
            self.rows_forward = torch.compile(self.rows_forward, dynamic=False)

    # -- batches --------------------------------------------------------------------------------
    def batch_indices(self, step: int) -> List[int]:
        """The training pairs of optimizer step `step` (batch_size · grad_accum of them): a shuffled
        pass over the data, reshuffled each epoch. The same for (batch_size B, grad_accum N) as for
        (N·B, 1): gradient accumulation changes the memory a step needs, not what it trains on."""
        n = len(self.train_pairs)
        bs = min(self.config.batch_size * self.config.grad_accum, n)
        epoch, k = divmod(step, n // bs)
        if self._order[0] != epoch:  # shuffled once per epoch, not per call (several calls a step)
            order = list(range(n))
            random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
            self._order = (epoch, order)
        return self._order[1][k * bs : (k + 1) * bs]

    def micro_batches(self, step: int) -> List[List[int]]:
        """The batch of `step` cut into grad_accum micro-batches of at most batch_size pairs."""
        idx, bs = self.batch_indices(step), self.config.batch_size
        if self.dist.enabled:  # this rank's share of the step's global batch (distributed.py)
            r, W = self.dist.rank, self.dist.world_size
            idx = idx[r * len(idx) // W : (r + 1) * len(idx) // W]
        return [idx[s : s + bs] for s in range(0, len(idx), bs)]

    def length_groups(self, idx: List[int]) -> List[List[int]]:
        """Pairs `idx` sorted by the length of their longest row (the packed row with `--views packed`) and
        cut into `length_groups` groups of nearly equal size, each then padded to its own longest: what
        each forward pass of a step sees. Losses are sums divided by the whole step's counts, so the
        groups add up to the step of one batch, with less padding."""
        g = self.config.length_groups
        if g == 1:
            return [idx]
        c, text, code = self.config, self.train_text, self.train_code
        if c.views == "packed":
            length = lambda i: pair_tokens(len(text[i]), len(code[i]), c.predictors)  # noqa: E731
        else:
            length = lambda i: lm_row_tokens(len(text[i]), len(code[i]))  # noqa: E731
        order = sorted(idx, key=length)
        return [group for k in range(g) if (group := order[k * len(order) // g : (k + 1) * len(order) // g])]

    def jepa_dropped(self, step: int) -> bool:
        """Loss dropout: is the JEPA term skipped at `step`? (A pure function of seed and step.)"""
        p = self.config.loss_dropout
        return p > 0 and random.Random(self.config.seed * 7_919 + step).random() < p

    def scored_tokens(self, idx: Sequence[int]) -> int:
        """How many labels the LM loss scores on pairs `idx` (counted on the host: no GPU sync)."""
        if self.config.lm_tokens == "all":
            return sum(len(self.train_text[i]) + len(self.train_code[i]) + 2 for i in idx)
        return sum(len(self.train_code[i]) + 1 for i in idx)

    def _to(self, t: torch.Tensor) -> torch.Tensor:
        """Host tensor → training device; from pinned memory on CUDA, so the copy does not wait."""
        return t.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else t.to(self.device)

    def autocast(self, weight_cache: bool = True):
        return autocast(self.precision, self.device, weight_cache)

    # -- the objective --------------------------------------------------------------------------
    def losses(self, idx: Sequence[int], with_jepa: bool, side: str = "right", reduce: str = "mean", step: int = 0):
        """(lm_loss, jepa_loss or None) on the training pairs `idx`.

        reduce = "mean": the LM loss is the mean over scored tokens, the JEPA loss the mean over
        pairs (for STP, weighted by the span weights). reduce = "sum": both are sums (gradient
        accumulation divides them by the whole batch's counts). `views` picks the separate rows or
        the packed ones (`rows.py`); objective "stp" reads the LM row alone, with the spans of `step`.
        """
        c = self.config
        if not with_jepa:
            lm, jepa = (self.lm_in_rows_forward(idx) if c.pack_length else self.lm_forward(idx, side)), None
        elif c.objective == "stp":
            lm, jepa = self.stp_forward(idx, step, side)
        else:
            lm, x, y = (self.packed_forward if c.views == "packed" else self.separate_forward)(idx, side)
            jepa = jepa_distance(x, y, c.distance) * len(idx)  # a sum over the pairs
        if reduce == "mean":
            lm = lm / self.scored_tokens(idx)
            jepa = jepa / self.jepa_count(idx, step) if jepa is not None else None
        return lm, jepa

    def jepa_count(self, idx: Sequence[int], step: int) -> float:
        """What the summed JEPA term is divided by: the number of pairs, or for STP Σ_i w_i of the spans."""
        if self.config.objective != "stp":
            return len(idx)
        return max(sum(w for _, w in self.stp_spans(idx, step)), 1e-12)

    def stp_spans(self, idx: Sequence[int], step: int) -> List[tuple]:
        """[((s, t) or None, w)] for pairs `idx` at `step`: a pure function of (seed, step, pair), so
        micro-batches, ranks and resumed runs all draw the same spans (`stp.draw_span`)."""
        c = self.config
        if self._span_draws[0] != step:  # a step's draws are kept for that step: its count and its passes share them
            self._span_draws = (step, {})
        draws = self._span_draws[1]
        for i in idx:
            if i not in draws:
                n = len(self.train_text[i]) + len(self.train_code[i])
                span = draw_span(n, c.seed, step, i, c.stp_span, c.stp_max_span)
                draws[i] = (span, 0.0 if span is None else span_weight(n, span[1] - span[0], c.stp_weighting))
        return [draws[i] for i in idx]

    def stp_forward(self, idx, step: int, side: str = "right"):
        """(Σ LM loss, Σ_i w_i (1 − cos(rest_i, patch_i))) from ONE forward pass over the B LM rows
        `[BOS] Text [SEP] Code [EOS]` (`stp.py` holds the formula and the readable version)."""
        rows, input_ids, mask, label_ids = self._lm_rows(idx, side)
        logits, h = self._states(input_ids, mask)  # (B, L, V), (B, L, D)
        spans, weights = zip(*self.stp_spans(idx, step))
        starts = [input_ids.shape[1] - len(r) if side == "left" else 0 for r in rows]
        n_text, n_code = [len(self.train_text[i]) for i in idx], [len(self.train_code[i]) for i in idx]
        content, span = span_masks(n_text, n_code, spans, input_ids.shape[1], starts)  # (B, L) each
        w = self._to(torch.tensor(weights, dtype=torch.float32))  # (B,)
        cos = tube_cosine(h, self._to(content), self._to(span))  # (B,) cos(before + after, patch)
        return lm_loss_sum(logits, self._to(label_ids)), (w * (1 - cos)).sum()

    def _lm_rows(self, idx, side: str = "right"):
        """The LM rows `[BOS] Text [SEP] Code [EOS]` of pairs `idx`: (rows, input_ids (B, L), mask (B, L),
        labels (B, L)), padded on `side`, on the host."""
        c = self.config
        rows, labels = zip(*(lm_row(self.train_text[i], self.train_code[i], self.ids, c.lm_tokens) for i in idx))
        input_ids, mask = pad_rows(rows, self.ids["pad"], side, self.row_multiple)
        return rows, input_ids, mask, pad_rows(labels, IGNORE, side, self.row_multiple)[0]

    def lm_forward(self, idx, side: str = "right") -> torch.Tensor:
        """Σ next-token CE over the B LM rows `[BOS] Text [SEP] Code [EOS]` (one forward pass)."""
        _, input_ids, mask, label_ids = self._lm_rows(idx, side)
        if self.scored_head:
            return self._scored_lm(self._states(input_ids, mask, run=model_states), label_ids)
        logits, _ = self._hidden(input_ids, mask)
        return lm_loss_sum(logits, self._to(label_ids))

    def _scored_lm(self, states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Σ next-token CE from the body's states (B, L, D) and the host labels (B, L), the LM head applied
        only at the scored positions (`rows.head_loss_sum`)."""
        at, targets = scored_at(labels, self.scored_multiple)
        return head_loss_sum(self.model, states, self._to(at), self._to(targets))

    def lm_in_rows_forward(self, idx) -> torch.Tensor:
        """`lm_forward` with the LM rows of several pairs in each row of `pack_length` tokens: the steps
        without the JEPA term (λ = 0, loss dropout) on the fast path (`pairs_in_rows_forward`)."""
        c = self.config
        rows = [lm_row(self.train_text[i], self.train_code[i], self.ids, c.lm_tokens) for i in idx]
        blocks, labels, at = [[r] for r, _ in rows], [[lab] for _, lab in rows], [0] * len(idx)
        p = pack_pairs(blocks, labels, at, at, c.pack_length, self.ids["pad"], self.lm_rows_per_batch).packed
        return self._rows_states(p)[0]

    def _hidden(self, input_ids: torch.Tensor, mask: torch.Tensor, back: int = 0):
        """`last_hidden` on the training device; with `mask_4d` the padding mask goes in as the
        equivalent one-block `block_causal_mask` (same numbers, no host sync inside transformers)."""
        if not self.mask_4d:
            return last_hidden(self.model, self._to(input_ids), self._to(mask), back)
        logits, h = self._states(input_ids, mask)  # host tensors in: `_states` moves them once
        return logits, h[torch.arange(h.shape[0], device=h.device), self._to(last_token_index(mask, back))]

    def _states(self, input_ids: torch.Tensor, mask: torch.Tensor, run=run_model):
        """(logits (B, L, V), every position's last-layer state (B, L, D)) on the training device, from
        host tensors (`_to` pins them on CUDA, which a tensor already on the GPU cannot be); with
        `run=model_states`, the states alone (no LM head)."""
        mask = self._to(mask)
        attention = block_causal_mask(mask, self.model) if self.mask_4d else mask
        return run(self.model, self._to(input_ids), attention, position_ids(mask))

    def separate_forward(self, idx, side: str = "right"):
        """(Σ LM loss, Pred(Enc(Text)) (B, D), Enc(Code) (B, D)) the readable way: the B LM rows,
        then the B Text views, then the B Code views, each group padded to its own longest row."""
        c, ids = self.config, self.ids
        lm = self.lm_forward(idx, side)
        m = self.row_multiple
        texts = pad_rows([text_view(self.train_text[i], c.predictors, ids) for i in idx], ids["pad"], side, m)
        codes = pad_rows([code_view(self.train_code[i], ids) for i in idx], ids["pad"], side, m)
        _, x = self._hidden(*texts)  # (B, D) Pred(Enc(Text))
        _, y = self._hidden(*codes, back=code_back(c.code_position))  # (B, D) Enc(Code)
        return lm, x, y

    def packed_forward(self, idx, side: str = "right"):
        """The same three things from one forward pass over B packed rows [LM row | Text view | Code
        view] (no Text view for k = 0: Enc(Text) is read at the LM row's [SEP]) under a
        block-causal mask (`rows.py`)."""
        c = self.config
        if c.pack_length:
            return self.pairs_in_rows_forward(idx)
        blocks, labels = zip(
            *(
                packed_pair_rows(self.train_text[i], self.train_code[i], c.predictors, self.ids, c.lm_tokens)
                for i in idx
            )
        )
        packed = pack_rows(blocks, labels, self.ids["pad"], side, self.row_multiple)
        xi, yi = packed_enc_index(
            packed, [len(self.train_text[i]) for i in idx], c.predictors, code_back(c.code_position)
        )
        mask = block_causal_mask(self._to(packed.block), self.model)  # (B, 1, L, L)
        input_ids, positions = self._to(packed.input_ids), self._to(packed.position_ids)
        if self.scored_head:
            h = model_states(self.model, input_ids, mask, positions)
            lm = self._scored_lm(h, packed.labels)
        else:
            logits, h = run_model(self.model, input_ids, mask, positions)
            lm = lm_loss_sum(logits, self._to(packed.labels))
        rows = torch.arange(len(idx), device=h.device)
        return lm, h[rows, self._to(xi)], h[rows, self._to(yi)]

    def pairs_in_rows_forward(self, idx):
        """`packed_forward` with several pairs in each row of `pack_length` tokens (`packing.py`): one
        forward pass over R rows; the embeddings gathered from the flattened (R·N, D) states."""
        c, back = self.config, code_back(self.config.code_position)
        pairs = [
            packed_pair_rows(self.train_text[i], self.train_code[i], c.predictors, self.ids, c.lm_tokens) for i in idx
        ]
        x_at, y_at = zip(
            *(enc_offsets(len(self.train_text[i]), c.predictors, b, back) for i, (b, _) in zip(idx, pairs))
        )
        rows = pack_pairs(*zip(*pairs), x_at, y_at, c.pack_length, self.ids["pad"], self.rows_per_batch)
        lm, h = self._rows_states(rows.packed)
        h = h.flatten(0, 1)  # (R·N, D)
        return lm, h[self._to(rows.x_index)], h[self._to(rows.y_index)]

    def _rows_states(self, p):
        """(Σ LM loss, states (R, N, D)) of packed rows `p` through `rows_forward`, under the block-causal mask
        (a FlexAttention `BlockMask` with `--attention flex`)."""
        block = self._to(p.block)
        flex = attention_implementation(self.model) == "flex_attention"
        mask = flex_block_mask(block) if flex else block_causal_mask(block, self.model)  # (R, 1, N, N)
        return self.rows_forward(self._to(p.input_ids), mask, self._to(p.position_ids), self._to(p.labels))

    def objective(self, step: int):
        """(L, lm_loss, jepa_loss or None) for the whole batch of `step`: L = γ·L_LM + λ·JEPA.

        With λ = 0, or when loss dropout skips the step, the JEPA views are not even built and
        L = γ·L_LM.
        """
        return self._objective(self.batch_indices(step), self.config.lbd > 0 and not self.jepa_dropped(step), step=step)

    def _objective(
        self, idx, with_jepa: bool, n_tokens: Optional[int] = None, n_pairs: Optional[float] = None, step: int = 0
    ):
        """L = γ·Σ CE / n_tokens + λ·Σ d / n_pairs on pairs `idx`; the counts are those of the whole
        step's batch (so the micro-batches of gradient accumulation add up to the full batch's L)."""
        c = self.config
        with self.autocast():
            lm, jepa = self.losses(idx, with_jepa, reduce="sum", step=step)
        lm = lm / (n_tokens or self.scored_tokens(idx))
        jepa = jepa / (n_pairs or self.jepa_count(idx, step)) if jepa is not None else None
        total = c.gamma * lm + c.lbd * jepa if jepa is not None else c.gamma * lm
        return total, lm, jepa

    def train_step(self):
        """One optimizer step (grad_accum micro-batches); returns the (lm_loss, jepa_loss or None)
        device tensors of the whole batch (read them only at log steps: no host sync here)."""
        c = self.config
        self.model.train()
        chunks = [group for chunk in self.micro_batches(self.step) for group in self.length_groups(chunk)]
        with_jepa = c.lbd > 0 and not self.jepa_dropped(self.step)
        if self.graphs is not None:
            return self._graphed_step(chunks[0], with_jepa)
        everything = self.batch_indices(self.step)  # the whole global batch: the counts L is divided by
        n_tokens, n_pairs = self.scored_tokens(everything), self.jepa_count(everything, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        lm_total, jepa_total = 0.0, (0.0 if with_jepa else None)
        with self.guard.droppable(self.model.parameters()):  # a stop signal drops the step here (stopping.py)
            for chunk in chunks:
                loss, lm, jepa = self._objective(chunk, with_jepa, n_tokens, n_pairs, step=self.step)
                loss = loss * self.dist.world_size  # Σ over ranks of the rank's share = the global L (all-reduce: mean)
                (self.scaler.scale(loss) if self.scaler else loss).backward()
                lm_total = lm_total + lm.detach()
                if jepa is not None:
                    jepa_total = jepa_total + jepa.detach()
        all_reduce_gradients(self.model.parameters(), self.dist)  # as DDP would (distributed.py)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        if self.dist.enabled:  # the whole batch's losses, Σ over ranks of each rank's share
            lm_total = self.dist.sum(lm_total)
            jepa_total = self.dist.sum(jepa_total) if jepa_total is not None else None
        return lm_total, jepa_total

    def step_rows(self, idx: Sequence[int], with_jepa: bool) -> StepRows:
        """The fixed-shape batch of pairs `idx` (graphed.py), on the host: the rows of all training pairs are
        built once (`graphed.step_rows`, right-padded, each row on its own), and a step takes its pairs' rows
        with one index per tensor, cut to its own padded length: the same batch as `graphed.step_rows` on the
        pairs `idx`, without Python work per pair at every step."""
        if with_jepa not in self._all_rows:
            c = self.config
            back = code_back(c.code_position)
            rows = step_rows(self.train_text, self.train_code, self.ids, with_jepa, c.predictors, c.lm_tokens, back)
            self._all_rows[with_jepa] = rows, (rows.block > 0).sum(dim=1)
        rows, lengths = self._all_rows[with_jepa]
        at = torch.tensor(idx, dtype=torch.long)
        L = padded_length(int(lengths[at].max()))
        return StepRows(*(t[at, :L] if t.dim() == 2 else t[at] for t in rows.tensors()))

    def _new_graphs(self) -> Dict[bool, StepGraphs]:
        return {
            w: StepGraphs(lambda batch, w=w: self._fixed_shape_update(batch, w), self.device) for w in (False, True)
        }

    def _graphed_step(self, idx: Sequence[int], with_jepa: bool):
        """`train_step` as a replayed CUDA graph (graphed.py): the batch copied in, one launch, the LR filled."""
        out = self.graphs[with_jepa](self.step_rows(idx, with_jepa).pinned())
        self.scheduler.step()  # outside the graph: it fills the LR tensor the graph reads
        self.step += 1
        return out[0], (out[1] if with_jepa else None)

    def _fixed_shape_update(self, batch: StepRows, with_jepa: bool) -> torch.Tensor:
        """Forward, backward, clipping and AdamW on a `StepRows` batch, with no host sync: what a graph
        records. Returns [LM loss, JEPA loss (the LM loss again without the term)]."""
        c = self.config
        with self.autocast(weight_cache=False):  # no cache: weight casts made outside a graph must not be kept
            lm, jepa = fixed_shape_losses(self.model, batch, with_jepa, c.distance)
        total = c.gamma * lm + c.lbd * jepa if with_jepa else c.gamma * lm
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        return torch.stack([lm.detach().float(), (jepa if with_jepa else lm).detach().float()])

    def fit(self) -> Dict[str, List[float]]:
        """Train to `config.steps`, logging every `log_every` steps and checkpointing every
        `save_every` steps, at the end and when `stop_requested` is set (Ctrl-C, SIGTERM); then write
        `save_dir`. Before step 1 the save path is checked and locked (`checkpoint.SaveTarget`: room,
        writable folder, only this run's checkpoint replaced unless `overwrite`); before each save
        the state is checked finite. A NaN or infinite loss or weight raises TrainingDiverged, naming
        the last checkpoint this run wrote and verified. Returns the history."""
        c = self.config
        from tqdm.auto import tqdm

        if c.save_dir and self.dist.is_main and self.step < c.steps:  # the kept model's folder: writable, room
            check_save_dir(c.save_dir, estimate_bytes(self.model, optimizer_slots=0))
        if self.target is not None and self.step < c.steps:
            self.target.run_id = self.run_id
            self.target.prepare(estimate_bytes(self.model) + 32 * c.steps)  # + the history's per-step entries
        bar = tqdm(
            total=c.steps,
            initial=self.step,
            disable=not (c.progress and self.dist.is_main),
            desc=("LM+STP" if c.objective == "stp" else "LM+JEPA") if c.lbd > 0 else "LM only",
            leave=False,
        )
        start = time.perf_counter()
        window = self._window  # the steps not yet logged (a resumed run starts with the saved run's)
        try:
            while self.step < c.steps:
                lr = c.lr * self.lr_factor(self.step)  # this step's LR, computed on the host
                done = self.guard.attempt(lambda: window.append(self.train_step()), self.optimizer)
                bar.update(int(done))
                last = self.step == c.steps
                if done and (self.step % c.log_every == 0 or last):
                    self._log(window, lr, time.perf_counter() - start)
                    del window[:]
                # Read the flag once per step: a signal handler may set it at any moment, and every rank
                # must take the same branch below (a rank that alone went on to save would wait in a
                # collective the others never join). A signal to any rank stops them all after this step
                # (read after the log step, whose callbacks may ask for a stop too).
                stop = self.dist.any(self.stop_requested)
                self.stop_requested = self.stop_requested or stop
                if c.save_path and ((c.save_every and self.step % c.save_every == 0) or last or stop):
                    if self.target is not None:  # rank 0 (the only one with a target) writes
                        self._save_checked()  # the unlogged steps go into the checkpoint, checked finite
                    self.dist.barrier()  # the others wait for rank 0's checkpoint
                if stop:
                    self.log(
                        f"stopped at step {self.step}" + (f"; checkpoint saved to {c.save_path}" if c.save_path else "")
                    )
                    break
        finally:
            bar.close()
            if self.target is not None:
                self.target.release()
        if c.save_dir and not self.stop_requested:
            if self.dist.is_main:
                self.save_pretrained(c.save_dir)
            self.dist.barrier()
        return self.history

    def _log(self, window: List[tuple], lr: float, seconds: float) -> None:
        """One host sync for the whole window of steps: per-step losses, then a log record."""
        lm = torch.stack([lm.float() for lm, _ in window])  # (n,) on the device
        jepa = torch.stack(
            [j.float() if j is not None else torch.full((), math.nan, device=lm.device) for _, j in window]
        )
        values = torch.stack([lm, jepa], dim=1).cpu().tolist()  # the one host sync of the window
        lms, jepas = [v[0] for v in values], [v[1] for v in values]
        if not all(math.isfinite(v) for v in lms):
            bad = next(v for v in lms if not math.isfinite(v))
            raise TrainingDiverged(diverged_message(self.target, f"the LM loss became {bad} by step {self.step}"))
        self.history["step_lm_loss"].extend(lms)
        self.history["step_jepa_loss"].extend(jepas)
        record = {
            "step": self.step,
            "lm_loss": lms[-1],
            "jepa_loss": jepas[-1],
            "jepa_monitor": self.monitor_jepa(),
            "lr": lr,
            "seconds": seconds,
        }
        for k, v in record.items():
            self.history[k].append(v)
        self.log(
            f"step {self.step:5d}  lm {record['lm_loss']:.4f}  jepa {record['jepa_loss']:.4f}  "
            f"jepa(test) {record['jepa_monitor']:.4f}  lr {record['lr']:.2e}"
        )
        for cb in self.callbacks:
            cb(self, record)

    # -- checkpoints and the kept model ---------------------------------------------------------
    def state(self) -> dict:
        """Everything a resumed run needs to continue exactly (`kind` = "paired"), the step losses not yet
        logged included, so the history resumes exactly."""
        history = {k: list(v) for k, v in self.history.items()}
        return {**training_state(KIND, self), "history": history, "window": self._window_values()}

    def _window_values(self) -> List[List[float]]:
        """[lm_loss, jepa_loss (NaN: no JEPA term)] of each step since the last log, on the host."""
        if not self._window:
            return []
        lm = torch.stack([lm.float() for lm, _ in self._window])
        jepa = torch.stack(
            [j.float() if j is not None else torch.full((), math.nan, device=lm.device) for _, j in self._window]
        )
        return torch.stack([lm, jepa], dim=1).cpu().tolist()

    def save(self, path: str) -> None:
        """Atomic checkpoint (`checkpoint.save_checkpoint`) of everything needed to resume exactly, to
        any path (the save-path rules apply to the checkpoints `fit` writes, at `save_path`)."""
        save_checkpoint(path, self.state())

    def _save_checked(self) -> None:
        """Save at `save_path` through the save-path rules; a state that is no longer finite stops the run."""
        state = self.state()
        bad = next((lm for lm, _ in state["window"] if not math.isfinite(lm)), None)
        if bad is not None:  # a loss not yet logged: checked here, before it goes into a checkpoint
            raise TrainingDiverged(diverged_message(self.target, f"the LM loss became {bad} by step {self.step}"))
        try:
            self.target.save(state, self.step)
        except NonFiniteState as e:
            raise TrainingDiverged(
                diverged_message(self.target, f"the weights became NaN or infinite by step {self.step} ({e.name})")
            ) from None

    def resume(self, path: str) -> None:
        """Load a paired checkpoint of a run with the same config and data; training continues at its step."""
        state = load_paired_checkpoint(path, self.device)
        check_compatible(state["config"], dataclasses.asdict(self.config), path)
        if state.get("fingerprint") != self.fingerprint:
            raise CheckpointError(f"{path} was trained on different pairs than this run's")
        bad = first_nonfinite(state_tensors(state["model"]))
        if bad is not None:
            raise CheckpointError(f"{path} holds NaN or infinite weights ({bad}); it cannot be resumed")
        if state["step"] > self.config.steps:
            raise ConfigError(f"{path} is at step {state['step']}, beyond --steps {self.config.steps}")
        flags = [{k: g[k] for k in ("fused", "capturable") if k in g} for g in self.optimizer.param_groups]
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{path} does not fit this model: {str(e).splitlines()[0][:200]}") from None
        for group, flag in zip(self.optimizer.param_groups, flags):  # this run's kernels, not the saved run's
            group.update(flag)
            lr = float(group["lr"])  # a number, or a GPU tensor where the graphs read it
            group["lr"] = torch.tensor(lr, device=self.device) if self.graphs is not None else lr
        if self.graphs is not None:  # new optimizer state tensors: record the graphs again
            self.graphs = self._new_graphs()
        restore_rng_state(state["rng"])
        self.step = int(state["step"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self._window = [
            (torch.tensor(lm, device=self.device), None if math.isnan(j) else torch.tensor(j, device=self.device))
            for lm, j in state.get("window", [])
        ]
        self.run_id = state.get("run_id") or self.run_id  # the same run, continued: it may replace its own checkpoints
        if self.target is not None:
            self.target.run_id = self.run_id
            self.target.last_good = (path, self.step)

    def save_pretrained(self, path: str) -> None:
        """Write the model (safetensors) and its tokenizer as a Hugging Face folder that
        `AutoModelForCausalLM` / `AutoTokenizer` reload, and that `--model DIR` continues from."""
        meta = {"trained_by": "jepa_lite.paired", "step": self.step, "config": dataclasses.asdict(self.config)}
        save_model_folder(self.model, self.tokenizer, path, meta)

    # -- measuring ------------------------------------------------------------------------------
    @torch.no_grad()
    @measuring
    def embed(self, pairs: Sequence[Pair], predictors: Optional[int] = None, batch_size: int = 256):
        """(Pred(Enc(Text)), Enc(Code)), each (N, D) float32 on the CPU, in eval mode.

        `predictors` = number of [PRED] tokens on the Text side (default: the config's k; 0 gives the
        plain Enc(Text), read at [SEP]).
        """
        k = self.config.predictors if predictors is None else predictors
        cap = self.config.max_length - k - 3
        texts = encode(self.tokenizer, [p.text for p in pairs], cap)
        codes = encode(self.tokenizer, [p.code for p in pairs], cap)
        self.model.eval()
        xs, ys = [], []
        for s in range(0, len(pairs), batch_size):
            for rows, out, back in (
                ([text_view(t, k, self.ids) for t in texts[s : s + batch_size]], xs, 0),
                ([code_view(t, self.ids) for t in codes[s : s + batch_size]], ys, code_back(self.config.code_position)),
            ):
                input_ids, mask = pad_rows(rows, self.ids["pad"])
                with self.autocast():
                    out.append(
                        last_hidden(self.model, input_ids.to(self.device), mask.to(self.device), back)[1].float().cpu()
                    )
        return torch.cat(xs), torch.cat(ys)

    def monitor_jepa(self) -> float:
        """The JEPA distance on the first `monitor_size` test pairs (no gradient, eval mode)."""
        x, y = self.embed(self.test_pairs[: self.config.monitor_size])
        return float(jepa_distance(x, y, self.config.distance))

    @torch.no_grad()
    @measuring
    def generate(self, texts: Sequence[str], batch_size: int = 128, max_new_tokens: Optional[int] = None) -> List[str]:
        """Greedy decoding of Code from `[BOS] Text [SEP]` for each text (left-padded batches)."""
        self.model.eval()
        cap = self.config.max_length - self.config.predictors - 3
        prompts = [[self.ids["bos"], *t, self.ids["sep"]] for t in encode(self.tokenizer, texts, cap)]
        max_new = max_new_tokens or (max(len(c) for c in self.train_code) + 8)
        outputs: List[str] = []
        for s in range(0, len(prompts), batch_size):
            input_ids, mask = pad_rows(prompts[s : s + batch_size], self.ids["pad"], side="left")
            with self.autocast():
                out = self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max_new,
                    do_sample=False,
                    num_beams=1,
                    eos_token_id=self.ids["eos"],
                    pad_token_id=self.ids["pad"],
                )
            for row in out[:, input_ids.shape[1] :].tolist():
                row = row[: row.index(self.ids["eos"])] if self.ids["eos"] in row else row
                outputs.append(self.tokenizer.decode(row))
        return outputs

    def evaluate(self, pairs: Optional[Sequence[Pair]] = None) -> Dict[str, float]:
        """Exact-match accuracy of greedy decoding on `pairs` (default: the test split)."""
        pairs = self.test_pairs if pairs is None else pairs
        predictions = self.generate([p.text for p in pairs])
        correct = sum(pred == p.code for pred, p in zip(predictions, pairs))
        return {"exact_match": correct / len(pairs), "correct": correct, "total": len(pairs)}


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def check_custom_mask(trainer: PairedTrainer) -> None:
    """ConfigError unless the model computes packed rows exactly as separate ones (views="packed").

    The packed rows need attention that takes a (B, 1, L, L) mask as given (SDPA, eager). Flash
    attention and models that build their own mask cannot: this runs one pair both ways and compares.
    """
    name = trainer.config.model
    impl = attention_implementation(trainer.model)
    hint = "use --views separate"
    flex = impl == "flex_attention" and trainer.config.pack_length > 0  # packing.flex_block_mask
    if impl not in CUSTOM_MASK_IMPLEMENTATIONS and not flex:
        raise ConfigError(
            f"--views packed needs attention that takes a custom (block-causal) mask; '{name}' uses {impl}: {hint}"
        )
    was_training = trainer.model.training
    trainer.model.eval()
    try:
        idx = [0, 1] if len(trainer.train_pairs) > 1 else [0]
        sep = trainer.separate_forward(idx)
        packed = trainer.packed_forward(idx)
        ok = all(torch.allclose(a.float(), b.float(), rtol=1e-2, atol=1e-3) for a, b in zip(sep, packed))
    except Exception as e:  # a model whose forward refuses a 4-D mask or position ids
        raise ConfigError(
            f"--views packed: '{name}' does not take a custom attention mask ({str(e).splitlines()[0][:120]}): {hint}"
        ) from None
    finally:
        trainer.model.train(was_training)
    if not ok:
        raise ConfigError(
            f"--views packed: '{name}' ignores a custom attention mask (packed and separate rows disagree): {hint}"
        )

"""Several paired runs trained as one: `BatchedRuns` (`nlrx_study --together N` trains each worker's runs so).

A run of the NL-RX study trains a 1 M-parameter Llama on 32 pairs a step. Even recorded as one CUDA graph
(graphed.py) such a step leaves an H100 nearly idle, and sixteen processes sharing it (MPS) each take ~3×
longer per step than one alone. `BatchedRuns` takes the steps of K runs together, in one process: runs
that share the model, data, batch size and schedule and differ in seed, λ and peak learning rate.

- **the weights of the K runs are stacked** along a new first dimension (`torch.func.stack_module_state`),
  and each run's model keeps working on its own slice: its parameters are views of the stack, so
  `PairedTrainer.embed`, `generate` and `evaluate` see the run's current weights;
- **one forward and backward for all K**: `torch.vmap` of the model (`torch.func.functional_call`) over
  the K batches, each run's own pairs at its own step of its own shuffled order, padded to one length;
- **each run's objective and update are its own**: L_k = γ·L_LM,k + λ_k·JEPA_k, summed over k before the
  backward pass (no term of one run depends on another's weights, so each run's gradient is what it
  would be alone); ‖g_k‖ clipped per run (`clip_per_run`); AdamW per run at its own learning rate
  (`adamw_per_run`), the formula of `torch.optim.AdamW`:

      m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²,  θ ← θ·(1 − η_k·wd) − η_k·(m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)

- on CUDA the whole step — K forwards, K backwards, clipping and AdamW — is **one CUDA graph**
  (`graphs.StepGraphs`, as `--cuda_graphs` records one run's step), the K learning rates a GPU tensor
  filled before each replay.

A λ = 0 run takes the LM rows alone, as it would alone (its JEPA term is not computed into its loss).
Each run's losses, history and model are those of a `PairedTrainer` trained alone, up to the order of
floating-point sums (tests/test_paired_batched.py: fp32, CPU, weights and losses after several steps).
`PairedTrainer.losses` stays the readable objective; this module only changes how many runs one step
carries.
"""

from __future__ import annotations

import copy
import time
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state

from ..config import ConfigError
from ..graphs import StepGraphs
from .graphed import StepRows
from .rows import IGNORE, block_causal_mask, jepa_distance

# what must be equal in the configs of runs trained as one (seed, λ and lr may differ)
SHARED = (
    "model", "data", "test_data", "steps", "batch_size", "warmup_steps", "log_every", "device", "precision",
    "views", "objective", "predictors", "lm_tokens", "code_position", "distance", "gamma", "weight_decay",
    "grad_clip", "max_length", "n_train", "n_test", "tiny_dim", "tiny_layers", "attention",
)  # fmt: skip


def why_not_batched(configs: Sequence) -> str:
    """Why runs of these `PairedConfig`s cannot be trained as one ('' when they can)."""
    c = configs[0]
    for name in SHARED:
        if any(getattr(o, name) != getattr(c, name) for o in configs):
            return f"the runs differ in {name}"
    if c.objective != "llm_jepa" or c.views != "packed":
        return "it trains the packed views of LLM-JEPA (--views packed, --objective llm_jepa)"
    if any(o.grad_accum != 1 or o.length_groups != 1 or o.loss_dropout > 0 for o in configs):
        return "it takes one forward and backward per step (--grad_accum 1, --length_groups 1, no loss dropout)"
    if any(o.pack_length or o.compile or o.cuda_graphs for o in configs):
        return "it runs one row per pair, uncompiled (it records its own CUDA graphs)"
    if any(o.save_path or o.save_dir or o.resume for o in configs):
        return "its runs keep no checkpoints (train them alone to save or resume)"
    if c.precision not in ("fp32", "bf16", "auto"):
        return "fp16's loss scaler decides per run whether to skip a step"
    return ""


def clip_per_run(grads: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale each run's gradient (slice k of every tensor in `grads`) so that its norm over all tensors is at
    most `max_norm`, as `torch.nn.utils.clip_grad_norm_` does for one model; returns the K norms."""
    norms = torch.stack([g.flatten(1).pow(2).sum(dim=1) for g in grads]).sum(dim=0).sqrt()  # (K,)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
    return norms


@torch.no_grad()
def adamw_per_run(params, grads, exp_avg, exp_avg_sq, step: torch.Tensor, lr: torch.Tensor, config) -> None:
    """One AdamW step (`torch.optim.AdamW`'s formula, its default betas and eps) for K runs stacked along
    dim 0, run k at learning rate lr[k]; `step` (a 0-d tensor, counted on the device) is incremented."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step.add_(1)
    correction1 = 1 - torch.pow(beta1, step)
    root_correction2 = (1 - torch.pow(beta2, step)).sqrt()
    for p, g, m, v in zip(params, grads, exp_avg, exp_avg_sq):
        eta = lr.view(-1, *([1] * (p.dim() - 1)))
        p.mul_(1 - eta * config.weight_decay)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        p.sub_(eta / correction1 * m / (v.sqrt() / root_correction2 + eps))


class BatchedRuns:
    """Train the K `PairedTrainer`s in `trainers` as one (the module docstring): `fit()` trains them all to
    their `steps` and fills each trainer's history as its own `fit()` would; then evaluate each trainer."""

    def __init__(self, trainers: Sequence):
        why = why_not_batched([t.config for t in trainers])
        if why:
            raise ConfigError(f"runs trained as one: {why}")
        self.trainers = list(trainers)
        first = self.trainers[0]
        self.config, self.device = first.config, first.device
        self.base = copy.deepcopy(first.model)  # the module `functional_call` runs (its own weights unused)
        # attention as plain products and a softmax, which vmap batches: SDPA's kernels have no batching rule on
        # the CPU (a loop over the runs) and its memory-efficient backward refuses vmap's strides on CUDA
        self.base.set_attn_implementation("eager")
        # vmap draws no random numbers: a model with dropout would train differently from its run alone
        if any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in self.base.modules()) or getattr(
            self.base.config, "attention_dropout", 0
        ):
            raise ConfigError("runs trained as one: the model has dropout, which vmap cannot draw per run")
        self.base.eval()  # (no dropout: the same numbers as train mode)
        params, self.buffers = stack_module_state([t.model for t in self.trainers])
        self.names = list(params)
        self.params = [params[n] for n in self.names]  # (K, …) each, leaves that take the gradients
        for k, t in enumerate(self.trainers):  # each run's model works on its slice of the stack
            named = dict(t.model.named_parameters())
            for n in self.names:
                named[n].data = params[n].data[k]
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.adam_step = torch.zeros((), device=self.device)
        self.peak_lr = torch.tensor([t.config.lr for t in self.trainers], dtype=torch.float32)
        self.lr = torch.zeros(len(self.trainers), device=self.device)  # filled before each step
        self.lbd = torch.tensor([t.config.lbd for t in self.trainers], device=self.device)
        self.with_jepa = [t.config.lbd > 0 for t in self.trainers]
        self.graphs = StepGraphs(self._update, self.device) if self.device.type == "cuda" else None
        self.step = first.step

    def batch(self, step: int) -> StepRows:
        """The K runs' batches of `step`, stacked: (K, B, L) rows, each run's padded to the longest run's."""
        rows = [t.step_rows(t.batch_indices(step), w) for t, w in zip(self.trainers, self.with_jepa)]
        L, pad = max(r.input_ids.shape[1] for r in rows), self.trainers[0].ids["pad"]
        rows = [r.padded(L, pad) for r in rows]
        return StepRows(*(torch.stack(ts) for ts in zip(*(r.tensors() for r in rows))))

    def _forward(self, params, buffers, input_ids, mask, positions):
        """(logits, last-layer states) of one run: the base module with run k's weights."""
        out = functional_call(
            self.base,
            (dict(zip(self.names, params)), buffers),
            (),
            dict(input_ids=input_ids, attention_mask=mask, position_ids=positions, output_hidden_states=True,
                 use_cache=False),
        )  # fmt: skip
        return out.logits, out.hidden_states[-1]

    def losses(self, batch: StepRows):
        """(LM losses (K,), JEPA losses (K,), zero where a run has no JEPA term) of a stacked batch, one vmapped
        forward pass: each run's mean next-token CE over its scored labels and mean distance over its pairs."""
        K, B = batch.block.shape[:2]
        mask = block_causal_mask(batch.block.flatten(0, 1), self.base).unflatten(0, (K, B))
        with self.trainers[0].autocast(weight_cache=False):
            logits, h = torch.vmap(self._forward)(self.params, self.buffers, batch.input_ids, mask, batch.position_ids)
        labels = batch.labels[:, :, 1:]
        ce = F.cross_entropy(
            logits[:, :, :-1].flatten(0, 2).float(), labels.flatten(), ignore_index=IGNORE, reduction="none"
        )
        lm = ce.view(K, -1).sum(dim=1) / (labels != IGNORE).flatten(1).sum(dim=1)
        runs, rows = torch.arange(K, device=h.device)[:, None], torch.arange(B, device=h.device)[None, :]
        x, y = h[runs, rows, batch.x_index], h[runs, rows, batch.y_index]  # (K, B, D)
        distance = self.config.distance
        jepa = torch.vmap(lambda a, b: jepa_distance(a, b, distance))(x, y)
        return lm, torch.where(self.lbd > 0, jepa, torch.zeros_like(jepa))

    def _update(self, batch: StepRows) -> torch.Tensor:
        """Forward, backward, per-run clipping and AdamW with no host sync (what the graph records); returns
        (K, 2): each run's [LM loss, JEPA loss (its LM loss again without the term)]."""
        lm, jepa = self.losses(batch)
        for p in self.params:
            p.grad = None
        (self.config.gamma * lm + self.lbd * jepa).sum().backward()
        grads = [p.grad for p in self.params]
        clip_per_run(grads, self.config.grad_clip)
        adamw_per_run(self.params, grads, self.exp_avg, self.exp_avg_sq, self.adam_step, self.lr, self.config)
        return torch.stack([lm, torch.where(self.lbd > 0, jepa, lm)], dim=1).detach()

    def train_step(self) -> torch.Tensor:
        """One optimizer step of every run; returns their (K, 2) losses on the device (no host sync)."""
        first = self.trainers[0]
        factor = first.lr_factor(self.step)
        lr = self.peak_lr * factor
        self.lr.copy_(lr.pin_memory() if self.device.type == "cuda" else lr, non_blocking=True)
        batch = self.batch(self.step)
        out = self.graphs(batch.pinned()) if self.graphs is not None else self._update(batch.to(self.device))
        self.step += 1
        for t in self.trainers:
            t.step = self.step
        return out

    def fit(self) -> List[Dict[str, List[float]]]:
        """Train every run to `steps`, logging every `log_every` steps into each trainer's history (its losses,
        its JEPA monitor on the test pairs, its LR) as `PairedTrainer.fit` does; returns the histories."""
        c = self.config
        start = time.perf_counter()
        window: List[torch.Tensor] = []
        for t in self.trainers:
            t.model.train()
        while self.step < c.steps:
            factor = self.trainers[0].lr_factor(self.step)
            window.append(self.train_step())
            if self.step % c.log_every == 0 or self.step == c.steps:
                seconds = time.perf_counter() - start
                for k, t in enumerate(self.trainers):
                    steps = [(o[k, 0], o[k, 1] if self.with_jepa[k] else None) for o in window]
                    t._log(steps, t.config.lr * factor, seconds)
                window = []
        return [t.history for t in self.trainers]

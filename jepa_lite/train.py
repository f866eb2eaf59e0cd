"""Training: the config, the trainer, and the command line.

One optimizer step of JEPA:

    batch  = both views of B lines                      (data.collate, masking.mask_batch)
    loss   = mean over masked tokens of 1 − cos(ẑ, z)   (model.JEPA)
    loss.backward(); clip ‖g‖ to 1.0; AdamW step; LR schedule step
                    (in fp16: backward of S·loss, g ← g / S before clipping; precision.py)
    θ_tgt ← m·θ_tgt + (1 − m)·θ_ctx                     (ema.ema_update)

The learning rate warms up linearly for `warmup_steps`, then follows a half cosine down to 0:

    lr(s) = lr · (s + 1) / warmup                        for s < warmup
    lr(s) = lr · ½ (1 + cos(π · (s − warmup) / (steps − warmup)))   afterwards

Run `python -m jepa_lite.train --help` for the command line, or in Python:

    from jepa_lite.train import TrainConfig, Trainer
    history = Trainer(TrainConfig.smoke()).fit()
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import math
import os
import signal
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .checkpoint import (
    CheckpointError, NonFiniteState, SaveTarget, check_config_compatible, check_save_path, check_state_keys, check_state_types, estimate_bytes,
    first_nonfinite, load_checkpoint, restore_rng_state, rng_state, save_checkpoint, state_tensors,
)  # fmt: skip
from .data import Batch, DataError, StepBatches, TextFile, builtin_corpus, load_corpus, texts_fingerprint
from .diagnostics import collapse_metrics, collapse_warning
from .distributed import check_batch, check_in_sync, exit_process, setup, shard, wrap
from .ema import SCHEDULES, momentum_schedule
from .encoders import BackboneError, TinyConfig, load_backbone
from .errors import ConfigError
from .validation import SEED_MAX, check_fits_in_memory, check_int_range, check_texts, check_types, position_limit, training_bytes
from .graphs import StepGraphs
from .masking import check_masking_args, special_tokens_mask
from .model import JEPA
from .precision import CHOICES as PRECISIONS
from .precision import grad_scaler, resolve_precision


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    # data
    model_name: Optional[str] = None  # None = offline pretrained MiniLM; "tiny"; "random:bert"; hub name or folder
    text_file: Optional[str] = None  # one example per line; None = the kit's built-in corpus
    max_lines: Optional[int] = None  # None = every non-blank line of text_file; N = at most the first N (on purpose: big files stream, see data.TextFile)
    max_length: int = 128  # tokens per line, [CLS]/[SEP] included; longer lines are truncated
    # masking
    mask_ratio: float = 0.3  # fraction of maskable tokens hidden from the context encoder
    mean_span_len: float = 5.0  # mean length of a masked span (geometric law, ≥ 1)
    # model
    pred_hidden_mult: int = 4  # predictor MLP width, in multiples of the hidden size
    loss: str = "cosine"  # "cosine" (JEPA); "l2", "mse", "smooth_l1" for comparison
    tiny_dim: int = 128  # hidden size of the "tiny" encoder
    tiny_layers: int = 2  # blocks of the "tiny" encoder
    # EMA target
    ema_m: float = 0.99  # momentum m: θ_tgt ← m·θ_tgt + (1 − m)·θ_ctx
    ema_schedule: str = "constant"  # "constant", "linear" (I-JEPA) or "cosine" (BYOL), from ema_m to ema_m_final
    ema_m_final: float = 1.0  # m at the last step for the linear and cosine schedules
    # optimisation
    batch_size: int = 8
    lr: float = 2e-5  # peak learning rate (AdamW)
    weight_decay: float = 0.01
    steps: int = 500  # optimizer steps
    warmup_steps: int = 50  # linear warm-up, then cosine decay to 0
    grad_clip: float = 1.0  # max global gradient norm
    # bookkeeping
    log_every: int = 25  # log loss, lr, m and collapse metrics every this many steps
    save_every: int = 200  # checkpoint every this many steps (0 = only at the end)
    save_path: Optional[str] = "auto"  # "auto" = checkpoints/<model>-<date>-<time>.pt, a new file per run; None = never write
    overwrite: bool = False  # may replace a checkpoint of *another* run at save_path (a non-checkpoint file: never)
    device: str = "auto"  # "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:1", "mps"
    precision: str = "auto"  # "auto": bf16 on CUDA with capability ≥ 8, fp16 + loss scaling below, fp32 on CPU/MPS; "fp32", "bf16", "fp16"
    compile: bool = False  # torch.compile the model (faster steps on GPU, and on CPU in bf16, after a slow start)
    cuda_graphs: bool = True  # with compile on CUDA: replay each step as CUDA graphs (see Trainer.train_step)
    group_by_length: bool = True  # batch lines of similar length together (less padding)
    seed: int = 42
    token_cache: str = "auto"  # "auto": text files ≥ 64 MiB are tokenised once into a cache next to the checkpoint; "off"; or a folder
    smoke_test: bool = False  # the tiny offline preset (see TrainConfig.smoke)
    progress: bool = True  # show a tqdm progress bar

    @classmethod
    def smoke(cls, **overrides) -> "TrainConfig":
        """Seconds on a laptop CPU, no download: tiny random encoder, local tokenizer, built-in corpus."""
        preset = dict(
            model_name="tiny", max_length=64, batch_size=16, lr=3e-4, steps=200, warmup_steps=20,
            ema_m=0.996, pred_hidden_mult=2, log_every=20, save_every=100,
            smoke_test=True,
        )  # fmt: skip
        return cls(**{**preset, **overrides})

    def validate(self) -> None:
        """Raise ConfigError with a one-line message for any setting that cannot work: the type of
        every field (from its annotation), finite floats, integer ranges, then each field's own rule."""
        check_types(self)
        try:
            check_masking_args(self.mask_ratio, self.mean_span_len)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        positive = ["max_length", "steps", "batch_size", "log_every", "pred_hidden_mult", "max_lines", "tiny_dim", "tiny_layers"]
        for name in positive:
            value = getattr(self, name)
            if name == "max_lines" and value is None:  # the whole file
                continue
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value}")
        if self.max_length < 4:
            raise ConfigError(f"max_length must be at least 4 ([CLS], two tokens, [SEP]); got {self.max_length}")
        if self.save_every < 0 or self.warmup_steps < 0:
            raise ConfigError("save_every and warmup_steps must be ≥ 0")
        check_int_range("seed", self.seed, 0, SEED_MAX)
        check_int_range("max_length", self.max_length, 4, MAX_LENGTH)
        if self.model_name == "tiny" and self.tiny_dim % 4:
            raise ConfigError(f"tiny_dim must be a multiple of 4 (the tiny encoder's 4 attention heads); got {self.tiny_dim}")
        if self.save_path is not None and not self.save_path.strip():
            raise ConfigError("save_path is empty; give a file name, 'auto', or None for no checkpoints")
        for name in ("ema_m", "ema_m_final"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1]; got {getattr(self, name)}")
        if self.ema_schedule not in SCHEDULES:
            raise ConfigError(f"ema_schedule must be one of {', '.join(SCHEDULES)}; got '{self.ema_schedule}'")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number; got {self.lr}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be ≥ 0; got {self.weight_decay}")
        if not self.grad_clip > 0:
            raise ConfigError(f"grad_clip must be > 0; got {self.grad_clip}")
        if self.loss not in ("cosine", "l2", "mse", "smooth_l1"):
            raise ConfigError(f"loss must be cosine, l2, mse or smooth_l1; got '{self.loss}'")
        resolve_precision(self.precision, pick_device(self.device))  # e.g. fp16 on the CPU: refused here


# Settings that may change when a run is resumed; every other setting must match the checkpoint.
RESUMABLE_CHANGES = ("steps", "log_every", "save_every", "save_path", "overwrite", "device", "progress", "max_lines", "compile", "cuda_graphs", "token_cache")
AUTO_CACHE_BYTES = 64 << 20  # token_cache="auto" caches text files from this size on
KIND = "masked_span"  # the "kind" of this trainer's checkpoints (jepa_lite.paired writes "paired")
MAX_LENGTH = 1 << 20  # no encoder reads a million tokens; the position limit of the model is checked too


def lines_read_notice(text: TextFile, kept: int) -> str:
    """The log line that says how much of the text file a run trains on: all of it, or the first
    `--max_lines` lines when the file has more (never a silent cut), and how many lines were kept
    (lines that tokenise to special tokens only are dropped: nothing to mask)."""
    if text.cut:
        what = f"text: the first {len(text):,} lines of {text.path} (--max_lines {text.max_lines}; the file has more)"
    else:
        what = f"text: {len(text):,} lines of {text.path} (the whole file)"
    return what if kept == len(text) else f"{what}, {kept:,} of them with tokens to mask"


def resolve_save_path(config: TrainConfig) -> Optional[str]:
    """The checkpoint file of a run: `save_path` as given, None for none, or for "auto" a new name
    per run, checkpoints/<model>-<YYYYmmdd-HHMMSS>.pt (UTC; -2, -3, … if that name is taken), so that
    runs never land on each other's files."""
    if config.save_path != "auto":
        return config.save_path
    model = "smoke_test" if config.smoke_test else (config.model_name or "minilm")
    model = "".join(c if c.isalnum() or c in "-_." else "-" for c in os.path.basename(model.rstrip("/\\")) or model).strip("-.") or "run"
    stem = f"checkpoints/{model}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    path, k = f"{stem}.pt", 1
    while os.path.lexists(path):
        k += 1
        path = f"{stem}-{k}.pt"
    return path


def pick_device(name: str) -> torch.device:
    """"auto" → the best available device; otherwise the named one, checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"device '{name}' is not available on this machine; use --device auto or cpu")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device '{name}' is not available on this machine; use --device auto or cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device '{name}'; use auto, cpu, cuda, cuda:N or mps")
    return device


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


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak LR at optimizer step `step` (0-based): linear warm-up, then half cosine."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


Callback = Callable[["Trainer", Dict[str, float]], None]


class Trainer:
    """Trains a JEPA from a TrainConfig. Knows nothing about plots: it fills `history` and calls
    `callbacks(trainer, record)` at each log step, which is where live plots hook in.

    `history` is a dict of lists: per log step "step", "loss" (mean over the window), "lr", "ema_m",
    "masked_frac", "rank", "std", "mean_cos"; and "step_loss", one entry per optimizer step.
    """

    def __init__(self, config: TrainConfig, callbacks: Sequence[Callback] = (), texts: Optional[Sequence[str]] = None, log: Callable[[str], None] = print):
        config.validate()
        self.config = config
        self.callbacks = list(callbacks)
        self.log = log
        self.dist, device = setup(config.device)  # under torchrun: this rank's process group and device
        self.device = pick_device(device)
        self.progress = config.progress and self.dist.is_main
        self._loss_weight: Dict[int, float] = {}  # step → this rank's loss weight (distributed.shard)
        self._step_weight = 1.0
        self.run_id = uuid.uuid4().hex[:12]  # names the run in its checkpoints; `resume` takes over the saved run's id
        self.save_path = resolve_save_path(config)  # None = no checkpoints
        self.target = SaveTarget(self.save_path, self.run_id, config.overwrite) if self.save_path and self.dist.is_main else None  # rank 0 writes
        if self.target is not None:  # a folder, a device, a read-only or non-checkpoint file: refused before any work
            check_save_path(self.save_path, overwrite=True)  # whose checkpoint it is can only be told after `resume`
        if texts is not None:
            check_texts(texts)
        if self.device.type == "cpu":
            keep_freed_memory()  # reuse the big per-step blocks instead of faulting in fresh pages
        if texts is None:  # a text file is streamed from disk, never held in memory as a list of lines
            texts = TextFile(config.text_file, config.max_lines, progress=self.progress) if config.text_file else builtin_corpus()
        self.fingerprint = texts.fingerprint if isinstance(texts, TextFile) else texts_fingerprint(texts)
        torch.manual_seed(config.seed)  # model init (random encoders, predictor) is seeded
        tiny = TinyConfig(dim=config.tiny_dim, layers=config.tiny_layers, heads=4, max_len=max(512, config.max_length))
        if config.model_name == "tiny":  # its sizes are the config's: check them before building it
            d, n = config.tiny_dim, (tiny.vocab_size + tiny.max_len) * config.tiny_dim + config.tiny_layers * 12 * config.tiny_dim**2
            self._check_sizes(2 * n + 2 * config.pred_hidden_mult * d * d, n, d, config.tiny_layers, len(texts))
        encoder, self.tokenizer, dim = load_backbone(config.model_name, texts, tiny)
        self._check_backbone(encoder, dim, len(texts))
        cache = self.token_cache_folder(texts)
        if cache and not self.dist.is_main:
            self.dist.barrier()  # rank 0 builds the token cache, the others then map it
        self.corpus = load_corpus(texts, self.tokenizer, config.max_length, cache, self.progress, self._write)
        if cache and self.dist.is_main:
            self.dist.barrier()
        if isinstance(texts, TextFile):
            self._write(lines_read_notice(texts, len(self.corpus)))
        self.batch_size = config.batch_size
        if self.batch_size > len(self.corpus):
            self.batch_size = len(self.corpus)
            self.log(f"note: batch_size {config.batch_size} is larger than the data; using {self.batch_size} (all {len(self.corpus)} lines)")
        check_batch(self.batch_size, self.dist)
        self.model = JEPA(encoder, dim, config.pred_hidden_mult, loss=config.loss).to(self.device)
        params = self.model.trainable_parameters()
        self.precision = resolve_precision(config.precision, self.device)  # the rule in precision.py
        self.autocast_dtype = self.precision.autocast_dtype  # None = plain fp32
        self.scaler = grad_scaler(self.precision, self.device)  # fp16 only: loss scaling (torch.amp.GradScaler)
        # With CUDA graphs (compile + cuda_graphs on a CUDA device) each optimizer step is replayed as
        # one recorded graph (graphs.py). The loss is then `JEPA.fixed_shape_loss`, whose shapes depend
        # on (B, L) only (the masked positions padded to `pred_capacity`), and the two numbers that change from step to step, the learning rate and the
        # EMA momentum, are GPU tensors that the graph reads at every replay.
        self.static_shapes = config.compile and config.cuda_graphs and self.device.type == "cuda" and not self.dist.enabled
        if self.static_shapes and self.scaler is not None:
            # fp16's loss scaler decides on every step whether to skip it (gradients that overflowed)
            # and changes its scale S; a recorded graph would have to replay both decisions on the
            # GPU, which this kit has not verified, so fp16 compiles without graphs.
            self.static_shapes = False
            self.log("note: precision fp16 (loss scaling) runs without CUDA graphs; compiling the model only")
        lr = torch.tensor(config.lr, device=self.device) if self.static_shapes else config.lr
        # The fused AdamW kernel updates all parameters in one pass: on a 2-core CPU it takes 14 ms per
        # step for MiniLM's 22 M parameters, against 69 ms for the default per-tensor loop.
        fused = self.device.type in ("cuda", "cpu")
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay, fused=fused or None, capturable=self.static_shapes)
        # The schedule's base LR as a plain number: the scheduler then fills the LR tensor from a
        # number, where a tensor base LR would make it read a GPU value (a host sync) at every step.
        self.optimizer.param_groups[0]["initial_lr"] = config.lr
        self.lr_factor = lambda s: lr_factor(s, config.warmup_steps, config.steps)  # the LR of step s is lr · lr_factor(s)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.momentum = momentum_schedule(config.ema_schedule, config.ema_m, config.ema_m_final, config.steps)
        self.graphs: Optional[StepGraphs] = None
        if self.static_shapes:
            self.forward = torch.compile(self.model.fixed_shape_loss, dynamic=True)
            self.ema_m = torch.tensor(config.ema_m, device=self.device)  # filled before every step
            self.graphs = StepGraphs(lambda batch: self._update(batch, self.ema_m), self.device)
        else:
            model = wrap(self.model, self.dist, self.device)  # DistributedDataParallel under torchrun
            self.forward = torch.compile(model, dynamic=True) if config.compile else model
        self.pad_to_multiple_of = self._length_multiple()
        self.plan = StepBatches(
            self.corpus, self.batch_size, config.seed, config.mask_ratio, config.mean_span_len, config.group_by_length,
            self.pad_to_multiple_of, fixed_pred_index=self.static_shapes,
        )  # fmt: skip
        self.step = 0
        self.history: Dict[str, List[float]] = defaultdict(list)
        self.collapse_warned = False
        self._window: List[torch.Tensor] = []  # losses of the steps since the last log (saved, so a resumed run logs the same)
        self.stop_requested = False  # set (e.g. by a Ctrl-C handler) to stop cleanly after the current step

    def token_cache_folder(self, texts) -> Optional[str]:
        """Where the token cache of this run's text lives (`data.TokenCache`), or None to tokenise into
        memory. "auto": next to the checkpoint for a text file of at least AUTO_CACHE_BYTES."""
        setting = self.config.token_cache
        if setting == "off" or not isinstance(texts, TextFile):
            return None
        if setting != "auto":
            return setting
        if not self.save_path or texts.path.stat().st_size < AUTO_CACHE_BYTES:
            return None
        return os.path.dirname(os.path.abspath(self.save_path))

    def _check_backbone(self, encoder: torch.nn.Module, dim: int, n_texts: int) -> None:
        """Before the first step: --max_length against the encoder's position limit, and the run's
        memory (weights, optimizer, activations; `validation.training_bytes`) against what is free."""
        limit = position_limit(encoder)
        if limit is not None and self.config.max_length > limit:
            name = self.config.model_name or "the default MiniLM"
            raise ConfigError(f"max_length {self.config.max_length} is beyond what {name} can read ({limit} positions); use --max_length {limit} or less")
        cfg = getattr(encoder, "config", None)
        layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", None) or getattr(cfg, "layers", 1)
        n = sum(p.numel() for p in encoder.parameters())
        n_pred = 2 * self.config.pred_hidden_mult * dim * dim
        self._check_sizes(2 * n + n_pred, n + n_pred, dim, int(layers), n_texts)

    def _check_sizes(self, n_params: int, n_trainable: int, dim: int, layers: int, n_texts: int) -> None:
        cfg = self.config
        batch = min(cfg.batch_size, n_texts)
        need = training_bytes(n_params, n_trainable, batch, cfg.max_length, dim, layers)
        what = f"this run ({n_trainable / 1e6:,.0f} M trained parameters, batch {batch} × max_length {cfg.max_length})"
        check_fits_in_memory(need, self.device, what, "lower --batch_size, --max_length or the model's size")

    def _length_multiple(self) -> int:
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
        if self.device.type == "cuda":
            return 8
        return 4 if self.device.type == "cpu" and self.autocast_dtype is not None else 1

    # ----------------------------------------------------------------------------------------
    def batch_lines(self, step: int) -> List[int]:
        """Indices of the corpus lines in the batch of optimizer step `step`."""
        return self.plan.lines(step)

    def get_batch(self, step: int) -> Batch:
        """The batch of optimizer step `step`, on the training device: a pure function of (seed, step)."""
        batch, weight = shard(self.plan[step], self.dist)  # this rank's rows of the global batch
        if self.dist.enabled:
            self._loss_weight[step] = weight  # read by train_step (distributed.py: why)
        return batch.to(self.device)

    def train_step(self, batch: Batch) -> torch.Tensor:
        """One optimizer step plus the EMA update. Returns the loss (a device tensor, no host sync).

        On CUDA with `compile` and `cuda_graphs` the whole step (`_update`) is replayed as one CUDA
        graph per padded length (`graphs.StepGraphs`): the hundreds of kernels of a DistilBERT step
        (~600 in its forward and backward alone) go out in a single launch; launching them one by
        one from Python is what bounds a small model's step on a fast GPU.
        """
        m = self.momentum(self.step)
        self.model.train()
        self._step_weight = self._loss_weight.pop(self.step, 1.0)
        if self.graphs is not None:
            self.ema_m.fill_(m)
            loss = self.graphs(batch)
        else:
            loss = self._update(batch, m)
        self.scheduler.step()  # outside any graph: on the graph path it fills the LR tensor
        self.step += 1
        if self.dist.enabled:  # the global batch's loss, Σ_r n_r ℓ_r / N, on every rank
            return self.dist.sum(loss.detach() * (self._step_weight / self.dist.world_size))
        return loss.detach()

    def _update(self, batch: Batch, m) -> torch.Tensor:
        """Forward, backward, gradient clipping, AdamW, EMA: everything a step does on the device.
        No host sync anywhere, so that it can be recorded as a CUDA graph. m: the EMA momentum, a
        number or (for graphs) a 0-dim device tensor."""
        with self._kernels():
            # No autocast weight cache: a recorded graph must not keep casts made outside it.
            with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None, cache_enabled=False):
                loss = self.forward(batch) if self.static_shapes else self.forward(batch).loss
            self.optimizer.zero_grad(set_to_none=True)
            loss_for_grad = loss * self._step_weight if self.dist.enabled else loss  # weighted: distributed.py
            if self.scaler is None:
                loss_for_grad.backward()
            else:  # fp16: backward of S·loss, so that small gradients do not underflow to 0
                self.scaler.scale(loss_for_grad).backward()
                self.scaler.unscale_(self.optimizer)  # g ← g / S: clipping sees the true gradients
        torch.nn.utils.clip_grad_norm_(self.model.trainable_parameters(), self.config.grad_clip)
        if self.scaler is None:
            self.optimizer.step()
        else:  # skips the step if a gradient overflowed (inf/NaN), then lowers S; raises S after 2000 good steps
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.model.update_target(m)  # after the optimizer step: the target follows the new weights
        return loss

    def _kernels(self):
        """On CUDA, attention runs on the flash / memory-efficient kernels. PyTorch would otherwise
        pick cuDNN's on recent GPUs, which builds a plan for every new sequence length it meets; with
        length-grouped batches that is a new length every few steps, and the planning can cost more
        than the attention itself (compare `python -m jepa_lite.bench --sdpa default`).
        With CUDA graphs each length is planned once, when its graph is recorded, so there cuDNN
        comes first: its attention is built for Hopper, while the memory-efficient kernel PyTorch
        runs on an H100 is the A100's (sm80), which took ~16 ms of GPU time in a BERT-base,
        batch-512 step of ~67 ms (torch.profiler)."""
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        first = [SDPBackend.CUDNN_ATTENTION] if self.static_shapes else []
        return sdpa_kernel(first + [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])

    @torch.no_grad()
    def token_embeddings(self, batch: Batch, max_tokens: int = 1024) -> torch.Tensor:
        """(N, D) context-encoder embeddings of the real, non-special tokens of the clean text, in fp32
        on the CPU; at most `max_tokens` of them (evenly spaced), which keeps the SVD of the collapse
        metrics cheap."""
        self.model.eval()
        with self._kernels():
            z = self.model.encode_context(batch.input_ids, batch.attention_mask)  # (B, L, D)
        keep = batch.attention_mask.bool() & ~special_tokens_mask(batch.input_ids, self.tokenizer.all_special_ids)
        z = z[keep].float().cpu()  # (N, D)
        if z.shape[0] > max_tokens:
            z = z[torch.linspace(0, z.shape[0] - 1, max_tokens).long()]
        return z

    def fit(self) -> Dict[str, List[float]]:
        """Train until `config.steps`; checkpoint every `save_every` steps, at the end, and when
        `stop_requested` is set (Ctrl-C, SIGTERM). Before step 1 the save path is checked and locked
        (`checkpoint.SaveTarget`); before each save the weights are checked finite."""
        from tqdm.auto import tqdm

        cfg = self.config
        if self.target is not None:
            self.target.run_id = self.run_id
            self.target.prepare(estimate_bytes(self.model) + 32 * cfg.steps)  # + the history's per-step entries
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.progress, desc="jepa", unit="step", leave=False)
        batches = self._batches()
        try:
            while self.step < cfg.steps:
                # the LR the scheduler gives this step, computed on the host (on the CUDA-graph path
                # the optimizer's LR is a GPU tensor, and reading it would wait for the GPU)
                lr, m = cfg.lr * self.lr_factor(self.step), self.momentum(self.step)
                batch = next(batches)
                self._window.append(self.train_step(batch))
                bar.update(1)
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    self._log_window(self._window, batch, lr, m)
                    self._window = []
                # Read the flag once per step: a signal handler may set it at any moment, and every rank
                # must take the same branch below (a rank that alone went on to save would wait in a
                # collective the others never join). A signal to any rank stops them all after this step
                # (read after the log step, whose callbacks may ask for a stop too).
                stop = self.dist.any(self.stop_requested)
                self.stop_requested = self.stop_requested or stop
                if self.save_path and ((cfg.save_every and self.step % cfg.save_every == 0) or last or stop):
                    self._check_finite(self._window)
                    if self.dist.enabled:  # what rank 0 saves is every rank's state
                        check_in_sync(self.model.target_encoder, self.dist, "target encoder")
                    if self.target is not None:
                        self._save_checked()
                    self.dist.barrier()  # the others wait for rank 0's checkpoint
                if stop:
                    where = f"; checkpoint saved to {self.save_path}" if self.target is not None else ""
                    self.log(f"stopped at step {self.step}{where}")
                    break
            if self.dist.enabled:  # the EMA targets, updated by each rank on its own, must still agree
                digests = check_in_sync(self.model.target_encoder, self.dist, "target encoder")
                if self.dist.is_main:
                    self._write(f"ranks in sync: target encoder sha256 {', '.join(digests)} on the {self.dist.world_size} ranks")
        finally:
            bar.close()
            batches.close()
            if self.target is not None:
                self.target.release()
        return dict(self.history)

    def _save_checked(self) -> None:
        """Save through the save-path rules; weights that are no longer finite stop the run."""
        try:
            self.target.save(self.state(), self.step)
        except NonFiniteState as e:
            raise TrainingDiverged(self._diverged(f"the weights became NaN or infinite by step {self.step} ({e.name})")) from None

    def _diverged(self, what: str) -> str:
        return diverged_message(self.target, what)

    def _batches(self):
        """Yield the batches of steps self.step, self.step + 1, … On a GPU, the next batch is prepared
        by a second thread while this step's kernels are being launched and run (masking is torch
        code, which releases Python's lock much of the time), and it is copied from pinned memory
        (`Batch.to`), so the copy does not make the host wait for the GPU. On a CPU, where the two
        would only compete for the same cores, batches are made one after the other.

        A worker process (`torch.utils.data.DataLoader` over `self.plan`) was tried instead, before
        whole steps became CUDA graphs: on an H100 a compiled DistilBERT step (batch 64) took 23.2 ms
        with it against 14.5–15.8 ms with this thread, because handing each batch over between
        processes costs the launching loop more time than the thread's share of Python's lock."""
        step = self.step
        if self.device.type != "cuda":
            while True:
                yield self.get_batch(step)
                step += 1
        from concurrent.futures import ThreadPoolExecutor

        # With CUDA graphs the batch stays in pinned host memory: `StepGraphs` copies it straight
        # into the buffers its graph reads.
        make = self.get_batch if self.graphs is None else (lambda s: self.plan[s].pinned())
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(make, step)
            while True:
                batch = pending.result()
                step += 1
                pending = pool.submit(make, step)
                yield batch

    def _finite(self, window: List[torch.Tensor]) -> bool:
        return not window or bool(torch.isfinite(torch.stack([w.float() for w in window])).all())

    def _check_finite(self, window: List[torch.Tensor]) -> None:
        if not self._finite(window):
            raise TrainingDiverged(self._diverged(f"the loss became NaN or infinite by step {self.step}"))

    def _write(self, line: str) -> None:
        """Log lines go to `self.log` (print by default), written around the progress bar."""
        from tqdm.auto import tqdm

        if self.log is print:
            tqdm.write(line)
        else:
            self.log(line)

    def _log_window(self, window: List[torch.Tensor], batch: Batch, lr: float, m: float) -> None:
        self._check_finite(window)
        if not self.dist.is_main:
            return  # rank 0 alone logs
        if self.dist.enabled:  # the metrics of the whole global batch, as one process computes them
            batch = self.plan[self.step - 1]
        batch = batch.to(self.device)
        losses = torch.stack([w.float() for w in window]).cpu().tolist()  # one host sync per log, not per step
        z = self.token_embeddings(batch)  # (N, D) from the weights after this step's update
        if not bool(torch.isfinite(z).all()):  # that update blew up, although the loss before it was finite
            raise TrainingDiverged(self._diverged(f"the weights became NaN or infinite by step {self.step}"))
        metrics = collapse_metrics(z)
        maskable = batch.attention_mask.bool() & ~special_tokens_mask(batch.input_ids, self.tokenizer.all_special_ids)
        record = {
            "step": self.step, "loss": sum(losses) / len(losses), "lr": lr, "ema_m": m,
            "masked_frac": float(batch.pred_mask.sum() / maskable.sum()), **metrics,
        }  # fmt: skip
        self.history["step_loss"].extend(losses)
        for k, v in record.items():
            self.history[k].append(v)
        self._write(
            f"step {self.step:6d} | loss {record['loss']:.4f} | lr {lr:.3g} | ema_m {m:.4f} | "
            f"rank {metrics['rank']:6.1f} | std {metrics['std']:.3f} | mean_cos {metrics['mean_cos']:.3f}"
        )
        warning = collapse_warning(metrics)
        if warning and not self.collapse_warned:
            self._write(f"warning: {warning}")
        self.collapse_warned = bool(warning)
        for cb in self.callbacks:
            cb(self, record)

    # ----------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "kind": KIND,
            "run_id": self.run_id,
            "config": dataclasses.asdict(self.config),
            "step": self.step,
            "fingerprint": self.fingerprint,
            "model": self.model.state_dict(),
            "optimizer": plain_lrs(self.optimizer.state_dict()),
            "scheduler": plain_lrs(self.scheduler.state_dict()),
            "rng": rng_state(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,  # fp16: scale S, growth tracker
            "history": {k: list(v) for k, v in self.history.items()},
            "window": [float(w) for w in self._window],  # step losses not yet logged
            "collapse_warned": self.collapse_warned,
        }

    def save(self, path: str) -> None:
        """Atomic checkpoint of everything needed to resume exactly, to any path (the save-path rules
        apply to the checkpoints `fit` writes, at `save_path`)."""
        save_checkpoint(path, self.state())

    def resume(self, path: str) -> None:
        """Load a checkpoint written by a run with the same config; training continues at its step."""
        state = load_checkpoint(path, map_location=self.device)
        check_resumable(state, path, ["format", *self.state()])  # the keys this version writes
        check_compatible(state["config"], dataclasses.asdict(self.config), path)
        bad = first_nonfinite(state_tensors(state["model"]))
        if bad is not None:
            raise CheckpointError(f"{path} holds NaN or infinite weights ({bad}); it cannot be resumed")
        if state.get("fingerprint") != self.fingerprint:
            raise CheckpointError(f"{path} was trained on different text than this run's")
        if state["step"] > self.config.steps:
            raise ConfigError(f"{path} is at step {state['step']}, beyond --steps {self.config.steps}")
        flags = [{k: g[k] for k in ("fused", "capturable")} for g in self.optimizer.param_groups]
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler is not None and state.get("scaler"):  # an fp16 run resumes with its scale S
                self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{path} does not fit this model: {str(e).splitlines()[0][:200]}") from None
        for group, flag in zip(self.optimizer.param_groups, flags):  # this run's kernels, not the saved run's
            group.update(flag)
            if self.graphs is not None:  # the LR back on the GPU, as the graphs read it
                group["lr"] = torch.tensor(float(group["lr"]), device=self.device)
        if self.graphs is not None:  # new state tensors: record the graphs again
            self.graphs = StepGraphs(self.graphs.step, self.device)
        restore_rng_state(state["rng"])
        self.step = int(state["step"])
        self.history = defaultdict(list, {k: list(v) for k, v in state["history"].items()})
        self._window = [torch.tensor(x, dtype=torch.float32, device=self.device) for x in state["window"]]
        self.collapse_warned = bool(state["collapse_warned"])
        self.run_id = state["run_id"]  # the same run, continued: it may replace its own checkpoints
        if self.target is not None:
            self.target.run_id = self.run_id
            self.target.last_good = (path, self.step)


def diverged_message(target: Optional[SaveTarget], what: str) -> str:
    """The message of a run stopped by NaN or infinite values (`what`): it names the last checkpoint
    *this run* wrote and verified finite (`target.last_good`), or says there is none."""
    good = target.last_good if target is not None else None
    if good is not None:
        where = f" The last good checkpoint is {good[0]} (step {good[1]}, of this run, checked finite)."
    elif target is not None:
        where = " This run saved no checkpoint (none with finite weights)."
    else:
        where = ""
    return f"{what}; training stopped.{where} Try a lower --lr"


def check_resumable(state: dict, path, state_keys: Optional[Sequence[str]] = None) -> None:
    """CheckpointError unless `state` is a masked-span checkpoint of this kit version: its kind, the
    keys of this version's config and (given `state_keys`) of its state; an older or newer kit's
    missing or extra keys are named."""
    kind = state.get("kind")
    if kind is not None and kind != KIND and not isinstance(kind, str):
        raise CheckpointError(f"{path} is not a checkpoint of jepa_lite.train (kind {kind!r})")
    if kind is not None and kind != KIND:
        raise CheckpointError(f"{path} is a checkpoint of the {kind} trainer, not of jepa_lite.train; resume it with python -m jepa_lite.{kind} --resume {path}")
    if state_keys is not None:
        check_state_keys(state, state_keys, path)
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path} was written by another version of jepa_lite (no config); resume it with that version, or start a new run")
    check_state_keys(state["config"], [f.name for f in dataclasses.fields(TrainConfig)], path, "its config")
    if state_keys is not None:
        check_state_types(state, path)


def plain_lrs(state_dict: dict) -> dict:
    """An optimizer's or LR scheduler's state dict with its learning rates as plain numbers. On the
    CUDA-graph path they are GPU tensors; stored as numbers, a checkpoint resumes on any path."""
    for group in state_dict.get("param_groups", []):
        for key in ("lr", "initial_lr"):
            if isinstance(group.get(key), torch.Tensor):
                group[key] = group[key].item()
    for key in ("base_lrs", "_last_lr"):
        if key in state_dict:
            state_dict[key] = [x.item() if isinstance(x, torch.Tensor) else x for x in state_dict[key]]
    return state_dict


def check_compatible(saved: dict, current: dict, path: str) -> None:
    """CheckpointError naming the first settings where `current` differs from the checkpoint's
    `saved`, beyond RESUMABLE_CHANGES (`checkpoint.check_config_compatible`)."""
    check_config_compatible(saved, current, path, RESUMABLE_CHANGES)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2 (argparse's default prints the usage too)
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = _Parser(prog="python -m jepa_lite.train", description="Train a masked-span JEPA on text, offline by default.", argument_default=argparse.SUPPRESS)
    a = p.add_argument
    a("--model_name", help="encoder: omit for the offline pretrained MiniLM; 'tiny'; 'random:bert'; a hub name or local folder")
    a("--text_file", help="UTF-8 text, one example per line (default: the kit's built-in corpus)")
    a("--max_lines", type=int, help="read only the first N non-blank lines of --text_file (default: all of them; the run prints how many it read)")
    a("--token_cache", metavar="auto|off|DIR", help="token cache of the text file: auto = files of 64 MiB or more, next to the checkpoint (default); off; or a folder")
    a("--max_length", type=int, help=f"tokens per line (default {d.max_length})")
    a("--mask_ratio", type=float, help=f"fraction of tokens masked, in (0, 1) (default {d.mask_ratio})")
    a("--mean_span_len", type=float, help=f"mean masked span length, ≥ 1 (default {d.mean_span_len:g})")
    a("--ema_m", type=float, help=f"EMA momentum m of the target encoder (default {d.ema_m})")
    a("--ema_schedule", choices=SCHEDULES, help="momentum schedule from --ema_m to --ema_m_final (default constant)")
    a("--ema_m_final", type=float, help=f"final momentum of the linear/cosine schedules (default {d.ema_m_final})")
    a("--pred_hidden_mult", type=int, help=f"predictor width in multiples of the hidden size (default {d.pred_hidden_mult})")
    a("--batch_size", type=int, help=f"lines per optimizer step (default {d.batch_size}); under torchrun the global batch, all processes "
      "together: a multiple of their number, each process trains on batch_size / processes of the lines")
    a("--lr", type=float, help=f"peak learning rate (default {d.lr})")
    a("--weight_decay", type=float, help=f"(default {d.weight_decay})")
    a("--steps", type=int, help=f"optimizer steps (default {d.steps})")
    a("--warmup_steps", type=int, help=f"(default {d.warmup_steps})")
    a("--log_every", type=int, help=f"(default {d.log_every})")
    a("--save_every", type=int, help=f"checkpoint interval, 0 = only at the end (default {d.save_every})")
    a("--save_path", help="checkpoint file (default: a new file per run, checkpoints/<model>-<date>-<time>.pt; with --resume, the resumed file)")
    a("--overwrite", action="store_true", help="may replace another run's checkpoint at --save_path (never a file that is not a checkpoint)")
    a("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    a("--seed", type=int, help=f"(default {d.seed})")
    a("--smoke_test", action="store_true", help="tiny random encoder, local tokenizer, built-in corpus, 200 steps: offline, seconds")
    a("--precision", choices=PRECISIONS, help="auto (default): bf16 autocast on CUDA GPUs with native bf16 (compute capability ≥ 8), "
      "fp16 autocast + loss scaling on older ones, fp32 on the CPU and MPS")
    a("--compile", action="store_true", help="torch.compile the model (faster on a GPU, and on the CPU in bf16, after a slow start)")
    a("--no_cuda_graphs", dest="cuda_graphs", action="store_false", help="with --compile on CUDA: no CUDA graphs (compile only)")
    a("--no_group_by_length", dest="group_by_length", action="store_false", help="batch lines in plain random order")
    a("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    a("--no_progress", action="store_true", help="no progress bar (log lines only)")
    return p


def config_from_args(given: dict) -> TrainConfig:
    """TrainConfig from the flags the user gave; on --resume the checkpoint's config fills the rest,
    and the run continues in the resumed file unless --save_path names another."""
    given = dict(given)
    resume = given.pop("resume", None)
    if given.pop("no_progress", False):
        given["progress"] = False
    if resume:
        state = load_checkpoint(resume)
        check_resumable(state, resume)
        saved = state["config"]
        given.setdefault("save_path", resume)
        check_compatible(saved, {**saved, **given}, resume)
        return TrainConfig(**{**saved, **given})
    if given.get("smoke_test"):
        return TrainConfig.smoke(**given)
    return TrainConfig(**given)


STOP_SIGNALS = ("SIGINT", "SIGTERM")  # SIGTERM: what a job scheduler or `docker stop` sends


@contextlib.contextmanager
def stop_on_signals(trainer):
    """The first Ctrl-C or SIGTERM: finish the current step, checkpoint, stop (`trainer.stop_signal`
    names it). A second one interrupts at once, without saving. `trainer` may also be a function
    returning the trainer or None: before there is one, a signal interrupts at once (KeyboardInterrupt,
    with the signal's name in `stop_on_signals.last`), as nothing is there to save."""
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def handler(signum, frame):
        stop_on_signals.last = signal.Signals(signum).name
        t = trainer() if callable(trainer) else trainer
        if t is None:
            raise KeyboardInterrupt
        trainer_stop(t, signum)

    def trainer_stop(trainer, signum):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        trainer.stop_signal = signal.Signals(signum).name
        again = "Ctrl-C" if signum == signal.SIGINT else "the signal"
        print(f"\n{trainer.stop_signal}: stopping after this step ({again} again to abort without saving)", file=sys.stderr)

    signums = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


stop_on_first_interrupt = stop_on_signals  # the earlier name


def run_cli(prog: str, build: Callable[[], Any], done: Callable[[Any], None], errors: Tuple[type, ...]) -> int:
    """A trainer's command line, the same for every trainer (`jepa_lite.train`, `jepa_lite.paired`).

    `build()` checks the input and returns the trainer (resumed if asked; it prints what it did);
    `trainer.fit()` runs under `stop_on_signals`; `done(trainer)` prints the end of a finished run.
    The trainer has `step`, `config.steps`, `save_path`, `target` (a SaveTarget or None) and
    `stop_requested`. Exit codes: 0 done; 2 bad input (an `errors` exception: one `error:` line,
    before any work); 1 the run failed after it started (one of `errors` once steps were taken, or
    TrainingDiverged); 128 + signal (130 Ctrl-C, 143 SIGTERM) stopped early, with where it stopped
    and `python -m PROG --resume PATH` to continue, or, before the trainer existed, nothing written."""
    stop_on_signals.last = "SIGINT"
    try:
        with stop_on_signals(lambda: None):  # until `build` has a trainer to stop
            return _run_cli(prog, build, done, errors)
    except KeyboardInterrupt:  # before the trainer existed: nothing was written
        print(f"stopped by {stop_on_signals.last} before training started; nothing written", file=sys.stderr)
        return 128 + getattr(signal, stop_on_signals.last).value


def _run_cli(prog: str, build, done, errors) -> int:
    trainer, first_step = None, 0
    try:
        trainer = build()
        first_step = trainer.step
        with stop_on_signals(trainer):  # from here a signal stops the run after its step, with a save
            trainer.fit()
        if trainer.step < trainer.config.steps:  # stopped early by a signal
            sig = getattr(trainer, "stop_signal", "SIGINT")
            path = trainer.save_path
            saved = f"checkpoint {path}; continue with: python -m {prog} --resume {path}" if path else "no checkpoint (no --save_path)"
            print(f"stopped early by {sig} at step {trainer.step} of {trainer.config.steps}; {saved}", file=sys.stderr)
            return 128 + getattr(signal, sig, signal.SIGINT).value
        done(trainer)
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 1 if trainer is not None and trainer.step > first_step else 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if trainer is None:
            raise  # run_cli says: nothing written
        good = trainer.target.last_good if trainer.target is not None else None
        last = f"; the last checkpoint is {good[0]} (step {good[1]})" if good else ""
        print(f"interrupted at step {trainer.step}, without saving{last}", file=sys.stderr)
        return 128 + getattr(signal, stop_on_signals.last).value
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (`run_cli`). Exit codes: 0 done; 2 bad input (one `error:` line, before any
    work); 1 the run failed (diverged, or a save failed); 130 / 143 stopped early by Ctrl-C / SIGTERM."""
    args = vars(build_parser().parse_args(argv))

    def build() -> Trainer:
        config = config_from_args(args)
        if config.save_path not in (None, "auto"):  # another run's checkpoint, refused before any work
            run_id = load_checkpoint(args["resume"]).get("run_id") if args.get("resume") else None
            check_save_path(config.save_path, run_id, config.overwrite)
        trainer = Trainer(config)
        if args.get("resume"):
            trainer.resume(args["resume"])
            print(f"resumed from {args['resume']} at step {trainer.step}")
        if trainer.save_path:
            print(f"checkpoints go to {trainer.save_path}")
        return trainer

    def done(trainer: Trainer) -> None:
        if trainer.save_path:
            print(f"done: {trainer.step} steps; checkpoint {trainer.save_path}")

    return run_cli("jepa_lite.train", build, done, (ConfigError, DataError, BackboneError, CheckpointError))


if __name__ == "__main__":
    exit_process(main())  # sys.exit, or under torchrun os._exit (distributed.exit_process says why)

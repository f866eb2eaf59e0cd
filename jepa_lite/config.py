"""The masked-span trainer's settings: `TrainConfig` (every field commented with its default), its
validation, and the rules for resuming a run (which settings may change, which checkpoints fit).

    from jepa_lite.config import TrainConfig
    config = TrainConfig.smoke(steps=50)     # the tiny offline preset, with overrides
    config.validate()                        # ConfigError with a one-line message, before any work
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .checkpoint import (
    CheckpointError,
    check_config_compatible,
    check_state_keys,
    check_state_types,
    first_nonfinite,
    state_tensors,
)
from .ema import SCHEDULES
from .errors import ConfigError
from .losses import LOSSES
from .masking import check_masking_args
from .precision import resolve_precision
from .validation import SEED_MAX, check_int_range, check_types


@dataclass
class TrainConfig:
    # data
    model_name: Optional[str] = None  # None = offline pretrained MiniLM; "tiny"; "random:bert"; hub name or folder
    text_file: Optional[str] = None  # one example per line; None = the kit's built-in corpus
    # None = every non-blank line of text_file; N = at most the first N (on purpose: big files stream: data.TextFile)
    max_lines: Optional[int] = None
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
    # "auto" = checkpoints/<model>-<date>-<time>.pt, a new file per run; None = never write
    save_path: Optional[str] = "auto"
    overwrite: bool = False  # may replace a checkpoint of *another* run at save_path (a non-checkpoint file: never)
    device: str = "auto"  # "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:1", "mps"
    # "auto": bf16 on CUDA with capability ≥ 8, fp16 + loss scaling below, fp32 on CPU/MPS; "fp32", "bf16", "fp16"
    precision: str = "auto"
    compile: bool = False  # torch.compile the model (faster steps on GPU, and on CPU in bf16, after a slow start)
    cuda_graphs: bool = True  # with compile on CUDA: replay each step as CUDA graphs (see Trainer.train_step)
    group_by_length: bool = True  # batch lines of similar length together (less padding)
    seed: int = 42
    # "auto": text files ≥ 64 MiB are tokenised once into a cache next to the checkpoint; "off"; or a folder
    token_cache: str = "auto"
    smoke_test: bool = False  # the tiny offline preset (see TrainConfig.smoke)
    progress: bool = True  # show a tqdm progress bar

    @classmethod
    def smoke(cls, **overrides) -> "TrainConfig":
        """Seconds on a laptop CPU, no download: tiny random encoder, local tokenizer, built-in corpus."""
        preset = dict(
            model_name="tiny",
            max_length=64,
            batch_size=16,
            lr=3e-4,
            steps=200,
            warmup_steps=20,
            ema_m=0.996,
            pred_hidden_mult=2,
            log_every=20,
            save_every=100,
            smoke_test=True,
        )
        return cls(**{**preset, **overrides})

    def validate(self) -> None:
        """Raise ConfigError with a one-line message for any setting that cannot work: the type of
        every field (from its annotation), finite floats, integer ranges, then each field's own rule."""
        check_types(self)
        try:
            check_masking_args(self.mask_ratio, self.mean_span_len)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        positive = [
            "max_length",
            "steps",
            "batch_size",
            "log_every",
            "pred_hidden_mult",
            "max_lines",
            "tiny_dim",
            "tiny_layers",
        ]
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
            raise ConfigError(
                f"tiny_dim must be a multiple of 4 (the tiny encoder's 4 attention heads); got {self.tiny_dim}"
            )
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
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be {', '.join(list(LOSSES)[:-1])} or {list(LOSSES)[-1]}; got '{self.loss}'")
        resolve_precision(self.precision, pick_device(self.device))  # e.g. fp16 on the CPU: refused here


# Settings that may change when a run is resumed; every other setting must match the checkpoint.
RESUMABLE_CHANGES = (
    "steps",
    "log_every",
    "save_every",
    "save_path",
    "overwrite",
    "device",
    "progress",
    "max_lines",
    "compile",
    "cuda_graphs",
    "token_cache",
)
KIND = "masked_span"  # the "kind" of this trainer's checkpoints (jepa_lite.paired writes "paired")
MAX_LENGTH = 1 << 20  # no encoder reads a million tokens; the position limit of the model is checked too


def resolve_save_path(config: TrainConfig) -> Optional[str]:
    """The checkpoint file of a run: `save_path` as given, None for none, or for "auto" a new name
    per run, checkpoints/<model>-<YYYYmmdd-HHMMSS>.pt (UTC; -2, -3, … if that name is taken), so that
    runs never land on each other's files."""
    if config.save_path != "auto":
        return config.save_path
    model = "smoke_test" if config.smoke_test else (config.model_name or "minilm")
    model = (
        "".join(c if c.isalnum() or c in "-_." else "-" for c in os.path.basename(model.rstrip("/\\")) or model).strip(
            "-."
        )
        or "run"
    )
    stem = f"checkpoints/{model}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    path, k = f"{stem}.pt", 1
    while os.path.lexists(path):
        k += 1
        path = f"{stem}-{k}.pt"
    return path


def pick_device(name: str) -> torch.device:
    """ "auto" → the best available device; otherwise the named one, checked to exist."""
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


def check_resumable(state: dict, path, state_keys: Optional[Sequence[str]] = None) -> None:
    """CheckpointError unless `state` is a masked-span checkpoint of this kit version: its kind, the
    keys of this version's config and (given `state_keys`) of its state; an older or newer kit's
    missing or extra keys are named."""
    kind = state.get("kind")
    if kind is not None and kind != KIND and not isinstance(kind, str):
        raise CheckpointError(f"{path} is not a checkpoint of jepa_lite.train (kind {kind!r})")
    if kind is not None and kind != KIND:
        raise CheckpointError(
            f"{path} is a checkpoint of the {kind} trainer, not of jepa_lite.train; resume it "
            f"with python -m jepa_lite.{kind} --resume {path}"
        )
    if state_keys is not None:
        check_state_keys(state, state_keys, path)
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(
            f"{path} was written by another version of jepa_lite (no config); resume it with that "
            "version, or start a new run"
        )
    check_state_keys(state["config"], [f.name for f in dataclasses.fields(TrainConfig)], path, "its config")
    if state_keys is not None:  # a resume: every part's type, before any of it is loaded
        check_state_types(state, path)


def check_compatible(saved: dict, current: dict, path: str) -> None:
    """CheckpointError naming the first settings where `current` differs from the checkpoint's
    `saved`, beyond RESUMABLE_CHANGES (`checkpoint.check_config_compatible`)."""
    check_config_compatible(saved, current, path, RESUMABLE_CHANGES)


def check_resume(state: dict, path: str, state_keys: Sequence[str], config: TrainConfig, fingerprint: str) -> None:
    """Everything `Trainer.resume` checks before it loads a single tensor: a masked-span checkpoint of
    this version (`check_resumable`), written with a compatible config (`check_compatible`), finite
    weights, the same training text (`fingerprint`), and a step no later than `config.steps`."""
    check_resumable(state, path, state_keys)
    check_compatible(state["config"], dataclasses.asdict(config), path)
    bad = first_nonfinite(state_tensors(state["model"]))
    if bad is not None:
        raise CheckpointError(f"{path} holds NaN or infinite weights ({bad}); it cannot be resumed")
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(f"{path} was trained on different text than this run's")
    if state["step"] > config.steps:
        raise ConfigError(f"{path} is at step {state['step']}, beyond --steps {config.steps}")

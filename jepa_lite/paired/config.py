"""The settings of the paper's objective (`PairedConfig`), its data, and which checkpoints it resumes.

`PairedConfig` is the one place where every setting, its default and its meaning are written; the
trainer (`trainer.py`) and the command line (`cli.py`) read it. Why each default was chosen,
next to what the official code does, is in docs/paper.md ("Why these defaults").
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields
from typing import List, Optional, Sequence

from ..checkpoint import CheckpointError, check_config_compatible, check_state_keys, check_state_types, load_checkpoint
from ..config import pick_device
from ..data import clip_chars
from ..errors import ConfigError
from ..precision import resolve_precision
from ..validation import SEED_MAX, check_int_range, check_types
from .causal_lm import MAX_PREDICTORS, check_save_dir
from .graphed import unsupported
from .packing import longest_pair
from .pairs import Pair, PairsError, load_jsonl, regex_pairs
from .stp import SPAN_RULES, WEIGHTINGS

KIND = "paired"  # the "kind" of this trainer's checkpoints (jepa_lite.train writes "masked_span")


@dataclass
class PairedConfig:
    # data
    data: Optional[str] = None  # JSONL file in the paper's format; None = the built-in regex pairs
    test_data: Optional[str] = None  # a separate JSONL test file (the official splits); then all of `data` trains
    n_train: int = 3000  # built-in pairs for training ...
    n_test: int = 300  # ... and for the test split (regexes never seen in training)
    test_fraction: float = 0.1  # share of a JSONL file held out for testing (the last lines), without test_data
    # longest Text, and longest Code, in tokens with their special tokens; longer ones are truncated
    max_length: int = 128
    # model
    # "tiny", "random:llama-135m" (random init, local tokenizer), a folder written by save_dir, or a hub name
    model: str = "tiny"
    tiny_dim: int = 128  # hidden size of the "tiny" model
    tiny_layers: int = 4  # decoder blocks of the "tiny" model
    # the objective
    lbd: float = 1.0  # λ, weight of the JEPA term (0 = plain fine-tuning)
    # k, distinct [PRED_1]…[PRED_k] tokens appended to Text (0 = none; notebook 06 § 6 compares k = 1, 2 with 0)
    predictors: int = 0
    gamma: float = 1.0  # γ, weight of the LM loss (0 = JEPA alone: watch it collapse)
    distance: str = "cosine"  # "cosine" (the paper's choice) or "l2" (which collapses)
    loss_dropout: float = 0.0  # fraction of steps that skip the JEPA term
    lm_tokens: str = "code"  # LM loss on "code" (Code + [EOS]) or "all" (every token: what the official runs trained)
    code_position: str = "last"  # Enc(Code) at the "last" Code token (official Llama setting) or at "eos"
    views: str = "separate"  # "separate": three rows per pair (readable); "packed": one row, block-causal mask
    # packed views: 0 = one row per pair; N = several pairs per row of exactly N tokens (packing.py, the fast path)
    pack_length: int = 0
    # "default": the model's own attention kernel (SDPA); "flex": FlexAttention on the packed rows (CUDA only)
    attention: str = "default"
    # torch.compile the training forward pass: with pack_length the packed rows' (one shape every step), else
    # the transformer for any batch and length (a C++ compiler on the CPU: fastpath.compiler_works)
    compile: bool = False
    # CUDA: record each optimizer step, one row per pair, as a CUDA graph per padded length (graphed.py)
    cuda_graphs: bool = False
    # each micro-batch's pairs, sorted by length, go through the model in this many groups, each padded to
    # its own longest row: the same sums (the counts are the whole step's), less padding; pays on the CPU
    length_groups: int = 1
    # "llm_jepa" (two views, eq. 2) or "stp": Semantic Tube Prediction on the LM row alone (stp.py)
    objective: str = "llm_jepa"
    # STP span rule: "start_end" (official default: s, then t after it) or "uniform" (all spans alike)
    stp_span: str = "start_end"
    stp_max_span: int = 0  # STP: longest span in tokens (0 = no cap, the official default)
    stp_weighting: str = "none"  # STP length weighting: "none" (official default), "cosine_like", "jaccard_like"
    # optimisation
    batch_size: int = 32  # pairs per forward pass (a micro-batch when grad_accum > 1)
    grad_accum: int = 1  # micro-batches per optimizer step: the step sees batch_size · grad_accum pairs
    lr: float = 2e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.01
    steps: int = 800  # optimizer steps; 0 = only evaluate
    warmup_steps: int = 50  # linear warm-up, then cosine decay to 0
    grad_clip: float = 1.0
    # auto: bf16 on CUDA with native bf16, fp16 + GradScaler on older CUDA GPUs, fp32 on CPU/MPS
    precision: str = "auto"
    device: str = "auto"  # "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:N", "mps"
    # bookkeeping
    log_every: int = 50  # log losses every this many steps
    monitor_size: int = 128  # test pairs on which the JEPA loss is monitored (every run, even λ = 0)
    save_path: Optional[str] = None  # checkpoint file (model, optimizer, scheduler, RNG, history); None = none
    save_every: int = 0  # checkpoint every this many steps (0 = only at the end)
    # may replace a checkpoint of *another* run at save_path (a file that is not a kit checkpoint: never)
    overwrite: bool = False
    resume: Optional[str] = None  # continue the run saved in this checkpoint
    save_dir: Optional[str] = None  # at the end, write the model + tokenizer here (save_pretrained, safetensors)
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        """Raise ConfigError with a one-line message for any setting that cannot work."""
        check_types(self)  # every field's type from its annotation, finite floats, 64-bit integers (validation.py)
        check_int_range("seed", self.seed, 0, SEED_MAX)
        for name in (
            "n_train",
            "n_test",
            "batch_size",
            "log_every",
            "max_length",
            "monitor_size",
            "grad_accum",
            "length_groups",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer; got {v}")
        for name in ("steps", "save_every", "warmup_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{name} must be an integer ≥ 0; got {v}")
        self._check_pack_length()
        if not isinstance(self.stp_max_span, int) or self.stp_max_span < 0:
            raise ConfigError(f"stp_max_span must be an integer ≥ 0 (0 = no cap); got {self.stp_max_span}")
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8; got {self.max_length}")
        if not isinstance(self.predictors, int) or not 0 <= self.predictors <= MAX_PREDICTORS:
            raise ConfigError(
                f"predictors must be an integer in 0..{MAX_PREDICTORS} (the paper uses 0..4); got {self.predictors}"
            )
        if not (self.lbd >= 0 and self.gamma >= 0) or math.isinf(self.lbd) or math.isinf(self.gamma):
            raise ConfigError(f"lbd and gamma must be finite numbers ≥ 0; got lbd={self.lbd}, gamma={self.gamma}")
        if self.lbd == 0 and self.gamma == 0:
            raise ConfigError("lbd and gamma are both 0: there would be nothing to train")
        if not 0 <= self.loss_dropout < 1:
            raise ConfigError(f"loss_dropout must be in [0, 1); got {self.loss_dropout}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1); got {self.test_fraction}")
        for name, allowed in (
            ("distance", ("cosine", "l2")),
            ("lm_tokens", ("code", "all")),
            ("code_position", ("last", "eos")),
            ("views", ("separate", "packed")),
            ("attention", ("default", "flex")),
            ("objective", ("llm_jepa", "stp")),
            ("stp_span", SPAN_RULES),
            ("stp_weighting", WEIGHTINGS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be {' or '.join(allowed)}; got '{getattr(self, name)}'")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not self.weight_decay >= 0 or not self.grad_clip > 0:
            raise ConfigError("lr and grad_clip must be > 0 and weight_decay ≥ 0")
        if self.objective == "stp" and (self.predictors or self.views != "separate" or self.distance != "cosine"):
            raise ConfigError(
                "objective stp reads the LM row alone with the cosine: it takes no predictors, "
                "no packed views and no l2 distance (drop --predictors, --views, --distance)"
            )
        resolve_precision(self.precision, pick_device(self.device))  # names a bad precision or device
        if self.attention == "flex" and pick_device(self.device).type != "cuda":
            raise ConfigError("--attention flex trains on CUDA only (FlexAttention has no backward on the CPU)")
        if self.cuda_graphs:  # what can be told before any work; torchrun's processes are refused by the trainer
            device = pick_device(self.device)
            why = unsupported(self, device, False, resolve_precision(self.precision, device).grad_scaler)
            if why:
                raise ConfigError(f"--cuda_graphs: {why}")
        if self.save_dir:
            check_save_dir(self.save_dir)

    def _check_pack_length(self) -> None:
        """pack_length is 0, or with views "packed" at least the longest pair's blocks (each pair whole in a row)."""
        n = self.pack_length
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"pack_length must be an integer ≥ 0 (0 = one row per pair); got {n}")
        if n and self.views != "packed":
            raise ConfigError(f"pack_length {n} packs pairs into rows: it needs --views packed")
        if self.attention == "flex" and not n:
            raise ConfigError("--attention flex runs the packed rows: it needs --views packed and --pack_length")
        if n and self.length_groups > 1:
            raise ConfigError("--length_groups pads one row per pair less; --pack_length has no padding to cut")
        need = longest_pair(self.max_length, self.predictors) if isinstance(self.predictors, int) else 0
        if n and n < need:
            raise ConfigError(
                f"pack_length must hold the longest pair: at least {need} tokens with max_length "
                f"{self.max_length} and {self.predictors} predictors; got {n}"
            )


# Settings that may change when a run is resumed; every other setting must match the checkpoint.
RESUMABLE_CHANGES = (
    "steps",
    "log_every",
    "save_every",
    "save_path",
    "overwrite",
    "resume",
    "save_dir",
    "device",
    "precision",
    "compile",  # how the machine runs the same arithmetic, as device and precision
    "cuda_graphs",
    "attention",
    "length_groups",  # how the step's pairs are cut into forward passes: the same sums
    "progress",
    "monitor_size",
)


# ---------------------------------------------------------------------------------------------
# Data: pairs → token ids
# ---------------------------------------------------------------------------------------------
def load_pairs(config: PairedConfig) -> tuple[List[Pair], List[Pair]]:
    """(train, test) pairs: the built-in regex generator or the JSONL file, split by `test_fraction`,
    or, with `test_data`, all of the training data and the separate test file."""
    if config.test_data is not None:
        train = (
            regex_pairs(config.n_train, config.n_test, seed=0)[0] if config.data is None else load_jsonl(config.data)
        )
        return train, load_jsonl(config.test_data)
    if config.data is None:
        return regex_pairs(config.n_train, config.n_test, seed=0)  # the same data for every run seed
    pairs = load_jsonl(config.data)
    n_test = max(1, round(len(pairs) * config.test_fraction))
    if len(pairs) - n_test < 1:
        raise PairsError(
            f"{config.data} has {len(pairs)} example(s); at least 2 are needed (one to train, one to test)"
        )
    return pairs[:-n_test], pairs[-n_test:]


def pairs_fingerprint(*splits: Sequence[Pair]) -> str:
    """A short hash of the pairs, stored in checkpoints to catch resuming on other data."""
    h = hashlib.sha256()
    for split in splits:
        for p in split:
            h.update(p.text.encode("utf-8") + b"\0" + p.code.encode("utf-8") + b"\n")
        h.update(b"\1")
    return h.hexdigest()[:16]


ENCODE_PIECE = 1024  # strings per tokenizer call: a stop signal waits for one call only (stopping.py)


def encode(tokenizer, strings: Sequence[str], max_length: int) -> List[List[int]]:
    """Token ids of each string, no special tokens added (and none parsed out of the text), truncated
    (each string is cut first, `data.clip_chars`: a 10 MB Code is never tokenised whole). The tokenizer
    runs on ENCODE_PIECE strings at a time: Python runs a signal handler only between its calls."""
    out: List[List[int]] = []
    for start in range(0, len(strings), ENCODE_PIECE):
        piece = [clip_chars(s, max_length) for s in strings[start : start + ENCODE_PIECE]]
        out += [
            ids[:max_length]
            for ids in tokenizer(piece, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        ]
    return out


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
STATE_KEYS = (
    "format",
    "kind",
    "run_id",
    "config",
    "step",
    "fingerprint",
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "rng",
    "history",
    "window",
)  # what `PairedTrainer.state` saves (+ save_checkpoint's "format")


def load_paired_checkpoint(path: str, device="cpu") -> dict:
    """A checkpoint written by `PairedTrainer.save`; CheckpointError (one line) for any other kind."""
    state = load_checkpoint(path, map_location=device)
    kind = state.get("kind", "masked_span" if "mask_ratio" in state.get("config", {}) else None)
    if kind != KIND:
        what = (
            "a masked-span checkpoint (jepa_lite.train): resume it with python -m jepa_lite.train"
            if kind == "masked_span"
            else f"not a checkpoint of jepa_lite.paired (kind {kind!r})"
        )
        raise CheckpointError(f"{path} is {what}")
    optional = {"kind": KIND, "run_id": None, "window": []}  # older checkpoints of this kind lack them
    check_state_keys({**optional, **state}, STATE_KEYS, path)
    check_state_types(state, path)
    unknown = sorted(set(state["config"]) - {f.name for f in fields(PairedConfig)})
    if unknown:
        raise CheckpointError(
            f"{path} was written by another version of jepa_lite "
            f"(its config has unknown {', '.join(map(repr, unknown))}); "
            "resume it with that version, or start a new run"
        )
    return state


def check_compatible(saved: dict, current: dict, path: str) -> None:
    """CheckpointError naming the first settings where `current` differs from the checkpoint's
    `saved`, beyond RESUMABLE_CHANGES (`checkpoint.check_config_compatible`, as jepa_lite.train).
    A setting added after a checkpoint was written counts as saved with its default."""
    added = {
        "objective": "llm_jepa",
        "stp_span": "start_end",
        "stp_max_span": 0,
        "stp_weighting": "none",
        "pack_length": 0,
        "attention": "default",
        "compile": False,
        "cuda_graphs": False,
        "length_groups": 1,
    }
    check_config_compatible({**added, **saved}, current, path, RESUMABLE_CHANGES)  # checkpoints from before STP

"""Checks shared by every config and command line: each field has the type its annotation says, every
float is finite, every integer fits the range it is used in, and a training run fits in memory.

    check_types(config)                    every field of a dataclass against its annotation
    check_int_range(name, value, lo, hi)   lo ≤ value ≤ hi, else one line naming the field
    check_texts(texts)                     a non-empty sequence of strings (not one string)
    check_fits_in_memory(nbytes, device, what)   refuse a run whose estimated memory exceeds what is free
    check_run_fits(config, device, n_texts, …)   a masked-span run's max_length and memory, before step 1

All of them raise `ConfigError` with a one-line message that names the field and what would work, so
that bad input from Python or the command line ends before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence as SequenceABC
from typing import Any, Optional, Sequence

from .errors import ConfigError

INT64_MAX = 2**63 - 1
SEED_MAX = 2**32 - 1  # seeds are combined with the step number into one 64-bit generator seed


def _allowed(tp) -> tuple:
    """The Python types a value of annotation `tp` may have; () = unknown annotation, not checked."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        out = ()
        for arg in typing.get_args(tp):
            sub = _allowed(arg)
            if not sub:
                return ()
            out += sub
        return out
    if origin is typing.Literal:
        return tuple({type(a) for a in typing.get_args(tp)})
    if tp is type(None):
        return (type(None),)
    if tp is float:
        return (float, int)  # an int is a fine float
    if tp in (int, str, bool):
        return (tp,)
    return ()


def _kind(types: tuple) -> str:
    names = {float: "a number", int: "an integer", str: "a string", bool: "True or False", type(None): "None"}
    words = []
    for t in types:
        if t is int and float in types:
            continue
        if names.get(t) and names[t] not in words:
            words.append(names[t])
    return " or ".join(words)


def check_types(config: Any) -> None:
    """ConfigError naming the first field of the dataclass `config` whose value does not have the type
    of its annotation. `bool` is not accepted for an int or float field (True is not a batch size);
    every float must be finite; every int must fit in 64 bits."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        allowed = _allowed(hints.get(field.name, Any))
        if not allowed:
            continue
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if not ok:
            raise ConfigError(f"{field.name} must be {_kind(allowed)}; got {_show(value)} ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{field.name} must be a finite number; got {value}")
        if isinstance(value, int) and not isinstance(value, bool):
            check_int_range(field.name, value, -INT64_MAX - 1, INT64_MAX)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int_range(name: str, value: int, lo: int, hi: Optional[int] = None) -> None:
    """ConfigError unless lo ≤ value ≤ hi (hi None: no upper bound)."""
    if value < lo or (hi is not None and value > hi):
        where = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        shown = str(value) if len(str(value)) <= 30 else f"a {len(str(value))}-digit number"
        raise ConfigError(f"{name} must be {where}; got {shown}")


def check_texts(texts: Any) -> None:
    """ConfigError unless `texts` is a non-empty sequence (list, tuple, …) of strings. A single string
    is refused: iterating over it would train on its characters."""
    if isinstance(texts, (str, bytes)):
        raise ConfigError(
            "texts must be a sequence of strings (a list of lines), not a single string; wrap it: texts=[text]"
        )
    if not isinstance(texts, SequenceABC):
        raise ConfigError(f"texts must be a sequence of strings (a list of lines); got {type(texts).__name__}")
    if len(texts) == 0:
        raise ConfigError("texts is empty; give at least one line of text")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ConfigError(f"texts must hold strings only; texts[{i}] is {_show(t)} ({type(t).__name__})")


def available_memory(device) -> Optional[int]:
    """Bytes of memory free for a run on `device` (a torch.device): free GPU memory on CUDA, the
    kernel's MemAvailable on Linux for the CPU; None where it cannot be told."""
    import torch

    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def check_fits_in_memory(nbytes: float, device, what: str, advice: str) -> None:
    """ConfigError when the estimate `nbytes` (a lower estimate: refuse only what cannot fit) exceeds
    the memory available on `device`; the message gives both figures, what needs it and `advice`."""
    free = available_memory(device)
    if free is not None and nbytes > free:
        raise ConfigError(
            f"{what} would need about {human_bytes(nbytes)} of memory (estimate); {device.type} "
            f"has {human_bytes(free)} available; {advice}"
        )


__all__: Sequence[str] = [
    "check_types",
    "check_int_range",
    "check_texts",
    "check_fits_in_memory",
    "check_run_fits",
    "available_memory",
    "human_bytes",
]


def position_limit(encoder) -> Optional[int]:
    """The longest input (tokens) an encoder's position embeddings can read, or None if unbounded or
    unknown. RoBERTa-style models (positions counted from padding_idx + 1) lose two slots."""
    cfg = getattr(encoder, "config", None)
    n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "max_len", None)
    if not isinstance(n, int) or n <= 0:
        return None
    if getattr(cfg, "model_type", "") in (
        "roberta",
        "xlm-roberta",
        "xlm-roberta-xl",
        "camembert",
        "data2vec-text",
        "longformer",
        "mpnet",
    ):
        n -= 2
    return n


def training_bytes(n_params: int, n_trainable: int, batch_size: int, max_length: int, dim: int, layers: int) -> int:
    """A lower estimate of a JEPA run's memory: fp32 weights of context + target encoder and predictor
    (n_params counts them all), a gradient and two AdamW moments per trainable parameter, and the
    activations kept for the backward pass, ~10 values of width D per token and layer:

        4 · (n_params + 3 · n_trainable)  +  4 · 10 · B · L · D · layers   bytes
    """
    return 4 * (n_params + 3 * n_trainable) + 40 * batch_size * max_length * dim * max(1, layers)


def check_run_fits(config, device, n_texts: int, encoder=None, dim: Optional[int] = None, tiny=None) -> None:
    """Before the first step, a masked-span run (`TrainConfig`) against the machine: --max_length against
    the encoder's position limit, and the run's memory (`training_bytes`: weights, optimizer, activations)
    against what is free on `device`. With `tiny` (the "tiny" model's TinyConfig) and no encoder, the sizes
    come from the config, so the check runs before the model is built."""
    if encoder is None:  # the tiny encoder: embeddings + 12·d² per layer; the predictor 2·mult·d²
        d, layers = config.tiny_dim, config.tiny_layers
        n = (tiny.vocab_size + tiny.max_len) * d + layers * 12 * d**2
        n_params, n_trainable = 2 * n + 2 * config.pred_hidden_mult * d * d, n
    else:
        limit = position_limit(encoder)
        if limit is not None and config.max_length > limit:
            raise ConfigError(
                f"max_length {config.max_length} is beyond what {config.model_name or 'the default MiniLM'} can "
                f"read ({limit} positions); use --max_length {limit} or less"
            )
        cfg = getattr(encoder, "config", None)
        layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", None) or getattr(cfg, "layers", 1)
        n, n_pred, d = sum(p.numel() for p in encoder.parameters()), 2 * config.pred_hidden_mult * dim * dim, dim
        n_params, n_trainable = 2 * n + n_pred, n + n_pred
    batch = min(config.batch_size, n_texts)
    need = training_bytes(n_params, n_trainable, batch, config.max_length, d, int(layers))
    what = f"this run ({n_trainable / 1e6:,.0f} M trained parameters, batch {batch} × max_length {config.max_length})"
    check_fits_in_memory(need, device, what, "lower --batch_size, --max_length or the model's size")

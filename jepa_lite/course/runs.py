"""Small, cached training runs for the notebooks' live experiments.

    history = run_history(ema_m=0.0)           # trains the smoke preset once (a few seconds on a CPU)
    history = run_history(ema_m=0.0)           # same settings: returned from the cache, no training

A run is `Trainer(TrainConfig.smoke(save_path=None, **overrides)).fit()` — the kit's real training
core on the tiny encoder — with its log lines kept out of the notebook. Runs are deterministic
(seeded), so caching by settings loses nothing: moving a slider back to a value already seen is
instant.
"""

from __future__ import annotations

import contextlib
import io
from typing import Dict, List

import torch

from ..train import TrainConfig, Trainer

_CACHE: Dict[tuple, Dict[str, List[float]]] = {}


def run_key(overrides: dict) -> tuple:
    """The cache key of a run: its settings, sorted."""
    return tuple(sorted(overrides.items()))


@contextlib.contextmanager
def one_thread():
    """Run torch on one CPU thread for the duration of the block, then restore the setting.

    The tiny encoder's matrices are too small to gain from several threads, and when other programs
    keep the cores busy, torch's spinning worker threads can slow a run down by an order of magnitude
    or more (measured on a 2-core machine: 3.8 s with one thread, 145 s with two). Results are the same.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_history(predictor: bool = True, **overrides) -> Dict[str, List[float]]:
    """History of a smoke-preset run with `overrides` (e.g. ema_m=0.0, loss="l2", steps=150).

    Besides the trainer's own history it records "norm": the mean length ‖z‖ of the context
    encoder's token embeddings at each log step. `predictor=False` replaces the predictor with the
    identity, so the context encoder alone must match the target.
    """
    overrides = {"save_path": None, "progress": False, **overrides}
    key = run_key({**overrides, "predictor": predictor})
    if key in _CACHE:
        return _CACHE[key]
    norms: List[float] = []

    def record_norm(trainer: Trainer, record: dict) -> None:
        z = trainer.token_embeddings(trainer.get_batch(trainer.step - 1))  # (N, D)
        norms.append(float(z.norm(dim=-1).mean()))

    quiet = io.StringIO()
    with one_thread(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        trainer = Trainer(TrainConfig.smoke(**overrides), callbacks=[record_norm], log=lambda s: None)
        if not predictor:
            trainer.model.predictor = torch.nn.Identity()
        history = trainer.fit()
    history["norm"] = norms
    _CACHE[key] = history
    return history


def cached_runs() -> Dict[tuple, Dict[str, List[float]]]:
    """Every run trained so far in this session, by settings."""
    return dict(_CACHE)


def final_metrics(history: Dict[str, List[float]]) -> Dict[str, float]:
    """The last logged loss, std, mean_cos, rank and norm of a run."""
    return {k: history[k][-1] for k in ("loss", "std", "mean_cos", "rank", "norm") if history.get(k)}

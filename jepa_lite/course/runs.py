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
from typing import Dict, List, Sequence

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


# ---------------------------------------------------------------------------------------------
# Notebook 06: runs of the paper's objective (jepa_lite.paired)
# ---------------------------------------------------------------------------------------------
_PAIRED_CACHE: Dict[tuple, dict] = {}


def paired_run(**overrides) -> dict:
    """Train `PairedTrainer(PairedConfig(**overrides))` once (cached by settings) and measure it.

    Returns {"config", "history", "exact_match", "spectrum", "residual", "views", "collapse",
    "seconds", "examples"}: the training history; exact-match accuracy of greedy decoding on the
    test split; for X = Enc(Text) (read at [SEP], k = 0) and Y = Enc(Code) on the test split, the
    singular values of X − Y, the least-squares residual of the best linear map X → Y, a joint 2-D
    PCA of both views, and their collapse metrics; the seconds it took; and a few predictions.
    """
    import time

    from ..diagnostics import collapse_metrics, linear_map_residual, pca_2d, svd_spectrum
    from ..paired import PairedConfig, PairedTrainer

    overrides = {"progress": False, **overrides}
    key = run_key(overrides)
    if key in _PAIRED_CACHE:
        return _PAIRED_CACHE[key]
    start = time.perf_counter()
    with one_thread():
        trainer = PairedTrainer(PairedConfig(**overrides), log=lambda s: None)
        history = trainer.fit()
        x, y = trainer.embed(trainer.test_pairs, predictors=0)
        predictions = trainer.generate([p.text for p in trainer.test_pairs])
    correct = [pred == p.code for pred, p in zip(predictions, trainer.test_pairs)]
    result = {
        "config": dict(overrides),
        "history": history,
        "exact_match": sum(correct) / len(correct),
        "spectrum": svd_spectrum(x, y),
        "residual": linear_map_residual(x, y),
        "views": pca_2d(x, y),
        "collapse": {"Text": collapse_metrics(x), "Code": collapse_metrics(y)},
        "seconds": time.perf_counter() - start,
        "examples": [(p.text, p.code, pred) for p, pred in zip(trainer.test_pairs[:6], predictions[:6])],
    }
    _PAIRED_CACHE[key] = result
    return result


def is_paired_cached(**overrides) -> bool:
    """Has `paired_run(**overrides)` already been trained in this session?"""
    return run_key({"progress": False, **overrides}) in _PAIRED_CACHE


def seed_summary(results: Sequence[dict]) -> Dict[str, float]:
    """Mean and standard deviation over runs (seeds) of exact match, residual and spectrum sum."""
    import statistics

    def stats(values):
        values = list(values)
        return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    out = {"runs": len(results)}
    for name, values in (("exact_match", [r["exact_match"] for r in results]),
                         ("relative_residual", [r["residual"]["relative"] for r in results]),
                         ("spectrum_sum", [float(r["spectrum"].sum()) for r in results]),
                         ("final_lm_loss", [r["history"]["lm_loss"][-1] for r in results]),
                         ("final_jepa_monitor", [r["history"]["jepa_monitor"][-1] for r in results])):
        out[name], out[name + "_std"] = stats(values)
    return out

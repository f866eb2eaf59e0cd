"""The numbers behind the notebooks' figures: pure functions, no plotting, no widgets.

Each function takes plain settings (mask_ratio, mean_span_len, seed, m, ...) and returns plain data
(dicts of lists and tensors) computed with the library's own code, so a figure always shows what the
training core really does. `viz.py` draws these dicts; `widgets.py` wires them to sliders.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from typing import Dict, List, Optional, Sequence

import torch

from ..data import builtin_corpus, collate, pad_ids
from ..ema import SCHEDULES, ema_update, half_life, momentum_schedule
from ..losses import get_loss
from ..masking import check_masking_args, mask_spans, sample_span_length, sample_span_mask, special_tokens_mask

DEFAULT_SENTENCE = "The old dog sleeps by the front door every afternoon, waiting for the children to come home."


# ---------------------------------------------------------------------------------------------
# Tokenizers and the corpus as maskable flags
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def load_tokenizer(name: str = "minilm"):
    """An offline tokenizer: "minilm" (the BERT WordPiece vocabulary of the offline MiniLM package)
    or "tiny" (the WordPiece tokenizer `load_backbone("tiny")` trains on the built-in corpus)."""
    if name == "tiny":
        from ..encoders import build_local_tokenizer

        return build_local_tokenizer(builtin_corpus())
    if name == "minilm":
        from transformers import AutoTokenizer

        from ..encoders import minilm_path

        return AutoTokenizer.from_pretrained(str(minilm_path()))
    raise ValueError(f"unknown tokenizer '{name}'; use 'minilm' or 'tiny'")


def maskable_flags(tokenizer, ids: Sequence[int]) -> List[bool]:
    """One flag per id: True for a real token that may be masked, False for [CLS]/[SEP]/[PAD]/..."""
    special = set(tokenizer.all_special_ids)
    return [i not in special for i in ids]


@lru_cache(maxsize=8)
def corpus_maskable(tokenizer_name: str = "minilm", n_rows: int = 480, max_length: int = 64):
    """(B, L) bool maskable flags of the first n_rows lines of the built-in corpus (padded)."""
    tok = load_tokenizer(tokenizer_name)
    texts = builtin_corpus()
    ids = tok([texts[i % len(texts)] for i in range(n_rows)], truncation=True, max_length=max_length)["input_ids"]
    input_ids, attention_mask = pad_ids(ids, tok.pad_token_id)
    return attention_mask.bool() & ~special_tokens_mask(input_ids, tok.all_special_ids)  # (B, L)


# ---------------------------------------------------------------------------------------------
# 01 — span masking
# ---------------------------------------------------------------------------------------------
def mask_sentence(tokenizer, sentence: str, mask_ratio: float, mean_span_len: float, seed: int = 0) -> Dict:
    """Mask one sentence with the readable `sample_span_mask`.

    Returns tokens, a status per token ("special" / "masked" / "visible"), the mask, and counts.
    """
    ids = tokenizer(sentence)["input_ids"]
    maskable = maskable_flags(tokenizer, ids)
    mask = sample_span_mask(maskable, mask_ratio, mean_span_len, torch.Generator().manual_seed(seed)).tolist()
    status = ["special" if not ok else ("masked" if m else "visible") for ok, m in zip(maskable, mask)]
    return {
        "tokens": tokenizer.convert_ids_to_tokens(ids),
        "status": status,
        "mask": mask,
        "n_masked": sum(mask),
        "n_maskable": sum(maskable),
        "mask_ratio": mask_ratio,
        "mean_span_len": mean_span_len,
        "seed": seed,
    }


def geometric_pmf(mean_span_len: float, max_len: int) -> List[float]:
    """P(ℓ) = q (1 − q)^(ℓ−1), q = 1 / mean_span_len, for ℓ = 1 … max_len."""
    p = 1.0 / mean_span_len
    return [p * (1.0 - p) ** (k - 1) for k in range(1, max_len + 1)]


def draw_span_lengths(mean_span_len: float, n: int = 2000, seed: int = 0) -> List[int]:
    """n span lengths from the library's sampler `sample_span_length`."""
    g = torch.Generator().manual_seed(seed)
    return [sample_span_length(mean_span_len, g) for _ in range(n)]


def run_lengths(mask: torch.Tensor) -> Counter:
    """Counter of the lengths of contiguous True runs in every row of a (B, L) bool mask."""
    counts: Counter = Counter()
    for row in mask.tolist():
        run = 0
        for x in row + [False]:
            if x:
                run += 1
            elif run:
                counts[run] += 1
                run = 0
    return counts


def span_length_stats(
    mean_span_len: float, mask_ratio: float = 0.3, seed: int = 0, n_draws: int = 2000, n_rows: int = 240
) -> Dict:
    """Drawn span lengths, the law they follow, and the runs that end up masked in corpus rows.

    Masked runs are not the drawn spans: a span is cut at a special token, at the end of the row or
    when the budget is spent, and two spans can touch and merge.
    """
    drawn = Counter(draw_span_lengths(mean_span_len, n_draws, seed))
    maskable = corpus_maskable("minilm", n_rows)
    masked = mask_spans(maskable, mask_ratio, mean_span_len, torch.Generator().manual_seed(seed))
    observed = run_lengths(masked)
    max_len = max(12, int(3 * mean_span_len))
    return {
        "lengths": list(range(1, max_len + 1)),
        "drawn": [drawn[k] / n_draws for k in range(1, max_len + 1)],
        "observed": [observed[k] / max(1, sum(observed.values())) for k in range(1, max_len + 1)],
        "pmf": geometric_pmf(mean_span_len, max_len),
        "mean_drawn": sum(k * c for k, c in drawn.items()) / n_draws,
        "mean_span_len": mean_span_len,
    }


def overshooting_span_mask(
    maskable: Sequence[bool], mask_ratio: float, mean_span_len: float, generator=None
) -> torch.Tensor:
    """The *biased* scheme, for comparison only: add whole spans until at least round(r·n) tokens
    are masked. The last span is never clipped, so the row overshoots its target."""
    check_masking_args(mask_ratio, mean_span_len)
    maskable = [bool(x) for x in maskable]
    mask = [False] * len(maskable)
    target = max(1, round(mask_ratio * sum(maskable)))
    while sum(mask) < target:
        span_len = sample_span_length(mean_span_len, generator)
        free = [i for i, ok in enumerate(maskable) if ok and not mask[i]]
        i = free[torch.randint(len(free), (), generator=generator).item()]
        while span_len > 0 and i < len(maskable) and maskable[i]:  # whole span, no budget check
            mask[i] = True
            i, span_len = i + 1, span_len - 1
    return torch.tensor(mask, dtype=torch.bool)


def masked_fraction(mask: torch.Tensor, maskable: torch.Tensor) -> float:
    """Mean over rows of (masked tokens / maskable tokens)."""
    return float((mask.sum(1).float() / maskable.sum(1).clamp(min=1).float()).mean())


def compare_maskers(mask_ratio: float, mean_span_len: float, seed: int = 0, n_rows: int = 480) -> Dict[str, Dict]:
    """Masked fraction and masked-run lengths of three maskers on the same corpus rows:
    the readable loop, the vectorised batch version, and the overshooting scheme."""
    maskable = corpus_maskable("minilm", n_rows)
    g = torch.Generator().manual_seed(seed)
    masks = {
        "sample_span_mask (readable)": torch.stack(
            [sample_span_mask(r.tolist(), mask_ratio, mean_span_len, g) for r in maskable]
        ),
        "mask_spans (vectorised)": mask_spans(maskable, mask_ratio, mean_span_len, torch.Generator().manual_seed(seed)),
        "overshooting (article)": torch.stack(
            [overshooting_span_mask(r.tolist(), mask_ratio, mean_span_len, g) for r in maskable]
        ),
    }
    out = {}
    for name, mask in masks.items():
        runs = run_lengths(mask)
        out[name] = {
            "masked_fraction": masked_fraction(mask, maskable),
            "mean_run": sum(k * c for k, c in runs.items()) / max(1, sum(runs.values())),
            "runs": runs,
            "specials_masked": int((mask & ~maskable).sum()),
        }
    return out


def neighbour_visibility(
    mean_span_lens: Sequence[float], mask_ratio: float = 0.3, seed: int = 0, n_rows: int = 480
) -> Dict[str, List[float]]:
    """How easy is a masked token to guess from its immediate neighbours?

    For each mean_span_len: the fraction of masked tokens with a *visible* token right next to
    them, and the mean distance from a masked token to the nearest visible token.
    """
    maskable = corpus_maskable("minilm", n_rows)
    frac_adjacent, mean_dist = [], []
    for s in mean_span_lens:
        mask = mask_spans(maskable, mask_ratio, s, torch.Generator().manual_seed(seed))
        visible = maskable & ~mask  # (B, L)
        adjacent, dists = 0, []
        for vis_row, mask_row in zip(visible.tolist(), mask.tolist()):
            vis_pos = [i for i, v in enumerate(vis_row) if v]
            for i, m in enumerate(mask_row):
                if not m:
                    continue
                d = min((abs(i - j) for j in vis_pos), default=len(vis_row))
                dists.append(d)
                adjacent += d == 1
        frac_adjacent.append(adjacent / max(1, len(dists)))
        mean_dist.append(sum(dists) / max(1, len(dists)))
    return {"mean_span_len": list(mean_span_lens), "frac_adjacent": frac_adjacent, "mean_distance": mean_dist}


# ---------------------------------------------------------------------------------------------
# 02 — two views
# ---------------------------------------------------------------------------------------------
def two_views(
    tokenizer, sentences: Sequence[str], mask_ratio: float, mean_span_len: float, seed: int = 0, max_length: int = 64
) -> Dict:
    """Collate `sentences` into one Batch exactly as the trainer does (`data.collate`) and return
    the batch with each row's tokens in both views."""
    ids = tokenizer(list(sentences), truncation=True, max_length=max_length)["input_ids"]
    batch = collate(ids, tokenizer, mask_ratio, mean_span_len, torch.Generator().manual_seed(seed))
    return {
        "batch": batch,
        "target_tokens": [tokenizer.convert_ids_to_tokens(r) for r in batch.input_ids.tolist()],
        "context_tokens": [tokenizer.convert_ids_to_tokens(r) for r in batch.masked_input_ids.tolist()],
        "n_loss_positions": int(batch.pred_mask.sum()),
        "mask_ratio": mask_ratio,
        "mean_span_len": mean_span_len,
        "seed": seed,
    }


# ---------------------------------------------------------------------------------------------
# 03 — the EMA target
# ---------------------------------------------------------------------------------------------
def online_path(kind: str, steps: int, seed: int = 0) -> List[float]:
    """A made-up trajectory of one online (context-encoder) parameter over `steps` optimizer steps.

    "jump": 0 until step 50, then 1 (shows the half-life); "sine": slow oscillation;
    "random walk": noisy drift, like a parameter under SGD.
    """
    if kind == "jump":
        return [0.0 if t < 50 else 1.0 for t in range(steps)]
    if kind == "sine":
        return [math.sin(2 * math.pi * t / 150) for t in range(steps)]
    if kind == "random walk":
        g = torch.Generator().manual_seed(seed)
        return torch.cumsum(0.1 * torch.randn(steps, generator=g), 0).tolist()
    raise ValueError(f"unknown path '{kind}'; use jump, sine or random walk")


def ema_chase(m: float, kind: str = "jump", steps: int = 400, seed: int = 0) -> Dict:
    """The target parameter following the online one with the library's `ema_update`:
    θ_tgt ← m·θ_tgt + (1 − m)·θ_online, one call per step."""
    online = online_path(kind, steps, seed)
    theta_online, theta_tgt = torch.zeros(1), torch.tensor([online[0]])
    target = []
    for value in online:
        theta_online.fill_(value)  # the optimizer moved the online weight here
        ema_update([theta_tgt], [theta_online], m)  # the target takes a small step toward it
        target.append(float(theta_tgt))
    return {
        "t": list(range(steps)),
        "online": online,
        "target": target,
        "m": m,
        "half_life": half_life(m),
        "kind": kind,
        "jump_at": 50,
    }


def schedule_curves(m_start: float = 0.996, m_end: float = 1.0, steps: int = 1000) -> Dict[str, List[float]]:
    """m(t) of every schedule in `ema.SCHEDULES` over `steps` steps."""
    return {kind: [momentum_schedule(kind, m_start, m_end, steps)(t) for t in range(steps)] for kind in SCHEDULES}


# ---------------------------------------------------------------------------------------------
# 04 — the loss
# ---------------------------------------------------------------------------------------------
def vector_losses(angle_deg: float, pred_len: float, target_len: float = 1.0) -> Dict:
    """A 2-D prediction p at `angle_deg` from a target t on the x-axis, and the library's losses."""
    a = math.radians(angle_deg)
    pred = torch.tensor([[pred_len * math.cos(a), pred_len * math.sin(a)]])  # (1, 2)
    target = torch.tensor([[target_len, 0.0]])  # (1, 2)
    losses = {name: float(get_loss(name)(pred, target)) for name in ("cosine", "l2", "mse")}
    return {"pred": pred[0].tolist(), "target": target[0].tolist(), "angle_deg": angle_deg, **losses}


def scale_toy(loss: str, steps: int = 300, lr: float = 0.05, dim: int = 16, seed: int = 0) -> Dict[str, List[float]]:
    """A linear encoder z = W x trained to predict its own embedding of a second, noisy view
    (target = W x₂ with no gradient, i.e. EMA momentum 0). Returns the loss and the mean ‖z‖ per step.

    With L2 or MSE, shrinking W lowers the loss (W = 0 is a perfect, useless solution); the cosine
    distance does not depend on the scale, so ‖z‖ cannot run away to 0.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, dim, generator=g)  # (N, dim) data
    W = (torch.randn(dim, dim, generator=g) / math.sqrt(dim)).requires_grad_(True)
    loss_fn = get_loss(loss)
    opt = torch.optim.SGD([W], lr=lr)
    hist = {"loss": [], "norm": []}
    for _ in range(steps):
        x1 = x + 0.5 * torch.randn(x.shape, generator=g)  # two noisy views of the same points
        x2 = x + 0.5 * torch.randn(x.shape, generator=g)
        pred = x1 @ W.T  # (N, dim)
        with torch.no_grad():
            target = x2 @ W.T  # the "target encoder" = the same weights, no gradient
        value = loss_fn(pred, target)
        opt.zero_grad()
        value.backward()
        opt.step()
        hist["loss"].append(float(value.detach()))
        hist["norm"].append(float(pred.detach().norm(dim=-1).mean()))
    return hist


def predictor_ablation(seeds: Sequence[int] = (0, 1, 2), steps: int = 200, ema_m: float = 0.9) -> Dict[str, List[Dict]]:
    """The cosine run with and without a predictor (notebook 04 § 5), one row per seed: the loss at step 1,
    the lowest std over the run (the depth of the early dip), and the last logged std, mean cosine and rank."""
    from .runs import final_metrics, run_history

    table = {}
    for label, predictor in (("with predictor", True), ("no predictor", False)):
        table[label] = []
        for seed in seeds:
            h = run_history(loss="cosine", ema_m=ema_m, steps=steps, seed=seed, predictor=predictor)
            last = final_metrics(h)
            table[label].append(
                {
                    "seed": seed,
                    "first_loss": h["step_loss"][0],
                    "min_std": min(h["std"]),
                    "std": last["std"],
                    "mean_cos": last["mean_cos"],
                    "rank": last["rank"],
                }
            )
    return table


def paired_rows(trainer, index: int = 0, predictors: Optional[int] = None) -> Dict[str, str]:
    """The three rows that training pair `index` becomes (notebook 06), each token shown in ⟨ ⟩.

    In the LM row, tokens scored by the LM loss are marked with a trailing *. Built with the paired
    objective's own row functions (`paired.lm_row`, `paired.text_view`, `paired.code_view`).
    """
    from ..paired import IGNORE, code_view, lm_row, text_view

    k = trainer.config.predictors if predictors is None else predictors
    text, code, ids = trainer.train_text[index], trainer.train_code[index], trainer.ids

    def show(tokens, scored=None):
        pieces = [trainer.tokenizer.decode([t]) for t in tokens]
        marks = ["*" if s else "" for s in scored] if scored else [""] * len(tokens)
        return " ".join(f"⟨{p}⟩{m}" for p, m in zip(pieces, marks))

    tokens, labels = lm_row(text, code, ids)
    return {
        "LM row": show(tokens, [lab != IGNORE for lab in labels]),
        "Text view": show(text_view(text, k, ids)),
        "Code view": show(code_view(code, ids)),
    }

"""Notebook 07's helpers: one pair's hidden-state trajectory in 2-D, the span panel, the STP checks.

The formula and the loss live in `jepa_lite.paired.stp`; this file only draws them and checks the
student's version against them.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch

from ..paired import stp
from ..paired.rows import lm_row, pad_rows, position_ids, run_model


@torch.no_grad()
def trajectory(trainer, pair: int = 0) -> Dict:
    """The last-layer states of training pair `pair`'s LM row `[BOS] Text [SEP] Code [EOS]`, in eval mode.

    Returns tokens (L strings), h (L, D) float64, n_text, n_code and the 2-D PCA coordinates xy (L, 2)
    of the states (principal axes of this row's own states), with the share of variance they keep."""
    text, code = trainer.train_text[pair], trainer.train_code[pair]
    row, _ = lm_row(text, code, trainer.ids)
    ids, mask = pad_rows([row], trainer.ids["pad"])
    trainer.model.eval()
    _, h = run_model(
        trainer.model, ids.to(trainer.device), mask.to(trainer.device), position_ids(mask).to(trainer.device)
    )
    h = h[0].double().cpu()  # (L, D)
    centred = h - h.mean(dim=0)
    _, sv, vt = torch.linalg.svd(centred, full_matrices=False)
    tokens = [trainer.tokenizer.decode([t]) or "·" for t in row]
    tokens[0], tokens[len(text) + 1], tokens[-1] = "[BOS]", "[SEP]", "[EOS]"
    return {
        "tokens": tokens,
        "h": h,
        "n_text": len(text),
        "n_code": len(code),
        "axes": vt[:2],
        "mean": h.mean(dim=0),
        "xy": centred @ vt[:2].T,
        "variance_kept": float((sv[:2] ** 2).sum() / (sv**2).sum()),
    }


def pieces(traj: Dict, s: int, t: int) -> Dict[str, List[tuple]]:
    """The row positions (a, b) of each straight arrow: the span's runs (one, or two when it jumps over
    [SEP]) and the rest's runs (before, after). An arrow goes from the state at a − 1 to the state at b."""
    pos = stp.content_positions(traj["n_text"], traj["n_code"])
    out: Dict[str, List[tuple]] = {"patch": [], "rest": []}
    for name, offsets in (("patch", range(s, t)), ("rest", [o for o in range(len(pos)) if not s <= o < t])):
        run: List[int] = []
        for o in offsets:
            if run and pos[o] != pos[run[-1]] + 1:  # a gap ([SEP], or the span itself) ends a run
                out[name].append((pos[run[0]], pos[run[-1]]))
                run = []
            run.append(o)
        if run:
            out[name].append((pos[run[0]], pos[run[-1]]))
    return out


def tube_cosine(traj: Dict, s: int, t: int) -> float:
    """cos(before + after, patch) of span [s, t) in the full hidden space (not the 2-D picture)."""
    return float(stp.tube_cosine_one(traj["h"], traj["n_text"], traj["n_code"], s, t))


def tube_figure(traj: Dict, s: int, t: int):
    """Left: the trajectory in 2-D with the span's arrows (red) and the rest's (blue). Right: the two sums,
    patch and before + after, from one origin (projected on the same axes), and their cosine in full D."""
    import matplotlib.pyplot as plt

    xy, h, axes = traj["xy"].numpy(), traj["h"], traj["axes"]
    fig, (ax, sums) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [2, 1]})
    ax.plot(xy[:, 0], xy[:, 1], "-", color="0.8", zorder=1)
    ax.scatter(xy[:, 0], xy[:, 1], s=12, color="0.4", zorder=2)
    for k, tok in enumerate(traj["tokens"]):
        ax.annotate(tok, xy[k], fontsize=7, xytext=(2, 2), textcoords="offset points")
    part = pieces(traj, s, t)
    for name, colour in (("rest", "tab:blue"), ("patch", "tab:red")):
        for a, b in part[name]:
            ax.annotate("", xy[b], xy[a - 1], arrowprops=dict(arrowstyle="-|>", color=colour, lw=2), zorder=3)
    ax.set_title(f"the row's trajectory (PCA, {100 * traj['variance_kept']:.0f}% of its variance); span [{s}, {t})")
    ax.set_xticks([]), ax.set_yticks([])
    total = {n: sum((h[b] - h[a - 1] for a, b in part[n]), torch.zeros_like(h[0])) for n in ("patch", "rest")}
    for name, colour in (("rest", "tab:blue"), ("patch", "tab:red")):
        v = (total[name] @ axes.T).numpy()
        sums.annotate("", v, (0, 0), arrowprops=dict(arrowstyle="-|>", color=colour, lw=2))
        sums.plot([0, v[0]], [0, v[1]], alpha=0)  # so the axes take the arrow in
    sums.set_title(
        f"patch (red), before + after (blue)\ncos in the full {h.shape[1]}-D space = {tube_cosine(traj, s, t):+.3f}"
    )
    sums.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return fig


def tube_explorer(traj: Dict):
    """A span slider (start, end over the content tokens) → the trajectory's arrows and the cosine."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from .widgets import _panel

    n = traj["n_text"] + traj["n_code"]

    def render(span) -> Dict:
        s, t = span
        if not 0 < t - s < n:
            print(f"a span holds 1 to {n - 1} of the {n} content tokens (never none, never all); got [{s}, {t})")
            return {"s": s, "t": t, "cos": None}
        tube_figure(traj, s, t)
        plt.show()
        cos = tube_cosine(traj, s, t)
        print(f"span [{s}, {t}): cos(before + after, patch) = {cos:+.4f}, STP term 1 − cos = {1 - cos:.4f}")
        return {"s": s, "t": t, "cos": cos}

    slider = widgets.IntRangeSlider(
        value=(2, min(6, n - 1)), min=0, max=n, step=1, description="span [s, t)", continuous_update=False
    )
    return _panel(render, {"span": slider})


def mean_tube_cosine(trainer, pairs: Sequence[int], seed: int = 0) -> float:
    """Mean cos(before + after, patch) over training pairs `pairs`, one span each drawn as step 0 of
    `seed` would draw it: how straight the model's trajectories are, by STP's own measure (eval mode)."""
    cos = []
    for i in pairs:
        traj = trajectory(trainer, i)
        span = stp.draw_span(traj["n_text"] + traj["n_code"], seed, 0, i)
        if span is not None:
            cos.append(tube_cosine(traj, *span))
    return sum(cos) / len(cos)


def check_tube_loss(fn) -> bool:
    """Exercise: does `fn(h, n_text, n_code, s, t)` return 1 − cos(before + after, patch) for one row?"""
    g = torch.Generator().manual_seed(7)
    for n_text, n_code, s, t in [(5, 4, 1, 3), (5, 4, 6, 8), (5, 4, 3, 7), (3, 6, 0, 8), (4, 2, 1, 6)]:
        h = torch.randn(n_text + n_code + 3, 8, generator=g, dtype=torch.float64)
        got = fn(h, n_text, n_code, s, t)
        if got is None or got is Ellipsis:
            print("not answered yet: write tube_loss_one_row(h, n_text, n_code, s, t) above")
            return False
        want = 1.0 - float(stp.tube_cosine_one(h, n_text, n_code, s, t))
        if abs(float(got) - want) > 1e-6:
            where = "inside Text" if t <= n_text else "inside Code" if s >= n_text else "across [SEP]"
            print(
                f"n_text = {n_text}, n_code = {n_code}, span [{s}, {t}) ({where}): got {float(got):.6f}, "
                f"expected {want:.6f}. "
                "Hints: Text starts after [BOS] (row position 1), Code after [SEP] (position n_text "
                "+ 2); the step into "
                "[SEP] belongs to neither; patch sums the steps Δ_p = h[p] − h[p−1] of the span, "
                "before + after all the others."
            )
            return False
    print(
        "correct: your loss matches jepa_lite.paired.stp (1 − tube_cosine_one) on five rows, "
        "a span across [SEP] included"
    )
    return True

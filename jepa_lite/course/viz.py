"""Matplotlib figures for the notebooks: pure functions from data (see `explore.py`) to a Figure.

No function here computes anything the library does not, and none calls `plt.show()`: the caller
(a notebook cell or a widget's `render`) does, so that `interact` replaces a figure instead of
stacking copies.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

COLORS = {
    "masked": "#e4572e",
    "visible": "#cfe8fc",
    "special": "#d0d0d0",
    "pad": "#f4f4f4",
    "online": "#1f77b4",
    "target": "#e4572e",
}
METRIC_LABELS = {
    "std": "per-dim std (1 = spread, 0 = collapsed)",
    "mean_cos": "mean pairwise cosine",
    "rank": "effective rank",
    "loss": "loss",
    "norm": "mean ‖z‖",
}


STATUS_LABELS = {
    "masked": "masked (hidden; loss here)",
    "visible": "visible",
    "special": "special (never masked)",
    "pad": "padding",
}
SCHEME_COLORS = {
    "sample_span_mask (readable)": "#9ecae1",
    "mask_spans (vectorised)": "#3182bd",
    "overshooting (article)": COLORS["masked"],
}


def status_legend(ax, status: Sequence[str], **kw) -> None:
    """A legend of the token colours that occur in `status`."""
    from matplotlib.patches import Patch

    shown = [st for st in ("masked", "visible", "special", "pad") if st in set(status)]
    ax.legend(
        [Patch(color=COLORS[st]) for st in shown], [STATUS_LABELS[st] for st in shown], frameon=False, fontsize=8, **kw
    )


def draw_tokens(
    ax, tokens: Sequence[str], status: Sequence[str], max_chars: int = 70, title: str = "", legend: bool = False
) -> None:
    """Tokens as coloured boxes, wrapped into lines: status "masked" / "visible" / "special" / "pad".
    `legend` adds a key of the colours below the tokens."""
    ax.set_axis_off()
    x, line = 0, 0
    for tok, st in zip(tokens, status):
        width = len(tok) + 1
        if x + width > max_chars and x > 0:
            x, line = 0, line + 1
        ax.text(
            x / max_chars,
            1 - 0.28 * (line + 0.5),
            tok,
            family="monospace",
            fontsize=10,
            va="center",
            ha="left",
            transform=ax.transAxes,
            bbox=dict(boxstyle="round,pad=0.25", fc=COLORS[st], ec="none"),
        )
        x += width + 1
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    if legend:
        status_legend(ax, status, loc="upper left", bbox_to_anchor=(0, 1 - 0.28 * (line + 1)), ncol=3)


def span_lengths(ax, stats: Dict) -> None:
    """Bars: drawn span lengths; dots: the law q(1 − q)^(ℓ−1); line: runs that ended up masked."""
    ls = stats["lengths"]
    ax.bar(ls, stats["drawn"], color="#9ecae1", label="drawn by sample_span_length")
    ax.plot(ls, stats["pmf"], "o", color="black", ms=4, label=f"law q(1−q)^(ℓ−1), q = 1/{stats['mean_span_len']:g}")
    ax.step(ls, stats["observed"], where="mid", color=COLORS["masked"], label="masked runs in corpus rows")
    ax.set_xlabel("span length ℓ (tokens)")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8, frameon=False)


def masking_figure(sentence: Dict, stats: Dict) -> Figure:
    """The masked sentence on top, the span-length histogram below."""
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(9, 5.2), gridspec_kw={"height_ratios": [1, 2]})
    title = (
        f"mask_ratio={sentence['mask_ratio']:.2f}, mean_span_len={sentence['mean_span_len']:g}, "
        f"seed={sentence['seed']}: "
        f"{sentence['n_masked']} of {sentence['n_maskable']} maskable tokens masked (red); specials grey"
    )
    draw_tokens(ax0, sentence["tokens"], sentence["status"], title=title)
    span_lengths(ax1, stats)
    fig.tight_layout()
    return fig


def fraction_bars(comparison: Dict[str, Dict], mask_ratio: float) -> Figure:
    """Masked fraction of each masker against the requested mask_ratio."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    names = list(comparison)
    values = [comparison[n]["masked_fraction"] for n in names]
    ax.barh(names, values, color=[SCHEME_COLORS.get(n, "#6baed6") for n in names])
    ax.axvline(mask_ratio, color="black", ls="--", label=f"requested {mask_ratio:.2f}")
    for i, v in enumerate(values):
        ax.text(v + 0.005, i, f"{v:.3f}", va="center")
    ax.set_xlabel("masked fraction (mean over corpus rows)")
    ax.set_xlim(0, max(values + [mask_ratio]) * 1.2)
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def run_length_comparison(comparison: Dict[str, Dict], max_len: int = 12) -> Figure:
    """Distribution of masked-run lengths for each masker, side by side."""
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / len(comparison)
    for i, (name, c) in enumerate(comparison.items()):
        total = max(1, sum(c["runs"].values()))
        ax.bar(
            [k + (i - (len(comparison) - 1) / 2) * width for k in range(1, max_len + 1)],
            [c["runs"][k] / total for k in range(1, max_len + 1)],
            width=width,
            label=name,
            color=SCHEME_COLORS.get(name),
        )
    ax.set_xlabel("length of a masked run (tokens)")
    ax.set_ylabel("fraction of runs")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def neighbour_figure(data: Dict) -> Figure:
    """Why spans: how often a masked token has a visible neighbour, against mean_span_len."""
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3))
    ax0.plot(data["mean_span_len"], data["frac_adjacent"], "o-")
    ax0.set_xlabel("mean_span_len")
    ax0.set_ylabel("masked tokens next to a visible one")
    ax0.set_ylim(0, 1)
    ax1.plot(data["mean_span_len"], data["mean_distance"], "o-", color=COLORS["masked"])
    ax1.set_xlabel("mean_span_len")
    ax1.set_ylabel("mean distance to nearest visible token")
    fig.tight_layout()
    return fig


def draw_two_views(ax, views: Dict, row: int = 0) -> None:
    """One batch row as a table: target view, context view, attention_mask and pred_mask per position."""
    b = views["batch"]
    L = b.input_ids.shape[1]
    heights = (1.7, 1.7, 0.8, 0.8)  # the token rows are tall enough for a rotated 10-letter word
    tops = [sum(heights[:i]) for i in range(4)]
    centres = [t + h / 2 for t, h in zip(tops, heights)]
    ax.set_xlim(-0.5, L - 0.5)
    ax.set_ylim(0, sum(heights))
    ax.invert_yaxis()
    labels = [
        "target view\n(input_ids)",
        "context view\n(masked_input_ids)",
        "attention_mask",
        "pred_mask\n(loss here)",
    ]
    for j in range(L):
        real, loss = bool(b.attention_mask[row, j]), bool(b.pred_mask[row, j])
        base = COLORS["visible"] if real else COLORS["pad"]
        cells = [
            (views["target_tokens"][row][j], base),
            (views["context_tokens"][row][j], COLORS["masked"] if loss else base),
            (str(int(b.attention_mask[row, j])), base),
            ("x" if loss else "", COLORS["masked"] if loss else "white"),
        ]
        for i, (text, color) in enumerate(cells):
            ax.add_patch(plt.Rectangle((j - 0.48, tops[i] + 0.05), 0.96, heights[i] - 0.1, color=color))
            ax.text(
                j, centres[i], text, ha="center", va="center", fontsize=7, rotation=90 if i < 2 and len(text) > 3 else 0
            )
    ax.set_yticks(centres, labels, fontsize=8)
    ax.set_xticks(range(L), [str(j) for j in range(L)], fontsize=7)
    n_pad = int((b.attention_mask[row] == 0).sum())
    ax.set_title(
        f"row {row}: {int(b.pred_mask[row].sum())} loss positions (red), {n_pad} padding positions (pale)",
        fontsize=9,
        loc="left",
    )
    for s in ax.spines.values():
        s.set_visible(False)


def two_views_figure(views: Dict, rows: Sequence[int] = (0, 1)) -> Figure:
    """The rows of a collated batch, both views of each (see `draw_two_views`)."""
    L = views["batch"].input_ids.shape[1]
    fig, axes = plt.subplots(len(rows), 1, figsize=(max(8, 0.5 * L), 3.3 * len(rows)), squeeze=False)
    for ax, row in zip(axes[:, 0], rows):
        draw_two_views(ax, views, row)
    axes[-1, 0].set_xlabel("position")
    fig.suptitle(
        f"mask_ratio={views['mask_ratio']:.2f}, mean_span_len={views['mean_span_len']:g}, seed={views['seed']}: "
        f"the loss is computed at {views['n_loss_positions']} positions of the batch",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def ema_chase_figure(data: Dict) -> Figure:
    """The online parameter and the EMA target chasing it, with the half-life marked."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(data["t"], data["online"], color=COLORS["online"], label="online θ_ctx (trained)")
    ax.plot(data["t"], data["target"], color=COLORS["target"], lw=2, label="target θ_tgt (EMA)")
    h = data["half_life"]
    if data["kind"] == "jump" and h < len(data["t"]) - data["jump_at"]:
        ax.axvline(data["jump_at"] + h, color="gray", ls="--")
        ax.annotate(
            f"half-life {h:.1f} steps",
            (data["jump_at"] + h, 0.5),
            xytext=(8, -4),
            textcoords="offset points",
            fontsize=9,
        )
        ax.axhline(0.5, color="gray", lw=0.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("parameter value")
    ax.set_title(
        f"m = {data['m']:.3f}: θ_tgt ← m·θ_tgt + (1 − m)·θ_ctx  (half-life ln 0.5 / ln m = {h:.1f} steps)",
        fontsize=10,
        loc="left",
    )
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def schedules_figure(curves: Dict[str, List[float]]) -> Figure:
    """m(t) for each momentum schedule."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for kind, values in curves.items():
        ax.plot(values, label=kind)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("EMA momentum m")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)))
MARKERS = ("o", "s", "^", "v", "D")


def metric_curves(
    histories: Dict[str, Dict[str, List[float]]],
    metrics: Sequence[str] = ("loss", "std", "mean_cos", "rank"),
    highlight: Optional[str] = None,
    title: str = "",
) -> Figure:
    """Training curves of several runs (label → history), one panel per metric.

    Each run has its own line style and marker, so runs whose curves coincide (m = 0 and m = 0.5
    both collapse) stay visible; the ‖z‖ panel ("norm") starts at 0, so a flat line looks flat.
    `title` says what the runs share (e.g. their EMA momentum)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.1))
    for ax, metric in zip(axes, metrics):
        for i, (label, h) in enumerate(histories.items()):
            faint = highlight is not None and label != highlight
            ax.plot(
                h["step"],
                h[metric],
                label=label,
                alpha=0.35 if faint else 1.0,
                lw=1.2 if faint else 2,
                ls=LINESTYLES[i % len(LINESTYLES)],
                marker=MARKERS[i % len(MARKERS)],
                ms=3,
                markevery=max(1, len(h["step"]) // 10),
            )
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.set_xlabel("step")
        if metric == "norm":
            ax.set_ylim(0, 1.1 * max(max(h[metric]) for h in histories.values()))
    axes[0].legend(fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def vector_toy_figure(data: Dict) -> Figure:
    """A 2-D prediction and target as arrows, with the three losses."""
    fig, (ax, axb) = plt.subplots(1, 2, figsize=(8, 3.4), gridspec_kw={"width_ratios": [1, 1.2]})
    for vec, name in ((data["target"], "target"), (data["pred"], "online")):
        ax.annotate("", xy=vec, xytext=(0, 0), arrowprops=dict(arrowstyle="->", lw=2.5, color=COLORS[name]))
    ax.text(*data["target"], " target t", color=COLORS["target"])
    ax.text(*data["pred"], " prediction p", color=COLORS["online"])
    ax.set_xlim(-2.2, 2.2)
    ax.set_ylim(-0.3, 2.2)
    ax.set_aspect("equal")
    ax.set_title(f"angle {data['angle_deg']:.0f}°", fontsize=10)
    names = ["cosine", "l2", "mse"]
    axb.bar(names, [data[n] for n in names], color=["#6baed6", "#fd8d3c", "#fdae6b"])
    for i, n in enumerate(names):
        axb.text(i, data[n], f"{data[n]:.3f}", ha="center", va="bottom")
    axb.set_ylim(0, max(2.2, max(data[n] for n in names) * 1.15))
    axb.set_title("loss(p, t)", fontsize=10)
    fig.tight_layout()
    return fig


def scale_toy_figure(results: Dict[str, Dict[str, List[float]]]) -> Figure:
    """Mean embedding length ‖z‖ over training of the linear toy, for each loss."""
    fig, ax = plt.subplots(figsize=(7, 3))
    for name, h in results.items():
        ax.plot(h["norm"], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("mean ‖z‖ of the embeddings")
    ax.set_yscale("log")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# 05 — training: schedule, live curves, resume, similarity heatmaps, linear probe
# ---------------------------------------------------------------------------------------------
def lr_schedule_figure(factors: Sequence[float], warmup_steps: int, lr: float = 1.0) -> Figure:
    """The learning rate lr · lr_factor(s) over optimizer steps s, with the end of warm-up marked."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.plot([lr * f for f in factors], color=COLORS["online"])
    ax.axvline(warmup_steps, color="gray", ls="--")
    ax.annotate(
        f"end of warm-up (step {warmup_steps})",
        (warmup_steps, lr * 0.5),
        xytext=(6, 0),
        textcoords="offset points",
        fontsize=9,
    )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate" if lr != 1.0 else "lr / peak lr")
    fig.tight_layout()
    return fig


TRAINING_PANELS = ("loss", "lr", "std", "mean_cos", "rank")


def training_curves(
    history: Dict[str, List[float]],
    metrics: Sequence[str] = TRAINING_PANELS,
    total_steps: Optional[int] = None,
    title: str = "",
) -> Figure:
    """One run's history (`Trainer.history`), one panel per logged metric; the loss panel also shows
    every optimizer step's loss, faint. `total_steps` fixes the x axis, so a live plot does not rescale."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 2.8), squeeze=False)
    steps = history.get("step", [])
    for ax, metric in zip(axes[0], metrics):
        if metric == "loss" and history.get("step_loss"):
            ax.plot(
                range(1, len(history["step_loss"]) + 1),
                history["step_loss"],
                color="#9ecae1",
                lw=0.8,
                label="each step",
            )
        ax.plot(
            steps,
            history.get(metric, []),
            "o-",
            ms=3,
            color=COLORS["online"] if metric != "loss" else COLORS["target"],
            label="logged",
        )
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.set_xlabel("step")
        if total_steps:
            ax.set_xlim(0, total_steps)
        if metric == "loss":
            ax.legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def resume_figure(straight: Sequence[float], resumed: Sequence[float], resume_at: int) -> Figure:
    """Per-step loss of an uninterrupted run and of a run stopped at `resume_at` and resumed."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.plot(range(1, len(straight) + 1), straight, color="#9ecae1", lw=4, label="uninterrupted run")
    ax.plot(range(1, len(resumed) + 1), resumed, color=COLORS["target"], lw=1, label="stopped, saved, resumed")
    ax.axvline(resume_at, color="gray", ls="--")
    ax.annotate(
        f"checkpoint at step {resume_at}",
        (resume_at, max(straight)),
        xytext=(6, -10),
        textcoords="offset points",
        fontsize=9,
    )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def draw_similarity(ax, sim, groups: Sequence[str], title: str = "") -> None:
    """A cosine-similarity matrix as a heatmap, with the group (topic) of each row marked on the axes.

    The diagonal (every sentence with itself, cosine 1) is left blank, and the colour scale spans the
    5th to 95th percentile of the other values of this matrix: encoders differ a lot in their typical
    cosine, so a shared scale, or one stretched to 1 by the diagonal, would hide every pattern.
    """
    import torch

    eye = torch.eye(len(groups), dtype=torch.bool)
    off = sim[~eye].float()
    lo, hi = (float(q) for q in torch.quantile(off, torch.tensor([0.05, 0.95])))
    shown = sim.float().masked_fill(eye, float("nan"))  # NaN: drawn blank
    im = ax.imshow(shown, cmap="viridis", vmin=lo, vmax=hi)
    starts = [i for i in range(len(groups)) if i == 0 or groups[i] != groups[i - 1]]
    for s in starts[1:]:
        ax.axhline(s - 0.5, color="white", lw=0.6)
        ax.axvline(s - 0.5, color="white", lw=0.6)
    ends = starts[1:] + [len(groups)]
    ax.set_yticks([(a + b - 1) / 2 for a, b in zip(starts, ends)], [groups[s] for s in starts], fontsize=7)
    ax.set_xticks([])
    ax.set_title(title, fontsize=9)
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="cosine")


def similarity_grid(
    sims: Dict[str, "object"], groups: Sequence[str], contrasts: Optional[Dict[str, float]] = None, ncols: int = 2
) -> Figure:
    """Several similarity matrices (name → (N, N)) side by side, each titled with its block contrast."""
    n = len(sims)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.9 * nrows), squeeze=False)
    for ax, (name, sim) in zip(axes.flat, sims.items()):
        extra = f"\nwithin − between topic = {contrasts[name]:+.3f}" if contrasts and name in contrasts else ""
        draw_similarity(ax, sim, groups, title=name + extra)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def probe_bars(
    accuracies: Dict[str, float], chance: float, title: str = "linear probe: topic accuracy on held-out sentences"
) -> Figure:
    """Horizontal bars of test accuracy per encoder, with the chance level marked."""
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(accuracies) + 1.2))
    names = list(accuracies)
    values = [accuracies[n] for n in names]
    ax.barh(names, values, color="#6baed6")
    ax.axvline(chance, color="black", ls="--", label=f"chance {chance:.3f}")
    for i, v in enumerate(values):
        ax.text(min(v + 0.01, 0.93), i, f"{v:.3f}", va="center")
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# 06 — the paper's objective
# ---------------------------------------------------------------------------------------------
def paired_curves(results: Dict[str, Dict]) -> Figure:
    """LM loss and JEPA loss on test pairs during training, one line per run (label → result)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.2))
    for label, r in results.items():
        h = r["history"]
        axes[0].plot(h["step"], h["lm_loss"], label=label, lw=2)
        axes[1].plot(h["step"], h["jepa_monitor"], label=label, lw=2)
    axes[0].set_title("LM loss (next Code token), training batch", fontsize=9)
    axes[1].set_title("JEPA loss 1 − cos(Pred(Enc(Text)), Enc(Code)), test pairs", fontsize=9)
    axes[1].set_ylim(bottom=0)
    for ax in axes:
        ax.set_xlabel("step")
    axes[0].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def spectrum_figure(results: Dict[str, Dict]) -> Figure:
    """Singular values of Enc(Text) − Enc(Code) on the test split, log scale, one line per run."""
    fig, ax = plt.subplots(figsize=(5.5, 3.3))
    for label, r in results.items():
        s = r["spectrum"]
        ax.semilogy(range(1, len(s) + 1), s.clamp(min=1e-8).tolist(), label=label, lw=2)
    ax.set_xlabel("index of the singular value")
    ax.set_ylabel("singular value")
    ax.set_title("SVD of Enc(Text) − Enc(Code): smaller = the views agree, or collapsed to one point", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def views_pca_figure(results: Dict[str, Dict], n_pairs: int = 40) -> Figure:
    """Joint 2-D PCA of Enc(Text) (circles) and Enc(Code) (crosses), a grey line joining each pair.

    The panels share their axes, with tick values: a run whose points sit in a small patch is close to
    collapse, whatever its panel would look like zoomed in."""
    fig, axes = plt.subplots(
        1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False, sharex=True, sharey=True
    )
    for ax, (label, r) in zip(axes[0], results.items()):
        x, y = (v[:n_pairs] for v in r["views"])
        for a, b in zip(x.tolist(), y.tolist()):
            ax.plot([a[0], b[0]], [a[1], b[1]], color="#bbbbbb", lw=0.8, zorder=1)
        ax.scatter(x[:, 0], x[:, 1], s=18, color=COLORS["online"], label="Enc(Text)", zorder=2)
        ax.scatter(y[:, 0], y[:, 1], s=22, marker="x", color=COLORS["target"], label="Enc(Code)", zorder=3)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("principal component 1 (both views together)", fontsize=8)
        ax.set_ylabel("principal component 2", fontsize=8)
    axes[0][0].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def seed_bars(
    summaries: Dict[str, Dict], metric: str = "exact_match", title: str = "exact match on the test split"
) -> Figure:
    """Bars of a metric's mean over seeds, with ± one standard deviation, one bar per setting."""
    fig, ax = plt.subplots(figsize=(5.5, 0.5 * len(summaries) + 1.3))
    names = list(summaries)
    means = [summaries[n][metric] for n in names]
    stds = [summaries[n][metric + "_std"] for n in names]
    ax.barh(names, means, xerr=stds, color="#6baed6", capsize=4)
    for i, (m, s) in enumerate(zip(means, stds)):
        ax.text(m + s + 0.01, i, f"{m:.3f} ± {s:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.15 if metric == "exact_match" else max(m + s for m, s in zip(means, stds)) * 1.4)
    ax.invert_yaxis()
    ax.set_title(f"{title} (mean ± std over {summaries[names[0]]['runs']} seeds)", fontsize=9, loc="left")
    fig.tight_layout()
    return fig

"""Notebook 06's view of the NL-RX-SYNTH study: the headline figure, the learning-rate lesson, data size.

Everything here reads `jepa_lite/resources/study_nlrx.json` (written by `python -m jepa_lite.paired.nlrx_study`)
through `jepa_lite.paired.nlrx_study`; nothing trains, so every figure and sentence comes from that file,
in fast mode too. The paper's numbers come from `study_view.PAPER` (cited there).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..paired import nlrx_study as ns
from ..paired.stats import mean_ci, mean_sd
from .study_view import COLOR, PAPER, START_LABEL

ZERO_AT = 0.003  # where λ = 0 sits on the log axis of the headline figure (labelled "0")


def describe(study: dict) -> List[str]:
    """What the file holds: the grid, the protocol's choices, the time it took, what is missing."""
    c, missing = ns.config_of(study), ns.missing(study)
    lines = [
        f"{len(study['runs'])} runs; {study['seconds'] / 60:.0f} min of work in {len(study['sittings'])} sittings "
        f"on {', '.join(sorted({s['device'] for s in study['sittings']}))}",
        f"data: NL-RX-SYNTH, {8000 - c.n_val} training pairs, {c.n_val} validation (carved out), "
        f"{'2000' if not c.n_test else c.n_test} test; {c.epochs:g} epochs, batch {c.batch_size}, fp32",
        f"stage 1, learning rate: every (start, λ) at lr ∈ {list(c.lrs)}, seeds {list(c.sweep_seeds)}",
        f"stage 2, λ: each (start, λ) at its best rate on validation, seeds {list(c.seeds)}",
        f"stage 3, data size: {list(c.sizes)} pairs at λ = 0 and the best λ, seeds {list(c.seeds)}",
        f"complete: {study['complete']}" + (f" ({len(missing)} runs missing)" if missing else ""),
    ]
    return lines


# ---------------------------------------------------------------------------------------------
# The headline: test exact match against λ, each λ at its own best learning rate
# ---------------------------------------------------------------------------------------------
def lambda_rows(study: dict, metric: str = "test") -> List[dict]:
    """One row per (start, λ) at its best rate: mean, 95 % half-width, and the comparison with λ = 0."""
    rows = []
    for start in ns.STARTS:
        for lbd in ns.config_of(study).lbds:
            runs = ns.tuned_runs(study, start, lbd)
            if len(runs) < 2:
                continue
            row = {
                "start": start,
                "lbd": lbd,
                "lr": study["best_lr"][start][ns.lam(lbd)],
                **mean_ci([r["exact_match"][metric] for r in runs]),
            }
            row["comparison"] = ns.comparison(study, start, lbd, metric) if lbd > 0 else None
            rows.append(row)
    return rows


def lambda_figure(study: dict) -> Figure:
    """Left: the kit's test exact match (%) against λ (log axis; λ = 0 at the left, labelled 0), one
    line per start, 95 % intervals over seeds. Right: the paper's Table 10 (k = 0) and Table 12."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    rows = lambda_rows(study)
    for start in ns.STARTS:
        mine = [r for r in rows if r["start"] == start]
        if not mine:
            continue
        xs = [r["lbd"] or ZERO_AT for r in mine]
        ax.errorbar(
            xs,
            [100 * r["mean"] for r in mine],
            yerr=[100 * r["half"] for r in mine],
            marker="o",
            capsize=3,
            color=COLOR[start],
            label=f"{START_LABEL[start]} ({mine[0]['n']} seeds)",
        )
    ax.set_xscale("log")
    ticks = [ZERO_AT] + [lbd for lbd in ns.config_of(study).lbds if lbd > 0]
    ax.set_xticks(ticks, ["0"] + [f"{t:g}" for t in ticks[1:]], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("λ (each at its own best learning rate)")
    ax.set_ylabel("test exact match (%)")
    ax.set_title("this kit on NL-RX-SYNTH: mean and 95 % interval over seeds", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    t10 = PAPER["table10"]["lbd"]
    bx.plot(
        [ZERO_AT] + [lbd for lbd in t10 if lbd > 0],
        [t10[0.0]] + [t10[lbd] for lbd in t10 if lbd > 0],
        marker="o",
        color="k",
        label="Table 10 (k = 0)",
    )
    m, sd = PAPER["table12"]["llm_jepa"]
    bx.errorbar([1.0], [m], yerr=[sd], marker="s", color="#7570b3", capsize=3, label="Table 12 (λ = 1, k = 1), ± sd")
    bx.set_xscale("log")
    bx.set_xticks([ZERO_AT, 0.01, 0.1, 1.0], ["0", "0.01", "0.1", "1"], fontsize=8)
    bx.minorticks_off()
    bx.set_xlabel("λ")
    bx.set_title("the paper: Llama-3.2-1B, pretrained, NL-RX-SYNTH", fontsize=9)
    bx.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def fmt_comparison(c: dict) -> str:
    """'Δ +0.012 [−0.010, +0.034], 7 of 10 seeds up: can't tell'."""
    return (
        f"Δ {c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], {c['up']} of {len(c['seeds'])} seeds up: "
        f"{c['verdict']}"
    )


def lambda_lines(study: dict) -> List[str]:
    """The table behind the headline figure, one line per (start, λ)."""
    out = []
    for r in lambda_rows(study):
        tail = fmt_comparison(r["comparison"]) if r["comparison"] else "(baseline)"
        out.append(
            f"{START_LABEL[r['start']]:20s} λ = {r['lbd']:<5g} lr {r['lr']:<6g} "
            f"{r['mean']:.3f} ± {r['half']:.3f}   {tail}"
        )
    return out


def verdict_lines(study: dict) -> List[str]:
    """Per start: which λ help, hurt, or can't be told from λ = 0, and the best λ chosen on validation."""
    out = [
        f"'no gain of the paper's size' = the 95 % interval holds 0 and lies below +{ns.MARGIN:.3f}, "
        f"the smallest gain the paper reports (λ = 0.01, Table 10)"
    ]
    for start in ns.STARTS:
        by = {}
        for r in lambda_rows(study):
            if r["start"] == start and r["comparison"]:
                by.setdefault(r["comparison"]["verdict"], []).append(f"{r['lbd']:g}")
        parts = [f"{v}: λ ∈ {{{', '.join(ls)}}}" for v, ls in sorted(by.items())]
        best = (study.get("best_lambda") or {}).get(start)
        out.append(
            f"{START_LABEL[start]}: "
            + "; ".join(parts)
            + (f"; best λ on validation {best:g}" if best is not None else "")
        )
    return out


# ---------------------------------------------------------------------------------------------
# The learning-rate lesson
# ---------------------------------------------------------------------------------------------
def lr_figure(study: dict, lbds: Sequence[float] = (0.0, 0.1, 1.0, 4.0), metric: str = "test") -> Figure:
    """Per start a panel: exact match against the learning rate (log axis), one line per λ, mean over the
    sweep's seeds; a ring marks the rate chosen on validation."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, start in zip(axes, ns.STARTS):
        for i, lbd in enumerate(lbds):
            curve = ns.lr_curve(study, start, lbd, metric)
            if not curve["lr"]:
                continue
            color = cmap(i / max(1, len(lbds) - 1))
            ax.plot(curve["lr"], [100 * m for m in curve["mean"]], marker="o", color=color, label=f"λ = {lbd:g}")
            best = study["best_lr"][start][ns.lam(lbd)] if study.get("best_lr") else None
            if best in curve["lr"]:
                j = curve["lr"].index(best)
                ax.plot([best], [100 * curve["mean"][j]], "o", ms=12, mfc="none", color=color)
        ax.set_xscale("log", base=2)
        lrs = list(ns.config_of(study).lrs)
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("peak learning rate")
        ax.set_title(START_LABEL[start], fontsize=9)
    axes[0].set_ylabel(f"{metric} exact match (%)")
    axes[0].legend(fontsize=8, frameon=False)
    fig.suptitle(
        f"mean over the sweep's {len(ns.config_of(study).sweep_seeds)} seeds; rings: the rate chosen on validation",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def fixed_rate_rows(study: dict, start: str, metric: str = "test") -> List[dict]:
    """What a study at ONE learning rate would have said: at each rate of the sweep, the mean
    difference λ − (λ = 0) over the sweep's seeds, for every λ > 0."""
    c = ns.config_of(study)
    rows = []
    for lr in c.lrs:
        base = {
            r["seed"]: r["exact_match"][metric]
            for r in study["runs"]
            if r["stage"] == "lr" and r["start"] == start and r["lbd"] == 0 and r["lr"] == lr
        }
        for lbd in (x for x in c.lbds if x > 0):
            mine = {
                r["seed"]: r["exact_match"][metric]
                for r in study["runs"]
                if r["stage"] == "lr" and r["start"] == start and r["lbd"] == lbd and r["lr"] == lr
            }
            seeds = sorted(set(base) & set(mine))
            if seeds:
                rows.append(
                    {
                        "lr": lr,
                        "lbd": lbd,
                        "diff": sum(mine[s] - base[s] for s in seeds) / len(seeds),
                        "seeds": len(seeds),
                    }
                )
    return rows


def lr_lines(study: dict, lbd: float = 1.0) -> List[str]:
    """For one λ: its difference from λ = 0 if both had used the same rate, rate by rate, then at tuned rates."""
    out = []
    for start in ns.STARTS:
        rows = [r for r in fixed_rate_rows(study, start) if r["lbd"] == lbd]
        same = ", ".join(f"lr {r['lr']:g}: {r['diff']:+.3f}" for r in rows)
        out.append(
            f"{START_LABEL[start]}, λ = {lbd:g} − λ = 0 at one shared rate ({rows[0]['seeds'] if rows else 0} "
            f"seeds): {same}"
        )
        if ns.tuned_runs(study, start, lbd) and ns.tuned_runs(study, start, 0.0):
            c = ns.comparison(study, start, lbd)
            out.append(
                f"   each at its own best rate (λ = 0: {c['baseline_lr']:g}, λ = {lbd:g}: {c['lr']:g}): "
                f"{fmt_comparison(c)}"
            )
    return out


# ---------------------------------------------------------------------------------------------
# Training-set size
# ---------------------------------------------------------------------------------------------
def size_rows(study: dict, metric: str = "test") -> List[dict]:
    """Per start, for λ = 0 and its best λ, per training-set size (the full set from stage 2)."""
    c = ns.config_of(study)
    rows = []
    for start in ns.STARTS:
        best = (study.get("best_lambda") or {}).get(start)
        if best is None:
            continue
        for n in (*c.sizes, 0):
            runs = {lbd: ns.tuned_runs(study, start, lbd, n) for lbd in (0.0, best)}
            if min(len(v) for v in runs.values()) < 2:
                continue
            row = {
                "start": start,
                "n_train": runs[0.0][0]["n_train"],
                "best_lbd": best,
                "lm_only": mean_ci([r["exact_match"][metric] for r in runs[0.0]]),
                "jepa": mean_ci([r["exact_match"][metric] for r in runs[best]]),
                "comparison": ns.comparison(study, start, best, metric, n_train=n),
            }
            rows.append(row)
    return rows


def size_figure(study: dict) -> Figure:
    """Test exact match against training-set size (log axis), λ = 0 solid and the best λ dashed, per start."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for start in ns.STARTS:
        rows = sorted((r for r in size_rows(study) if r["start"] == start), key=lambda r: r["n_train"])
        if not rows:
            continue
        ns_ = [r["n_train"] for r in rows]
        ax.errorbar(
            ns_,
            [100 * r["lm_only"]["mean"] for r in rows],
            yerr=[100 * r["lm_only"]["half"] for r in rows],
            marker="o",
            capsize=3,
            color=COLOR[start],
            label=f"{START_LABEL[start]}, λ = 0",
        )
        ax.errorbar(
            ns_,
            [100 * r["jepa"]["mean"] for r in rows],
            yerr=[100 * r["jepa"]["half"] for r in rows],
            marker="s",
            capsize=3,
            ls="--",
            color=COLOR[start],
            label=f"{START_LABEL[start]}, λ = {rows[0]['best_lbd']:g}",
        )
        ax.set_xticks(ns_, [str(n) for n in ns_])
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xlabel(f"training pairs ({ns.config_of(study).epochs:g} epochs each)")
    ax.set_ylabel("test exact match (%)")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def size_lines(study: dict) -> List[str]:
    """One line per (start, size): λ = 0, the best λ, and their paired comparison."""
    return [
        f"{START_LABEL[r['start']]:20s} {r['n_train']:5d} pairs: λ = 0 {r['lm_only']['mean']:.3f}, "
        f"λ = {r['best_lbd']:g} {r['jepa']['mean']:.3f}   {fmt_comparison(r['comparison'])}"
        for r in size_rows(study)
    ]


# ---------------------------------------------------------------------------------------------
# Why the kit's own pairs behave differently: the two corpora measured side by side
# ---------------------------------------------------------------------------------------------
def corpus_measures(train, test) -> Dict[str, float]:
    """Plain counts of a paired corpus: size, distinct texts and codes, words, how many test regexes
    occur in training."""
    words = [p.text.split() for p in train]
    codes = {p.code for p in train}
    return {
        "train_pairs": len(train),
        "distinct_codes": len(codes),
        "texts_per_code": len({p.text for p in train}) / len(codes),
        "vocabulary": len({w for ws in words for w in ws}),
        "words_per_text": sum(map(len, words)) / len(words),
        "code_chars": sum(len(p.code) for p in train) / len(train),
        "test_codes_in_train": sum(p.code in codes for p in test) / len(test),
    }


def start_loss(pairs, model_dir, lm_tokens: str = "code", n: int = 300) -> float:
    """The pretrained start's mean next-token loss (nats per scored token) on the first n pairs, before any
    fine-tuning: how familiar the corpus looks to it."""
    import tempfile

    import torch

    from ..paired import PairedConfig, PairedTrainer
    from ..paired.pairs import save_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/pairs.jsonl"
        save_jsonl(pairs[:n], path)
        trainer = PairedTrainer(
            PairedConfig(
                model=str(model_dir),
                data=path,
                test_data=path,
                steps=0,
                lm_tokens=lm_tokens,
                device="cpu",
                precision="fp32",
                progress=False,
            ),
            log=lambda s: None,
        )
        trainer.model.eval()
        with torch.no_grad():
            lm, _ = trainer.losses(list(range(len(trainer.train_pairs))), with_jepa=False)
    return float(lm)


def contrast_rows(generated: dict, nlrx_results: dict, model_dir) -> Dict[str, Dict[str, float]]:
    """The two corpora side by side: counts (`corpus_measures`), the pretrained start's loss on each
    (Code tokens, and the whole row), and each study's λ = 0 exact match (train and test) at the
    paper's budget, from the results files."""
    from ..paired import nlrx
    from ..paired import study as st
    from ..paired.pretrain import benchmark_splits

    b, s = benchmark_splits(), nlrx.splits()
    out = {
        "kit's generated pairs": corpus_measures(b["train"], b["test"]),
        "NL-RX-SYNTH": corpus_measures(s["train"], s["test"]),
    }
    for name, val in (("kit's generated pairs", b["val"]), ("NL-RX-SYNTH", s["val"])):
        out[name]["start_loss_code"] = start_loss(val, model_dir, "code")
        out[name]["start_loss_row"] = start_loss(val, model_dir, "all")
    for start in ns.STARTS:
        gen = st.select(generated, stage="lambda", start=start, lbd=0.0)
        out["kit's generated pairs"][f"{start}_train_em"] = mean_sd([r["exact_match"]["train"] for r in gen])["mean"]
        out["kit's generated pairs"][f"{start}_test_em"] = mean_sd([r["exact_match"]["test"] for r in gen])["mean"]
        tuned = ns.tuned_runs(nlrx_results, start, 0.0)
        out["NL-RX-SYNTH"][f"{start}_train_em"] = mean_sd([r["exact_match"]["train"] for r in tuned])["mean"]
        out["NL-RX-SYNTH"][f"{start}_test_em"] = mean_sd([r["exact_match"]["test"] for r in tuned])["mean"]
    return out


CONTRAST_LABELS = {
    "train_pairs": ("training pairs", "{:.0f}"),
    "distinct_codes": ("distinct regexes in training", "{:.0f}"),
    "texts_per_code": ("descriptions per regex", "{:.2f}"),
    "vocabulary": ("distinct words in descriptions", "{:.0f}"),
    "words_per_text": ("words per description", "{:.1f}"),
    "code_chars": ("characters per regex", "{:.1f}"),
    "test_codes_in_train": ("test regexes also in training", "{:.1%}"),
    "start_loss_code": ("pretrained start's loss on the regexes (nats/token)", "{:.2f}"),
    "start_loss_row": ("pretrained start's loss on the whole row", "{:.2f}"),
    "scratch_train_em": ("λ = 0 from scratch: train exact match", "{:.3f}"),
    "scratch_test_em": ("λ = 0 from scratch: test exact match", "{:.3f}"),
    "pretrained_train_em": ("λ = 0 pretrained: train exact match", "{:.3f}"),
    "pretrained_test_em": ("λ = 0 pretrained: test exact match", "{:.3f}"),
}


def contrast_lines(rows: Dict[str, Dict[str, float]]) -> List[str]:
    """`contrast_rows` as a two-column table."""
    names = list(rows)
    out = [f"{'':52s} {names[0]:>22s} {names[1]:>14s}"]
    for key, (label, fmt) in CONTRAST_LABELS.items():
        out.append(f"{label:52s} {fmt.format(rows[names[0]][key]):>22s} {fmt.format(rows[names[1]][key]):>14s}")
    return out


def overlap_lines(model_dir) -> List[str]:
    """How many NL-RX-SYNTH pairs share their Text or their Code with a document of the pretraining corpus
    of `model_dir` (rebuilt from its recipe), per split."""
    from ..paired import nlrx
    from ..paired.pretrain import PretrainConfig, load_recipe, pretraining_corpus

    docs = set(pretraining_corpus(PretrainConfig(**load_recipe(model_dir)["config"])))
    out = []
    for name, pairs in nlrx.splits().items():
        seen = sum(p.text in docs or p.code in docs for p in pairs)
        out.append(
            f"NL-RX-SYNTH {name:5s}: {seen} of {len(pairs)} pairs share a Text or a Code with the pretraining corpus"
        )
    return out


def generated_verdict_lines(generated: dict) -> List[str]:
    """The kit's-own-pairs study (one rate per start, five seeds) read with the same four words as above."""
    from ..paired import study as st

    out = []
    for start in ns.STARTS:
        by: Dict[str, List[str]] = {}
        for r in st.lambda_table(generated):
            if r["start"] == start and r["effect"]:
                by.setdefault(ns.verdict(r["effect"]), []).append(f"{r['lbd']:g}")
        lr = generated["config"]["lr"][start]
        out.append(
            f"{START_LABEL[start]} (lr {lr:g} for every λ, {len(generated['config']['seeds'])} seeds): "
            + "; ".join(f"{v}: λ ∈ {{{', '.join(ls)}}}" for v, ls in sorted(by.items()))
        )
    return out

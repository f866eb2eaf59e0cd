"""Notebook 06's view of the study file: the paper's numbers, tables, figures, the verdict, sliders.

Everything here reads `jepa_lite/resources/study.json` (written by `python -m jepa_lite.paired.study`) through
`jepa_lite.paired.study`; nothing trains, so every figure and every sentence the notebook prints comes from
the same file, in fast mode too. The paper's own figures sit in `PAPER`, cited.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..paired import study as st

# arXiv 2509.14252 (Huang, LeCun & Balestriero), NL-RX-SYNTH, exact match in %, Llama-3.2-1B
PAPER = {
    "table12": {
        "baseline": (57.29, 5.32),
        "llm_jepa": (71.46, 1.34),
        "setting": "fine-tuning pretrained Llama-3.2-1B, lr 2e-5, λ = 1, k = 1, 5 seeds, 4 epochs",
    },
    "table10": {"lbd": {0.0: 57.29, 0.01: 66.83, 0.1: 67.52, 1.0: 70.42}, "gamma0": 0.00, "setting": "k = 0"},
    "table2": {
        "baseline": (54.38, 1.70),
        "llm_jepa": (60.59, 1.01),
        "setting": "Llama-3.2-1B from random init, λ = 2, k = 3, a 'startswith' metric",
    },
}
START_LABEL = {"scratch": "from scratch", "pretrained": "pretrained (kit LM)"}
COLOR = {"scratch": "#d95f02", "pretrained": "#1b9e77"}


def fmt_effect(e: Dict) -> str:
    """'Δ +0.012 [−0.010, +0.034], p = 0.21' (95 % paired-t interval)."""
    return f"Δ {e['diff']:+.3f} [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}], p = {e['p']:.3g}"


def word(e: Dict) -> str:
    """'within noise', 'higher' or 'lower': does the 95 % interval of the paired difference hold 0?"""
    return "within noise" if e["within_noise"] else ("higher" if e["diff"] > 0 else "lower")


# ---------------------------------------------------------------------------------------------
# What was run
# ---------------------------------------------------------------------------------------------
def describe(study: dict) -> List[str]:
    """Lines that say what the file holds: the grid, the fixed settings, what is missing."""
    c, missing = study["config"], st.missing(study)
    lines = [
        f"{len(study['runs'])} runs, {study['seconds']:.0f} s on the machine that ran them; "
        f"{c['steps']} steps each, batch {c['batch_size']}, lr {c['lr']}",
        f"λ sweep at k = 0: λ ∈ {c['lbds']}, seeds {c['seeds']}, both starts",
        f"best λ > 0 on the validation split: {study['best_lambda']}",
        f"then at λ = 0 and the best λ, seeds {c['later_seeds']}: k ∈ {c['ks']} and lm_tokens = 'all' "
        f"({c['steps']} steps); sizes {c['sizes']} + the full {c['n_train']} trained {c['long_steps']} steps; "
        f"the full set trained {c['longest_steps']} steps",
        f"complete: {study['complete']}",
    ]
    for m in missing:
        lines.append(
            f"  not run: {m.stage} {m.start} λ={m.lbd:g} k={m.predictors} n={m.n_train or c['n_train']} "
            f"steps={m.steps or c['steps']} lm_tokens={m.lm_tokens} seed {m.seed}"
        )
    return lines


# ---------------------------------------------------------------------------------------------
# The headline: exact match against λ
# ---------------------------------------------------------------------------------------------
def lambda_figure(study: dict, metric: str = "exact_match.test") -> Figure:
    """Left: test exact match (%) against λ (log axis), one line per start, mean ± sd over seeds,
    λ = 0 as a band. Right: the paper's Table 10 (k = 0) and Table 12 (λ = 1, k = 1) numbers."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
    lbds = [lbd for lbd in study["config"]["lbds"] if lbd > 0]
    for start in st.STARTS:
        rows = {r["lbd"]: r for r in st.lambda_table(study, metric) if r["start"] == start}
        m = [100 * rows[lbd]["mean"] for lbd in lbds]
        sd = [100 * rows[lbd]["sd"] for lbd in lbds]
        ax.errorbar(lbds, m, yerr=sd, marker="o", capsize=3, color=COLOR[start], label=START_LABEL[start])
        b = rows[0.0]
        ax.axhspan(100 * (b["mean"] - b["sd"]), 100 * (b["mean"] + b["sd"]), color=COLOR[start], alpha=0.15)
        ax.axhline(100 * b["mean"], color=COLOR[start], ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("λ (dashed band: λ = 0, LM only)")
    ax.set_ylabel("test exact match (%)")
    ax.set_title(f"this kit: ~1 M-parameter Llama, mean ± sd over {len(study['config']['seeds'])} seeds", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    t10 = PAPER["table10"]["lbd"]
    bx.plot(
        [lbd for lbd in t10 if lbd > 0],
        [t10[lbd] for lbd in t10 if lbd > 0],
        marker="o",
        color="k",
        label="Table 10 (k = 0)",
    )
    bx.axhline(t10[0.0], color="k", ls="--", lw=1, label="λ = 0 (57.29)")
    m, sd = PAPER["table12"]["llm_jepa"]
    bx.errorbar([1.0], [m], yerr=[sd], marker="s", color="#7570b3", capsize=3, label="Table 12 (λ = 1, k = 1)")
    bx.set_xscale("log")
    bx.set_xlabel("λ")
    bx.set_title("the paper: Llama-3.2-1B, pretrained, NL-RX-SYNTH", fontsize=9)
    bx.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def lambda_lines(study: dict, metric: str = "exact_match.test") -> List[str]:
    """The table behind the figure, one line per (start, λ): mean ± sd and the paired effect."""
    out = []
    for r in st.lambda_table(study, metric):
        e = r["effect"]
        tail = f"{fmt_effect(e)}  {word(e)}" if e else "(baseline)"
        out.append(f"{START_LABEL[r['start']]:20s} λ = {r['lbd']:<5g} {r['mean']:.3f} ± {r['sd']:.3f}   {tail}")
    return out


def verdict(study: dict) -> List[str]:
    """Plain-word findings, each computed from the file (notebook 06 prints them)."""
    out = []
    for start in st.STARTS:
        rows = [r for r in st.lambda_table(study) if r["start"] == start and r["lbd"] > 0]
        base = next(r for r in st.lambda_table(study) if r["start"] == start and r["lbd"] == 0)
        up = [r["lbd"] for r in rows if not r["effect"]["within_noise"] and r["effect"]["diff"] > 0]
        down = [r["lbd"] for r in rows if not r["effect"]["within_noise"] and r["effect"]["diff"] < 0]
        same = [r["lbd"] for r in rows if r["effect"]["within_noise"]]
        best = study["best_lambda"][start]
        e = st.effect(study, stage="lambda", start=start, lbd=best)
        out.append(
            f"{START_LABEL[start]}: LM only reaches {base['mean']:.3f} ± {base['sd']:.3f}. "
            f"The JEPA term raises test exact match at λ ∈ {up or 'none'}, lowers it at λ ∈ {down or 'none'}, "
            f"and is within noise at λ ∈ {same or 'none'}. The λ picked on validation, {best:g}: "
            f"{fmt_effect(e)} ({word(e)})."
        )
    s0, p0 = (st.summary(study, stage="lambda", start=s, lbd=0.0) for s in st.STARTS)
    out.append(
        f"The kit's pretrained start fine-tunes to {p0['mean']:.3f} at λ = 0, against {s0['mean']:.3f} from scratch "
        f"(same shape, same tokenizer, {study['config']['steps']} steps each)."
    )
    return out


def paper_lines(study: dict) -> List[str]:
    """Our numbers next to the paper's, in the same units (%)."""
    t12, t10, t2 = PAPER["table12"], PAPER["table10"]["lbd"], PAPER["table2"]
    out = [
        f"paper, Table 12 ({t12['setting']}): {t12['baseline'][0]:.2f} ± {t12['baseline'][1]:.2f} → "
        f"{t12['llm_jepa'][0]:.2f} ± {t12['llm_jepa'][1]:.2f}",
        "paper, Table 10 (k = 0): " + ", ".join(f"λ = {lbd:g} → {v:.2f}" for lbd, v in t10.items()),
        f"paper, Table 2 ({t2['setting']}): {t2['baseline'][0]:.2f} ± {t2['baseline'][1]:.2f} → "
        f"{t2['llm_jepa'][0]:.2f} ± {t2['llm_jepa'][1]:.2f}",
    ]
    for start in st.STARTS:
        cells = [
            f"λ = {lbd:g} → {100 * st.summary(study, stage='lambda', start=start, lbd=lbd)['mean']:.2f}"
            for lbd in (0.0, 0.01, 0.1, 1.0)
            if lbd in study["config"]["lbds"]
        ]
        out.append(f"this kit, {START_LABEL[start]}: " + ", ".join(cells))
    return out


# ---------------------------------------------------------------------------------------------
# Stage 2: size, k, lm_tokens
# ---------------------------------------------------------------------------------------------
def _train_test_rows(study: dict, key: str, settings: Dict[float, Dict], extra=None) -> List[dict]:
    """Train and test exact match per (start, λ ∈ {0, best}, value of `key`); `settings[value](start,
    lbd)` gives the filter of that cell's runs. Cells without runs are left out."""
    rows = []
    for start in st.STARTS:
        for lbd in (0.0, study["best_lambda"][start]):
            for v, where_of in settings.items():
                where = where_of(start, lbd)
                runs = st.select(study, **where)
                if runs:
                    rows.append(
                        {
                            "start": start,
                            "lbd": lbd,
                            key: v,
                            "runs": len(runs),
                            **(extra(v) if extra else {}),
                            "train": st.summary(study, "exact_match.train", **where),
                            "test": st.summary(study, "exact_match.test", **where),
                        }
                    )
    return rows


def _train_test_figure(study: dict, rows: List[dict], key: str, xlabel: str, ticks=None) -> Figure:
    """Train (dotted) and test (solid) exact match against `key` (log axis), one panel per start,
    λ = 0 faint and the best λ strong."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, start in zip(axes, st.STARTS):
        for lbd, shade in zip((0.0, study["best_lambda"][start]), (0.45, 1.0)):
            mine = [r for r in rows if r["start"] == start and r["lbd"] == lbd]
            for split, ls in (("train", ":"), ("test", "-")):
                ax.errorbar(
                    [r[key] for r in mine],
                    [100 * r[split]["mean"] for r in mine],
                    yerr=[100 * r[split]["sd"] for r in mine],
                    ls=ls,
                    marker="o",
                    capsize=3,
                    color=COLOR[start],
                    alpha=shade,
                    label=f"λ = {lbd:g}, {split}",
                )
        ax.set_xscale("log")
        if ticks:
            ax.set_xticks(*ticks)
            ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_title(START_LABEL[start], fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    axes[0].set_ylabel("exact match (%)")
    fig.tight_layout()
    return fig


def size_rows(study: dict) -> List[dict]:
    """Train and test exact match per (start, λ ∈ {0, best}, size), every size trained `long_steps`."""
    c = study["config"]
    settings = {
        n: (lambda start, lbd, n=n: dict(stage="size", start=start, lbd=lbd, n_train=n))
        for n in (*c["sizes"], c["n_train"])
    }
    return _train_test_rows(study, "n_train", settings)


def size_figure(study: dict) -> Figure:
    """Train (dotted) and test (solid) exact match against training-set size, per start and λ."""
    sizes = sorted({r["n_train"] for r in size_rows(study)})
    return _train_test_figure(study, size_rows(study), "n_train", "training pairs", (sizes, [str(n) for n in sizes]))


def budget_where(study: dict, start: str, lbd: float, steps: int) -> Dict:
    """The filter of the full-set runs trained `steps` steps: the λ sweep, the size stage or stage 3."""
    c = study["config"]
    stage = {c["steps"]: "lambda", c["long_steps"]: "size", c["longest_steps"]: "long"}[steps]
    where = dict(stage=stage, start=start, lbd=lbd, n_train=c["n_train"])
    return where if stage == "lambda" else {**where, "steps": steps}


def budget_rows(study: dict) -> List[dict]:
    """Train and test exact match of the full set per (start, λ ∈ {0, best}, steps trained)."""
    c = study["config"]
    settings = {
        n: (lambda start, lbd, n=n: budget_where(study, start, lbd, n))
        for n in (c["steps"], c["long_steps"], c["longest_steps"])
    }
    return _train_test_rows(study, "steps", settings, extra=lambda n: {"epochs": n * c["batch_size"] / c["n_train"]})


def budget_figure(study: dict) -> Figure:
    """Train (dotted) and test (solid) exact match of the full set against steps trained, per start and λ."""
    rows = budget_rows(study)
    ticks = ([r["steps"] for r in rows[:3]], [f"{r['steps']}\n({r['epochs']:.0f} epochs)" for r in rows[:3]])
    return _train_test_figure(study, rows, "steps", "fine-tuning steps on the full training set", ticks)


def convergence_lines(study: dict) -> List[str]:
    """Trained longer: each start's full-set test exact match per budget, the pretrained start against
    scratch at each budget, and the best λ against λ = 0 at each size and budget (paired over seeds)."""
    c, out = study["config"], []
    budgets = (c["steps"], c["long_steps"], c["longest_steps"])
    for start in st.STARTS:
        cells = [f"{st.summary(study, **budget_where(study, start, 0.0, n))['mean']:.3f} at {n}" for n in budgets]
        out.append(f"{START_LABEL[start]:20s} λ = 0, full set, test exact match: " + " → ".join(cells) + " steps")
    for n in budgets:
        e = st.effect(
            study, baseline=budget_where(study, "scratch", 0.0, n), **budget_where(study, "pretrained", 0.0, n)
        )
        out.append(f"pretrained − scratch at λ = 0, {n} steps: {fmt_effect(e)}  {word(e)}")
    for start in st.STARTS:
        best = study["best_lambda"][start]
        cases = [
            (
                f"λ = {best:g} at {n} pairs, {c['long_steps']} steps",
                dict(stage="size", start=start, lbd=best, n_train=n, steps=c["long_steps"]),
            )
            for n in (*c["sizes"], c["n_train"])
        ]
        cases.append(
            (
                f"λ = {best:g}, full set, {c['longest_steps']} steps",
                budget_where(study, start, best, c["longest_steps"]),
            )
        )
        for label, where in cases:
            e = st.effect(study, **where)
            out.append(f"{START_LABEL[start]:20s} {label} (vs λ = 0): {fmt_effect(e)}  {word(e)}")
    return out


def weight_scale_lines(model_dir) -> List[str]:
    """RMS of a few weight matrices of the pretrained folder against the initialisation it started from."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..paired.pretrain import PretrainConfig, initial_model, load_recipe

    trained = dict(AutoModelForCausalLM.from_pretrained(model_dir).named_parameters())
    init = dict(
        initial_model(
            PretrainConfig(**load_recipe(model_dir)["config"]), AutoTokenizer.from_pretrained(model_dir)
        ).named_parameters()
    )
    out = []
    for name in (
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
    ):
        a, b = (float(t[name].detach().pow(2).mean().sqrt()) for t in (trained, init))
        out.append(f"{name:40s} RMS {b:.4f} at initialisation → {a:.4f} after pretraining ({a / b:.1f}×)")
    return out


def stage2_lines(study: dict) -> List[str]:
    """Paired effects of k and lm_tokens at the sweep's budget (each against its own λ = 0 baseline)."""
    c, out = study["config"], []
    for start in st.STARTS:
        best = study["best_lambda"][start]
        cases = [
            (f"k = {k} at λ = {best:g} (vs λ = 0, k = 0)", dict(stage="k", start=start, predictors=k)) for k in c["ks"]
        ]
        cases += [
            (f"λ = {best:g} with lm_tokens = 'all' (vs λ = 0, 'all')", dict(stage="lm_tokens", start=start, lbd=best))
        ]
        for label, where in cases:
            if len(st.select(study, **where)) < 2:
                out.append(f"{START_LABEL[start]:20s} {label}: not run (see the list above)")
                continue
            e = st.effect(study, **where)
            out.append(f"{START_LABEL[start]:20s} {label}: {fmt_effect(e)}  {word(e)}")
        runs = st.select(study, stage="lm_tokens", start=start, lbd=0.0)
        if len(runs) >= 2:
            e = st.effect(
                study, baseline=dict(stage="lambda", start=start, lbd=0.0), stage="lm_tokens", start=start, lbd=0.0
            )
            out.append(
                f"{START_LABEL[start]:20s} lm_tokens = 'all' instead of 'code', λ = 0: {fmt_effect(e)}  {word(e)}"
            )
    return out


# ---------------------------------------------------------------------------------------------
# Geometry and collapse
# ---------------------------------------------------------------------------------------------
GEOMETRY = (
    ("geometry.retrieval_at_1", "retrieval@1 (Text → Code)"),
    ("geometry.cos_gap", "cos(true) − cos(shuffled)"),
    ("geometry.cos_true", "cos of true pairs"),
    ("geometry.relative_residual_heldout", "held-out linear-map residual (relative)"),
)


def geometry_figure(study: dict) -> Figure:
    """Four geometry measures against λ (log axis; λ = 0 drawn at the left edge), per start."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    lbds = study["config"]["lbds"]
    x = [
        lbd if lbd > 0 else min(lbd for lbd in lbds if lbd > 0) / 3 for lbd in lbds
    ]  # λ = 0 placed left of the smallest λ
    for ax, (metric, title) in zip(axes, GEOMETRY):
        for start in st.STARTS:
            s = [st.summary(study, metric, stage="lambda", start=start, lbd=lbd) for lbd in lbds]
            ax.errorbar(
                x,
                [v["mean"] for v in s],
                yerr=[v["sd"] for v in s],
                marker="o",
                capsize=2,
                color=COLOR[start],
                label=START_LABEL[start],
            )
        if metric.endswith("retrieval_at_1"):
            ax.axhline(study["runs"][0]["geometry"]["chance"], color="grey", ls=":", label="chance")
        ax.set_xscale("log")
        ax.set_xlabel("λ (leftmost point: λ = 0)")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def as_viz_run(record: dict) -> dict:
    """A study record in the form viz.spectrum_figure / viz.views_pca_figure read."""
    import torch

    run = {"spectrum": torch.tensor(record["geometry"]["spectrum"])}
    if "pca" in record:
        run["views"] = (torch.tensor(record["pca"]["text"]), torch.tensor(record["pca"]["code"]))
    return run


def seed0(study: dict, **where) -> dict:
    """The first seed's run of a setting (the one that keeps a PCA picture and predictions)."""
    return st.select(study, **where)[0]


def failure_lines(study: dict) -> List[str]:
    """The collapse failure modes next to the healthy λ = 1 run of the same start and seed."""
    out = []
    for start in st.STARTS:
        for r in st.select(study, stage="failure", start=start):
            healthy = next(
                h for h in st.select(study, stage="lambda", start=start, lbd=r["lbd"]) if h["seed"] == r["seed"]
            )
            for label, run in (
                ("LM + JEPA (γ = 1, cosine)", healthy),
                ("JEPA alone (γ = 0)" if r["gamma"] == 0 else "LM + JEPA, L2 distance", r),
            ):
                g, c = run["geometry"], run["collapse"]["code"]
                out.append(
                    f"{START_LABEL[start]:20s} {label:26s} seed {run['seed']}: Code std {c['std']:.3f}, mean cos "
                    f"{c['mean_cos']:.3f}, retrieval@1 {g['retrieval_at_1']:.3f} (chance {g['chance']:.3f}), "
                    f"cos gap {g['cos_gap']:.3f}, exact match {run['exact_match']['test']:.3f}"
                )
    return list(dict.fromkeys(out))  # the healthy run appears once per start and seed


# ---------------------------------------------------------------------------------------------
# Sliders over the cached runs
# ---------------------------------------------------------------------------------------------
def runs_for(study: dict, start: str, lbd: float, predictors: int, n_train: int, steps: Optional[int] = None) -> Dict:
    """The runs of a slider setting, or the nearest one the study ran, with a note saying why.

    The grid is not a full product: the λ sweep ran every λ on the full set at `steps`; k ran at the
    best λ at `steps`; the sizes ran at λ = 0 and the best λ for `long_steps`; the full set also ran
    `longest_steps` at λ = 0 and the best λ. A setting outside it moves to the nearest one inside."""
    c, notes = study["config"], []
    steps = steps or c["steps"]
    best = study["best_lambda"][start]
    if (predictors or n_train != c["n_train"] or steps != c["steps"]) and lbd not in (0.0, best):
        notes.append(
            f"k, size and longer training were studied at λ = 0 and the best λ ({best:g}) only: showing λ = {best:g}"
        )
        lbd = best
    if predictors and lbd == 0.0:
        notes.append("at λ = 0 the [PRED] tokens are never trained, so k changes nothing: showing k = 0")
        predictors = 0
    if predictors and (n_train != c["n_train"] or steps != c["steps"]):
        notes.append(f"k was studied on the full training set at {c['steps']} steps only: showing that")
        n_train, steps = c["n_train"], c["steps"]
    if n_train != c["n_train"] and steps != c["long_steps"]:
        notes.append(
            f"the sizes were trained {c['long_steps']} steps (to convergence): showing {c['long_steps']} steps"
        )
        steps = c["long_steps"]
    if predictors:
        where = dict(stage="k", start=start, lbd=lbd, predictors=predictors)
    elif steps == c["steps"]:
        where = dict(stage="lambda", start=start, lbd=lbd)
    elif steps == c["long_steps"]:
        where = dict(stage="size", start=start, lbd=lbd, n_train=n_train, steps=steps)
    else:
        where = dict(stage="long", start=start, lbd=lbd, steps=steps)
    runs = st.select(study, **where)
    if not runs:
        notes.append("this setting is in the plan but was not run (see § 4): showing the λ sweep's run")
        where = dict(stage="lambda", start=start, lbd=lbd)
        runs = st.select(study, **where)
    return {"where": where, "runs": runs, "note": "; ".join(notes)}


def render_runs(
    study: dict, start: str, lbd: float, predictors: int, n_train: int, steps: Optional[int] = None
) -> Dict:
    """Draw one setting: LM-loss and JEPA-monitor curves per seed, and seed 0's spectrum vs λ = 0."""
    chosen = runs_for(study, start, lbd, predictors, n_train, steps)
    base_where = dict(chosen["where"], lbd=0.0)
    if base_where["stage"] == "k":  # k's baseline is the sweep's λ = 0 (k does nothing there)
        base_where = dict(stage="lambda", start=start, lbd=0.0)
    runs, base = chosen["runs"], st.select(study, **base_where)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for r in runs:
        h = r["history"]
        axes[0].plot(h["step"], h["lm_loss"], color=COLOR[start], alpha=0.6)
        axes[1].plot(h["step"], h["jepa_monitor"], color=COLOR[start], alpha=0.6)
    for r in base:
        axes[1].plot(r["history"]["step"], r["history"]["jepa_monitor"], color="grey", alpha=0.4, ls="--")
    axes[0].set_title("LM loss (each line a seed)", fontsize=9)
    axes[1].set_title("JEPA loss on test pairs (grey: λ = 0)", fontsize=9)
    axes[2].semilogy(runs[0]["geometry"]["spectrum"], color=COLOR[start], label="this run (first seed)")
    axes[2].semilogy(base[0]["geometry"]["spectrum"], color="grey", ls="--", label="λ = 0")
    axes[2].set_title("SVD spectrum of Enc(Text) − Enc(Code)", fontsize=9)
    axes[2].legend(fontsize=7, frameon=False)
    for ax in axes[:2]:
        ax.set_xlabel("step")
    em = st.mean_sd([r["exact_match"]["test"] for r in runs])
    r0 = runs[0]
    shown = f"λ = {r0['lbd']:g}, k = {r0['predictors']}, {r0['n_train']} pairs, {r0['steps']} steps"
    fig.suptitle(
        f"{START_LABEL[start]}, {shown}: test exact match {em['mean']:.3f} ± {em['sd']:.3f} "
        f"over {em['n']} seeds" + (f"\n{chosen['note']}" if chosen["note"] else ""),
        fontsize=9,
    )
    fig.tight_layout()
    plt.show()
    return {**chosen, "exact_match": em}


def study_explorer(study: dict):
    """Sliders for start, λ, k, training-set size and steps; each move draws the study's runs of that setting."""
    import ipywidgets as widgets

    from .widgets import _STYLE, _panel

    c = study["config"]
    controls = {
        "start": widgets.ToggleButtons(options=list(st.STARTS), value="pretrained", description="start", style=_STYLE),
        "lbd": widgets.SelectionSlider(
            options=list(c["lbds"]),
            value=study["best_lambda"]["pretrained"],
            description="λ",
            continuous_update=False,
            style=_STYLE,
        ),
        "predictors": widgets.SelectionSlider(
            options=[0, *c["ks"]], value=0, description="k", continuous_update=False, style=_STYLE
        ),
        "n_train": widgets.SelectionSlider(
            options=[*c["sizes"], c["n_train"]],
            value=c["n_train"],
            description="pairs",
            continuous_update=False,
            style=_STYLE,
        ),
        "steps": widgets.SelectionSlider(
            options=[c["steps"], c["long_steps"], c["longest_steps"]],
            value=c["steps"],
            description="steps",
            continuous_update=False,
            style=_STYLE,
        ),
    }
    return _panel(lambda **v: render_runs(study, **v), controls)


# ---------------------------------------------------------------------------------------------
# Small helpers for the notebook's live cells
# ---------------------------------------------------------------------------------------------
def rows_through_model(trainer, step: int = 0) -> int:
    """How many sequences go through the model to compute the loss of `step` (counted by a hook)."""
    import torch

    seen = []
    hook = trainer.model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            trainer.objective(step)
    finally:
        hook.remove()
    return sum(seen)


def continue_text(model_dir, prompts: Sequence[str], max_new_tokens: int = 24) -> List[str]:
    """Greedy continuations of `prompts` by a causal LM folder (each prompt after [BOS])."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out = []
    for p in prompts:
        ids = torch.tensor([[tok.bos_token_id, *tok(p, add_special_tokens=False)["input_ids"]]])
        with torch.no_grad():
            gen = model.generate(
                ids,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )
        out.append(p + tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True))
    return out

"""Notebook 07 § 7: the data-efficiency study read from its files, in figures and sentences.

Two results files of `python -m jepa_lite.paired.nlrx_study` on NL-RX-SYNTH: `--grid tube` (LM-only and
STP, each λ and rate chosen on validation) and `--grid tube_jepa` (LM-only and LLM-JEPA at the λ and rate
notebook 06's study chose). Both train the smaller sets as many steps as the full one. The numbers come from
`nlrx_study` (`size_curve`, `comparison`, `against_full_data`); this file only lays them out.
"""

from __future__ import annotations

from typing import Dict, List

from matplotlib.figure import Figure

from ..paired import nlrx_study as ns
from .study_view import COLOR, START_LABEL

FULL = 8000 - ns.nlrx.N_VAL  # the training pairs left after the validation split (7,000)
CLAIM = 16  # the STP paper: the baseline's accuracy with 16× less data (arXiv 2602.22617, Fig. 1b)
STYLE = {"LM only": ("o", "-"), "STP": ("s", "--"), "LLM-JEPA": ("^", ":")}


def full_pairs(study: dict) -> int:
    """The full training set's size in a results file (7,000; fewer in the fast grid)."""
    return ns.config_of(study).n_train or FULL


def load_both() -> Dict[str, dict]:
    """{"tube": study_tube.json, "tube_jepa": study_tube_jepa.json}, as shipped; "tube_jepa" only once that
    study is complete (until then every figure and line here shows LM-only and STP alone)."""
    files = {"tube": ns.load(ns.TUBE_RESULTS_FILE)}
    if ns.TUBE_JEPA_RESULTS_FILE.is_file() and ns.load(ns.TUBE_JEPA_RESULTS_FILE).get("complete"):
        files["tube_jepa"] = ns.load(ns.TUBE_JEPA_RESULTS_FILE)
    return files


OBJECTIVES = (("STP", "tube"), ("LLM-JEPA", "tube_jepa"))  # name, the file that holds it


def objectives(files: Dict[str, dict]):
    """(name, file key) of each objective `files` holds besides LM-only."""
    return [(name, key) for name, key in OBJECTIVES if key in files]


def curves(files: Dict[str, dict], start: str, metric: str = "test") -> Dict[str, dict]:
    """Per objective: its λ (chosen on validation), and test exact match against training-set size, one row per
    size with the mean and the half-width of its 95 % interval over seeds."""
    picks = {"LM only": (files["tube"], 0.0)}
    picks.update({name: (files[key], files[key]["best_lambda"][start]) for name, key in objectives(files)})
    return {
        name: {"lbd": lbd, "rows": ns.size_curve(study, start, lbd, metric)} for name, (study, lbd) in picks.items()
    }


def efficiency_figure(files: Dict[str, dict]) -> Figure:
    """Test exact match (%) against training pairs (log axis), one panel per start, one line per objective;
    the dashed line is LM-only on all 7,000 pairs, the dotted one 1/16 of them, where the STP paper says STP
    reaches that line."""
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, start in zip(axes, ns.STARTS):
        lines = curves(files, start)
        for name, line in lines.items():
            rows = line["rows"]
            marker, ls = STYLE[name]
            label = name if name == "LM only" else f"{name} λ = {line['lbd']:g}"
            ax.errorbar(
                [r["n_train"] for r in rows],
                [100 * r["mean"] for r in rows],
                yerr=[100 * r["half"] for r in rows],
                marker=marker,
                ls=ls,
                capsize=3,
                color=COLOR[start] if name != "LM only" else "k",
                label=f"{label} ({rows[0]['n']} seeds)",
            )
        full = 100 * lines["LM only"]["rows"][-1]["mean"]
        ax.axhline(full, color="grey", ls="--", lw=0.8)
        sixteenth = full_pairs(files["tube"]) / CLAIM
        ax.axvline(sixteenth, color="grey", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xticks([r["n_train"] for r in lines["LM only"]["rows"]])
        ax.set_xticklabels([f"{r['n_train']:,}" for r in lines["LM only"]["rows"]])
        ax.set_xlabel("training pairs (each run: the full set's number of steps)")
        ax.set_title(START_LABEL[start])
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("test exact match (%), mean ± 95 % interval")
    fig.suptitle(
        "dashed: LM only on the whole training set; dotted: 1/16 of it, where the STP paper has STP reach the dashed "
        "line",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def _fmt(c: dict) -> str:
    return f"Δ {c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]: {c['verdict']}"


def same_size_lines(files: Dict[str, dict]) -> List[str]:
    """Each objective against LM-only at the same size, paired by seed (its own file's LM-only runs)."""
    out = []
    for start in ns.STARTS:
        for name, key in objectives(files):
            study = files[key]
            lbd = study["best_lambda"][start]
            for n in (*sorted(ns.config_of(study).sizes), 0):
                c = ns.comparison(study, start, lbd, n_train=n)
                out.append(
                    f"{START_LABEL[start]:20s} {name:8s} λ = {lbd:<5g} − LM only, {n or full_pairs(study):5,d} pairs "
                    f"({len(c['seeds'])} seeds): {_fmt(c)}"
                )
    return out


def claim_lines(files: Dict[str, dict]) -> List[str]:
    """The paper's claim, tested: each objective on 1/16 (and 1/4) of the data against LM-only on all of it
    (unpaired: no shared training data)."""
    out = []
    for start in ns.STARTS:
        for name, key in (("LM only", "tube"), *objectives(files)):
            study = files[key]
            lbd = 0.0 if name == "LM only" else study["best_lambda"][start]
            for n in sorted(ns.config_of(study).sizes):
                c = ns.against_full_data(study, start, lbd, n)
                full = full_pairs(study)
                out.append(
                    f"{START_LABEL[start]:20s} {name:8s} on {n:5,d} pairs (1/{round(full / n)}) − LM only on "
                    f"{full:,}: {_fmt(c)}"
                )
    return out


def describe(files: Dict[str, dict]) -> List[str]:
    """What each file holds: its runs, its time and card, and the choices made on validation."""
    out = []
    for key, what in (("tube", "STP study"), ("tube_jepa", "LLM-JEPA on the same sizes")):
        if key not in files:
            out.append(f"{what}: not shipped yet (python -m jepa_lite.paired.nlrx_study --grid {key})")
            continue
        study = files[key]
        c = ns.config_of(study)
        cards = sorted({s.get("card", s["device"]) for s in study["sittings"]})
        copied = "".join(f" ({c['runs']} LM-only runs copied from {c['from']})" for c in study.get("copied", []))
        out.append(
            f"{what}: {len(study['runs'])} runs{copied}, {study['seconds'] / 60:.0f} min on {', '.join(cards)}; "
            f"λ ∈ {list(c.lbds)}, lr ∈ {list(c.lrs)}, sizes {list(c.sizes)} + {full_pairs(study):,} "
            f"(each {c.steps_for(full_pairs(study))} steps), {len(c.seeds)} seeds"
        )
        for start in ns.STARTS:
            lbd = study["best_lambda"][start]
            rates = study["best_lr"][start]
            out.append(
                f"   {START_LABEL[start]}: λ chosen on validation {lbd:g} (rate {rates[ns.lam(lbd)]:g}; "
                f"LM only's rate {rates[ns.lam(0.0)]:g})"
            )
    return out


def claim_verdicts(files: Dict[str, dict]) -> Dict[str, Dict[str, str]]:
    """{start: {objective: verdict}} of each objective on 1/16 of the data against LM-only on all of it."""
    sixteenth = min(ns.config_of(files["tube"]).sizes)
    out = {}
    for start in ns.STARTS:
        out[start] = {}
        for name, key in objectives(files):
            study = files[key]
            out[start][name] = ns.against_full_data(study, start, study["best_lambda"][start], sixteenth)["verdict"]
    return out

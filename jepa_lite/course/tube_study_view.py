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
    """{"tube": study_tube.json, "tube_jepa": study_tube_jepa.json}, as shipped."""
    return {"tube": ns.load(ns.TUBE_RESULTS_FILE), "tube_jepa": ns.load(ns.TUBE_JEPA_RESULTS_FILE)}


def curves(files: Dict[str, dict], start: str, metric: str = "test") -> Dict[str, dict]:
    """Per objective: its λ (chosen on validation), and test exact match against training-set size, one row per
    size with the mean and the half-width of its 95 % interval over seeds."""
    tube, jepa = files["tube"], files["tube_jepa"]
    picks = {
        "LM only": (tube, 0.0),
        "STP": (tube, tube["best_lambda"][start]),
        "LLM-JEPA": (jepa, jepa["best_lambda"][start]),
    }
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
        ax.text(
            sixteenth * 1.08,
            0.97,
            "the STP paper: STP reaches LM-only's\nfull-data accuracy (dashed) with 1/16\nof the data (dotted)",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="grey",
        )
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xticks([r["n_train"] for r in lines["LM only"]["rows"]])
        ax.set_xticklabels([f"{r['n_train']:,}" for r in lines["LM only"]["rows"]])
        ax.set_xlabel("training pairs (each run: the full set's number of steps)")
        ax.set_title(START_LABEL[start])
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("test exact match (%), mean ± 95 % interval")
    fig.tight_layout()
    return fig


def _fmt(c: dict) -> str:
    return f"Δ {c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]: {c['verdict']}"


def same_size_lines(files: Dict[str, dict]) -> List[str]:
    """Each objective against LM-only at the same size, paired by seed (its own file's LM-only runs)."""
    out = []
    for start in ns.STARTS:
        for name, key in (("STP", "tube"), ("LLM-JEPA", "tube_jepa")):
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
        for name, key in (("LM only", "tube"), ("STP", "tube"), ("LLM-JEPA", "tube_jepa")):
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

"""The replication in miniature: LLM-JEPA on the paper's own data (NL-RX-SYNTH), the paper's protocol.

Does the JEPA term `λ·(1 − cos(Pred(Enc(Text)), Enc(Code)))` help the kit's small Llama learn to write
regexes from English, as it helped Llama-3.2-1B in the paper (arXiv 2509.14252, Table 12: 57.29 → 71.46
exact match)? A method's gain can be an under-tuned baseline's loss: if λ = 0 runs at a learning rate
that suits λ = 1, the term looks like it helps when it only repairs the rate. So, as the paper does,
**every setting gets its own learning rate**, chosen on a validation split, before settings are compared:

1. `lr` stage — per start ∈ {scratch, pretrained}, per λ ∈ {0, 0.01, 0.03, 0.1, 0.3, 1, 2, 4}, per
   learning rate in `lrs`: `sweep_seeds` runs. Each (start, λ) keeps the rate with the best mean
   **validation** exact match (`best_lrs`).
2. `lambda` stage — each (start, λ) at its own best rate, the remaining seeds up to 10. Each λ is
   compared with λ = 0 (also at *its* best rate), seed for seed: the paired difference in **test**
   exact match, its 95 % interval and the count of seeds that moved up (`comparison`).
3. `size` stage — training sets of `sizes` pairs (and the full 7,000) at λ = 0 and each start's best λ
   (chosen on validation), same rates, 10 seeds: does the term matter more when data is scarce? A
   smaller set trains `epochs` passes (`size_steps` "epochs", fewer steps) or as many steps as the full
   set ("steps", the same compute).

Every run fine-tunes for `epochs` passes over its training set (the paper fine-tunes 4 epochs) with
`jepa_lite.paired` in fp32, and is scored by greedy exact match on the validation split (1,000 pairs
carved from the official training file, `nlrx.splits`) and once on the official test file (2,000).
"scratch" is the untrained Llama that the shipped `kit_lm`'s pretraining started from; "pretrained" is
the shipped `kit_lm` (LM-only pretraining on the kit's own generated text, which holds no NL-RX test or
validation pair: `tests/test_nlrx.py`).

    python -m jepa_lite.paired.nlrx_study --workers 16 --device cuda --resume   # the GPU machine, in pieces
    python -m jepa_lite.paired.nlrx_study --fast --out /tmp/nlrx.json             # a tiny version, seconds
    python -m jepa_lite.paired.nlrx_study --grid tube --workers 16 --device cuda --resume       # notebook 07's
    python -m jepa_lite.paired.nlrx_study --grid tube_jepa --workers 16 --device cuda --resume  # and its comparator

The same protocol runs for Semantic Tube Prediction (`--grid tube`, notebook 07): λ is then the weight of
the tube term (the grid `STP_LBDS`, around the official runs' 0.02), every run reads the LM row alone
(views "separate"), and the results go to `study_tube.json`. Its λ = 0 runs are LM-only fine-tuning, like
this study's, run again so that each file's comparisons are paired within one study of one code. Its size
stage tests the STP paper's data-efficiency claim (the baseline's accuracy with 16× less data, arXiv
2602.22617): `STP_SIZES`, 1/16 and 1/4 of the training pairs, each trained as many steps as the full set.
`--grid tube_jepa` puts LLM-JEPA on the same sizes (`study_tube_jepa.json`), at the λ and rate that this
study chose on validation (read from `study_nlrx.json`; nothing is chosen again on test).

Reading the file (notebook 06): `load()`, `tuned_runs()`, `comparison()`, `lr_curve()`, `verdict()`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..checkpoint import write_json
from ..data import RESOURCES_DIR
from . import nlrx
from .pretrain import KIT_LM
from .stats import bootstrap_interval, mean_ci, mean_sd, paired_t, welch_t
from .study import (
    STARTS,
    Sitting,
    StudyError,
    check_results_out,
    compiled,
    length_groups,
    measured,
    recipe_summary,
    rounded,
    study_config,
    study_main,
    study_parser,
    write_scratch_start,
)

RESULTS_FILE = RESOURCES_DIR / "study_nlrx.json"
TUBE_RESULTS_FILE = RESOURCES_DIR / "study_tube.json"  # the same study with objective "stp" (notebook 07)
TUBE_JEPA_RESULTS_FILE = RESOURCES_DIR / "study_tube_jepa.json"  # LLM-JEPA on the STP study's sizes
# λ of the STP grid: the official runs use 0.02 (run_stp.sh); around it, and up to LLM-JEPA's range
STP_LBDS = (0.0, 0.005, 0.02, 0.1, 0.3, 1.0)
# The STP paper's claim: the baseline's accuracy with 16× less data (arXiv 2602.22617, Fig. 1b); 1/16 and 1/4 of
# the 7,000 training pairs. Trained as many steps as the full set: at 4 epochs, 437 pairs are 55 steps, and in
# notebook 06's study no run learns a single test regex from 500 pairs at 4 epochs (63 steps).
STP_SIZES = (437, 1750)
KIND = "jepa_lite.study_nlrx"
# The paper's NL-RX-SYNTH numbers for Llama-3.2-1B (arXiv 2509.14252): the fine-tuning baseline and the
# LLM-JEPA runs (Table 12 at its tuned λ; Table 10 at smaller λ), exact match in %.
PAPER = {"baseline": 57.29, "llm_jepa": 71.46, "by_lambda": {0.1: 67.52, 0.01: 66.83}}
# "No effect" is said only where the 95 % interval excludes a gain this large: the smallest gain the
# paper reports on this benchmark (λ = 0.01, Table 10), as a fraction.
MARGIN = round((min(PAPER["by_lambda"].values()) - PAPER["baseline"]) / 100, 4)


@dataclass
class NlrxConfig:
    # the grid
    lbds: Tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 4.0)  # λ (0 = plain fine-tuning)
    lrs: Tuple[float, ...] = (1e-3, 2e-3, 4e-3, 8e-3)  # peak learning rates swept for every (start, λ)
    sweep_seeds: Tuple[int, ...] = (0, 1)  # seeds of the learning-rate sweep
    seeds: Tuple[int, ...] = tuple(range(10))  # seeds of each comparison (the sweep's seeds are reused)
    sizes: Tuple[int, ...] = (500, 2000)  # smaller training sets (the first n training pairs)
    # how long a smaller set trains: "epochs" (the same `epochs` passes: fewer steps, as the paper's recipe) or
    # "steps" (as many steps as the full set: the same compute, more passes over less data)
    size_steps: str = "epochs"
    # data (nlrx.splits): 7,000 training pairs, 1,000 validation, the 2,000 official test pairs
    n_val: int = nlrx.N_VAL
    n_train: int = 0  # 0 = every training pair; the fast grid uses fewer
    n_test: int = 0  # 0 = the whole test file
    train_eval: int = 500  # training pairs decoded for the training exact match
    # fine-tuning (jepa_lite.paired)
    epochs: float = 4.0  # passes over the training set (the paper fine-tunes 4 epochs)
    batch_size: int = 32
    warmup: float = 0.06  # share of the steps spent warming up (50 of 875 at the full size)
    views: str = "packed"  # one row per pair (tested equal to the three separate rows; ~2× faster with λ > 0)
    objective: str = "llm_jepa"  # or "stp" (Semantic Tube Prediction: `grid("tube")`)
    generate_batch: int = 500  # texts decoded at once when scoring
    log_every: int = 125
    model_dir: str = str(KIT_LM)
    device: str = "cpu"
    precision: str = "fp32"  # the same arithmetic on the GPU as on a laptop CPU

    @classmethod
    def fast(cls, **overrides) -> "NlrxConfig":
        """A tiny grid for tests: 2 λ, 2 rates, 2 seeds, 1 size, a few steps on few pairs."""
        tiny = dict(
            lbds=(0.0, 1.0),
            lrs=(1e-3, 4e-3),
            sweep_seeds=(0,),
            seeds=(0, 1),
            sizes=(16,),
            n_val=12,
            views="separate",
            n_train=48,
            n_test=12,
            train_eval=12,
            epochs=0.5,
            batch_size=8,
            log_every=2,
        )
        return cls(**{**tiny, **overrides})

    @classmethod
    def grid(cls, name: str, fast: bool = False, **overrides) -> "NlrxConfig":
        """A study's grid by name (`GRIDS`; `fast`: the tiny version for tests):

        - "nlrx": notebook 06's, as above;
        - "tube": Semantic Tube Prediction (objective "stp", the LM row alone) over the λ of `STP_LBDS`, and the
          data-efficiency sizes `STP_SIZES` trained as many steps as the full set;
        - "tube_jepa": LLM-JEPA on those sizes, at the λ and rates notebook 06's study chose on validation
          (`chosen_by_nlrx`)."""
        if name not in GRIDS:
            raise StudyError(f"grid must be {', '.join(GRIDS)}; got {name!r}")
        sizes = {"sizes": (16,) if fast else STP_SIZES, "size_steps": "steps"}
        if name == "tube":
            lbds = (0.0, 0.02) if fast else STP_LBDS
            overrides = {"objective": "stp", "views": "separate", "lbds": lbds, **sizes, **overrides}
        elif name == "tube_jepa":
            overrides = {**(chosen_by_nlrx() if not fast else {}), **sizes, **overrides}
        return cls.fast(**overrides) if fast else cls(**overrides)

    def validate(self) -> None:
        if self.size_steps not in ("epochs", "steps"):
            raise StudyError(f"size_steps must be epochs or steps; got {self.size_steps!r}")
        if self.objective not in ("llm_jepa", "stp") or (self.objective == "stp" and self.views != "separate"):
            raise StudyError(f"objective llm_jepa, or stp with views 'separate'; got {self.objective}, {self.views}")
        if 0.0 not in self.lbds or len(self.lbds) < 2:
            raise StudyError(f"lbds must hold 0 (the baseline) and at least one λ > 0; got {self.lbds}")
        if not self.lrs or min(self.lrs) <= 0:
            raise StudyError(f"lrs must be positive learning rates; got {self.lrs}")
        if len(self.seeds) < 2 or not set(self.sweep_seeds) <= set(self.seeds) or not self.sweep_seeds:
            raise StudyError(f"a paired test needs ≥ 2 seeds, and sweep_seeds must be among seeds; got {self.seeds}")
        if self.epochs <= 0 or self.batch_size < 1 or not 0 <= self.warmup < 1:
            raise StudyError("epochs > 0, batch_size ≥ 1 and 0 ≤ warmup < 1")
        full = 8000 - self.n_val
        if self.n_train < 0 or self.n_train > full or any(not 1 <= n < (self.n_train or full) for n in self.sizes):
            raise StudyError(f"n_train ≤ {full} and each size below it; got {self.n_train}, {self.sizes}")

    def steps_for(self, n_train: int) -> int:
        """Optimizer steps for `epochs` passes over n_train pairs: ⌈epochs · n / batch_size⌉."""
        return max(1, math.ceil(self.epochs * n_train / self.batch_size))


@dataclass(frozen=True)
class RunSpec:
    """One run: its stage and the settings that differ between runs."""

    stage: str  # "lr", "lambda", "size"
    start: str  # "scratch" or "pretrained"
    lbd: float
    lr: float
    seed: int
    n_train: int = 0  # 0 = the full training split


GRIDS = {"nlrx": RESULTS_FILE, "tube": TUBE_RESULTS_FILE, "tube_jepa": TUBE_JEPA_RESULTS_FILE}  # name → results


def chosen_by_nlrx(path: Path = RESULTS_FILE) -> dict:
    """The λ > 0 that notebook 06's study chose per start on validation (with λ = 0), and their rates:
    {"lbds": (0, …), "lrs": (…)}, the grid "tube_jepa" runs on. Refused while that study is incomplete."""
    study = load(path)
    if not study.get("complete"):
        raise StudyError(f"{path} is not complete: run notebook 06's study first")
    lbds = (0.0, *sorted(set(study["best_lambda"].values())))
    return {"lbds": lbds, "lrs": tuple(sorted({study["best_lr"][s][lam(lbd)] for s in STARTS for lbd in lbds}))}


def lam(lbd: float) -> str:
    """A λ as the key of a JSON object ("0", "0.01", …)."""
    return f"{lbd:g}"


# ---------------------------------------------------------------------------------------------
# The grid, stage by stage
# ---------------------------------------------------------------------------------------------
def sweep_stage(c: NlrxConfig) -> List[RunSpec]:
    """Every (start, λ, learning rate) with the sweep's seeds."""
    return [RunSpec("lr", s, lbd, lr, seed) for s in STARTS for lbd in c.lbds for lr in c.lrs for seed in c.sweep_seeds]


def best_lrs(runs: Sequence[dict], c: NlrxConfig) -> Dict[str, Dict[str, float]]:
    """{start: {λ: the rate with the highest mean validation exact match}} over the sweep (ties: smaller rate)."""
    best: Dict[str, Dict[str, float]] = {}
    for s in STARTS:
        best[s] = {}
        for lbd in c.lbds:
            means = {
                lr: mean_sd(
                    [
                        r["exact_match"]["val"]
                        for r in runs
                        if r["stage"] == "lr" and r["start"] == s and r["lbd"] == lbd and r["lr"] == lr
                    ]
                )["mean"]
                for lr in c.lrs
            }
            best[s][lam(lbd)] = max(sorted(means), key=lambda lr: means[lr])
    return best


def lambda_stage(c: NlrxConfig, best_lr: Dict[str, Dict[str, float]]) -> List[RunSpec]:
    """Each (start, λ) at its best rate, the seeds the sweep did not run."""
    return [
        RunSpec("lambda", s, lbd, best_lr[s][lam(lbd)], seed)
        for s in STARTS
        for lbd in c.lbds
        for seed in c.seeds
        if seed not in c.sweep_seeds
    ]


def best_lambdas(runs: Sequence[dict], c: NlrxConfig, best_lr) -> Dict[str, float]:
    """Per start, the λ > 0 with the highest mean validation exact match at its best rate (ties: smaller λ)."""
    best = {}
    for s in STARTS:
        means = {
            lbd: mean_sd([r["exact_match"]["val"] for r in _tuned(runs, best_lr, s, lbd)])["mean"]
            for lbd in c.lbds
            if lbd > 0
        }
        best[s] = max(sorted(means), key=lambda lbd: means[lbd])
    return best


def size_stage(c: NlrxConfig, best_lr, best_lambda) -> List[RunSpec]:
    """λ = 0 and each start's best λ, at their best rates, on the smaller training sets."""
    return [
        RunSpec("size", s, lbd, best_lr[s][lam(lbd)], seed, n_train=n)
        for s in STARTS
        for lbd in (0.0, best_lambda[s])
        for n in c.sizes
        for seed in c.seeds
    ]


def planned(study: dict) -> List[RunSpec]:
    """Every run the grid asks for so far (later stages need the choices of the earlier ones)."""
    c = config_of(study)
    specs = sweep_stage(c)
    if study.get("best_lr"):
        specs += lambda_stage(c, study["best_lr"])
    if study.get("best_lambda"):
        specs += size_stage(c, study["best_lr"], study["best_lambda"])
    return specs


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------
def prepare(c: NlrxConfig, work: Path) -> Dict[str, str]:
    """Write the splits and the scratch start into `work`; returns their paths."""
    from .pairs import save_jsonl

    s = nlrx.splits(c.n_val)
    train = s["train"][: c.n_train or None]
    paths = {"model:pretrained": str(Path(c.model_dir)), "model:scratch": str(work / "scratch")}
    for n in (*c.sizes, len(train)):
        paths[f"train:{n}"] = str(work / f"train_{n}.jsonl")
        save_jsonl(train[:n], paths[f"train:{n}"])
    paths["train:0"] = paths[f"train:{len(train)}"]
    for name, pairs in (("val", s["val"]), ("test", s["test"][: c.n_test or None])):
        paths[name] = str(work / f"{name}.jsonl")
        save_jsonl(pairs, paths[name])
    write_scratch_start(Path(c.model_dir), work / "scratch")
    return paths


def exact_match(trainer, pairs, batch_size: int) -> dict:
    """Greedy decoding of each pair's Code from its Text; exact string match."""
    predictions = trainer.generate([p.text for p in pairs], batch_size=batch_size)
    correct = sum(g == p.code for g, p in zip(predictions, pairs))
    return {"exact_match": correct / len(pairs), "correct": correct, "total": len(pairs)}


def run_config(spec: RunSpec, c: NlrxConfig, paths: Dict[str, str]):
    """The `PairedConfig` of one run of the study."""
    from . import PairedConfig
    from .pairs import load_jsonl

    data = paths[f"train:{spec.n_train}"]
    n = len(load_jsonl(data))
    steps = c.steps_for(n if c.size_steps == "epochs" else len(load_jsonl(paths["train:0"])))
    return PairedConfig(
        model=paths[f"model:{spec.start}"],
        data=data,
        test_data=paths["test"],
        lbd=spec.lbd,
        lr=spec.lr,
        steps=steps,
        batch_size=c.batch_size,
        warmup_steps=max(1, round(c.warmup * steps)),
        log_every=c.log_every,
        seed=spec.seed,
        device=c.device,
        precision=c.precision,
        views=c.views,
        objective=c.objective,
        length_groups=length_groups(c.device),  # on the CPU each batch in a few passes, less padding
        compile=compiled(c.device),  # on the CPU where a C++ compiler works: the transformer compiled once
        progress=False,
    )


def run_record(spec: RunSpec, c: NlrxConfig, paths: Dict[str, str], trainer, begin: float, fit_seconds: float) -> dict:
    """Measure one trained run; its record (plain JSON values)."""
    from .pairs import load_jsonl

    splits = {"train": trainer.train_pairs[: c.train_eval], "val": load_jsonl(paths["val"]), "test": trainer.test_pairs}
    score = functools.partial(exact_match, trainer, batch_size=c.generate_batch)
    record, _, _ = measured(trainer, trainer.history, spec, splits, score, begin, fit_seconds, spec.seed == c.seeds[0])
    return rounded(record)


def run_one(spec: RunSpec, c: NlrxConfig, paths: Dict[str, str]) -> dict:
    """Train one run and measure it; returns its record (plain JSON values)."""
    from . import PairedTrainer
    from .graphed import can_record

    begin = time.perf_counter()
    config = run_config(spec, c, paths)
    config.cuda_graphs = can_record(config)  # on a GPU each step is one launch where the run allows (graphed.py)
    trainer = PairedTrainer(config, log=lambda s: None)
    trainer.fit()
    return run_record(spec, c, paths, trainer, begin, time.perf_counter() - begin)


def run_together(specs: Sequence[RunSpec], c: NlrxConfig, paths: Dict[str, str]) -> List[dict]:
    """Train the runs `specs` (one start, one training set) as one (`batched.BatchedRuns`: their steps together,
    one CUDA graph per step on a GPU), then measure each; their records, in order. A record's `fit_seconds` is
    the group's (the K runs trained in that time together) and `runs_together` is K. One spec: `run_one`."""
    from . import PairedTrainer
    from .batched import BatchedRuns

    if len(specs) == 1:
        return [run_one(specs[0], c, paths)]
    begin = time.perf_counter()
    # one pass per batch, uncompiled (`batched.why_not_batched`): what a CPU run would otherwise change
    configs = [dataclasses.replace(run_config(spec, c, paths), compile=False, length_groups=1) for spec in specs]
    trainers = [PairedTrainer(config, log=lambda s: None) for config in configs]
    BatchedRuns(trainers).fit()
    fit_seconds = time.perf_counter() - begin
    records = [run_record(spec, c, paths, t, begin, fit_seconds) for spec, t in zip(specs, trainers)]
    return [{**record, "runs_together": len(specs)} for record in records]


def together_key(spec: RunSpec) -> tuple:
    """What the runs trained as one must share (`run_together`): the start and the training set."""
    return spec.start, spec.n_train


# ---------------------------------------------------------------------------------------------
# The whole study, and its file
# ---------------------------------------------------------------------------------------------
def spec_key(spec: RunSpec, c: NlrxConfig) -> tuple:
    """What identifies a run in the results file."""
    return tuple(sorted(dataclasses.asdict(spec).items()))


def record_key(record: dict, c: NlrxConfig) -> tuple:
    """`spec_key` of the run a record holds (its n_train back to 0 when it is the full set)."""
    d = {f.name: record[f.name] for f in dataclasses.fields(RunSpec)}
    d["n_train"] = d["n_train"] if record["stage"] == "size" else 0
    return tuple(sorted(d.items()))


def config_of(study: dict) -> NlrxConfig:
    """The NlrxConfig a results file was written with."""
    c = {"objective": "llm_jepa", "size_steps": "epochs", **study["config"]}  # files from before these settings
    for name in ("lbds", "lrs", "sweep_seeds", "seeds", "sizes"):
        c[name] = tuple(c[name])
    return NlrxConfig(**c)


def missing(study: dict) -> List[RunSpec]:
    """The planned runs the file does not hold yet."""
    c = config_of(study)
    done = {record_key(r, c) for r in study["runs"]}
    return [s for s in planned(study) if spec_key(s, c) not in done]


def _card(device: str) -> str:
    """The GPU's name for a CUDA device ("NVIDIA H100 80GB HBM3"), else the device string."""
    import torch

    return (
        torch.cuda.get_device_name(torch.device(device))
        if device.startswith("cuda") and torch.cuda.is_available()
        else device
    )


def _slow_first(specs: List[RunSpec]) -> List[RunSpec]:
    """λ > 0 runs (three rows per pair) and large training sets first: fewer idle workers at the end."""
    return sorted(specs, key=lambda s: (s.lbd == 0, s.n_train != 0, s.n_train))


class _Sitting(Sitting):
    """A sitting that also times itself in the file's "sittings" (which machine ran how many runs, how long),
    and runs the slow runs first."""

    order = staticmethod(_slow_first)

    def finished(self, record: dict) -> None:
        self.study["sittings"][-1]["seconds"] = time.perf_counter() - self.begin
        super().finished(record)


def _run_line(record: dict) -> str:
    """The log line of a finished run (after its number)."""
    return (
        f"{record['stage']:6s} {record['start']:10s} λ={record['lbd']:<5g} "
        f"lr={record['lr']:g} "
        f"n={record['n_train']} seed {record['seed']}: test {record['exact_match']['test']:.3f} "
        f"val {record['exact_match']['val']:.3f} train {record['exact_match']['train']:.3f} "
        f"({record['seconds']:.0f} s)"
    )


def _write(study: dict, out: Path) -> None:
    write_json(out, study, separators=(",", ":"))


def run_study(
    c: NlrxConfig,
    out: Path,
    workers: int = 1,
    threads: int = 1,
    resume: bool = False,
    log=print,
    sharing: str = "",
    together: int = 1,
) -> dict:
    """All three stages; writes `out` after every finished run ("complete": false until the end). The file's
    "sittings" record each sitting's machine, workers, seconds and `sharing` (`study.shared_gpu`). `together` > 1:
    each worker trains up to that many runs as one (`run_together`, LLM-JEPA's packed views only; the sitting
    records it). Not the default: on a GPU it is not yet measured faster than runs alone (docs/study.md)."""
    c.validate()
    study = {
        "kind": KIND,
        "version": 1,
        "complete": False,
        "config": dataclasses.asdict(c),
        "data": {
            "source": "galilai-group/llm-jepa datasets/synth_{train,test}.jsonl",
            "sha256": nlrx.SHA256,
            "val_seed": nlrx.VAL_SEED,
        },
        "pretrained": recipe_summary(c.model_dir),
        "selection": "per (start, λ) the rate with the best mean validation exact match over the sweep seeds; "
        "per start the λ > 0 with the best mean validation exact match at its rate",
        "best_lr": None,
        "best_lambda": None,
        "runs": [],
        "sittings": [],
    }
    keys = (lambda r: record_key(r, c), lambda s: spec_key(s, c))
    if together < 1:
        raise StudyError(f"--together must be ≥ 1; got {together}")
    if together > 1 and not (c.objective == "llm_jepa" and c.views == "packed"):
        log(f"--together {together}: this grid trains {c.objective} with {c.views} views; its runs train alone")
        together = 1
    sitting = _Sitting(
        study, c, out, workers, threads, log, write=_write, line=_run_line, keys=keys, runner=run_one,
        together=(together, together_key, run_together) if together > 1 else None,
    )  # fmt: skip
    if resume and out.exists():
        old = load(out)
        sitting.take_over(old, defaults={"objective": "llm_jepa", "size_steps": "epochs"})
        study["sittings"] = old.get("sittings", [])
    sitting_row = {"workers": workers, "device": c.device, "card": _card(c.device), "runs_before": len(study["runs"])}
    if sharing and c.device.startswith("cuda"):  # how the workers shared the GPU (`study.shared_gpu`)
        sitting_row["gpu_sharing"] = sharing
    if c.device.startswith("cuda"):  # each run's steps replayed as CUDA graphs where it allows (graphed.can_record)
        sitting_row["cuda_graphs"] = True
    else:  # on the CPU each batch in a few passes, sorted by length, and the model compiled where it can be
        sitting_row.update(length_groups=length_groups(c.device), compile=compiled(c.device))
    if together > 1:  # (runs trained as one take each batch in one pass, uncompiled: `run_together`)
        sitting_row["together"] = together
    study["sittings"].append({**sitting_row, "seconds": 0.0})
    with sitting.work(prepare, "jepa_lite_nlrx_") as run:
        run(sweep_stage(c))
        study["best_lr"] = best_lrs(study["runs"], c)
        log(f"best rate per (start, λ) on the validation split: {study['best_lr']}")
        run(lambda_stage(c, study["best_lr"]))
        study["best_lambda"] = best_lambdas(study["runs"], c, study["best_lr"])
        log(f"best λ per start on the validation split: {study['best_lambda']}")
        run(size_stage(c, study["best_lr"], study["best_lambda"]))
    return sitting.close()


# what a LM-only (λ = 0) run depends on: the other settings name the λ > 0 runs (objective, views) or the machine
NOT_LM_ONLY = ("lbds", "lrs", "views", "objective", "device")


def baseline_from(study: dict, donor: dict, donor_name: str) -> int:
    """Copy into `study` the LM-only (λ = 0) runs it plans and lacks that `donor` holds; returns how many.

    A λ = 0 run trains the LM loss alone, so it is the same computation in any two studies whose settings
    agree outside `NOT_LM_ONLY`, on the same data and pretrained start: the tube and tube_jepa grids' λ = 0
    runs that both files hold are identical, history and all (`tests/test_nlrx_study.py`). Each copied
    record says where it came from ("copied_from"), and `study["copied"]` how many and from where; the study
    is marked complete when nothing planned is missing any more. Settings that differ raise StudyError."""
    mine, theirs = dataclasses.asdict(config_of(study)), dataclasses.asdict(config_of(donor))
    differ = sorted(k for k in mine if k not in NOT_LM_ONLY and mine[k] != theirs[k])
    differ += [k for k in ("data", "pretrained") if study.get(k) != donor.get(k)]
    if differ:
        raise StudyError(f"the LM-only runs of {donor_name} were trained differently: {', '.join(differ)} differ")
    c = config_of(study)
    wanted = {spec_key(s, c) for s in missing(study) if s.lbd == 0}
    copied = [{**r, "copied_from": donor_name} for r in donor["runs"] if r["lbd"] == 0 and record_key(r, c) in wanted]
    study["runs"] += copied
    if copied:
        study.setdefault("copied", []).append({"from": donor_name, "runs": len(copied)})
    study["complete"] = not missing(study)
    return len(copied)


def check_out(out: Path) -> None:
    """Only a results file written by this study may be replaced (`study.check_results_out`)."""
    check_results_out(out, KIND, "an NL-RX study results file")


# ---------------------------------------------------------------------------------------------
# Reading the results (notebook 06)
# ---------------------------------------------------------------------------------------------
def load(path: Path = RESULTS_FILE) -> dict:
    """The results file, as written by `python -m jepa_lite.paired.nlrx_study`."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(
            f"{path} not found: run `python -m jepa_lite.paired.nlrx_study --out {shlex.quote(str(path))}`"
        )
    try:
        study = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StudyError(f"{path} is damaged ({e}); run the study again or restore the file") from None
    if not isinstance(study, dict) or study.get("kind") != KIND:
        raise StudyError(f"{path} is not an NL-RX study results file")
    return study


def _tuned(runs: Sequence[dict], best_lr, start: str, lbd: float, n_train: int = 0) -> List[dict]:
    """The full-size runs of (start, λ) at its best rate (the sweep's seeds and the lambda stage's), by seed;
    with n_train, that size stage's runs."""
    rate = best_lr[start][lam(lbd)]
    if n_train:
        stages, pick = ("size",), lambda r: r["n_train"] == n_train
    else:
        stages, pick = ("lr", "lambda"), lambda r: True
    return sorted(
        (
            r
            for r in runs
            if r["stage"] in stages and r["start"] == start and r["lbd"] == lbd and r["lr"] == rate and pick(r)
        ),
        key=lambda r: r["seed"],
    )


def tuned_runs(study: dict, start: str, lbd: float, n_train: int = 0) -> List[dict]:
    """The runs of (start, λ) at its own best learning rate (all seeds), or of one smaller training set."""
    return _tuned(study["runs"], study["best_lr"], start, lbd, n_train)


def comparison(study: dict, start: str, lbd: float, metric: str = "test", n_train: int = 0) -> dict:
    """λ against λ = 0, each at its own best rate, paired by seed: exact match on `metric` ("test", "val").

    Returns the means, `stats.paired_t` of the differences (diff, ci_low, ci_high, p, …), the bootstrap
    interval, the seeds, how many moved up, and `verdict` ("both score 0: nothing to compare" when no run
    of either setting got a single pair right: a floor, not an absence of effect).
    """
    a = {r["seed"]: r["exact_match"][metric] for r in tuned_runs(study, start, lbd, n_train)}
    b = {r["seed"]: r["exact_match"][metric] for r in tuned_runs(study, start, 0.0, n_train)}
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise StudyError(f"fewer than 2 seeds of {start} λ = {lbd:g} (n_train {n_train or 'all'}) and its baseline")
    xa, xb = [a[s] for s in seeds], [b[s] for s in seeds]
    t = paired_t(xa, xb)
    boot = bootstrap_interval(xa, xb)
    out = {
        **t,
        "boot_low": boot["low"],
        "boot_high": boot["high"],
        "seeds": seeds,
        "up": sum(x > y for x, y in zip(xa, xb)),
        "mean": mean_sd(xa)["mean"],
        "baseline": mean_sd(xb)["mean"],
        "lr": study["best_lr"][start][lam(lbd)],
        "baseline_lr": study["best_lr"][start][lam(0.0)],
    }
    out["verdict"] = "both score 0: nothing to compare" if max(xa + xb) == 0 else verdict(out)
    return out


def verdict(c: dict, margin: float = MARGIN) -> str:
    """Words for a paired difference's 95 % interval [ci_low, ci_high]:

    "helps" (the interval lies above 0), "hurts" (below 0), "no gain of the paper's size" (it holds 0
    and excludes a gain ≥ `margin`, the smallest the paper reports), otherwise "can't tell"."""
    if c["ci_low"] > 0:
        return "helps"
    if c["ci_high"] < 0:
        return "hurts"
    return "no gain of the paper's size" if c["ci_high"] < margin else "can't tell"


def against_full_data(
    study: dict, start: str, lbd: float, n_train: int, baseline: Optional[dict] = None, metric: str = "test"
) -> dict:
    """The data-efficiency question: (start, λ) trained on `n_train` pairs against λ = 0 (LM-only) on the
    full training set, each at its own best rate. The baseline's runs come from `baseline` (another results
    file of the same data, e.g. the tube study's LM-only runs for LLM-JEPA's sizes) or from `study`.

    The two sides share no training data, so the test is unpaired (`stats.welch_t`). Returns its keys, both
    sides' seeds, and `verdict`: "beats the full-data baseline" (interval above 0), "falls short" (below 0),
    "matches it within ±MARGIN" (the interval inside (−MARGIN, +MARGIN)), else "can't tell"."""
    a = [r["exact_match"][metric] for r in tuned_runs(study, start, lbd, n_train)]
    b = [r["exact_match"][metric] for r in tuned_runs(baseline or study, start, 0.0)]
    if len(a) < 2 or len(b) < 2:
        raise StudyError(f"fewer than 2 seeds of {start} λ = {lbd:g} at {n_train} pairs or of its full-data baseline")
    out = {**welch_t(a, b), "n_train": n_train, "seeds": len(a), "baseline_seeds": len(b)}
    if max(a + b) == 0:
        out["verdict"] = "both score 0: nothing to compare"
    elif out["ci_low"] > 0:
        out["verdict"] = "beats the full-data baseline"
    elif out["ci_high"] < 0:
        out["verdict"] = "falls short of the full-data baseline"
    elif -MARGIN < out["ci_low"] and out["ci_high"] < MARGIN:
        out["verdict"] = f"matches the full-data baseline within ±{MARGIN:.3f}"
    else:
        out["verdict"] = "can't tell"
    return out


def size_curve(study: dict, start: str, lbd: float, metric: str = "test") -> List[dict]:
    """Exact match against training-set size for (start, λ) at its best rate: one row per size (the
    `sizes`, then the full set), smallest first: {"n_train", "steps", "mean", "sd", "n", "half"}, with
    `half` the half-width of the 95 % t interval of the mean over seeds, t₀.₉₇₅,ₙ₋₁ · sd / √n."""
    rows = []
    for n in (*sorted(config_of(study).sizes), 0):
        runs = tuned_runs(study, start, lbd, n)
        if runs:
            m = mean_ci([r["exact_match"][metric] for r in runs])
            rows.append({"n_train": runs[0]["n_train"], "steps": runs[0]["steps"], **m})
    return rows


def lr_curve(study: dict, start: str, lbd: float, metric: str = "test") -> Dict[str, list]:
    """Exact match against learning rate for one (start, λ), over the sweep's seeds: {"lr", "mean", "sd"}."""
    c = config_of(study)
    out = {"lr": [], "mean": [], "sd": []}
    for lr in c.lrs:
        xs = [
            r["exact_match"][metric]
            for r in study["runs"]
            if r["stage"] == "lr" and r["start"] == start and r["lbd"] == lbd and r["lr"] == lr
        ]
        if xs:
            m = mean_sd(xs)
            out["lr"].append(lr), out["mean"].append(m["mean"]), out["sd"].append(m["sd"])
    return out


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> int:
    p = study_parser(
        "python -m jepa_lite.paired.nlrx_study",
        "Run notebook 06's study on NL-RX-SYNTH (notebook 07's with --grid tube, tube_jepa) and write its results.",
        None,
    )
    p.add_argument(
        "--grid",
        choices=tuple(GRIDS),
        default="nlrx",
        help="nlrx: notebook 06's study (--out default study_nlrx.json); tube: Semantic Tube Prediction, "
        "notebook 07's (study_tube.json); tube_jepa: LLM-JEPA on the tube study's sizes (study_tube_jepa.json)",
    )
    p.add_argument(
        "--baseline_from",
        metavar="FILE",
        help="instead of training: copy into --out the LM-only runs it lacks from another results file of the "
        "same settings (e.g. tube_jepa's from study_tube.json), then stop",
    )
    p.add_argument(
        "--together",
        type=int,
        help="the most runs each worker trains as one, their steps together (default 1: each run alone; "
        "LLM-JEPA's packed views only; see docs/study.md for what it is measured to do)",
    )
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(GRIDS[args.grid])
    if args.baseline_from:
        return copy_baseline(Path(args.out), Path(args.baseline_from))

    def fresh(**over) -> NlrxConfig:
        return NlrxConfig.grid(args.grid, fast=args.fast, **over)

    def from_file(out: Path) -> NlrxConfig:
        check_out(out)
        return config_of(load(out))

    def build(args) -> NlrxConfig:
        return study_config(args, ("device", "model_dir"), fresh, from_file)

    return study_main(args, build, check_out, run_study)


def copy_baseline(out: Path, donor: Path) -> int:
    """`--baseline_from`: `baseline_from` on two results files, `out` rewritten through the careful writer."""
    try:
        check_out(out)
        study = load(out)
        n = baseline_from(study, load(donor), donor.name)
    except (StudyError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _write(study, out)
    print(f"copied {n} LM-only runs from {donor.name} into {out.name}; complete: {study['complete']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

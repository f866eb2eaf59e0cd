"""The study behind notebook 06: does the JEPA term help, where, and how much? (one command, one file)

Every run fine-tunes the kit's small Llama with `jepa_lite.paired` on the built-in regex pairs and
is measured the same way: greedy exact match on the training, validation and test splits, and the
geometry of Pred(Enc(Text)) vs Enc(Code) on the test pairs (`diagnostics.pair_geometry`). Runs
differ in one setting at a time from a baseline with the same seeds (same batches, same starting
weights), so each effect is a *paired* difference (`jepa_lite.paired.stats`). The grid:

1. start ∈ {scratch, pretrained} × λ ∈ {0, 0.01, 0.03, 0.1, 0.3, 1, 2, 4} at k = 0, 5 seeds;
   "pretrained" is the kit's LM-only pretrained model (`jepa_lite.paired.pretrain`, assets/kit_lm),
   "scratch" the very weights that pretraining started from (same shape, same tokenizer);
   plus the collapse failure modes (γ = 0; an L2 distance) at λ = 1.
2. The best λ of each start, chosen on the **validation** split (so the test split never picks
   it), then at λ = 0 and the best λ, with the first 3 seeds: k ∈ {1, 2} predictor tokens;
   the LM loss on every token of the LM row (`lm_tokens="all"`); and training-set size ∈ {250,
   1000, the full 3,000} pairs trained to convergence (`long_steps`, 3× the sweep's steps: every size
   reaches a training exact match near 1 and a flat LM loss, which each record's history shows).
   The sweep itself trains the paper's budget (~4 epochs of the full set, Table 12 fine-tunes 4).
3. Longer still (`longest_steps`, 9× the sweep's): the full set at λ = 0 and the best λ, per start —
   does a start that has not converged at `long_steps` catch up, and does the JEPA term resist
   over-fitting (the paper's App. A.3) when training goes on long after the training set is learnt?
   A λ = 0 run never builds the Text view, so its k does not matter: its baseline is the k = 0 run.

A run is a pure function of (RunSpec, StudyConfig), so runs go to parallel processes:

    python -m jepa_lite.paired.study --out assets/study.json --workers 16 --device cuda   # see docs/study.md for times
    python -m jepa_lite.paired.study --fast --out /tmp/study.json                          # a tiny version, seconds

Reading the file (what notebook 06 does): `load_study()`, `select(study, ...)`, `effect(...)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..checkpoint import json_marked
from ..writer import PathLock, WriteError, check_writable, remove_stale_temps, write_json
from .pretrain import ASSETS, KIT_LM, PretrainError, benchmark_splits, load_recipe
from .stats import bootstrap_interval, mean_sd, paired_t

STUDY_FILE = ASSETS / "study.json"
KIND = "jepa_lite.study"
CPU_LENGTH_GROUPS = 3  # forward passes per batch on the CPU (`length_groups`): chosen by timing 1, 2, 3 and 4
STARTS = ("scratch", "pretrained")


class StudyError(ValueError):
    """A study setting or results file that cannot be used; the message says what to do."""


@dataclass
class StudyConfig:
    # the grid
    lbds: Tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 4.0)  # λ sweep at k = 0 (0 = LM only)
    ks: Tuple[int, ...] = (1, 2)  # predictor tokens tried at the best λ
    sizes: Tuple[int, ...] = (250, 1000)  # smaller training sets tried (the full set is n_train)
    seeds: Tuple[int, ...] = (0, 1, 2, 3, 4)  # the λ sweep
    later_seeds: Tuple[int, ...] = (0, 1, 2)  # stage 2 (k, size, lm_tokens): the first 3 seeds, for the budget
    failure_seeds: Tuple[int, ...] = (0,)  # γ = 0 and L2 runs (collapse shows in one seed)
    # data: the first n of each split of pretrain.benchmark_splits()
    n_train: int = 3000
    n_val: int = 300
    n_test: int = 300
    train_eval: int = 300  # training pairs decoded for the training exact match
    # fine-tuning (jepa_lite.paired)
    steps: int = 400  # ≈ 4.3 epochs of the full set (the paper fine-tunes 4 epochs)
    long_steps: int = 1200  # the size stage, to convergence: ≈ 13 epochs of the full set, ≈ 150 of 250 pairs
    longest_steps: int = 3600  # stage 3: ≈ 38 epochs of the full set
    batch_size: int = 32
    # peak lr per start, picked at λ = 0 on the validation split from {5e-4, 1e-3, 2e-3, 4e-3} (600-step probe)
    lr: Dict[str, float] = field(default_factory=lambda: {"scratch": 1e-3, "pretrained": 4e-3})
    warmup_steps: int = 50
    log_every: int = 100
    # one row per pair (tested equal to the three separate rows); files written before this setting: "separate"
    views: str = "packed"
    model_dir: str = str(KIT_LM)  # the pretrained start
    device: str = "cpu"
    precision: str = "fp32"  # the same arithmetic on the GPU as on a laptop CPU

    @classmethod
    def fast(cls, **overrides) -> "StudyConfig":
        """A tiny grid for tests: 2 λ, 2 seeds, 1 k, 1 size, a few steps on few pairs."""
        tiny = dict(
            lbds=(0.0, 1.0),
            ks=(1,),
            sizes=(16,),
            seeds=(0, 1),
            later_seeds=(0, 1),
            failure_seeds=(0,),
            n_train=48,
            n_val=12,
            n_test=12,
            train_eval=12,
            steps=4,
            long_steps=6,
            longest_steps=8,
            batch_size=8,
            warmup_steps=1,
            log_every=2,
        )
        return cls(**{**tiny, **overrides})

    def validate(self) -> None:
        if 0.0 not in self.lbds or len(self.lbds) < 2:
            raise StudyError(f"lbds must hold 0 (the baseline) and at least one λ > 0; got {self.lbds}")
        if len(self.seeds) < 2 or len(self.later_seeds) < 2 or not set(self.later_seeds) <= set(self.seeds):
            raise StudyError(
                f"a paired test needs at least 2 seeds, and later_seeds must be among seeds; got {self.seeds}, "
                f"{self.later_seeds}"
            )
        if any(s >= self.n_train or s < 1 for s in self.sizes):
            raise StudyError(f"sizes must lie between 1 and n_train = {self.n_train}; got {self.sizes}")
        if not 1 <= self.n_train <= 3000 or not 1 <= self.n_val <= 300 or not 1 <= self.n_test <= 300:
            raise StudyError("n_train ≤ 3000, n_val ≤ 300 and n_test ≤ 300 (the benchmark's splits)")
        if min(self.steps, self.long_steps, self.longest_steps, self.batch_size) < 1:
            raise StudyError("steps, long_steps, longest_steps and batch_size must be ≥ 1")
        if self.views not in ("separate", "packed"):
            raise StudyError(f"views must be separate or packed; got {self.views}")


@dataclass(frozen=True)
class RunSpec:
    """One run: which part of the study it belongs to, and the settings that differ from the defaults."""

    stage: str  # "lambda", "failure", "k", "size", "lm_tokens", "long"
    start: str  # "scratch" or "pretrained"
    lbd: float
    seed: int
    predictors: int = 0
    n_train: int = 0  # 0 = the config's full training set
    steps: int = 0  # 0 = the config's steps
    lm_tokens: str = "code"
    gamma: float = 1.0
    distance: str = "cosine"


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------
def first_stage(c: StudyConfig) -> List[RunSpec]:
    """The λ sweep per start, and the failure modes (γ = 0, L2) at λ = 1."""
    specs = [RunSpec("lambda", s, lbd, seed) for s in STARTS for lbd in c.lbds for seed in c.seeds]
    specs += [RunSpec("failure", s, 1.0, seed, gamma=0.0) for s in STARTS for seed in c.failure_seeds]
    specs += [RunSpec("failure", s, 1.0, seed, distance="l2") for s in STARTS for seed in c.failure_seeds]
    return specs


def best_lambdas(runs: Sequence[dict], c: StudyConfig) -> Dict[str, float]:
    """Per start, the λ > 0 with the highest mean *validation* exact match (ties: the smaller λ)."""
    best = {}
    for start in STARTS:
        means = {
            lbd: mean_sd([r["exact_match"]["val"] for r in select(runs, stage="lambda", start=start, lbd=lbd)])["mean"]
            for lbd in c.lbds
            if lbd > 0
        }
        best[start] = max(sorted(means), key=lambda lbd: means[lbd])
    return best


def second_stage(c: StudyConfig, best: Dict[str, float]) -> List[RunSpec]:
    """At λ = 0 and each start's best λ: k, training-set size, lm_tokens = "all"."""
    specs = []
    for s in STARTS:
        b = best[s]
        specs += [RunSpec("k", s, b, seed, predictors=k) for k in c.ks for seed in c.later_seeds]
        for lbd in (0.0, b):
            specs += [RunSpec("lm_tokens", s, lbd, seed, lm_tokens="all") for seed in c.later_seeds]
            specs += [
                RunSpec("size", s, lbd, seed, n_train=n, steps=c.long_steps)
                for n in (*c.sizes, c.n_train)
                for seed in c.later_seeds
            ]
            specs += [RunSpec("long", s, lbd, seed, steps=c.longest_steps) for seed in c.later_seeds]
    return specs


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------
def prepare(c: StudyConfig, work: Path) -> Dict[str, str]:
    """Write what the runs read into `work`: the data files and the scratch start. Returns the paths."""
    from .pairs import save_jsonl

    splits = benchmark_splits()
    train, val, test = splits["train"][: c.n_train], splits["val"][: c.n_val], splits["test"][: c.n_test]
    paths = {"model:pretrained": str(Path(c.model_dir)), "model:scratch": str(work / "scratch")}
    for n in (*c.sizes, c.n_train):
        save_jsonl(train[:n], work / f"train_{n}.jsonl")
        paths[f"train:{n}"] = str(work / f"train_{n}.jsonl")
    for name, pairs in (("val", val), ("test", test)):
        save_jsonl(pairs, work / f"{name}.jsonl")
        paths[name] = str(work / f"{name}.jsonl")
    write_scratch_start(Path(c.model_dir), work / "scratch")
    return paths


def prepare_work(prepare, c, work: Path) -> Dict[str, str]:
    """`prepare(c, work)`: the data files and the scratch start, written into `work`, a temporary folder
    of the kit's own (never a user's place; removed after the study, whatever happens). A write that
    fails there (a full disk, a file-size limit) is one StudyError naming the folder: exit 2, no run
    has started."""
    from safetensors import SafetensorError

    try:
        return prepare(c, work)
    except (OSError, WriteError, SafetensorError) as e:
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise StudyError(
            f"could not write the study's work files in {work} ({reason}); free some space there, or set TMPDIR "
            "to a folder with room"
        ) from None


def write_scratch_start(model_dir: Path, out: Path) -> None:
    """The untrained weights pretraining started from (its recipe's seed), with the same tokenizer."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .pretrain import PretrainConfig, initial_model

    hf_logging.disable_progress_bar()  # no "Writing model shards" bar in the study's output
    recipe = load_recipe(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = initial_model(PretrainConfig(**recipe["config"]), tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def paired_config(spec: RunSpec, c: StudyConfig, paths: Dict[str, str]):
    """The `PairedConfig` of a run (the agreed fields of jepa_lite.paired)."""
    from . import PairedConfig

    n = spec.n_train or c.n_train
    return PairedConfig(
        model=paths[f"model:{spec.start}"],
        data=paths[f"train:{n}"],
        test_data=paths["test"],
        lbd=spec.lbd,
        predictors=spec.predictors,
        gamma=spec.gamma,
        distance=spec.distance,
        lm_tokens=spec.lm_tokens,
        steps=spec.steps or c.steps,
        batch_size=c.batch_size,
        lr=c.lr[spec.start],
        warmup_steps=c.warmup_steps,
        log_every=c.log_every,
        seed=spec.seed,
        device=c.device,
        precision=c.precision,
        views=c.views,
        length_groups=length_groups(c.device),
        compile=compiled(c.device),
        progress=False,
    )


def length_groups(device: str) -> int:
    """How many forward passes a study run cuts each batch into (`PairedConfig.length_groups`): on the CPU,
    CPU_LENGTH_GROUPS (less padding, the same sums); on a GPU one, where launches cost more than padding."""
    from ..config import pick_device

    return CPU_LENGTH_GROUPS if pick_device(device).type == "cpu" else 1


def compiled(device: str) -> bool:
    """Whether a study run compiles its model (`PairedConfig.compile`): on the CPU where a C++ compiler
    works (`fastpath.compiler_works`); each worker compiles once, in its first run, and every later run
    of that process reuses the code. On a GPU the runs replay CUDA graphs or run eagerly."""
    from ..config import pick_device
    from ..fastpath import compiler_works

    return pick_device(device).type == "cpu" and compiler_works()


def run_one(spec: RunSpec, c: StudyConfig, paths: Dict[str, str]) -> dict:
    """Train one run and measure it; returns its record for the results file (plain JSON values)."""
    from ..diagnostics import pca_2d
    from . import PairedTrainer
    from .pairs import load_jsonl

    start = time.perf_counter()
    config = paired_config(spec, c, paths)
    trainer = PairedTrainer(config, log=lambda s: None)
    history = trainer.fit()
    splits = {"train": trainer.train_pairs[: c.train_eval], "val": load_jsonl(paths["val"]), "test": trainer.test_pairs}
    record, x, y = measured(
        trainer, history, spec, splits, trainer.evaluate, start, time.perf_counter() - start, spec.seed == c.seeds[0]
    )
    record["lr"] = config.lr
    record["paired_config"] = {
        k: v for k, v in dataclasses.asdict(config).items() if k not in ("model", "data", "test_data")
    }
    if spec.seed == c.seeds[0]:  # one seed of each setting keeps a picture
        px, py = pca_2d(x, y)
        record["pca"] = {"text": px.tolist(), "code": py.tolist()}
    return rounded(record)


def measured(trainer, history, spec, splits: dict, score, begin: float, fit_seconds: float, examples: bool):
    """What both studies record of a trained run, and its test embeddings: (record, x, y). The record holds
    the run's spec, exact match on each split (`score(pairs)` → {"exact_match", "correct", "total"}), the loss
    histories, the test pairs' geometry and collapse measures, the times from `begin` and, with `examples`,
    six test predictions; x, y = Pred(Enc(Text)), Enc(Code) of the test pairs, (N, D) each."""
    import torch

    from ..diagnostics import collapse_metrics, pair_geometry

    scores = {name: score(pairs) for name, pairs in splits.items()}
    x, y = trainer.embed(trainer.test_pairs)
    geometry = {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in pair_geometry(x, y, seed=0).items()}
    record = {
        **dataclasses.asdict(spec),
        "n_train": len(trainer.train_pairs),
        "steps": trainer.step,
        "exact_match": {k: v["exact_match"] for k, v in scores.items()},
        "correct": {k: v["correct"] for k, v in scores.items()},
        "total": {k: v["total"] for k, v in scores.items()},
        "history": {k: history[k] for k in ("step", "lm_loss", "jepa_loss", "jepa_monitor")},
        "geometry": geometry,
        "collapse": {"text": collapse_metrics(x), "code": collapse_metrics(y)},
        "fit_seconds": fit_seconds,
        "seconds": time.perf_counter() - begin,
    }
    if examples:
        predictions = trainer.generate([p.text for p in trainer.test_pairs[:6]])
        record["examples"] = [[p.text, p.code, g] for p, g in zip(trainer.test_pairs[:6], predictions)]
    return record, x, y


def rounded(value, digits: int = 5):
    """Floats rounded to `digits` significant digits, everywhere in a JSON-like value (smaller files)."""
    if isinstance(value, float):
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run(args) -> tuple:
    index, spec, c, paths, runner = args
    return index, runner(spec, c, paths)


def run_many(
    specs: Sequence, c, paths: Dict[str, str], workers: int = 1, threads: int = 1, on_result=None, runner=None
) -> List[dict]:
    """Run `specs` in `workers` processes (spawned; `threads` torch threads each), in any order;
    returns their records in the order of `specs`. `on_result(record)` is called as each one ends.
    `runner(spec, c, paths) -> record` trains and measures one run (default `run_one`; a module-level
    function, so that spawned workers can import it). A runner may take a group of specs (trained as one,
    `groups`) and return their list of records: each is handed to `on_result`, and the list stands in
    `specs`' order.

    If anything interrupts the loop (Ctrl-C, the SIGTERM that `main` turns into KeyboardInterrupt, a
    failed run), the workers are terminated at once: no run goes on computing after the command has
    stopped, and the runs already handed to `on_result` are all that is kept."""
    runner = runner or run_one

    def handed(result):
        for record in result if isinstance(result, list) else [result]:
            if on_result:
                on_result(record)
        return result

    if workers <= 1:
        _worker_init(threads)
        return [handed(runner(s, c, paths)) for s in specs]
    import multiprocessing

    records: Dict[int, dict] = {}
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=(threads,))
    try:
        for index, record in pool.imap_unordered(_run, [(i, s, c, paths, runner) for i, s in enumerate(specs)]):
            records[index] = handed(record)
        pool.close()
        pool.join()
    finally:
        pool.terminate()  # a no-op after a clean close/join; stops the workers on any interruption
    return [records[i] for i in range(len(specs))]


def groups(specs: Sequence, most: int, workers: int, key) -> List[tuple]:
    """`specs` cut into groups of runs to train as one (`batched.BatchedRuns`): only runs of one `key(spec)` share
    a group, each group holds at most `most` and as few as keep `workers` processes busy (⌈len(specs) / workers⌉
    when that is fewer), and the groups go in the order of their first spec."""
    size = max(1, min(most, math.ceil(len(specs) / max(1, workers))))
    buckets: Dict[object, list] = {}
    for i, spec in enumerate(specs):
        buckets.setdefault(key(spec), []).append((i, spec))
    cut = [bucket[j : j + size] for bucket in buckets.values() for j in range(0, len(bucket), size)]
    return [tuple(spec for _, spec in group) for group in sorted(cut, key=lambda group: group[0][0])]


MPS_CONTROL = "nvidia-cuda-mps-control"
MPS_ENV = ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")
# a CUDA client through the new daemon: a daemon that starts but cannot serve (a container's limits) is caught here
MPS_PROBE = (sys.executable, "-c", "import torch; torch.ones(1, device='cuda').sum().item()")


@contextlib.contextmanager
def shared_gpu(mode: str, device: str, workers: int, log=print):
    """How the workers of one sitting share a CUDA GPU; yields "mps" or "time slices".

    Without help, the kernels of different processes never run on a GPU at the same time: the GPU switches
    between the processes. A study run's kernels are small (a ~1 M-parameter model, 32 pairs a step), so most
    of the GPU idles while it runs one process's kernel. NVIDIA's Multi-Process Service (MPS) runs the kernels
    of all the processes that connect to it side by side.

    `mode` "mps": start a private MPS control daemon for this sitting (its pipe and log folders in a temporary
    folder, named to the workers through CUDA_MPS_PIPE_DIRECTORY and CUDA_MPS_LOG_DIRECTORY, which spawned
    workers inherit), check that a CUDA process can run through it (`MPS_PROBE`), and stop it afterwards;
    StudyError if any of that fails. "auto": the same on CUDA with several workers where the daemon's program
    is found and no MPS folder is set already, and time slices wherever it is not or fails. "off": time slices.
    Call it before this process touches CUDA: a process is a client of MPS only if its first CUDA call comes
    after the variables are set."""
    if mode not in ("auto", "mps", "off"):
        raise StudyError(f"--share_gpu must be auto, mps or off; got {mode!r}")
    cuda, control = device.startswith("cuda"), shutil.which(MPS_CONTROL)
    preset = [k for k in MPS_ENV if os.environ.get(k)]
    if mode == "off" or (mode == "auto" and not (cuda and workers > 1 and control and not preset)):
        yield "time slices"
        return
    if not cuda or control is None or preset:
        why = (
            f"--device {device} is no CUDA GPU"
            if not cuda
            else f"{MPS_CONTROL} is not on PATH"
            if control is None
            else f"{preset[0]} is set already (an MPS daemon of its own: drop --share_gpu mps to use it)"
        )
        raise StudyError(f"--share_gpu mps: {why}")
    folder = Path(tempfile.mkdtemp(prefix="jepa_lite_mps_"))
    env = {k: str(folder / k.split("_")[2].lower()) for k in MPS_ENV}  # …/pipe, …/log
    for path in env.values():
        Path(path).mkdir()

    def in_env(argv: Sequence[str], stdin: Optional[str] = None) -> subprocess.CompletedProcess:
        """`argv` run with the daemon's folders in its environment (the daemon, its clients, its quit)."""
        return subprocess.run(
            list(argv), input=stdin, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
        )

    failed = None
    started = in_env([control, "-d"])
    if started.returncode != 0:
        why = (started.stderr or started.stdout).strip().splitlines()[-1:] or [f"exit code {started.returncode}"]
        failed = f"{MPS_CONTROL} -d failed: {why[0]}"
    else:
        probe = in_env(MPS_PROBE)
        if probe.returncode != 0:
            why = probe.stderr.strip().splitlines()[-1:] or [f"exit code {probe.returncode}"]
            failed = f"a CUDA process could not use the MPS daemon: {why[0]}"
            in_env([control], "quit\n")
    if failed:
        shutil.rmtree(folder, ignore_errors=True)
        if mode == "mps":
            raise StudyError(f"--share_gpu mps: {failed}")
        log(f"MPS not used ({failed}); the workers share the GPU in time slices")
        yield "time slices"
        return
    os.environ.update(env)
    log(f"the workers share the GPU through MPS (a daemon of this sitting's, folder {folder})")
    try:
        yield "mps"
    finally:
        for k in MPS_ENV:
            os.environ.pop(k, None)
        in_env([control], "quit\n")
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The whole study, and its file
# ---------------------------------------------------------------------------------------------
RUN_FIELDS = frozenset(f.name for f in dataclasses.fields(RunSpec)) | {
    "exact_match",
    "seconds",
}  # what a record must hold


def spec_key(spec: RunSpec, c: StudyConfig) -> tuple:
    """What identifies a run in the results file (a RunSpec with its training-set size and steps filled in)."""
    d = dataclasses.asdict(spec)
    d["n_train"], d["steps"] = spec.n_train or c.n_train, spec.steps or c.steps
    return tuple(sorted(d.items()))


def record_key(record: dict) -> tuple:
    """`spec_key` of the run a record holds."""
    return tuple(sorted((f.name, record[f.name]) for f in dataclasses.fields(RunSpec)))


def planned(study: dict) -> List[RunSpec]:
    """Every run the study's grid asks for (stage 2 needs its best λ: none before stage 1 is done)."""
    c = config_of(study)
    specs = first_stage(c)
    return specs + (second_stage(c, study["best_lambda"]) if study.get("best_lambda") else [])


def missing(study: dict) -> List[RunSpec]:
    """The planned runs that the file does not hold (an incomplete study says which)."""
    c, done = config_of(study), {record_key(r) for r in study["runs"]}
    return [s for s in planned(study) if spec_key(s, c) not in done]


def config_of(study: dict) -> StudyConfig:
    """The StudyConfig a results file was written with; StudyError if its config is not one."""
    try:
        c = dict(study["config"])
        for name in ("lbds", "ks", "sizes", "seeds", "later_seeds", "failure_seeds"):
            c[name] = tuple(c[name])
        return StudyConfig(**{**FILE_DEFAULTS, **c})
    except (KeyError, TypeError, ValueError) as e:
        raise StudyError(
            f"the results file's config is damaged ({type(e).__name__}: {str(e)[:100]}); name "
            "a new --out or drop --resume"
        ) from None


LOCAL = ("device", "model_dir")  # where a study runs may change from one sitting to the next; what it runs may not
FILE_DEFAULTS = {"views": "separate"}  # what a results file written before a setting existed ran with


class Sitting:
    """One sitting of a study, around its stages: the skeleton of both study commands' `run_study` (this one's
    and `nlrx_study`'s).

    `study` is the results dict, with no runs yet; `take_over(old)` moves in the runs of the results file that
    the same config wrote (--resume). Inside `with sitting.work(prepare, prefix) as run:`, `run(specs)` trains
    the specs that the file did not hold when the work began, `order`ed, in parallel (`run_many`, `runner`; with
    `together`, in groups of runs trained as one), and records each finished run (`finished`: added, timed, the
    file written with `write`, `line(record)` logged). `close()` marks the study complete, writes it and returns it."""

    # the runs to do, in the order they go to the workers (a study may sort them: `nlrx_study`)
    order = staticmethod(list)

    def __init__(
        self,
        study: dict,
        c,
        out: Path,
        workers: int,
        threads: int,
        log,
        *,
        write,
        line,
        keys,
        runner=None,
        together=None,
    ):
        self.study, self.c, self.out, self.workers, self.threads, self.log = study, c, out, workers, threads, log
        self.write, self.line = write, line
        # (record_key(record), spec_key(spec)): what identifies a run in the file and in the grid
        self.record_key, self.spec_key = keys
        self.runner = runner  # trains one run (None: `run_one`)
        # (most runs per group, key of the runs that may share one, runner of a group): runs trained as one (`groups`)
        self.together = together
        self.begin, self.before = time.perf_counter(), 0.0

    def take_over(self, old: dict, defaults: Optional[dict] = None) -> None:
        """--resume: the runs of `old`, the file at `out`, if it was written with this config (`defaults`: the
        settings that files from before them lack); StudyError otherwise."""
        mine = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(self.c))).items() if k not in LOCAL}
        theirs = {**(defaults or {}), **old["config"]}
        if mine != {k: v for k, v in theirs.items() if k not in LOCAL}:
            raise StudyError(f"--resume: {self.out} was written with another config; name a new --out or drop --resume")
        self.study["runs"], self.before = old["runs"], old.get("seconds", 0.0)

    def finished(self, record: dict) -> None:
        self.study["runs"].append(record)
        self.study["seconds"] = self.before + time.perf_counter() - self.begin
        self.write(self.study, self.out)
        self.log(f"[{len(self.study['runs'])}] {self.line(record)}")

    @contextlib.contextmanager
    def work(self, prepare, prefix: str):
        """The work files (`prepare_work`, in a temporary folder removed afterwards), and `run(specs)`."""
        done = {self.record_key(r) for r in self.study["runs"]}

        def run(specs) -> None:
            todo = self.order([s for s in specs if self.spec_key(s) not in done])
            runner = self.runner
            if self.together:
                most, key, runner = self.together
                todo = groups(todo, most, self.workers, key)
            run_many(todo, self.c, paths, self.workers, self.threads, self.finished, runner=runner)

        sweep_work_folders(prefix)
        with tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}_") as tmp:
            paths = prepare_work(prepare, self.c, Path(tmp))
            yield run

    def close(self) -> dict:
        self.study["complete"] = True
        self.study["seconds"] = self.before + time.perf_counter() - self.begin
        self.write(self.study, self.out)
        return self.study


def sweep_work_folders(prefix: str) -> List[str]:
    """Remove the work folders (`<prefix><pid>_…` under TMPDIR) that studies killed with SIGKILL left behind:
    those whose process is gone. A folder of a study still running, or of another user, is left alone.
    Returns the names removed."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*_*"):
        pid = folder.name[len(prefix) :].split("_", 1)[0]
        if not pid.isdigit() or not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: is the process there?
            continue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        except (PermissionError, OverflowError, ValueError):
            continue
    return removed


def recipe_summary(model_dir) -> dict:
    """What a results file records of the pretrained start: its recipe's command, losses and size."""
    recipe = load_recipe(Path(model_dir))
    return {k: recipe[k] for k in ("command", "final_train_loss", "heldout_loss", "parameters")}


def _run_line(record: dict) -> str:
    """The log line of a finished run (after its number)."""
    return (
        f"{record['stage']:9s} {record['start']:10s} λ={record['lbd']:<5g} "
        f"k={record['predictors']} "
        f"n={record['n_train']} {record['lm_tokens']} γ={record['gamma']:g} {record['distance']} "
        f"seed {record['seed']}: "
        f"test {record['exact_match']['test']:.3f} val {record['exact_match']['val']:.3f} "
        f"train {record['exact_match']['train']:.3f} ({record['seconds']:.0f} s)"
    )


def run_study(
    c: StudyConfig, out: Path, workers: int = 1, threads: int = 1, resume: bool = False, log=print, sharing: str = ""
) -> dict:
    """Both stages; writes `out` after every finished run ("complete": false until the end).

    With `resume`, the runs already in `out` (written with the same config) are kept and skipped.
    `sharing` (how the workers share the GPU, `shared_gpu`) is the command's concern; this file does not record it.
    """
    c.validate()
    study = {
        "kind": KIND,
        "version": 1,
        "complete": False,
        "config": dataclasses.asdict(c),
        "pretrained": recipe_summary(c.model_dir),
        "selection": "best λ > 0 per start by mean validation exact match",
        "best_lambda": None,
        "runs": [],
    }
    keys = (record_key, lambda s: spec_key(s, c))
    sitting = Sitting(study, c, out, workers, threads, log, write=write_study, line=_run_line, keys=keys)
    if resume and out.exists():
        sitting.take_over(load_study(out), defaults=FILE_DEFAULTS)
    with sitting.work(prepare, "jepa_lite_study_") as run:
        run(first_stage(c))
        study["best_lambda"] = best_lambdas(study["runs"], c)
        log(f"best λ on the validation split: {study['best_lambda']}")
        run(second_stage(c, study["best_lambda"]))
    return sitting.close()


def check_results_out(out: Path, kind: str, what: str) -> None:
    """Only a results file of this study (`kind`; `what` names it) may be replaced (users' files are sacred);
    its folder must exist and take a new file (`writer.check_writable`)."""
    if out.is_dir():
        raise StudyError(f"--out {out} is a folder; name a .json file")
    if out.exists() and not json_marked(out, "kind", kind):
        raise StudyError(f"--out {out} exists and is not {what}; name a new file")
    if not out.parent.is_dir():
        raise StudyError(f"the folder of --out {out} does not exist")
    try:
        check_writable(out.parent, "the study results", "--out")
    except WriteError as e:
        raise StudyError(str(e)) from None


def check_out(out: Path) -> None:
    """Only a study file written by the kit may be replaced (`check_results_out`)."""
    check_results_out(out, KIND, "a study results file")


def check_device(name: str) -> None:
    """StudyError unless `name` is a device this machine has (`train.pick_device`'s rules)."""
    from ..errors import ConfigError
    from ..train import pick_device

    try:
        pick_device(name)
    except ConfigError as e:
        raise StudyError(f"--device: {e}") from None


def write_study(study: dict, out: Path) -> None:
    """Atomic write (`writer.write_json`: a temporary name of the kit's own, fsync, rename)."""
    write_json(out, study, "the study results", separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# Reading the results (notebook 06)
# ---------------------------------------------------------------------------------------------
def load_study(path: Path = STUDY_FILE) -> dict:
    """The study results file, as written by `python -m jepa_lite.paired.study`."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path} not found: run `python -m jepa_lite.paired.study --out {shlex.quote(str(path))}`")
    try:
        study = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise StudyError(f"{path} is not a readable study results file ({type(e).__name__}: {str(e)[:100]})") from None
    if not isinstance(study, dict) or study.get("kind") != KIND:
        raise StudyError(f"{path} is not a study results file")
    runs = study.get("runs")
    if (
        not isinstance(study.get("config"), dict)
        or not isinstance(runs, list)
        or not all(isinstance(r, dict) and RUN_FIELDS <= r.keys() for r in runs)
    ):
        raise StudyError(f"{path} is a damaged study results file (its config or runs are missing or incomplete)")
    return study


def select(study_or_runs, **where) -> List[dict]:
    """Runs whose fields equal `where` (e.g. stage="lambda", start="pretrained", lbd=0.1), by seed."""
    runs = study_or_runs["runs"] if isinstance(study_or_runs, dict) else study_or_runs
    return sorted((r for r in runs if all(r.get(k) == v for k, v in where.items())), key=lambda r: r["seed"])


def value(run: dict, metric: str) -> float:
    """A run's number by dotted name: "exact_match.test", "geometry.retrieval_at_1", "seconds" …"""
    v = run
    for part in metric.split("."):
        v = v[part]
    return float(v)


def baseline_of(study: dict, run: dict) -> dict:
    """The filters of the λ = 0 runs a run is compared with: same start, size and lm_tokens, k = 0."""
    stage = {
        "lambda": "lambda",
        "failure": "lambda",
        "k": "lambda",
        "size": "size",
        "lm_tokens": "lm_tokens",
        "long": "long",
    }[run["stage"]]
    where = {"stage": stage, "start": run["start"], "lbd": 0.0}
    if stage == "size":
        where["n_train"], where["steps"] = run["n_train"], run["steps"]
    return where


def effect(study: dict, metric: str = "exact_match.test", baseline: Optional[dict] = None, **where) -> Dict[str, float]:
    """Paired effect of the runs `where` against their λ = 0 baseline (or the runs `baseline`) over
    the seeds both have.

    Returns `stats.paired_t` (diff, ci_low, ci_high, p, …) plus the bootstrap interval
    ("boot_low", "boot_high"), "seeds", and "within_noise" (the t interval contains 0).
    """
    runs = select(study, **where)
    if not runs:
        raise StudyError(f"no runs match {where}")
    base = {r["seed"]: r for r in select(study, **(baseline or baseline_of(study, runs[0])))}
    seeds = [r["seed"] for r in runs if r["seed"] in base]
    a = [value(r, metric) for r in runs if r["seed"] in base]
    b = [value(base[s], metric) for s in seeds]
    t = paired_t(a, b)
    boot = bootstrap_interval(a, b)
    return {
        **t,
        "boot_low": boot["low"],
        "boot_high": boot["high"],
        "seeds": seeds,
        "within_noise": t["ci_low"] <= 0 <= t["ci_high"],
    }


def summary(study: dict, metric: str = "exact_match.test", **where) -> Dict[str, float]:
    """Mean and sd over seeds of `metric` for the runs `where`."""
    return mean_sd([value(r, metric) for r in select(study, **where)])


def lambda_table(study: dict, metric: str = "exact_match.test") -> List[dict]:
    """One row per (start, λ) of the sweep: mean, sd, and the paired effect against λ = 0 (None at λ = 0)."""
    rows = []
    for start in STARTS:
        for lbd in study["config"]["lbds"]:
            where = dict(stage="lambda", start=start, lbd=lbd)
            rows.append(
                {
                    "start": start,
                    "lbd": lbd,
                    **summary(study, metric, **where),
                    "effect": effect(study, metric, **where) if lbd > 0 else None,
                }
            )
    return rows


def estimate_seconds(timed: dict, study: dict, workers: int = 2) -> Dict[str, float]:
    """How long `study`'s whole grid would take where `timed` was run (a partial study file written
    there, e.g. `--device cpu --workers 2` stopped after a few runs).

    Seconds per step are measured separately for λ = 0 runs (the LM row only) and λ > 0 runs (the
    views too) from `timed`'s runs, then multiplied by the steps of each kind that `study` holds:

        estimate = (Σ steps(λ = 0) · t₀ + Σ steps(λ > 0) · t₁) / workers

    The evaluation after each run is included in its seconds, spread over its steps.
    """
    per_step = {}
    for kind, pick in (("lm_only", lambda r: r["lbd"] == 0), ("with_jepa", lambda r: r["lbd"] > 0)):
        runs = [r for r in timed["runs"] if pick(r)]
        if not runs:
            raise StudyError(f"the timing file has no {kind} run: let it run longer")
        per_step[kind] = sum(r["seconds"] for r in runs) / sum(r["steps"] for r in runs)
    steps = {
        "lm_only": sum(r["steps"] for r in study["runs"] if r["lbd"] == 0),
        "with_jepa": sum(r["steps"] for r in study["runs"] if r["lbd"] > 0),
    }
    total = sum(steps[k] * per_step[k] for k in steps) / workers
    return {
        "seconds": total,
        "hours": total / 3600,
        "per_step": per_step,
        "steps": steps,
        "timed_runs": len(timed["runs"]),
        "workers": workers,
    }


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def _interrupt(signum, frame):
    raise KeyboardInterrupt


def study_parser(prog: str, description: str, default_out: Optional[Path]):
    """The flags both study commands share (this one's and `nlrx_study`'s)."""
    from ..cli import _Parser  # one-line argparse errors, exit 2

    p = _Parser(prog=prog, description=description)
    p.add_argument(
        "--out",
        default=None if default_out is None else str(default_out),
        help="results file" + (f" (default {default_out})" if default_out is not None else ""),
    )
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda: where each run trains (default cpu)")
    p.add_argument("--model_dir", help=f"the pretrained start (default {KIT_LM})")
    p.add_argument("--fast", action="store_true", help="a tiny grid, for a quick check")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --out and run only the missing ones")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        help="the number format every run trains in (default fp32: the committed studies'); bf16 is faster on a CPU "
        "with AMX (docs/study.md, 'On a laptop CPU'); a study keeps the one it started with",
    )
    p.add_argument(
        "--share_gpu",
        choices=("auto", "mps", "off"),
        default="auto",
        help="how the workers share a CUDA GPU: mps (NVIDIA's Multi-Process Service, a daemon of the sitting's "
        "own: their kernels run side by side), off (time slices), auto (default: mps on CUDA with several "
        "workers where nvidia-cuda-mps-control is found, else time slices)",
    )
    return p


def study_config(args, names: Sequence[str], fresh, from_file):
    """The config of a study command: `fresh(**given)`, the flags `names` and `--precision` that were given, or with
    --resume and an existing --out the file's own config (`from_file(out)`) with this machine's device, the kit's
    model folder unless given, and the other flags given (a --precision other than the file's is refused);
    validated."""
    over = {k: getattr(args, k) for k in (*names, "precision") if getattr(args, k, None) is not None}
    c = fresh(**over)
    if args.resume and Path(args.out).is_file():
        saved = from_file(Path(args.out))
        if over.get("precision", saved.precision) != saved.precision:
            raise StudyError(
                f"--precision {over['precision']}: {args.out} was run in {saved.precision}, and a study keeps one "
                "precision; leave --precision out, or write the other to another --out"
            )
        c = dataclasses.replace(saved, **{"model_dir": str(KIT_LM), **over})
    c.validate()
    return c


def study_main(args, build, check, run) -> int:
    """The body both study commands share. `build(args) -> config` (validated), `check(out)` refuses an --out
    that is not this study's file, `run(config, out, workers, threads, resume=) -> study` (`run_study`). Exit
    codes: 0 done; 2 bad input, one `error:` line before any work (a second process on the same --out included:
    one study per results file, a lock; and no room for the work files, `prepare_work`);
    1 the results file could not be written mid-run (its last write is whole); 130 stopped by Ctrl-C or SIGTERM
    (the workers too), the finished runs kept in the file."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        together = getattr(args, "together", None)  # nlrx_study's flag
        if args.workers < 1 or args.threads < 1 or (together is not None and together < 1):
            raise StudyError("--workers, --threads and --together must be ≥ 1")
        c = build(args)
        out = Path(args.out)
        check(out)
        load_recipe(Path(c.model_dir))
        lock = PathLock(out, "--out")
        try:
            lock.acquire()
        except WriteError as e:
            raise StudyError(str(e)) from None
        try:
            check(out)  # again under the lock
            remove_stale_temps(out.parent, out.name)
            with shared_gpu(args.share_gpu, c.device, args.workers) as sharing:  # before this process touches CUDA
                check_device(c.device)
                extra = {"together": together} if together is not None else {}
                study = run(c, out, args.workers, args.threads, resume=args.resume, sharing=sharing, **extra)
        finally:
            lock.release()
    except (StudyError, PretrainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the results so far are in the file, marked incomplete", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{len(study['runs'])} runs in {study['seconds']:.0f} s; wrote {out}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = study_parser(
        "python -m jepa_lite.paired.study",
        "Run notebook 06's study of the kit's own pairs and write its results file.",
        STUDY_FILE,
    )
    p.add_argument("--steps", type=int, help="fine-tuning steps per run (default 400)")
    args = p.parse_args(argv)

    def fresh(**over) -> StudyConfig:
        return StudyConfig.fast(**over) if args.fast else StudyConfig(**over)

    def build(args) -> StudyConfig:
        return study_config(args, ("device", "steps", "model_dir"), fresh, lambda out: config_of(load_study(out)))

    return study_main(args, build, check_out, run_study)


if __name__ == "__main__":
    sys.exit(main())

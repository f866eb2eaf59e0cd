"""`python -m jepa_lite.paired.bench` (also `python -m jepa_lite.bench --objective paired`): what adding
the JEPA term costs the paper's objective, step time and memory of each path on the same model,
data and batches — LM only, LM + JEPA in separate rows, packed (one row per pair, or several pairs
per row of 1,024 tokens, on CUDA also through FlexAttention and compiled), with loss dropout 0.5, and Semantic
Tube Prediction (one pass of the LM row, the authors' successor).
`paired_main` states the FLOP count. The paper's code lives here, beside its trainer: the core benchmark
(`jepa_lite.bench`) hands `--objective paired` over to this module in a process of its own, so the core
never imports the paper; the helpers (device, timing, peak memory, flag checks) are the core benchmark's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from ..bench import BenchError, check_common_args, describe, peak_memory_mb, peak_tflops, pick_device, sync
from ..cli import _Parser
from ..data import DataError
from ..encoders import BackboneError
from ..errors import ConfigError
from ..precision import CHOICES as PRECISIONS
from ..precision import resolve_precision
from ..writer import WriteError, check_writable, write_text
from . import PairedConfig, PairedTrainer
from .packing import lm_row_tokens, longest_pair
from .rows import code_view, lm_row, text_view

ROW_TOKENS = 1024  # the "rows" path's row length: several pairs per row (packing.py)
# name → (label, PairedConfig overrides). Same model, data, batches and batch size in every path.
PAIRED_PATHS = {
    "lm_only": ("LM only (λ = 0)", dict(lbd=0.0)),
    # the LM rows of several pairs in each row: what the fast path gives a run without the JEPA term
    "lm_rows": ("LM only, LM rows packed in rows of 1,024+", dict(lbd=0.0, views="packed", pack_length="rows")),
    "lm_flex": (
        "LM only, rows, FlexAttention, compiled",
        dict(lbd=0.0, views="packed", pack_length="rows", attention="flex", compile=True),
    ),
    "separate": ("LM + JEPA, separate rows (3 per pair)", dict(lbd=1.0, views="separate")),
    "packed": ("LM + JEPA, packed (1 row per pair)", dict(lbd=1.0, views="packed")),
    # pack_length: ROW_TOKENS, or the longest pair when --max_length asks for more (packing.longest_pair)
    "rows": ("LM + JEPA, pairs packed in rows of 1,024+", dict(lbd=1.0, views="packed", pack_length="rows")),
    "flex": (
        "LM + JEPA, rows, FlexAttention, compiled",
        dict(lbd=1.0, views="packed", pack_length="rows", attention="flex", compile=True),
    ),
    # the official way (peer.py): Hugging Face's Trainer, three rows of 512 tokens per pair, bf16, checkpointing
    "peer": ("peer: HF Trainer, 3 rows of 512 per pair", dict(lbd=1.0, views="separate")),
    "dropout": ("LM + JEPA, separate, loss dropout 0.5", dict(lbd=1.0, views="separate", loss_dropout=0.5)),
    "stp": ("LM + STP, the LM row alone (λ = 0.02)", dict(lbd=0.02, objective="stp", views="separate")),
}


def data_path(data: Optional[str]) -> Optional[str]:
    """The JSONL file `--data` names (None: the built-in regex pairs); 'nlrx' is NL-RX-SYNTH's training file."""
    if data == "nlrx":
        from .nlrx import FILES

        return str(FILES["train"])
    return data


def data_label(data: Optional[str]) -> str:
    """How the report's header names the pairs `--data` gave."""
    return {None: "built-in regex pairs", "nlrx": "NL-RX-SYNTH training pairs"}.get(data, data)


def paired_flops(trainer, idx, with_jepa: bool) -> tuple[float, int]:
    """(model FLOPs, real tokens) of one step on the pairs `idx` (formula in `paired_main`'s docstring)."""
    cfg = trainer.model.config
    d, n_layer, vocab = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
    emb = sum(m.weight.numel() for m in trainer.model.modules() if isinstance(m, nn.Embedding))
    n = sum(p.numel() for p in trainer.model.parameters()) - emb + vocab * d  # + the LM head's product (tied weights)
    lengths = []
    for i in idx:
        lengths.append(len(lm_row(trainer.train_text[i], trainer.train_code[i], trainer.ids)[0]))
        if with_jepa and trainer.config.objective != "stp":  # STP reads the LM row it already ran
            if trainer.config.views == "separate" or trainer.config.predictors > 0:
                lengths.append(len(text_view(trainer.train_text[i], trainer.config.predictors, trainer.ids)))
            lengths.append(len(code_view(trainer.train_code[i], trainer.ids)))
    T = sum(lengths)
    head_positions = trainer.scored_tokens(idx) if trainer.scored_head else T  # where the LM head runs
    flops = 6 * (n - vocab * d) * T + 6 * vocab * d * head_positions + 12 * n_layer * d * sum(x * x for x in lengths)
    return flops, T


def paired_worker(args, name: str) -> Dict:
    """Time `--steps` optimizer steps of one path after `--warmup` untimed ones, in this process."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    _, overrides = PAIRED_PATHS[name]
    if overrides.get("pack_length") == "rows":
        overrides = {**overrides, "pack_length": max(ROW_TOKENS, longest_pair(args.max_length, 0))}
    config = PairedConfig(
        model=args.model or "tiny",
        data=data_path(args.data),
        batch_size=args.batch_size,
        max_length=args.max_length,
        device=args.device,
        precision=args.precision,
        steps=args.warmup + args.steps,
        progress=False,
        predictors=0,
        **overrides,
    )
    trainer = PairedTrainer(config, log=lambda s: None)
    device = trainer.device
    if name == "peer":
        return peer_worker(args, trainer)
    for _ in range(args.warmup):
        trainer.train_step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    flops, tokens, lm_tokens = step_work(trainer, trainer.step, args.steps)
    losses = []
    t0 = time.perf_counter()
    for _ in range(args.steps):
        losses.append(trainer.train_step()[0])
    sync(device)
    seconds = time.perf_counter() - t0
    return {
        "name": name,
        "step_s": seconds / args.steps,
        "lm_tokens_per_s": lm_tokens / seconds,
        "tokens_per_s": tokens / seconds,
        "tflops": flops / seconds / 1e12,
        "peak_mb": peak_memory_mb(device),
        "precision": trainer.precision.name,
        "loss": float(torch.stack(losses).float().mean()),
        "device": describe(device),
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
    }


def step_work(trainer, first: int, steps: int) -> tuple[float, int, int]:
    """(model FLOPs, tokens processed, LM-row tokens) of optimizer steps first … first + steps − 1."""
    flops = tokens = lm_tokens = 0
    for s in range(first, first + steps):
        idx = trainer.batch_indices(s)
        f, t = paired_flops(trainer, idx, trainer.config.lbd > 0 and not trainer.jepa_dropped(s))
        flops, tokens = flops + f, tokens + t
        lm_tokens += sum(lm_row_tokens(len(trainer.train_text[i]), len(trainer.train_code[i])) for i in idx)
    return flops, tokens, lm_tokens


def peer_worker(args, trainer) -> Dict:
    """The peer row (`peer.py`): Hugging Face's Trainer on the same model, pairs and batches as the other paths."""
    from .peer import OFFICIAL_LENGTH, peer_rows, time_peer

    length = max(OFFICIAL_LENGTH, args.max_length * 2)  # the LM row holds Text and Code
    order = [i for s in range(args.warmup + args.steps) for i in trainer.batch_indices(s)]
    examples = peer_rows(
        [trainer.train_text[i] for i in order], [trainer.train_code[i] for i in order], trainer.ids, length
    )
    device = trainer.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step_s = time_peer(trainer.model, examples, args.batch_size, args.warmup, args.steps, device)
    flops, tokens, lm_tokens = step_work(trainer, args.warmup, args.steps)
    seconds = step_s * args.steps
    return {
        "name": "peer",
        "step_s": step_s,
        "lm_tokens_per_s": lm_tokens / seconds,
        "tokens_per_s": tokens / seconds,
        "tflops": flops / seconds / 1e12,
        "peak_mb": peak_memory_mb(device),
        "precision": "bf16" if device.type == "cuda" else "fp32",
        "loss": float("nan"),
        "device": describe(device),
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
    }


def paired_main(args) -> int:
    """LM-only step against LM + JEPA (separate rows; packed, one row per pair or several pairs per row of
    1,024 tokens, on CUDA also with FlexAttention, compiled; loss dropout 0.5) and LM + STP: same model, data (the
    built-in regex pairs, or `--data`, k = 0) and batches; each path in its own process (its own peak memory).

        FLOPs per step = Σ_rows (6·N·ℓ + 12·n_layer·d·ℓ²)
          rows: every row the step runs (LM rows; with the JEPA term the Text and Code views, or the
          blocks of a packed row — its Text view is the LM row's prefix when k = 0, so not counted; STP
          runs no row beyond the LM row: its sums and cosine are O(ℓ·d), left out),
          ℓ = real tokens of the row or block (padding and the packed mask's empty blocks excluded),
          N = parameters outside the embeddings + vocabulary × d (the LM head's product),
          6·N·ℓ: forward (2Nℓ) and backward (4Nℓ); 12·n_layer·d·ℓ²: attention scores and weighted
          sums (4ℓ²d per layer forward, ×3 with the backward).
        A path that applies the LM head only where the loss scores (one packed row per pair:
        `rows.head_loss_sum`) counts its product, 6·vocabulary·d per position, only at the scored
        positions: the head's part of 6·N·ℓ becomes 6·vocabulary·d·(scored labels).
        MFU = FLOPs per second / peak dense bf16 FLOPs of the GPU (H100/H200 SXM: 989 TFLOP/s).

    Throughput is quoted as LM tokens/s: real tokens of the LM rows, the same work in every path, so
    the ratios compare what each way of adding the JEPA term costs.
    """
    if args._worker:
        print(json.dumps(paired_worker(args, args._worker)))
        return 0
    device = pick_device(args.device)
    print(
        f"jepa_lite benchmark, paired objective · device {describe(device)} · torch {torch.__version__} · "
        f"{os.environ.get('OMP_NUM_THREADS') or torch.get_num_threads()} CPU threads"
    )
    print(
        f"model {args.model or 'tiny'} · batch {args.batch_size} pairs · {data_label(args.data)} · k = 0 · "
        f"{args.steps} timed steps after {args.warmup} warm-up steps"
    )
    peak = peak_tflops(device, args.peak_tflops)
    paths = [
        n for n in chosen_paths(args.paths) if device.type == "cuda" or PAIRED_PATHS[n][1].get("attention") != "flex"
    ]
    if "peer" in paths and importlib.util.find_spec("accelerate") is None:  # Hugging Face's Trainer needs it
        paths.remove("peer")
        print("peer row left out: Hugging Face's Trainer needs accelerate (pip install accelerate)")
    results, failed = {}, {}
    for name in paths:  # each path's line as soon as it is measured; LM only, the base, first
        cmd = [sys.executable, "-m", "jepa_lite.paired.bench", "--_worker", name]
        for k in ("model", "data", "batch_size", "max_length", "steps", "warmup", "device", "precision"):
            if getattr(args, k) is not None:
                cmd += [f"--{k}", str(getattr(args, k))]
        r = subprocess.run(cmd, capture_output=True, text=True)
        label = PAIRED_PATHS[name][0]
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1].removeprefix("error: ")
            if name == "lm_only":
                raise BenchError(f"the paired worker '{name}' failed: {last}")
            print(f"  {label:40s} failed: {last}", flush=True)  # e.g. out of memory: the other paths still run
            failed[name] = last
            continue
        results[name] = res = json.loads(r.stdout.strip().splitlines()[-1])
        base = results["lm_only"]
        if name == "lm_only":
            print(f"{base['parameters'] / 1e6:.1f} M parameters, {base['precision']}")
        mfu = f"   {100 * res['tflops'] / peak:5.1f}% MFU" if peak else ""
        print(
            f"  {label:40s} {res['step_s'] * 1e3:8.1f} ms/step ({res['step_s'] / base['step_s']:.2f}× LM only)   "
            f"{res['lm_tokens_per_s']:10,.0f} LM tok/s   {res['tokens_per_s']:10,.0f} tok/s processed   "
            f"peak memory {res['peak_mb']:8,.0f} MB ({res['peak_mb'] / base['peak_mb']:.2f}×){mfu}",
            flush=True,
        )
    targets = target_lines(results, peak)
    print("\n".join(targets))
    if args.json:
        about = {k: getattr(args, k) for k in ("model", "data", "batch_size", "max_length", "steps", "warmup")}
        about.update(device=describe(device), torch=torch.__version__, threads=torch.get_num_threads())
        about.update(peak_tflops=peak, results=results, failed=failed, targets=targets)
        write_text(args.json, json.dumps(about, indent=1), "the --json file")
        print(f"figures: {args.json}")
    return 0


def chosen_paths(paths: Optional[str]) -> List[str]:
    """The paths `--paths` names (comma-separated), in the table's order, LM only always first; all by default."""
    if paths is None:
        return list(PAIRED_PATHS)
    names = {n.strip() for n in paths.split(",") if n.strip()}
    unknown = sorted(names - set(PAIRED_PATHS))
    if unknown:
        raise ConfigError(f"--paths: unknown path {', '.join(unknown)}; choose from {', '.join(PAIRED_PATHS)}")
    return [n for n in PAIRED_PATHS if n in names | {"lm_only"}]


def target_lines(results: Dict[str, Dict], peak: Optional[float]) -> List[str]:
    """The ratios the issue's targets are stated in, each only where its paths were measured."""
    step = {n: r["step_s"] for n, r in results.items()}
    out = []
    if "packed" in step:
        out.append(f"packed LM + JEPA / LM only: {step['packed'] / step['lm_only']:.2f}× step time (target ≤ 1.5×)")
    if "rows" in step:
        out.append(f"pairs in rows / LM only: {step['rows'] / step['lm_only']:.2f}× step time")
    lm_fast = min((n for n in ("lm_only", "lm_rows", "lm_flex") if n in step), key=step.get)
    jepa = [n for n in ("packed", "rows", "flex") if n in step]
    if jepa:
        fast = min(jepa, key=step.get)
        out.append(
            f"kit's fastest LM + JEPA ({fast}) / kit's fastest LM only ({lm_fast}): "
            f"{step[fast] / step[lm_fast]:.2f}× step time (target ≤ 1.2×)"
        )
    if peak:
        out.append(f"kit's fastest LM only: {100 * results[lm_fast]['tflops'] / peak:.1f}% MFU (target ≥ 25% in bf16)")
    if jepa and "peer" in results:
        kit = max(results[n]["lm_tokens_per_s"] for n in jepa)
        out.append(
            f"kit's fastest LM + JEPA / peer: {kit / results['peer']['lm_tokens_per_s']:.2f}× LM tokens/s (target ≥ 3×)"
        )
    if "stp" in step:
        out.append(f"LM + STP / LM only: {step['stp'] / step['lm_only']:.2f}× step time (target ≤ 1.1×)")
    return out


def build_parser() -> argparse.ArgumentParser:
    """The flags of the paired benchmark: those of `python -m jepa_lite.bench` that it reads, same defaults."""
    p = _Parser(prog="python -m jepa_lite.paired.bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default=None,
        help="'tiny' (default), 'random:llama-135m', a folder or a hub name, as in jepa_lite.paired",
    )
    p.add_argument(
        "--data",
        default=None,
        help="the pairs: the built-in regex pairs (default), 'nlrx' (NL-RX-SYNTH's training file, shipped with "
        "the kit) or a JSONL file in the paper's format",
    )
    p.add_argument("--batch_size", type=int, default=8, help="pairs per step")
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="timed steps per path")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (default), fp32, bf16, or fp16 (CUDA only: autocast + GradScaler)",
    )
    p.add_argument("--peak_tflops", type=float, default=None, help="peak dense bf16 TFLOP/s of the GPU, for MFU")
    p.add_argument(
        "--paths",
        default=None,
        help=f"comma-separated paths to time (LM only always runs: the base); default all: {', '.join(PAIRED_PATHS)}",
    )
    p.add_argument(
        "--json",
        metavar="FILE",
        help="also write the figures (each path's result, the target lines) as JSON to FILE, a new file",
    )
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The paired benchmark's command line; a bad flag or a failed worker ends in one `error:` line, exit 2."""
    try:
        args = build_parser().parse_args(argv)
        check_common_args(args)
        chosen_paths(args.paths)  # an unknown name: one error line before any work
        if args.json:  # checked before any work: the figures must have somewhere to go
            if Path(args.json).exists():
                raise ConfigError(f"--json {args.json} exists; the bench does not replace files: give a new name")
            check_writable(Path(args.json).absolute().parent, "the --json file", "--json")
        if args.data is not None and not Path(data_path(args.data)).is_file():
            raise ConfigError(f"--data {args.data}: no such file (give 'nlrx' or a JSONL file of pairs)")
        resolve_precision(args.precision, pick_device(args.device))  # e.g. fp16 on the CPU: refused before any work
        return paired_main(args)
    except (ConfigError, DataError, BackboneError, BenchError, WriteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""How fast is the kit's training path, next to the loop of the article it grew from?

    python -m jepa_lite.bench                                   # CPU: MiniLM-L6, batch 8
    python -m jepa_lite.bench --model random:distilbert --batch_size 64 --device cuda
    python -m jepa_lite.bench --model random:bert --batch_size 512 --device cuda --compile --warmup 150
    python -m jepa_lite.bench --model random:distilbert --batch_size 64 --device cuda --precision fp32,bf16,fp16

Both paths train the same model on the same text with the same batch size and max length. The
*original loop* is our re-implementation of the article's minimal script, kept faithful to what makes
it slow: it tokenises every batch again, masks with per-token Python loops (and overshoots the mask
ratio), computes the predictor at every position, runs in fp32, updates the EMA with a Python loop
over parameters and reads `loss.item()` every step. The *fast path* is `jepa_lite.train.Trainer`
itself: text tokenised once, vectorised masking, length-grouped batches, bf16 autocast and fused
AdamW on GPU, a foreach EMA, no per-step host sync, and optionally `torch.compile` — on CUDA with
the whole step (forward, backward, clipping, AdamW, EMA) replayed as one CUDA graph per padded
length (`jepa_lite.graphs`). The fast path's warm-up runs `fit()` itself for `--warmup` steps, or
more: until every padded length of the timed steps has been met twice with CUDA graphs (once to
compile, once to record its graph) or once on the CPU in bf16 (oneDNN builds its kernels for each
new shape), so that no such one-time cost falls in the timed steps.

`--precision` takes one precision or several (one fast-path row each, every row in its own process,
beside the one original-loop row). `fp16` is fp16 autocast with a GradScaler (loss scaling), what
`precision="auto"` picks on CUDA GPUs without native bf16 (T4, V100); its row adds the loss scale
before and after the timed steps and how many of them the scaler skipped (gradients that overflowed).
The kit never trains in fp16 on the CPU or MPS, so there the fp16 row is printed as not run, with the
reason, and nothing is timed for it; asked alone there, fp16 is refused (one `error:` line).

Throughput is counted in **real tokens**: tokens of the text, padding excluded. On CUDA the benchmark
also reports the model FLOP utilisation (MFU) counted on real tokens:

    FLOPs per step = 8·N·T + 16·n_layer·d·Σᵢ ℓᵢ² + 6·P·M
      N = encoder parameters outside the embeddings, T = real tokens, ℓᵢ = real length of line i,
      d = hidden size, P = predictor parameters, M = masked tokens ≈ mask_ratio · (T − 2·B)
      (with CUDA graphs the predictor also runs on ~one filler row per line; only M is counted).
      8·N·T: context encoder forward (2NT) + backward (4NT) + target encoder forward (2NT);
      16·n_layer·d·Σℓ²: attention scores and weighted sums (4ℓ²d per layer forward, ×3 with backward,
      + 1 for the target); 6·P·M: predictor forward and backward at the masked positions.
    MFU = FLOPs per second / peak dense bf16 FLOPs of the GPU (H100 SXM: 989 TFLOP/s; --peak_tflops).

Each path runs in its own process, so that peak memory (CPU: peak resident set; CUDA: peak
allocated) belongs to that path alone.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cli import _Parser
from .data import DataError, TokenizedCorpus, builtin_corpus, make_batch, step_generator
from .encoders import BackboneError
from .errors import ConfigError
from .precision import CHOICES as PRECISIONS
from .precision import resolve_precision
from .train import TrainConfig, Trainer, pick_device
from .writer import atomic_file, write_text

PEAK_BF16_TFLOPS = {
    "H100 SXM": 989.4,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "H200": 989.4,
    "A100": 312.0,
    "L4": 121.0,
    "A10": 125.0,
}


# ---------------------------------------------------------------------------------------------
# Data: lines of mixed length made from the built-in corpus
# ---------------------------------------------------------------------------------------------
def mixed_length_lines(n_lines: int, seed: int = 0, max_sentences: int = 6) -> List[str]:
    """`n_lines` lines, each 1 to `max_sentences` random sentences of the built-in corpus joined:
    about 20 to 130 tokens, so that padding matters as it does for real text."""
    rng = random.Random(seed)
    sentences = builtin_corpus()
    return [" ".join(rng.choices(sentences, k=rng.randint(1, max_sentences))) for _ in range(n_lines)]


# ---------------------------------------------------------------------------------------------
# The original loop, re-implemented (see the module docstring for what it keeps)
# ---------------------------------------------------------------------------------------------
def original_span_mask(seq_len: int, mask_ratio: float, mean_span_len: int, special: set) -> torch.Tensor:
    """The article's sampler: whole exponential spans until at least round(ratio·len) are masked."""
    mask = torch.zeros(seq_len, dtype=torch.bool)
    goal, done, tries = max(1, round(seq_len * mask_ratio)), 0, 0
    while done < goal and tries < 4 * seq_len:
        tries += 1
        length = min(seq_len, max(1, int(random.expovariate(1.0 / max(1, mean_span_len)))))
        start = random.randint(0, seq_len - 1)
        for i in range(start, min(seq_len, start + length)):
            if i not in special and not mask[i]:
                mask[i] = True
                done += 1
    return mask


def original_collate(texts: List[str], tokenizer, max_length: int, mask_ratio: float, mean_span_len: int):
    """Tokenise the batch now, then mask row by row with Python loops over tokens."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    input_ids, attention_mask = enc["input_ids"], enc["attention_mask"]
    specials_ids = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    masked_rows, mask_rows = [], []
    for row in range(input_ids.shape[0]):
        n = int(attention_mask[row].sum().item())
        special = {i for i in range(n) if int(input_ids[row, i].item()) in specials_ids}
        m = original_span_mask(n, mask_ratio, mean_span_len, special)
        full = torch.zeros(input_ids.shape[1], dtype=torch.bool)
        full[:n] = m
        masked = input_ids[row].clone()
        masked[full] = tokenizer.mask_token_id
        masked_rows.append(masked)
        mask_rows.append(full)
    return input_ids, attention_mask, torch.stack(masked_rows), torch.stack(mask_rows)


class OriginalJEPA(nn.Module):
    """Context encoder + predictor over every position + deep-copied target, EMA by a Python loop."""

    def __init__(self, encoder: nn.Module, dim: int, hidden_mult: int = 4):
        super().__init__()
        import copy

        self.context_encoder = encoder
        self.target_encoder = copy.deepcopy(encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad = False
        self.predictor = nn.Sequential(
            nn.Linear(dim, hidden_mult * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden_mult * dim, dim)
        )

    def forward(self, masked_ids, ids, attention_mask, pred_mask):
        z_ctx = self.context_encoder(input_ids=masked_ids, attention_mask=attention_mask).last_hidden_state
        with torch.no_grad():
            z_tgt = self.target_encoder(input_ids=ids, attention_mask=attention_mask).last_hidden_state
        pred = self.predictor(z_ctx)
        p, t = F.normalize(pred[pred_mask], dim=-1), F.normalize(z_tgt[pred_mask], dim=-1)
        return (1.0 - (p * t).sum(-1)).mean()

    @torch.no_grad()
    def ema(self, m: float):
        for pc, pt in zip(self.context_encoder.parameters(), self.target_encoder.parameters()):
            pt.data.mul_(m).add_(pc.data, alpha=1 - m)


# ---------------------------------------------------------------------------------------------
# Workers (each runs in its own process)
# ---------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def flops_per_step(encoder: nn.Module, predictor: nn.Module, lengths: List[int], mask_ratio: float) -> float:
    """Model FLOPs of one step on real tokens (formula in the module docstring)."""
    emb = sum(m.weight.numel() for m in encoder.modules() if isinstance(m, nn.Embedding))
    n = sum(p.numel() for p in encoder.parameters()) - emb
    cfg = getattr(encoder, "config", None)
    n_layer = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", None) or getattr(cfg, "layers", 1)
    d = getattr(cfg, "hidden_size", None) or getattr(cfg, "dim", None)
    p = sum(q.numel() for q in predictor.parameters())
    T = sum(lengths)
    masked = mask_ratio * (T - 2 * len(lengths))
    return 8 * n * T + 16 * n_layer * d * sum(ell * ell for ell in lengths) + 6 * p * masked


def worker_original(args, texts: List[str]) -> Dict:
    from .encoders import load_backbone

    device = pick_device(args.device)
    torch.manual_seed(0)
    random.seed(0)
    encoder, tokenizer, dim = load_backbone(args.model, texts)
    model = OriginalJEPA(encoder, dim).to(device)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=2e-5, weight_decay=0.01)
    order = list(range(len(texts)))
    random.shuffle(order)
    tokens, running, t0 = 0, 0.0, None
    warmup = min(args.warmup, 10)  # nothing to compile or record: a few steps warm it up
    for step in range(warmup + args.steps):
        if step == warmup:
            sync(device)
            t0, tokens, running = time.perf_counter(), 0, 0.0
        lines = [texts[i] for i in order[step * args.batch_size : (step + 1) * args.batch_size]]
        ids, att, masked, pm = original_collate(lines, tokenizer, args.max_length, 0.3, 5)
        tokens += int(att.sum())
        ids, att, masked, pm = ids.to(device), att.to(device), masked.to(device), pm.to(device)
        for g in opt.param_groups:
            g["lr"] = 2e-5
        loss = model(masked, ids, att, pm)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.ema(0.99)
        running += float(loss.item())  # the host waits for the GPU here, every step
    sync(device)
    seconds = time.perf_counter() - t0
    return {
        "tokens_per_s": tokens / seconds,
        "step_s": seconds / args.steps,
        "peak_mb": peak_memory_mb(device),
        "loss": running / args.steps,
    }


def worker_fast(args, texts: List[str]) -> Dict:
    cfg = TrainConfig(
        model_name=args.model,
        batch_size=args.batch_size,
        max_length=args.max_length,
        steps=args.warmup + args.steps,
        warmup_steps=0,
        log_every=args.warmup + args.steps,
        save_path=None,
        device=args.device,
        progress=False,
        compile=args.compile,
        cuda_graphs=args.cuda_graphs,
        lr=2e-5,
        ema_m=0.99,
        precision=args.precision[0],
    )
    torch.manual_seed(0)
    trainer = Trainer(cfg, texts=texts, log=lambda s: None)
    if args.sdpa == "default":
        trainer._kernels = contextlib.nullcontext
    warmup = warmup_covering(trainer, args.warmup, args.steps)
    # The warm-up is the same training loop, stopped early: compilation, graph recording and the
    # first log (an eager forward in eval mode, the collapse metrics) all happen before the timing.
    trainer.config.steps = warmup
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.fit()
    sync(trainer.device)
    warmup_s = time.perf_counter() - t0
    trainer.config.steps = warmup + args.steps
    if args.profile:
        profile_steps(trainer, warmup, args.profile)
    lengths = [trainer.corpus.lengths[trainer.batch_lines(s)].tolist() for s in range(warmup, warmup + args.steps)]
    scale0, taken0 = scaler_state(trainer)
    sync(trainer.device)
    t0 = time.perf_counter()

    with contextlib.redirect_stdout(io.StringIO()):
        history = trainer.fit()  # the real training loop: steps warmup … end, one log (with its host sync) at the end
    sync(trainer.device)
    seconds = time.perf_counter() - t0
    tokens = sum(sum(x) for x in lengths)
    out = {"tokens_per_s": tokens / seconds, "step_s": seconds / args.steps, "peak_mb": peak_memory_mb(trainer.device)}
    timed = history["step_loss"][warmup:]
    out["loss"] = sum(timed) / len(timed)
    out["warmup_steps"], out["warmup_s"] = warmup, warmup_s
    out["precision"], out["cuda_graphs"] = trainer.precision.name, trainer.static_shapes
    if trainer.scaler is not None:  # fp16: the loss scale S before and after the timed steps, and the steps it skipped
        scale1, taken1 = scaler_state(trainer)
        out["scale"], out["skipped_steps"] = [scale0, scale1], args.steps - (taken1 - taken0)
    if trainer.device.type == "cuda":
        flops = sum(
            flops_per_step(trainer.model.context_encoder, trainer.model.predictor, x, cfg.mask_ratio) for x in lengths
        )
        out["tflops"] = flops / seconds / 1e12
    return out


def scaler_state(trainer: Trainer) -> tuple:
    """(loss scale S, optimizer steps taken so far) of an fp16 run; (None, None) without a GradScaler.
    A step whose scaled gradients overflowed is skipped (GradScaler does not call AdamW, or fused
    AdamW undoes its step count), so AdamW's step count lags the trainer's by the skipped steps."""
    if trainer.scaler is None:
        return None, None
    steps = [int(st["step"]) for st in trainer.optimizer.state.values() if "step" in st]
    return float(trainer.scaler.get_scale()), max(steps, default=0)


def warmup_covering(trainer: Trainer, warmup: int, steps: int) -> int:
    """The number of warm-up steps, at least `warmup`, after which every padded length L of the
    next `steps` (timed) steps has been met often enough that no one-time cost of a length falls
    in the timed steps, which measure the steady state:
    - twice with CUDA graphs: a length's first step runs the compiled code to warm it up and its
      second records the graph (both far slower than a replay);
    - once on the CPU in bf16: oneDNN JIT-compiles its matrix-product kernels for each new shape
      (see `fastpath.length_multiple`).
    Otherwise `warmup` as given. (The original loop, in fp32, has no such cost: on the CPU it
    took 376–378 ms per step on 20 batches, whether it met them for the first time or again.)"""
    need = 2 if trainer.static_shapes else 1 if trainer.device.type == "cpu" and trainer.pad_to_multiple_of > 1 else 0
    if need == 0:
        return warmup
    m, limit = trainer.pad_to_multiple_of, warmup + 20 * steps  # never more than this many
    L = [-(-int(trainer.corpus.lengths[trainer.batch_lines(s)].max()) // m) * m for s in range(limit + steps)]
    seen = Counter(L[:warmup])
    while warmup < limit and any(seen[x] < need for x in set(L[warmup : warmup + steps])):
        seen[L[warmup]] += 1
        warmup += 1
    return warmup


def profile_steps(trainer: Trainer, first_step: int, path: str, n: int = 5) -> None:
    """Write torch.profiler's table of `n` training steps (host and device time per op) to `path`."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for s in range(first_step, first_step + n):
            trainer.train_step(trainer.get_batch(s))
        sync(trainer.device)
    trainer.step = first_step
    sort = "cuda_time_total" if trainer.device.type == "cuda" else "cpu_time_total"
    write_text(
        path,
        prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40)
        + "\n\n"
        + prof.key_averages().table(sort_by=sort, row_limit=40),
        "the profile",
    )


def masking_rows_per_s(texts: List[str], tokenizer, batch_size: int, max_length: int, repeats: int) -> Dict[str, float]:
    """Rows per second of masking + collate, original vs fast, on the host."""
    corpus = TokenizedCorpus(texts, tokenizer, max_length)  # the fast path tokenises once, before training
    batches = [list(range(k * batch_size, (k + 1) * batch_size)) for k in range(repeats)]
    random.seed(0)
    for b in batches[:2]:  # untimed warm-up of both paths (first calls into the tokenizer and torch)
        original_collate([texts[i] for i in b], tokenizer, max_length, 0.3, 5)
        make_batch(*corpus.padded(b), tokenizer, 0.3, 5.0, step_generator(0, 0))
    t0 = time.perf_counter()
    for b in batches:
        original_collate([texts[i] for i in b], tokenizer, max_length, 0.3, 5)
    t_orig = time.perf_counter() - t0
    t0 = time.perf_counter()
    for step, b in enumerate(batches):
        make_batch(*corpus.padded(b), tokenizer, 0.3, 5.0, step_generator(0, step))
    t_fast = time.perf_counter() - t0
    rows = batch_size * repeats
    return {"original": rows / t_orig, "fast": rows / t_fast}


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS.items():
        if all(part in name for part in key.split()):
            return value
    return None


def worker_argv(kind: str, args, data_file: str, precision: str = "auto") -> List[str]:
    """The bench's flags for a `kind` worker process: every flag its run or its `check_args` reads,
    so the worker accepts exactly what the parent accepted (--lines, --skip, --mask_batch included)."""
    argv = ["--_worker", kind, "--_data", data_file, "--precision", precision]
    for k in ("model", "batch_size", "max_length", "steps", "warmup", "device", "sdpa", "lines", "mask_batch", "skip"):
        if getattr(args, k) is not None:
            argv += [f"--{k}", str(getattr(args, k))]
    if args.compile:
        argv.append("--compile")
    if not args.cuda_graphs:
        argv.append("--no_cuda_graphs")
    if args.profile and kind == "fast":
        argv += ["--profile", args.profile]
    return argv


def run_worker(kind: str, args, data_file: str, precision: str = "auto") -> Dict:
    cmd = [sys.executable, "-m", "jepa_lite.bench"] + worker_argv(kind, args, data_file, precision)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:  # its last line: the worker's own `error:` line, or the end of a traceback
        last = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1].removeprefix("error: ")
        raise BenchError(f"the {kind} worker failed: {last}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Tokenising a big file: today's path against the streamed one (--lines, e.g. 1,000,000)
# ---------------------------------------------------------------------------------------------
def write_two_sentence_file(path: str, n_lines: int, seed: int = 0, block: int = 1_000_000) -> None:
    """`n_lines` lines of 2 random built-in sentences each (~160 bytes, ~35 MiniLM tokens, like a
    typical user file); past `block` lines the first block repeats, so 10 M lines write in seconds."""
    rng = random.Random(seed)
    sentences = builtin_corpus()
    first = "".join(" ".join(rng.choices(sentences, k=2)) + "\n" for _ in range(min(n_lines, block)))
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n_lines, block):
            f.write(first if n_lines - start >= block else "".join(first.splitlines(True)[: n_lines - start]))


def todays_tokenisation(path: str, model) -> "object":
    """The kit's path before streaming, kept faithful: the whole file read as one list of lines
    (`load_text_file`), the tokenizer called on all of it at once, and the ids gathered in Python
    lists before one int64 tensor is made."""
    from .data import load_text_file
    from .encoders import load_backbone

    texts = load_text_file(path, None)
    _, tokenizer, _ = load_backbone(model, texts)
    enc = tokenizer(list(texts), truncation=True, max_length=128, padding=False)["input_ids"]
    special = set(tokenizer.all_special_ids)
    keep = [k for k, ids in enumerate(enc) if any(i not in special for i in ids)]
    flat = torch.tensor([i for k in keep for i in enc[k]], dtype=torch.long)
    return len(keep), flat.numel()


def streamed_tokenisation(path: str, model, cache_folder, rss_steps: int, batch_size: int) -> Dict:
    """`data.TextFile` + `load_corpus` (into memory, or into a token cache); with `rss_steps`, then
    train that many steps on the corpus, recording resident memory every 10 steps."""
    from .data import TextFile, load_corpus
    from .encoders import load_backbone

    text = TextFile(path, None)
    _, tokenizer, _ = load_backbone(model, text)
    corpus = load_corpus(text, tokenizer, 128, cache_folder, log=lambda s: None)
    result = {"lines": len(corpus), "tokens": corpus.n_tokens(), "rss_after_corpus_mb": resident_mb()}
    del corpus  # the Trainer maps the cache again: do not hold its line lengths and offsets twice
    if rss_steps:
        rss = [(0, resident_mb())]
        cfg = TrainConfig(
            model_name=model,
            text_file=path,
            token_cache=cache_folder or "off",
            steps=rss_steps,
            log_every=10,
            batch_size=batch_size,
            save_path=None,
            progress=False,
            device="cpu",
        )
        # the Trainer opens the text file itself (its `texts` takes lists of lines) and finds the cache just built
        trainer = Trainer(cfg, callbacks=[lambda t, rec: rss.append((t.step, resident_mb()))], log=lambda s: None)
        rss.append((0, resident_mb()))
        trainer.fit()
        result["rss_over_steps"] = rss
    return result


def resident_mb() -> float:
    """This process's resident memory now (Linux /proc), in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_resident_mb() -> float:
    """This process's peak resident memory so far (the kernel's high-water mark, ru_maxrss), in MB."""
    import resource

    # Linux reports KiB (until 2026-12-01 read as 1,000 bytes: 2.4% low)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def run_measured(cmd: List[str], limit_gb: float) -> Dict:
    """Run a tokenisation worker, which reports its own exact peak (`peak_resident_mb`). A worker
    whose resident memory passes `limit_gb` is stopped there and reported as not finished, with
    the most it was seen to hold (sampled every 50 ms)."""
    import threading

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {"mb": 0.0, "stopped": False}

    def watch():
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/statm") as f:
                    seen["mb"] = max(seen["mb"], int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6)
            except OSError:
                pass
            if seen["mb"] > limit_gb * 1e3:
                seen["stopped"] = True
                proc.kill()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if seen["stopped"]:
        return {"finished": False, "seconds": seconds, "peak_mb": seen["mb"]}
    if proc.returncode != 0:
        raise SystemExit(f"error: a tokenisation worker failed:\n{err[-2000:]}")
    return {"finished": True, "seconds": seconds, **json.loads(out.strip().splitlines()[-1])}


def tokenise_worker(args) -> Dict:
    """One measured tokenisation, in its own process (--_worker today|streamed|cached)."""
    t0 = time.perf_counter()
    if args._worker == "today":
        lines, tokens = todays_tokenisation(args._data, args.model)
        result = {"lines": lines, "tokens": tokens}
    else:
        cache = os.path.join(os.path.dirname(args._data), "cache") if args._worker == "cached" else None
        result = streamed_tokenisation(args._data, args.model, cache, args.rss_steps if cache else 0, args.batch_size)
    return {**result, "worker_s": time.perf_counter() - t0, "peak_mb": peak_resident_mb()}


def tokenisation_section(args, tmp: str) -> Dict:
    """Print time and peak resident memory of today's path and the streamed one on an `args.lines`
    file, against the budget of 1 GB + 4 bytes per token; `--rss_steps` adds a training run on the
    token cache with resident memory over the steps (`--rss_plot` draws it)."""
    path = os.path.join(tmp, "two_sentences.txt")
    write_two_sentence_file(path, args.lines)
    size_mb = os.path.getsize(path) / 1e6
    print(
        f"\ntokenising a {args.lines:,}-line file ({size_mb:,.0f} MB), model {args.model or 'minilm'}, "
        "max_length 128, each path in its own process"
    )
    base = [
        sys.executable,
        "-m",
        "jepa_lite.bench",
        "--tokenise",
        "--_data",
        path,
        "--batch_size",
        str(args.batch_size),
        "--rss_steps",
        str(args.rss_steps),
    ]
    base += ["--model", args.model] if args.model else []
    results = {}
    kinds = [k for k in TOKENISE_PATHS if k not in args.skip.split(",")]
    for kind in kinds:
        r = results[kind] = run_measured(base + ["--_worker", kind], args.rss_limit_gb)
        if not r["finished"]:
            print(
                f"  {kind:9s} stopped after {r['seconds']:6.1f} s at {r['peak_mb']:8,.0f} MB resident "
                f"(--rss_limit_gb {args.rss_limit_gb:g}), before its first step"
            )
            continue
        budget = 1e3 + 4 * r["tokens"] / 1e6
        print(
            f"  {kind:9s} {r['seconds']:6.1f} s   peak RSS {r['peak_mb']:8,.0f} MB   {r['tokens']:,} "
            f"tokens ({r['tokens'] / r['lines']:.1f}/line)   "
            f"budget 1 GB + 4 B/token = {budget:,.0f} MB: {'within' if r['peak_mb'] <= budget else 'OVER'}"
        )
    done = [k for k in kinds if results[k]["finished"]]
    if "today" in done and len(done) > 1:
        for kind in done[1:]:
            print(
                f"  {kind} / today: {results[kind]['seconds'] / results['today']['seconds']:.2f}× "
                f"time, {results[kind]['peak_mb'] / results['today']['peak_mb']:.2f}× peak memory"
            )
    if args.rss_steps and "cached" in done:
        rss = results["cached"]["rss_over_steps"]
        print(
            f"  training {args.rss_steps} steps on the token cache (batch {args.batch_size}): "
            f"resident memory {rss[1][1]:,.0f} MB at step 0, "
            f"{rss[-1][1]:,.0f} MB at step {rss[-1][0]}, range "
            f"{min(r for _, r in rss[1:]):,.0f}–{max(r for _, r in rss[1:]):,.0f} "
            "MB"
        )
        if args.rss_plot:
            plot_rss(results, args, args.rss_plot)
            print(f"  plot: {args.rss_plot}")
    if args.rss_json:
        about = {
            "lines": args.lines,
            "size_mb": size_mb,
            "model": args.model or "minilm",
            "peak_mb_from": "ru_maxrss KiB × 1024 / 1e6",
            "cpus": os.cpu_count(),
        }
        write_text(args.rss_json, json.dumps({**about, **results}, indent=1), "the --rss_json file")
    return results


def plot_rss(results: Dict, args, path: str) -> None:
    """Resident memory over training steps on the token cache (small PNG for the README)."""
    from matplotlib.figure import Figure  # not pyplot: no backend is chosen and no figure stays open

    steps, mb = zip(*results["cached"]["rss_over_steps"][1:])
    fig = Figure(figsize=(6, 2.6), dpi=100)
    ax = fig.subplots()
    ax.plot(steps, [m / 1e3 for m in mb], marker=".", label="streamed + token cache (this kit)")
    today = results.get("today")
    if today and not today["finished"]:
        ax.axhline(
            today["peak_mb"] / 1e3, color="tab:red", ls="--", label="previous path: stopped at this, still tokenising"
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("resident memory (GB)")
    ax.set_ylim(0, None)
    ax.set_title(
        f"training on a {args.lines:,}-line file ({args.model or 'MiniLM'}, batch {args.batch_size})", fontsize=9
    )
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    with atomic_file(path, "wb", "the plot") as f:  # the one writer: a temporary name of the kit's own, then a rename
        fig.savefig(f, format=Path(path).suffix.lstrip(".") or "png")


class BenchError(RuntimeError):
    """A benchmark that cannot run (or a worker that failed); one line."""


SECTIONS = ("masking", "train", "corpus", "original")
TOKENISE_PATHS = ("today", "streamed", "cached")  # what --skip names with --tokenise
MAX_LINES = 10_000_000  # generated text lines; each takes ~1 KB in memory (text + token ids)


def precision_list(value: str) -> List[str]:
    """argparse type of --precision: one of PRECISIONS or a comma-separated list of them (one row each)."""
    names = [v.strip() for v in value.split(",")]
    bad = [v for v in names if v not in PRECISIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"invalid choice: '{value}' (choose from {', '.join(PRECISIONS)}, or a comma-separated list of them)"
        )
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"'{value}' names a precision twice")
    return names


def precision_rows(args, device: torch.device) -> tuple:
    """The fast path's rows: (precisions to run, [(precision, why it is not run)]), before any work.

    fp16 is for CUDA: fp16 autocast with a GradScaler (loss scaling) is what an older GPU (T4, V100)
    trains in. On the CPU or MPS the kit refuses fp16 (slower and less exact than fp32 there), so a
    bench that also runs other rows prints the fp16 row as not run, with that reason, instead of
    timing something no run of the kit does; a bench asked for fp16 alone stops with one error line."""
    run, skipped, errors = [], [], []
    for name in args.precision:
        try:
            resolve_precision(name, device)
            run.append(name)
        except ConfigError as e:
            errors.append(str(e))
            skipped.append(
                (
                    name,
                    "fp16 autocast + GradScaler is for CUDA GPUs (the kit's path on GPUs without native "
                    "bf16: T4, V100); "
                    f"on the {device.type} the kit refuses it (slower and less exact than fp32), so there "
                    "is nothing to time",
                )
            )
    if not run:
        raise ConfigError(errors[0])
    return run, skipped


def check_common_args(args) -> None:
    """ConfigError (one line) for the flags every objective reads."""
    from .validation import check_int_range

    for name, lo in (("batch_size", 1), ("max_length", 4), ("steps", 1), ("warmup", 0)):
        check_int_range(name, getattr(args, name), lo, 2**31 - 1)
    pick_device(args.device)
    if args.peak_tflops is not None and not (math.isfinite(args.peak_tflops) and args.peak_tflops > 0):
        raise ConfigError(f"peak_tflops must be a positive number; got {args.peak_tflops}")


def check_args(args) -> None:
    """ConfigError (one line) for any flag of the masked-span bench that cannot work, before any
    work: the training flags as `TrainConfig` checks them, then the bench's own."""
    from .validation import check_fits_in_memory, check_int_range

    check_common_args(args)
    for precision in precision_rows(args, pick_device(args.device))[0]:
        TrainConfig(
            model_name=args.model,
            batch_size=args.batch_size,
            max_length=args.max_length,
            steps=args.warmup + args.steps,
            device=args.device,
            precision=precision,
            save_path=None,
        ).validate()
    check_int_range("lines", args.lines, 1, MAX_LINES)
    check_int_range("mask_batch", args.mask_batch, 1)
    skip = set(filter(None, args.skip.split(",")))
    if args.tokenise:  # its own mode: today's tokenisation against the streamed one (tokenisation_section)
        check_int_range("rss_steps", args.rss_steps, 0)
        if skip - set(TOKENISE_PATHS):
            raise ConfigError(
                f"with --tokenise, --skip knows {', '.join(TOKENISE_PATHS)}; "
                f"got {', '.join(sorted(skip - set(TOKENISE_PATHS)))}"
            )
        for flag in ("rss_plot", "rss_json"):
            if getattr(args, flag) and Path(getattr(args, flag)).exists():
                raise ConfigError(
                    f"--{flag} {getattr(args, flag)} exists; the bench does not replace files: give a new name"
                )
        return
    if "masking" not in skip and 50 * args.mask_batch > args.lines:
        raise ConfigError(
            f"the masking measurement takes 50 batches of --mask_batch {args.mask_batch} lines: "
            f"--lines must be at least {50 * args.mask_batch}; got {args.lines}"
        )
    original_steps = min(args.warmup, 10) + args.steps
    if not {"train", "original"} & skip and args.batch_size * original_steps > args.lines:
        raise ConfigError(
            "the original loop reads each line once: --lines must be at least batch_size × (warm-up "
            f"+ steps) = {args.batch_size * original_steps}; got {args.lines}"
        )
    unknown = skip - set(SECTIONS)
    if unknown:
        raise ConfigError(f"--skip knows {', '.join(SECTIONS)}; got {', '.join(sorted(unknown))}")
    if args.profile and (Path(args.profile).is_dir() or not Path(args.profile).resolve().parent.is_dir()):
        raise ConfigError(f"--profile {args.profile}: give a file name in an existing folder")
    if args.profile and Path(args.profile).exists():
        raise ConfigError(f"--profile {args.profile} exists; the bench does not replace files: give a new name")
    check_fits_in_memory(1000 * args.lines, torch.device("cpu"), f"--lines {args.lines}", "lower --lines")


def main(argv=None) -> int:
    """The benchmark's command line; a bad flag or a failed worker ends in one `error:` line, exit 2."""
    try:
        return _main(argv)
    except (ConfigError, DataError, BackboneError, BenchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m jepa_lite.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="backbone as in jepa_lite.train (default: the offline MiniLM-L6)")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="timed steps per path")
    p.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed steps first (more where a length's first steps cost extra: CUDA graphs, "
        "bf16 on the CPU; the original loop takes at most 10)",
    )
    p.add_argument(
        "--sdpa",
        choices=("kit", "default"),
        default="kit",
        help="attention kernels of the fast path: the kit's choice or PyTorch's default",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the fast path (on CUDA with CUDA graphs)")
    p.add_argument(
        "--no_cuda_graphs",
        dest="cuda_graphs",
        action="store_false",
        help="with --compile on CUDA: compile only, no CUDA graphs",
    )
    p.add_argument(
        "--precision",
        type=precision_list,
        default=["auto"],
        metavar="{auto,fp32,bf16,fp16}[,...]",
        help="fast path precision, or several (one row each, e.g. fp32,bf16,fp16); auto: bf16 "
        "on CUDA GPUs with native bf16, "
        "fp16 + GradScaler on older ones, fp32 on the CPU; fp16 needs CUDA (on the CPU its row says so and is not run)",
    )
    p.add_argument("--lines", type=int, default=50_000, help="lines of the generated text file")
    p.add_argument("--mask_batch", type=int, default=64, help="batch size of the masking + collate measurement")
    p.add_argument("--peak_tflops", type=float, default=None, help="peak dense bf16 TFLOP/s of the GPU, for MFU")
    p.add_argument("--profile", metavar="FILE", help="also write a torch.profiler table of 5 fast-path steps to FILE")
    p.add_argument(
        "--skip",
        default="",
        help="comma-separated sections to skip: masking, train, corpus, original (the original "
        "loop's training run); with --tokenise: today, streamed, cached",
    )
    p.add_argument(
        "--tokenise",
        action="store_true",
        help="instead: tokenise a --lines file by today's path and the streamed one (and its token "
        "cache), time and peak memory of each",
    )
    p.add_argument(
        "--rss_steps",
        type=int,
        default=0,
        help="tokenise section: then train this many steps on the token cache, recording resident memory",
    )
    p.add_argument("--rss_plot", metavar="PNG", help="tokenise section: plot resident memory over those steps")
    p.add_argument("--rss_json", metavar="FILE", help="tokenise section: write its figures as JSON")
    p.add_argument(
        "--rss_limit_gb",
        type=float,
        default=60.0,
        help="tokenise section: stop a path whose resident memory passes this",
    )
    p.add_argument(
        "--objective",
        choices=("masked_span", "paired"),
        default="masked_span",
        help="masked_span: jepa_lite.train against the original loop; paired: the paper's objective, "
        "its own paths and flags (--data, --paths, --json: python -m jepa_lite.paired.bench --help)",
    )
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    p.add_argument("--_data", help=argparse.SUPPRESS)
    return p


def _main(argv=None) -> int:
    parser = build_parser()
    args, paired_only = parser.parse_known_args(argv)  # the paired bench's own flags (--data, --paths, --json)
    if args.objective != "paired" and paired_only:
        args = parser.parse_args(argv)  # the usual one-line refusal of an unknown flag
    if args.objective == "paired":
        check_common_args(args)
        if len(args.precision) > 1:
            raise ConfigError(f"with --objective paired, --precision takes one value; got {','.join(args.precision)}")
        args.precision = args.precision[0]
        resolve_precision(args.precision, pick_device(args.device))  # e.g. fp16 on the CPU: refused before any work
        return hand_over_paired(args, paired_only)
    check_args(args)

    if args._worker in ("today", "streamed", "cached"):
        print(json.dumps(tokenise_worker(args)))
        return 0
    if args._worker:
        texts = Path(args._data).read_text(encoding="utf-8").splitlines()
        result = (worker_original if args._worker == "original" else worker_fast)(args, texts)
        print(json.dumps(result))
        return 0

    device = pick_device(args.device)
    skip = set(filter(None, args.skip.split(",")))
    from .encoders import load_backbone

    print(
        f"jepa_lite benchmark · device {describe(device)} · torch {torch.__version__} · {torch.get_num_threads()} "
        "CPU threads"
    )
    mode = (
        ("compiled + CUDA graphs" if args.cuda_graphs and device.type == "cuda" else "compiled")
        if args.compile
        else "eager"
    )
    print(
        f"model {args.model or 'minilm (offline all-MiniLM-L6-v2)'} · batch {args.batch_size} "
        f"· max_length {args.max_length} · "
        f"{args.steps} timed steps after {args.warmup} warm-up steps · fast path {mode}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.tokenise:
            tokenisation_section(args, tmp)
            return 0
        lines = mixed_length_lines(args.lines)
        data_file = os.path.join(tmp, "mixed.txt")
        Path(data_file).write_text("\n".join(lines) + "\n", encoding="utf-8")
        _, tokenizer, _ = load_backbone(args.model, lines[:2000] if args.model == "tiny" else None)
        t0 = time.perf_counter()
        corpus = TokenizedCorpus(lines, tokenizer, args.max_length)
        t_tok = time.perf_counter() - t0
        print(
            f"\ntext: {len(lines):,} lines of 1–6 corpus sentences, {corpus.n_tokens() / len(corpus):.0f} "
            "tokens per line on average"
        )
        print(f"  tokenised once (fast tokenizer, batched): {t_tok:.1f} s = {len(lines) / t_tok:,.0f} lines/s")

        if "masking" not in skip:
            r = masking_rows_per_s(lines, tokenizer, args.mask_batch, args.max_length, repeats=50)
            print(f"\nmasking + collate, batch {args.mask_batch}, on the host")
            print(f"  original (tokenise + per-token loops) {r['original']:10,.0f} rows/s")
            print(
                f"  fast (pre-tokenised, vectorised)      {r['fast']:10,.0f} "
                f"rows/s   ratio {r['fast'] / r['original']:.1f}×"
            )

        run, not_run = precision_rows(args, device)
        if "train" not in skip:
            orig = None if "original" in skip else run_worker("original", args, data_file)
            rows = [
                (p, run_worker("fast", args if i == 0 else no_profile(args), data_file, p)) for i, p in enumerate(run)
            ]
            print(f"\ntraining on the {len(lines):,}-line text, real (non-padding) tokens per second")
            warm = "; ".join(f"{r['precision']} {r['warmup_steps']} steps in {r['warmup_s']:.0f} s" for _, r in rows)
            print(
                f"  (fast path warm-up: {warm}; one-time costs per length included: compiling, recording "
                "graphs, building oneDNN kernels)"
            )
            peak = peak_tflops(device, args.peak_tflops)
            graphs = args.compile and args.cuda_graphs and device.type == "cuda"
            labels = [fast_label(a, r, graphs) for a, r in rows] + [fast_label(a, None, graphs) for a, _ in not_run]
            w = max(len(x) for x in labels + ["original loop (fp32)"])
            if orig:
                print(
                    f"  {'original loop (fp32)':{w}s}  {orig['tokens_per_s']:10,.0f} "
                    f"tok/s   {orig['step_s'] * 1e3:8.1f} "
                    f"ms/step   peak memory {orig['peak_mb']:8,.0f} MB   mean loss {orig['loss']:.4f}"
                )
            for label, (asked, fast) in zip(labels, rows):
                ratio = (
                    f"   ratio {fast['tokens_per_s'] / orig['tokens_per_s']:.2f}× "
                    f"tok/s, {fast['peak_mb'] / orig['peak_mb']:.2f}× "
                    "memory"
                    if orig
                    else ""
                )
                print(
                    f"  {label:{w}s}  {fast['tokens_per_s']:10,.0f} tok/s   {fast['step_s'] * 1e3:8.1f} "
                    f"ms/step   peak memory {fast['peak_mb']:8,.0f} MB   mean loss {fast['loss']:.4f}{ratio}"
                )
                if "scale" in fast:
                    print(
                        f"  {'':{w}s}  GradScaler over the timed steps: loss scale {fast['scale'][0]:,.0f} "
                        f"→ {fast['scale'][1]:,.0f}, "
                        f"{fast['skipped_steps']} of {args.steps} steps skipped (their fp16 gradients overflowed)"
                    )
                if "tflops" in fast:
                    mfu = (
                        f" = {100 * fast['tflops'] / peak:.1f}% MFU of {peak:.0f} TFLOP/s dense bf16 peak"
                        if peak
                        else " (peak unknown: pass --peak_tflops)"
                    )
                    print(f"  {'':{w}s}  model FLOPs on real tokens: {fast['tflops']:.1f} TFLOP/s{mfu}")
            for label, (asked, why) in zip(labels[len(rows) :], not_run):
                print(f"  {label:{w}s}  not run: {why}")

        if "corpus" not in skip:
            builtin = builtin_corpus()
            big = [builtin[i % len(builtin)] for i in range(args.lines)]
            big_file, small_file = os.path.join(tmp, "big.txt"), os.path.join(tmp, "small.txt")
            Path(big_file).write_text("\n".join(big) + "\n", encoding="utf-8")
            Path(small_file).write_text("\n".join(builtin) + "\n", encoding="utf-8")
            small_r, big_r = (run_worker("fast", no_profile(args), f, run[0]) for f in (small_file, big_file))
            print(
                f"\nfast path, built-in corpus ({len(builtin)} lines) vs a {args.lines:,}-line file "
                "of the same sentences"
            )
            print(
                f"  built-in {small_r['tokens_per_s']:10,.0f} tok/s "
                f"  {args.lines:,}-line file {big_r['tokens_per_s']:10,.0f} "
                "tok/s   "
                f"ratio {big_r['tokens_per_s'] / small_r['tokens_per_s']:.2f}"
            )
    return 0


# ---------------------------------------------------------------------------------------------
# The paper's objective (--objective paired): jepa_lite/paired/bench.py, in a process of its own
# ---------------------------------------------------------------------------------------------
PAIRED_FLAGS = (
    "model",
    "batch_size",
    "max_length",
    "steps",
    "warmup",
    "device",
    "precision",
    "peak_tflops",
)  # what it reads


def hand_over_paired(args, paired_only: Sequence[str] = ()) -> int:
    """`--objective paired`: run `python -m jepa_lite.paired.bench` with the flags it reads — the common
    ones checked here, and `paired_only`, the flags this parser does not know (`--data`, `--paths`,
    `--json`), passed as given for the paired bench to check — its output and exit code as they are. A
    process of its own, so that the core never imports the paper's code (the arrows point one way:
    jepa_lite.paired uses the core, never the reverse)."""
    cmd = [sys.executable, "-m", "jepa_lite.paired.bench"]
    for k in PAIRED_FLAGS:
        if getattr(args, k) is not None:
            cmd += [f"--{k}", str(getattr(args, k))]
    cmd += list(paired_only)
    sys.stdout.flush()
    return subprocess.call(cmd)


def fast_label(asked: str, result: Dict | None, graphs_asked: bool) -> str:
    """A fast-path row's name: its precision (what auto resolved to), what fp16 adds, and whether it
    ran without the CUDA graphs the header announces (the trainer replays none with a GradScaler)."""
    name = result["precision"] if result else asked
    label = f"fast path {name}" + (" + GradScaler" if name == "fp16" else "") + (" (auto)" if asked == "auto" else "")
    if result and graphs_asked and not result["cuda_graphs"]:
        label += ", no CUDA graphs"
    return label


def no_profile(args):
    """args without --profile: only the first fast-path row writes the profile."""
    return argparse.Namespace(**{**vars(args), "profile": None})


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    import platform

    return f"cpu ({platform.processor() or platform.machine()})"


if __name__ == "__main__":
    sys.exit(main())

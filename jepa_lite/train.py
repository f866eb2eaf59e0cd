"""The masked-span trainer: `Trainer` runs `nano.py`'s step with what a real run needs around it.

One optimizer step of JEPA (`nano.train_step`, the whole algorithm on one page):

    batch  = both views of B lines                      (data.collate, masking.mask_batch)
    loss   = mean over masked tokens of 1 − cos(ẑ, z)   (model.JEPA)
    loss.backward(); clip ‖g‖ to 1.0; AdamW step; LR schedule step
                    (in fp16: backward of S·loss, g ← g / S before clipping; precision.py)
    θ_tgt ← m·θ_tgt + (1 − m)·θ_ctx                     (ema.ema_update)

The learning rate warms up linearly for `warmup_steps`, then follows a half cosine down to 0
(`nano.lr_factor`):

    lr(s) = lr · (s + 1) / warmup                        for s < warmup
    lr(s) = lr · ½ (1 + cos(π · (s − warmup) / (steps − warmup)))   afterwards

Around that step the trainer adds precision (precision.py), several processes (distributed.py),
checkpoints and exact resume (checkpoint.py), logging and collapse metrics (diagnostics.py). Its
settings are `config.TrainConfig`; the command line and its signals are in `cli.py`; the fast paths
(CUDA graphs, fused AdamW, padding, prefetching, allocator tuning) in `fastpath.py`.

Run `python -m jepa_lite.train --help` for the command line, or in Python:

    from jepa_lite.train import TrainConfig, Trainer
    history = Trainer(TrainConfig.smoke()).fit()
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence

import torch

from .checkpoint import (
    CheckpointError,
    NonFiniteState,
    SaveTarget,
    check_save_path,
    estimate_bytes,
    load_checkpoint,
    plain_lrs,  # noqa: F401  (re-exported: `from jepa_lite.train import plain_lrs` keeps working)
    restore_rng_state,
    save_checkpoint,
    training_state,
)
from .config import (  # noqa: F401  (re-exported: `from jepa_lite.train import TrainConfig, pick_device` keeps working)
    KIND,
    MAX_LENGTH,
    RESUMABLE_CHANGES,
    TrainConfig,
    check_compatible,
    check_resumable,
    check_resume,
    pick_device,
    resolve_save_path,
)
from .data import Batch, TextFile, builtin_corpus, load_corpus, texts_fingerprint
from .diagnostics import collapse_metrics, collapse_warning
from .distributed import check_batch, check_in_sync, exit_process, setup, shard, wrap
from .ema import momentum_schedule
from .encoders import TinyConfig, load_backbone
from .errors import ConfigError, TrainingDiverged  # noqa: F401  (TrainingDiverged re-exported)
from .fastpath import (
    FastJEPA,
    PaddedStepBatches,
    adamw,
    attention_kernels,
    check_compiler,
    fixed_predictor_rows,
    keep_freed_memory,
    length_multiple,
    pinned,
    pred_length_step,
    prefetched,
    use_cuda_graphs,
)
from .graphs import StepGraphs
from .masking import special_tokens_mask
from .nano import lr_factor
from .precision import autocast, grad_scaler, resolve_precision
from .stopping import StepGuard, can_drop_steps
from .validation import check_run_fits, check_texts

AUTO_CACHE_BYTES = 64 << 20  # token_cache="auto" caches text files from this size on


def lines_read_notice(text: TextFile, kept: int) -> str:
    """The log line that says how much of the text file a run trains on: all of it, or the first
    `--max_lines` lines when the file has more (never a silent cut), and how many lines were kept
    (lines that tokenise to special tokens only are dropped: nothing to mask)."""
    if text.cut:
        what = f"text: the first {len(text):,} lines of {text.path} (--max_lines {text.max_lines}; the file has more)"
    else:
        what = f"text: {len(text):,} lines of {text.path} (the whole file)"
    return what if kept == len(text) else f"{what}, {kept:,} of them with tokens to mask"


Callback = Callable[["Trainer", Dict[str, float]], None]


class Trainer:
    """Trains a JEPA from a TrainConfig. Knows nothing about plots: it fills `history` and calls
    `callbacks(trainer, record)` at each log step, which is where live plots hook in.

    `history` is a dict of lists: per log step "step", "loss" (mean over the window), "lr", "ema_m",
    "masked_frac", "rank", "std", "mean_cos"; and "step_loss", one entry per optimizer step.
    """

    def __init__(
        self,
        config: TrainConfig,
        callbacks: Sequence[Callback] = (),
        texts: Optional[Sequence[str]] = None,
        log: Callable[[str], None] = print,
    ):
        config.validate()
        self.config, self.callbacks, self.log = config, list(callbacks), log
        self._build_process()
        self._build_save_target()
        texts = self._build_texts(texts)
        encoder, dim = self._build_backbone(texts)
        self._build_corpus(texts)
        self._build_model(encoder, dim)
        self._build_optimizer()
        self._build_step()
        self._build_plan()
        self.step = 0
        self.history: Dict[str, List[float]] = defaultdict(list)
        self.collapse_warned = False
        # losses of the steps since the last log (saved, so a resumed run logs the same)
        self._window: List[torch.Tensor] = []
        self.stop_requested = False  # set (e.g. by a Ctrl-C handler) to stop cleanly after the current step

    # -- builders: one concern each ----------------------------------------------------------
    def _build_process(self) -> None:
        """This process's part of the run: under torchrun its process group, rank and device (distributed.py),
        whether it shows progress (rank 0), its loss weights, and on the CPU glibc's allocator (fastpath.py)."""
        self.dist, device = setup(self.config.device)  # under torchrun: this rank's process group and device
        self.device = pick_device(device)
        check_compiler(self.config.compile, self.device)
        self.progress = self.config.progress and self.dist.is_main
        self._loss_weight: Dict[int, float] = {}  # step → this rank's loss weight (distributed.shard)
        self._step_weight = 1.0
        if self.device.type == "cpu":
            keep_freed_memory()  # reuse the big per-step blocks instead of faulting in fresh pages

    def _build_save_target(self) -> None:
        """The save-path rules (checkpoint.SaveTarget): rank 0 writes; a folder, a device, a read-only
        or non-checkpoint file is refused here, before any work."""
        self.run_id = uuid.uuid4().hex[:12]  # names the run in its checkpoints; `resume` takes over the saved run's id
        self.save_path = resolve_save_path(self.config)  # None = no checkpoints
        self.target = None
        if self.save_path and self.dist.is_main:
            self.target = SaveTarget(self.save_path, self.run_id, self.config.overwrite)
            check_save_path(self.save_path, overwrite=True)  # whose checkpoint it is can only be told after `resume`

    def _build_texts(self, texts):
        """The training text and its fingerprint: `texts` (checked), else the text file, streamed from disk
        (never held in memory as a list of lines), else the built-in corpus."""
        if texts is not None:
            check_texts(texts)
        elif self.config.text_file:
            texts = TextFile(self.config.text_file, self.config.max_lines, progress=self.progress)
        else:
            texts = builtin_corpus()
        self.fingerprint = texts.fingerprint if isinstance(texts, TextFile) else texts_fingerprint(texts)
        return texts

    def _build_backbone(self, texts):
        """The encoder and its tokenizer (seeded init), after checking that the run fits in memory."""
        config = self.config
        torch.manual_seed(config.seed)  # model init (random encoders, predictor) is seeded
        tiny = TinyConfig(dim=config.tiny_dim, layers=config.tiny_layers, heads=4, max_len=max(512, config.max_length))
        if config.model_name == "tiny":  # its sizes are the config's: check them before building it
            check_run_fits(config, self.device, len(texts), tiny=tiny)
        encoder, self.tokenizer, dim = load_backbone(config.model_name, texts, tiny)
        check_run_fits(config, self.device, len(texts), encoder, dim)
        return encoder, dim

    def _build_corpus(self, texts) -> None:
        """Tokenised lines (rank 0 builds a token cache, the others map it) and the batch size."""
        config = self.config
        cache = self.token_cache_folder(texts)
        if cache and not self.dist.is_main:
            self.dist.barrier()  # rank 0 builds the token cache, the others then map it
        self.corpus = load_corpus(texts, self.tokenizer, config.max_length, cache, self.progress, self._write)
        if cache and self.dist.is_main:
            self.dist.barrier()
        if isinstance(texts, TextFile):
            self._write(lines_read_notice(texts, len(self.corpus)))
        self.batch_size = config.batch_size
        if self.batch_size > len(self.corpus):
            self.batch_size = len(self.corpus)
            self.log(
                f"note: batch_size {config.batch_size} is larger than the data; using {self.batch_size} "
                f"(all {len(self.corpus)} lines)"
            )
        check_batch(self.batch_size, self.dist)

    def _build_model(self, encoder: torch.nn.Module, dim: int) -> None:
        """JEPA on the device (as `fastpath.FastJEPA`: the same model, run without host syncs), its number
        format (precision.py) and, for fp16, the loss scaler."""
        self.model = FastJEPA(encoder, dim, self.config.pred_hidden_mult, loss=self.config.loss).to(self.device)
        self.precision = resolve_precision(self.config.precision, self.device)  # the rule in precision.py
        self.autocast_dtype = self.precision.autocast_dtype  # None = plain fp32
        self.scaler = grad_scaler(self.precision, self.device)  # fp16 only: loss scaling (torch.amp.GradScaler)
        self.static_shapes = use_cuda_graphs(self.config, self.device, self.dist.enabled, self.scaler, self.log)
        # the predictor on C rows fixed by the batch's shape, not on the N masked ones (fastpath.fixed_predictor_rows)
        self.fixed_pred = fixed_predictor_rows(self.device, self.autocast_dtype, self.static_shapes, self.dist.enabled)

    def _build_optimizer(self) -> None:
        """AdamW, the LR schedule (the LR of step s is lr · lr_factor(s)) and the EMA momentum schedule."""
        c = self.config
        self.optimizer = adamw(self.model.trainable_parameters(), c, self.device, self.static_shapes)
        self.lr_factor = lambda s: lr_factor(s, c.warmup_steps, c.steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.momentum = momentum_schedule(c.ema_schedule, c.ema_m, c.ema_m_final, c.steps)

    def _build_step(self) -> None:
        """What a step calls: the model (DDP-wrapped or compiled) or its fixed-shape loss, or recorded CUDA graphs."""
        c = self.config
        self.graphs: Optional[StepGraphs] = None
        # the fixed-shape loss (CUDA graphs, bf16 on the CPU), else the model, DDP-wrapped under torchrun
        step = self.model.fixed_shape_loss if self.fixed_pred else wrap(self.model, self.dist, self.device)
        self.forward = torch.compile(step, dynamic=True) if c.compile else step  # CUDA graphs imply compile
        if self.static_shapes:
            self.ema_m = torch.tensor(c.ema_m, device=self.device)  # filled before every step
            self.graphs = StepGraphs(lambda batch: self._update(batch, self.ema_m), self.device)
        droppable = can_drop_steps(self.device, self.dist.enabled, compiled=c.compile or self.static_shapes)
        self.guard = StepGuard(lambda: self.stop_requested, enabled=droppable)  # a stop drops the step: stopping.py

    def _build_plan(self) -> None:
        """The plan of the steps' batches, a pure function of (seed, step): lines, masks, padded lengths."""
        c, self.pad_to_multiple_of = self.config, length_multiple(self.device, self.autocast_dtype)
        masking = (c.seed, c.mask_ratio, c.mean_span_len, c.group_by_length, self.pad_to_multiple_of)
        rows = {"fixed_pred_index": self.fixed_pred, "length_step": pred_length_step(self.device)}
        self.plan = PaddedStepBatches(self.corpus, self.batch_size, *masking, **rows)

    def token_cache_folder(self, texts) -> Optional[str]:
        """Where the token cache of this run's text lives (`data.TokenCache`), or None to tokenise into
        memory. "auto": next to the checkpoint for a text file of at least AUTO_CACHE_BYTES."""
        setting = self.config.token_cache
        if setting == "off" or not isinstance(texts, TextFile):
            return None
        if setting != "auto":
            return setting
        if not self.save_path or texts.path.stat().st_size < AUTO_CACHE_BYTES:
            return None
        return os.path.dirname(os.path.abspath(self.save_path))

    # ----------------------------------------------------------------------------------------
    def batch_lines(self, step: int) -> List[int]:
        """Indices of the corpus lines in the batch of optimizer step `step`."""
        return self.plan.lines(step)

    def get_batch(self, step: int) -> Batch:
        """The batch of optimizer step `step`, on the training device: a pure function of (seed, step)."""
        batch, weight = shard(self.plan[step], self.dist)  # this rank's rows of the global batch
        if self.dist.enabled:
            self._loss_weight[step] = weight  # read by train_step (distributed.py: why)
        return batch.to(self.device)

    def train_step(self, batch: Batch) -> torch.Tensor:
        """One optimizer step plus the EMA update. Returns the loss (a device tensor, no host sync).

        On CUDA with `compile` and `cuda_graphs` the whole step (`_update`) is replayed as one CUDA
        graph per padded length (`graphs.StepGraphs`): the hundreds of kernels of a DistilBERT step
        (~600 in its forward and backward alone) go out in a single launch; launching them one by
        one from Python is what bounds a small model's step on a fast GPU.
        """
        m = self.momentum(self.step)
        self.model.train()
        self._step_weight = self._loss_weight.pop(self.step, 1.0)
        if self.graphs is not None:
            self.ema_m.fill_(m)
            loss = self.graphs(batch)
        else:
            loss = self._update(batch, m)
        self.scheduler.step()  # outside any graph: on the graph path it fills the LR tensor
        self.step += 1
        if self.dist.enabled:  # the global batch's loss, Σ_r n_r ℓ_r / N, on every rank
            return self.dist.sum(loss.detach() * (self._step_weight / self.dist.world_size))
        return loss.detach()

    def _update(self, batch: Batch, m) -> torch.Tensor:
        """`nano.train_step` plus autocast, the loss scaler and the DDP weight: forward, backward,
        gradient clipping, AdamW, EMA — everything a step does on the device (tests/test_nano.py: the
        same losses and weights in fp32 on one process). No host sync anywhere, so that it can be
        recorded as a CUDA graph. m: the EMA momentum, a number or (for graphs) a 0-dim device tensor."""
        with self._kernels(), self.guard.droppable(self.model.trainable_parameters()):
            with autocast(self.precision, self.device, weight_cache=False):  # no cache: the step may be a graph
                loss = self.forward(batch) if self.fixed_pred else self.forward(batch).loss
            self.optimizer.zero_grad(set_to_none=True)
            loss_for_grad = loss * self._step_weight if self.dist.enabled else loss  # weighted: distributed.py
            if self.scaler is None:
                loss_for_grad.backward()
            else:  # fp16: backward of S·loss, so that small gradients do not underflow to 0
                self.scaler.scale(loss_for_grad).backward()
                self.scaler.unscale_(self.optimizer)  # g ← g / S: clipping sees the true gradients
        torch.nn.utils.clip_grad_norm_(self.model.trainable_parameters(), self.config.grad_clip)
        if self.scaler is None:
            self.optimizer.step()
        else:  # skips the step if a gradient overflowed (inf/NaN), then lowers S; raises S after 2000 good steps
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.model.update_target(m)  # after the optimizer step: the target follows the new weights
        return loss

    def _kernels(self):
        """The attention kernels of this run's steps (`fastpath.attention_kernels`)."""
        return attention_kernels(self.device, self.static_shapes)

    def _batches(self):
        """Yield the batches of steps self.step, self.step + 1, … (`fastpath.prefetched`: on a GPU a
        second thread prepares the next one). With CUDA graphs the batch stays in pinned host memory:
        `StepGraphs` copies it straight into the buffers its graph reads."""
        make = self.get_batch if self.graphs is None else (lambda s: pinned(self.plan[s]))
        return prefetched(make, self.step, self.device)

    @torch.no_grad()
    def token_embeddings(self, batch: Batch, max_tokens: int = 1024) -> torch.Tensor:
        """(N, D) context-encoder embeddings of the real, non-special tokens of the clean text, in fp32
        on the CPU; at most `max_tokens` of them (evenly spaced), which keeps the SVD of the collapse
        metrics cheap."""
        self.model.eval()
        with self._kernels():
            z = self.model.encode_context(batch.input_ids, batch.attention_mask)  # (B, L, D)
        keep = batch.attention_mask.bool() & ~special_tokens_mask(batch.input_ids, self.tokenizer.all_special_ids)
        z = z[keep].float().cpu()  # (N, D)
        if z.shape[0] > max_tokens:
            z = z[torch.linspace(0, z.shape[0] - 1, max_tokens).long()]
        return z

    def fit(self) -> Dict[str, List[float]]:
        """Train until `config.steps`; checkpoint every `save_every` steps, at the end, and when
        `stop_requested` is set (Ctrl-C, SIGTERM). Before step 1 the save path is checked and locked
        (`checkpoint.SaveTarget`); before each save the weights are checked finite."""
        from tqdm.auto import tqdm

        cfg = self.config
        if self.target is not None:
            self.target.run_id = self.run_id
            self.target.prepare(estimate_bytes(self.model) + 32 * cfg.steps)  # + the history's per-step entries
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.progress, desc="jepa", unit="step", leave=False)
        batches = self._batches()
        try:
            while self.step < cfg.steps:
                # the LR the scheduler gives this step, computed on the host (on the CUDA-graph path
                # the optimizer's LR is a GPU tensor, and reading it would wait for the GPU)
                lr, m = cfg.lr * self.lr_factor(self.step), self.momentum(self.step)
                batch = next(batches)
                done = self.guard.attempt(lambda: self._window.append(self.train_step(batch)), self.optimizer)
                bar.update(int(done))
                last = self.step == cfg.steps
                if done and (self.step % cfg.log_every == 0 or last):
                    self._log_window(self._window, batch, lr, m)
                    self._window = []
                # Read the flag once per step: a signal handler may set it at any moment, and every rank
                # must take the same branch below (a rank that alone went on to save would wait in a
                # collective the others never join). A signal to any rank stops them all after this step
                # (read after the log step, whose callbacks may ask for a stop too).
                stop = self.dist.any(self.stop_requested)
                self.stop_requested = self.stop_requested or stop
                if self.save_path and ((cfg.save_every and self.step % cfg.save_every == 0) or last or stop):
                    self._save_all_ranks()
                if stop:
                    where = f"; checkpoint saved to {self.save_path}" if self.target is not None else ""
                    self.log(f"stopped at step {self.step}{where}")
                    break
            if self.dist.enabled:  # the EMA targets, updated by each rank on its own, must still agree
                self._check_ranks_in_sync()
        finally:
            bar.close()
            batches.close()
            if self.target is not None:
                self.target.release()
        return dict(self.history)

    def _save_all_ranks(self) -> None:
        """A checkpoint step: the unlogged losses checked finite, every rank's target encoder checked
        equal (what rank 0 saves is every rank's state), rank 0 saves, the others wait for it."""
        self._check_finite(self._window)
        if self.dist.enabled:
            check_in_sync(self.model.target_encoder, self.dist, "target encoder")
        if self.target is not None:
            self._save_checked()
        self.dist.barrier()

    def _check_ranks_in_sync(self) -> None:
        digests = check_in_sync(self.model.target_encoder, self.dist, "target encoder")
        if self.dist.is_main:
            self._write(
                f"ranks in sync: target encoder sha256 {', '.join(digests)} on the {self.dist.world_size} ranks"
            )

    def _save_checked(self) -> None:
        """Save through the save-path rules; weights that are no longer finite stop the run."""
        try:
            self.target.save(self.state(), self.step)
        except NonFiniteState as e:
            raise TrainingDiverged(
                diverged_message(self.target, f"the weights became NaN or infinite by step {self.step} ({e.name})")
            ) from None

    def _check_finite(self, window: List[torch.Tensor]) -> None:
        if window and not bool(torch.isfinite(torch.stack([w.float() for w in window])).all()):
            raise TrainingDiverged(
                diverged_message(self.target, f"the loss became NaN or infinite by step {self.step}")
            )

    def _write(self, line: str) -> None:
        """Log lines go to `self.log` (print by default), written around the progress bar."""
        from tqdm.auto import tqdm

        if self.log is print:
            tqdm.write(line)
        else:
            self.log(line)

    def _log_window(self, window: List[torch.Tensor], batch: Batch, lr: float, m: float) -> None:
        self._check_finite(window)
        if not self.dist.is_main:
            return  # rank 0 alone logs
        if self.dist.enabled:  # the metrics of the whole global batch, as one process computes them
            batch = self.plan[self.step - 1]
        batch = batch.to(self.device)
        losses = torch.stack([w.float() for w in window]).cpu().tolist()  # one host sync per log, not per step
        z = self.token_embeddings(batch)  # (N, D) from the weights after this step's update
        if not bool(torch.isfinite(z).all()):  # that update blew up, although the loss before it was finite
            raise TrainingDiverged(
                diverged_message(self.target, f"the weights became NaN or infinite by step {self.step}")
            )
        metrics = collapse_metrics(z)
        maskable = batch.attention_mask.bool() & ~special_tokens_mask(batch.input_ids, self.tokenizer.all_special_ids)
        loss, masked = sum(losses) / len(losses), float(batch.pred_mask.sum() / maskable.sum())
        record = {"step": self.step, "loss": loss, "lr": lr, "ema_m": m, "masked_frac": masked, **metrics}
        self.history["step_loss"].extend(losses)
        for k, v in record.items():
            self.history[k].append(v)
        self._write(
            f"step {self.step:6d} | loss {record['loss']:.4f} | lr {lr:.3g} | ema_m {m:.4f} | "
            f"rank {metrics['rank']:6.1f} | std {metrics['std']:.3f} | mean_cos {metrics['mean_cos']:.3f}"
        )
        warning = collapse_warning(metrics)
        if warning and not self.collapse_warned:
            self._write(f"warning: {warning}")
        self.collapse_warned = bool(warning)
        for cb in self.callbacks:
            cb(self, record)

    # ----------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            **training_state(KIND, self),
            "history": {k: list(v) for k, v in self.history.items()},
            "window": [float(w) for w in self._window],  # step losses not yet logged
            "collapse_warned": self.collapse_warned,
        }

    def save(self, path: str) -> None:
        """Atomic checkpoint of everything needed to resume exactly, to any path (the save-path rules
        apply to the checkpoints `fit` writes, at `save_path`)."""
        save_checkpoint(path, self.state())

    def resume(self, path: str) -> None:
        """Load a checkpoint written by a run with the same config; training continues at its step."""
        state = load_checkpoint(path, map_location=self.device)
        check_resume(state, path, ["format", *self.state()], self.config, self.fingerprint)  # before any tensor
        flags = [{k: g[k] for k in ("fused", "capturable")} for g in self.optimizer.param_groups]
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler is not None and state.get("scaler"):  # an fp16 run resumes with its scale S
                self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{path} does not fit this model: {str(e).splitlines()[0][:200]}") from None
        for group, flag in zip(self.optimizer.param_groups, flags):  # this run's kernels, not the saved run's
            group.update(flag)
            if self.graphs is not None:  # the LR back on the GPU, as the graphs read it
                group["lr"] = torch.tensor(float(group["lr"]), device=self.device)
        if self.graphs is not None:  # new state tensors: record the graphs again
            self.graphs = StepGraphs(self.graphs.step, self.device)
        restore_rng_state(state["rng"])
        self.step = int(state["step"])
        self.history = defaultdict(list, {k: list(v) for k, v in state["history"].items()})
        self._window = [torch.tensor(x, dtype=torch.float32, device=self.device) for x in state["window"]]
        self.collapse_warned = bool(state["collapse_warned"])
        self.run_id = state["run_id"]  # the same run, continued: it may replace its own checkpoints
        if self.target is not None:
            self.target.run_id = self.run_id
            self.target.last_good = (path, self.step)


def diverged_message(target: Optional[SaveTarget], what: str) -> str:
    """The message of a run stopped by NaN or infinite values (`what`): it names the last checkpoint
    *this run* wrote and verified finite (`target.last_good`), or says there is none."""
    good = target.last_good if target is not None else None
    if good is not None:
        where = f" The last good checkpoint is {good[0]} (step {good[1]}, of this run, checked finite)."
    elif target is not None:
        where = " This run saved no checkpoint (none with finite weights)."
    else:
        where = ""
    return f"{what}; training stopped.{where} Try a lower --lr"


def __getattr__(name: str):
    """The command line moved to cli.py; its names stay importable from here (`from jepa_lite.train
    import main`), loaded only when asked for, so the trainer itself imports no command-line code."""
    if name in (
        "main",
        "build_parser",
        "config_from_args",
        "run_cli",
        "stop_on_signals",
        "stop_on_first_interrupt",
        "STOP_SIGNALS",
        "_Parser",
    ):
        from . import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    from .cli import main

    exit_process(main())  # sys.exit, or under torchrun os._exit (distributed.exit_process says why)

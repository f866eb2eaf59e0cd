"""The command lines and their signal handling: `python -m jepa_lite.train --help`.

`run_cli` is the part both trainers share (`jepa_lite.train`, `jepa_lite.paired`): build the trainer
(bad input → one `error:` line, exit 2, before any work), `fit()` under `stop_on_signals` (the first
Ctrl-C or SIGTERM ends the step, dropping it on the CPU (stopping.py), checkpoints and stops; a second
one stops at once), and the exit codes. `main` is the masked-span trainer's command line.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
from typing import Any, Callable, Optional, Sequence, Tuple

from .checkpoint import CheckpointError, check_save_path, load_checkpoint
from .config import TrainConfig, check_compatible, check_resumable
from .data import DataError
from .ema import SCHEDULES
from .encoders import BackboneError
from .errors import ConfigError, TrainingDiverged
from .precision import CHOICES as PRECISIONS
from .train import Trainer


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2 (argparse's default prints the usage too)
        self.exit(2, f"error: {message} (see --help)\n")


TRAIN_EXAMPLES = """examples:
  jepa-lite-train --smoke_test                                   # seconds, offline: check the set-up
  jepa-lite-train --data my_text.txt --steps 2000 --save_path runs/my.pt
  jepa-lite-train --resume runs/my.pt                            # continue a stopped run exactly
(jepa-lite-train is the same as python -m jepa_lite.train)"""
# The names both command lines used before they shared one vocabulary (--model, --data): still accepted.
OLD_NAMES = {"--model_name": "--model", "--text_file": "--data"}


def note_old_names(argv: Sequence[str]) -> None:
    """One `note:` line per old option name in argv (they keep working)."""
    for arg in argv:
        old = arg.split("=", 1)[0]
        if old in OLD_NAMES:
            # on stdout: errors stay one line
            print(f"note: {old} is now called {OLD_NAMES[old]}; the old name still works")


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = _Parser(
        prog="python -m jepa_lite.train",
        description="Train a masked-span JEPA on text, offline by default.",
        argument_default=argparse.SUPPRESS,
        epilog=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a(
        "--model",
        "--model_name",
        dest="model_name",
        metavar="MODEL",
        help="encoder: omit for the offline pretrained MiniLM; 'tiny'; 'random:bert'; a hub name or local folder "
        "(--model_name is its old name, still accepted)",
    )
    a(
        "--data",
        "--text_file",
        dest="text_file",
        metavar="FILE",
        help="UTF-8 text, one example per line (default: the kit's built-in corpus; --text_file "
        "is its old name, still accepted)",
    )
    a(
        "--max_lines",
        type=int,
        help="read only the first N non-blank lines of --data (default: all of them; the run prints how many it read)",
    )
    a(
        "--token_cache",
        metavar="auto|off|DIR",
        help="token cache of the text file: auto = files of 64 MiB or more, next to the checkpoint "
        "(default); off; or a folder",
    )
    a("--max_length", type=int, help=f"tokens per line (default {d.max_length})")
    a("--mask_ratio", type=float, help=f"fraction of tokens masked, in (0, 1) (default {d.mask_ratio})")
    a("--mean_span_len", type=float, help=f"mean masked span length, ≥ 1 (default {d.mean_span_len:g})")
    a("--ema_m", type=float, help=f"EMA momentum m of the target encoder (default {d.ema_m})")
    a("--ema_schedule", choices=SCHEDULES, help="momentum schedule from --ema_m to --ema_m_final (default constant)")
    a("--ema_m_final", type=float, help=f"final momentum of the linear/cosine schedules (default {d.ema_m_final})")
    a(
        "--pred_hidden_mult",
        type=int,
        help=f"predictor width in multiples of the hidden size (default {d.pred_hidden_mult})",
    )
    a(
        "--batch_size",
        type=int,
        help=f"lines per optimizer step (default {d.batch_size}); under torchrun the global batch, all processes "
        "together: a multiple of their number, each process trains on batch_size / processes of the lines",
    )
    a("--lr", type=float, help=f"peak learning rate (default {d.lr})")
    a("--weight_decay", type=float, help=f"(default {d.weight_decay})")
    a("--steps", type=int, help=f"optimizer steps (default {d.steps})")
    a("--warmup_steps", type=int, help=f"(default {d.warmup_steps})")
    a("--log_every", type=int, help=f"(default {d.log_every})")
    a("--save_every", type=int, help=f"checkpoint interval, 0 = only at the end (default {d.save_every})")
    a(
        "--save_path",
        help="checkpoint file (default: a new file per run, checkpoints/<model>-<date>-<time>.pt; "
        "with --resume, the resumed file)",
    )
    a(
        "--overwrite",
        action="store_true",
        help="may replace another run's checkpoint at --save_path (never a file that is not a checkpoint)",
    )
    a("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    a("--seed", type=int, help=f"(default {d.seed})")
    a(
        "--smoke_test",
        action="store_true",
        help="tiny random encoder, local tokenizer, built-in corpus, 200 steps: offline, seconds",
    )
    a(
        "--precision",
        choices=PRECISIONS,
        help="auto (default): bf16 autocast on CUDA GPUs with native bf16 (compute capability ≥ 8), "
        "fp16 autocast + loss scaling on older ones, fp32 on the CPU and MPS",
    )
    a(
        "--compile",
        action="store_true",
        help="torch.compile the model (faster on a GPU, and on the CPU in bf16, after a slow start)",
    )
    a(
        "--no_cuda_graphs",
        dest="cuda_graphs",
        action="store_false",
        help="with --compile on CUDA: no CUDA graphs (compile only)",
    )
    a("--no_group_by_length", dest="group_by_length", action="store_false", help="batch lines in plain random order")
    a("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    a("--no_progress", action="store_true", help="no progress bar (log lines only)")
    return p


def config_from_args(given: dict) -> TrainConfig:
    """TrainConfig from the flags the user gave; on --resume the checkpoint's config fills the rest,
    and the run continues in the resumed file unless --save_path names another."""
    given = dict(given)
    resume = given.pop("resume", None)
    if given.pop("no_progress", False):
        given["progress"] = False
    if resume:
        state = load_checkpoint(resume)
        check_resumable(state, resume)
        saved = state["config"]
        given.setdefault("save_path", resume)
        check_compatible(saved, {**saved, **given}, resume)
        return TrainConfig(**{**saved, **given})
    if given.get("smoke_test"):
        return TrainConfig.smoke(**given)
    return TrainConfig(**given)


STOP_SIGNALS = ("SIGINT", "SIGTERM")  # SIGTERM: what a job scheduler or `docker stop` sends


@contextlib.contextmanager
def stop_on_signals(trainer):
    """The first Ctrl-C or SIGTERM: checkpoint and stop (`trainer.stop_signal` names it) after the
    current step, or at once where the trainer's `guard` drops a step under way (`stopping.py`). A
    second one interrupts at once, without saving. `trainer` may also be a function returning the
    trainer or None: before there is one, a signal interrupts at once (KeyboardInterrupt,
    with the signal's name in `stop_on_signals.last`), as nothing is there to save."""
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def handler(signum, frame):
        stop_on_signals.last = signal.Signals(signum).name
        t = trainer() if callable(trainer) else trainer
        if t is None:
            raise KeyboardInterrupt
        trainer_stop(t, signum)

    def trainer_stop(trainer, signum):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        trainer.stop_signal = signal.Signals(signum).name
        again = "Ctrl-C" if signum == signal.SIGINT else "the signal"
        guard = getattr(trainer, "guard", None)  # stopping.StepGuard: a step under way is dropped, not finished
        when = "now (a step under way is dropped)" if guard is not None and guard.enabled else "after this step"
        print(f"\n{trainer.stop_signal}: stopping {when} ({again} again to abort without saving)", file=sys.stderr)

    signums = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


stop_on_first_interrupt = stop_on_signals  # the earlier name


def run_cli(prog: str, build: Callable[[], Any], done: Callable[[Any], None], errors: Tuple[type, ...]) -> int:
    """A trainer's command line, the same for every trainer (`jepa_lite.train`, `jepa_lite.paired`).

    `build()` checks the input and returns the trainer (resumed if asked; it prints what it did);
    `trainer.fit()` runs under `stop_on_signals`; `done(trainer)` prints the end of a finished run.
    The trainer has `step`, `config.steps`, `save_path`, `target` (a SaveTarget or None) and
    `stop_requested`. Exit codes: 0 done; 2 bad input (an `errors` exception: one `error:` line,
    before any work); 1 the run failed after it started (one of `errors` once steps were taken, or
    TrainingDiverged); 128 + signal (130 Ctrl-C, 143 SIGTERM) stopped early, with where it stopped
    and `python -m PROG --resume PATH` to continue, or, before the trainer existed, nothing written."""
    stop_on_signals.last = "SIGINT"
    try:
        with stop_on_signals(lambda: None):  # until `build` has a trainer to stop
            return _run_cli(prog, build, done, errors)
    except KeyboardInterrupt:  # before the trainer existed: nothing was written
        print(f"stopped by {stop_on_signals.last} before training started; nothing written", file=sys.stderr)
        return 128 + getattr(signal, stop_on_signals.last).value


def _run_cli(prog: str, build, done, errors) -> int:
    trainer, first_step = None, 0
    try:
        trainer = build()
        first_step = trainer.step
        with stop_on_signals(trainer):  # from here a signal stops the run after its step, with a save
            trainer.fit()
        if trainer.step < trainer.config.steps:  # stopped early by a signal
            sig = getattr(trainer, "stop_signal", "SIGINT")
            path = trainer.save_path
            saved = (
                f"checkpoint {path}; continue with: python -m {prog} --resume {shlex.quote(str(path))}"
                if path
                else "no checkpoint (no --save_path)"
            )
            print(f"stopped early by {sig} at step {trainer.step} of {trainer.config.steps}; {saved}", file=sys.stderr)
            return 128 + getattr(signal, sig, signal.SIGINT).value
        done(trainer)
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 1 if trainer is not None and trainer.step > first_step else 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if trainer is None:
            raise  # run_cli says: nothing written
        good = trainer.target.last_good if trainer.target is not None else None
        last = f"; the last checkpoint is {good[0]} (step {good[1]})" if good else ""
        print(f"interrupted at step {trainer.step}, without saving{last}", file=sys.stderr)
        return 128 + getattr(signal, stop_on_signals.last).value
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (`run_cli`). Exit codes: 0 done; 2 bad input (one `error:` line, before any
    work); 1 the run failed (diverged, or a save failed); 130 / 143 stopped early by Ctrl-C / SIGTERM."""
    args = vars(build_parser().parse_args(argv))
    note_old_names(sys.argv[1:] if argv is None else argv)

    def build() -> Trainer:
        config = config_from_args(args)
        if config.save_path not in (None, "auto"):  # another run's checkpoint, refused before any work
            run_id = load_checkpoint(args["resume"]).get("run_id") if args.get("resume") else None
            check_save_path(config.save_path, run_id, config.overwrite)
        trainer = Trainer(config)
        if args.get("resume"):
            trainer.resume(args["resume"])
            print(f"resumed from {args['resume']} at step {trainer.step}")
        if trainer.save_path:
            print(f"checkpoints go to {trainer.save_path}")
        return trainer

    def done(trainer: Trainer) -> None:
        if trainer.save_path:
            print(f"done: {trainer.step} steps; checkpoint {trainer.save_path}")

    return run_cli("jepa_lite.train", build, done, (ConfigError, DataError, BackboneError, CheckpointError))

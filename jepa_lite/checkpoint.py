"""Checkpoints that survive a crash, load without running anyone's code, and never cost a user a file.

* Atomic: the checkpoint is written to a temporary file in the same folder, flushed to disk, then
  renamed over the old one (`os.replace` is atomic on POSIX and Windows). A process killed mid-save
  leaves the previous checkpoint intact. A disk that fills up mid-save gives one line
  (`CheckpointError`), the previous checkpoint intact and no temporary file.
* Safe to load: `torch.load(weights_only=True)` only rebuilds tensors and plain containers, never
  unpickles arbitrary objects.
* Complete: model, optimizer, LR scheduler, step, RNG state, config and history — enough for a
  resumed run to continue exactly where the first one stopped. Every trainer's state holds `"kind"`
  (`"masked_span"`, `"paired"`) and `"run_id"` (which run wrote it).

The save-path rules (`SaveTarget`, for any trainer):

1. Only a jepa_lite checkpoint may be replaced; any other file, a folder, a device or a pipe is
   refused, and so is a read-only file. A checkpoint of *another* run (another `run_id`) is replaced
   only when the user says so (`overwrite=True`, `--overwrite`).
2. One process per path: an exclusive lock (`flock`) on a hidden `.NAME.lock` next to the file. The
   operating system drops it when the process dies, however it dies, so a killed run never leaves
   it stuck.
3. Before step 1: the folder exists or can be created, is writable, and has room for a checkpoint of
   the estimated size (free space and the process's file-size limit, `ulimit -f`).
4. Before each save: every floating-point tensor of the state is finite (`NonFiniteState`
   otherwise), and the file at the path is still the one this run found or wrote.
5. Temporary files of the kit's own left by a killed save (`.NAME.jepa_lite-PID-XXXX.tmp`) are
   removed at the next save into that folder, once no live process can be writing them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

import torch

from . import writer
from .writer import TEMP_TAG, WriteError, remove_stale_temps  # noqa: F401  (TEMP_TAG, remove_stale_temps: re-exported)

FORMAT = "jepa_lite-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint, or a checkpoint path, that cannot be used; the message says why."""


class NonFiniteState(CheckpointError):
    """A state about to be saved holds NaN or infinite values; `name` is the first such tensor."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name


# ---------------------------------------------------------------------------------------------
# Writing and reading
# ---------------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, state: Dict[str, Any]) -> None:
    """Write `state` to `path` atomically (`writer.atomic_file`: a temporary name of the kit's own,
    fsync, rename).

    A full disk (or a file-size limit) raises CheckpointError in one line, after removing the
    temporary file; the file at `path` is then what it was before."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with writer.atomic_file(path, "wb", "the checkpoint") as f:
            torch.save({"format": FORMAT, **state}, f)
    except WriteError as e:
        raise CheckpointError(f"{e}. Free some space or choose another --save_path") from None


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> Dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; CheckpointError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}" if not path.exists() else f"checkpoint is not a regular file: {path}"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise CheckpointError(f"cannot read the checkpoint {path}: permission denied") from None
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt or not a torch file): {first[:200]}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jepa_lite checkpoint")
    return state


def read_header(path: str | os.PathLike) -> Optional[Dict[str, Any]]:
    """{"kind", "run_id", "step"} of the jepa_lite checkpoint at `path`, or None if the file is not
    one. Cheap on large files: tensors are memory-mapped, not read."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
                return None
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return None
    return {"kind": state.get("kind"), "run_id": state.get("run_id"), "step": state.get("step")}


def check_state_keys(state: Dict[str, Any], expected: Iterable[str], path, what: str = "its state") -> None:
    """CheckpointError naming the keys `state` lacks or has beyond `expected`: a checkpoint written
    by an older or newer version of the kit."""
    expected = set(expected)
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"has unknown {', '.join(map(repr, extra))}"] if extra else []
        )
        raise CheckpointError(
            f"{path} was written by another version of jepa_lite ({what} {' and '.join(parts)}); "
            "resume it with that version, or start a new run"
        )


def check_state_types(state: Dict[str, Any], path) -> None:
    """CheckpointError naming the first part of a trainer's checkpoint whose type is not what the kit
    writes (a crafted or damaged file): step a whole number ≥ 0; config, optimizer and scheduler dicts;
    model a dict of tensors; history a dict of lists; rng["torch"] a byte tensor; window a list of
    numbers (or of lists of numbers). Checked before any of it is loaded into a run."""

    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    step, model, history, rng, window = (
        state.get("step"),
        state.get("model"),
        state.get("history"),
        state.get("rng"),
        state.get("window", []),
    )
    checks = [
        ("step", "a whole number ≥ 0", isinstance(step, int) and not isinstance(step, bool) and step >= 0),
        *((k, "a dict", isinstance(state.get(k), dict)) for k in ("config", "optimizer", "scheduler")),
        (
            "model",
            "a dict of tensors",
            isinstance(model, dict) and all(isinstance(v, torch.Tensor) for v in model.values()),
        ),
        (
            "history",
            "a dict of lists",
            isinstance(history, dict) and all(isinstance(v, list) for v in history.values()),
        ),
        (
            "rng",
            "the saved random-number state",
            isinstance(rng, dict) and isinstance(rng.get("torch"), torch.Tensor) and rng["torch"].dtype == torch.uint8,
        ),
        (
            "window",
            "a list of losses",
            isinstance(window, list)
            and all(number(x) or (isinstance(x, list) and all(map(number, x))) for x in window),
        ),
    ]
    for field, want, ok in checks:
        if not ok:
            raise CheckpointError(
                f"{path} is damaged or was not written by jepa_lite: its {field} is not {want}; it cannot be resumed"
            )


def check_config_compatible(saved: Dict[str, Any], current: Dict[str, Any], path, resumable: Iterable[str]) -> None:
    """CheckpointError naming the first settings (up to 3) where `current` differs from the
    checkpoint's `saved` config, ignoring the `resumable` ones (those a resumed run may change).
    Each trainer passes its own list (`train.RESUMABLE_CHANGES`, `paired.config.RESUMABLE_CHANGES`)."""
    resumable = set(resumable)
    diffs = [k for k in current if k not in resumable and saved.get(k) != current[k]]
    if diffs:
        shown = ", ".join(f"{k}={saved.get(k)!r} (now {current[k]!r})" for k in diffs[:3])
        raise CheckpointError(f"{path} was trained with a different config: {shown}")


def rng_state() -> Dict[str, Any]:
    """The random-number generators a resumed run must continue: torch's CPU one and, where CUDA
    is available, every GPU's (`restore_rng_state` puts them back)."""
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng_state(rng: Dict[str, Any]) -> None:
    """Put back what `rng_state` saved (the GPU generators only where CUDA is available);
    CheckpointError if it is not such a state."""
    try:
        torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    except (RuntimeError, TypeError, KeyError, AttributeError) as e:
        raise CheckpointError(
            f"the checkpoint's random-number state cannot be restored ({str(e).splitlines()[0][:100]}); it is damaged"
        ) from None


def first_nonfinite(tensors: Iterable[Tuple[str, torch.Tensor]]) -> Optional[str]:
    """Name of the first floating-point tensor holding a NaN or an infinity, or None."""
    named = [(n, t) for n, t in tensors if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not named:
        return None
    ok = torch.stack([torch.isfinite(t).all().to("cpu", non_blocking=False) for _, t in named])  # one flag per tensor
    bad = (~ok).nonzero()
    return named[int(bad[0])][0] if len(bad) else None


def state_tensors(state: Any, prefix: str = "") -> Iterable[Tuple[str, torch.Tensor]]:
    """Every tensor inside a nested dict/list state, with a dotted name."""
    if isinstance(state, torch.Tensor):
        yield prefix, state
    elif isinstance(state, dict):
        for k, v in state.items():
            yield from state_tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            yield from state_tensors(v, f"{prefix}.{i}")


def estimate_bytes(*modules: torch.nn.Module, optimizer_slots: int = 2) -> int:
    """Bytes of a checkpoint of `modules` and their optimizer, before the first step: every parameter
    and buffer once, plus `optimizer_slots` fp32 values per trainable parameter (AdamW: 2)."""
    total = 0
    for m in modules:
        total += sum(t.numel() * t.element_size() for t in m.state_dict().values())
        total += optimizer_slots * 4 * sum(p.numel() for p in m.parameters() if p.requires_grad)
    return total + (1 << 20)  # config, history, RNG states, zip headers


# ---------------------------------------------------------------------------------------------
# Small JSON results files (the study, the notebook times, the probe scores)
# ---------------------------------------------------------------------------------------------
def json_marked(path: str | os.PathLike, field: str, value: str) -> bool:
    """True when `path` is a JSON object whose `field` is `value`: a results file the kit wrote, which
    a command may replace; anything else (another file, unreadable, not JSON) is the user's."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")).get(field) == value
    except (OSError, ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        return False


def write_json(path: str | os.PathLike, obj: Any, **dumps) -> None:
    """Write `obj` as JSON to `path` atomically (`writer.write_json`: a temporary name of the kit's own)."""
    writer.write_json(path, obj, **dumps)


# ---------------------------------------------------------------------------------------------
# The save-path rules
# ---------------------------------------------------------------------------------------------
def check_save_path(path: str | os.PathLike, run_id: Optional[str] = None, overwrite: bool = False) -> Path:
    """Rule 1 and the folder part of rule 3, without writing anything. Returns the path to write
    (a symbolic link is followed: the file it points to is what would be replaced)."""
    raw = os.fspath(path)
    given = Path(path)
    if raw.endswith(("/", os.sep)):  # Path() would drop the slash and write a file of the folder's name
        raise CheckpointError(f"--save_path {raw} names a folder; give a file name, e.g. {given / 'run.pt'}")
    path = Path(os.path.realpath(given))
    if os.path.lexists(path):
        try:
            st = os.stat(path)
        except OSError as e:
            raise CheckpointError(f"cannot inspect --save_path {given}: {e.strerror or e}") from None
        if stat.S_ISDIR(st.st_mode):
            raise CheckpointError(f"--save_path {given} is a folder; give a file name, e.g. {given / 'run.pt'}")
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(
                f"--save_path {given} is not a regular file (a device, pipe or socket); checkpoints "
                "go to regular files only"
            )
        header = read_header(path)
        if header is None:
            raise CheckpointError(
                f"--save_path {given} exists and is not a jepa_lite checkpoint; the kit replaces only "
                "its own checkpoints: choose another path"
            )
        if st.st_mode & 0o222 == 0:
            raise CheckpointError(
                f"--save_path {given} is read-only; the kit does not replace it: make it writable "
                "or choose another path"
            )
        if header["run_id"] is None or header["run_id"] != run_id:
            if not overwrite:
                what = f"{header['kind']} run" if header.get("kind") else "run"
                raise CheckpointError(
                    f"--save_path {given} holds the checkpoint of another {what} (step {header['step']}); "
                    f"pass --overwrite (Python: overwrite=True) to replace it, --resume {given} to continue "
                    "it, or choose another path"
                )
    folder = _existing_ancestor(path.parent, given)
    if not os.access(folder, os.W_OK | os.X_OK) or os.stat(folder).st_mode & 0o222 == 0:
        raise CheckpointError(
            f"cannot write checkpoints into {folder}: the folder is read-only; choose another --save_path"
        )
    return path


def _existing_ancestor(folder: Path, given: Path) -> Path:
    """The nearest folder above (or at) `folder` that exists; CheckpointError if that is a file."""
    try:
        return writer.existing_ancestor(folder)
    except WriteError as e:
        raise CheckpointError(f"cannot create the folder of --save_path {given}: {e}") from None


def check_room(path: Path, nbytes: int) -> None:
    """Rule 3's room check: CheckpointError if the folder of `path` has less than `nbytes` free, or
    the process may not write a file that large."""
    try:
        writer.check_room(path.parent, nbytes, "a checkpoint")
    except WriteError as e:
        raise CheckpointError(str(e)) from None


def _probe_writable(folder: Path) -> None:
    try:
        writer.check_writable(folder, "checkpoints", "--save_path")
    except WriteError as e:
        raise CheckpointError(str(e)) from None


class PathLock(writer.PathLock):
    """Rule 2 (`writer.PathLock`), refusing with a CheckpointError."""

    def acquire(self) -> None:
        try:
            super().acquire()
        except WriteError as e:
            raise CheckpointError(str(e)) from None


def _identity(path: Path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class SaveTarget:
    """The save-path rules for one run writing its checkpoints to one path.

        target = SaveTarget(path, run_id, overwrite=False)
        target.check()                    # rule 1 and the folder, before any work (cheap)
        with target.prepared(nbytes):     # before step 1: folder created and writable, room, the lock
            ...
            target.save(state, step)      # finite state, same file, stale temps removed, atomic write
        target.last_good                  # (path, step) of the last checkpoint this run wrote and checked

    `run_id` identifies the run: its own checkpoint (same `run_id`) may be replaced, another run's only
    with `overwrite`. A trainer that resumes a run takes over that run's `run_id`.
    """

    def __init__(self, path: str | os.PathLike, run_id: str, overwrite: bool = False):
        self.raw = os.fspath(path)  # as given: a trailing slash is refused
        self.given = Path(path)
        self.run_id = run_id
        self.overwrite = overwrite
        self.path = Path(os.path.realpath(self.given))
        self.lock = PathLock(self.path)
        self.last_good: Optional[Tuple[Path, int]] = None
        self._expected = None  # identity of the file at the path that this run may replace

    def check(self) -> None:
        self.path = check_save_path(self.raw, self.run_id, self.overwrite)

    def prepare(self, nbytes: int) -> None:
        """Everything before step 1; the lock is held until `release`."""
        self.check()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"cannot create the folder {self.path.parent}: {e.strerror or e}") from None
        _probe_writable(self.path.parent)
        check_room(self.path, nbytes)
        self.lock = PathLock(self.path)
        self.lock.acquire()
        try:
            self.check()  # again under the lock: another run may have written the file meanwhile
        except BaseException:
            self.lock.release()
            raise
        self._expected = _identity(self.path)

    def release(self) -> None:
        self.lock.release()

    def prepared(self, nbytes: int):
        import contextlib

        @contextlib.contextmanager
        def held():
            self.prepare(nbytes)
            try:
                yield self
            finally:
                self.release()

        return held()

    def save(self, state: Dict[str, Any], step: int) -> Path:
        """Rules 4 and 5, then the atomic write. Raises NonFiniteState (nothing written) if the state
        holds NaN or inf, CheckpointError if the file changed under us or the disk is full."""
        bad = first_nonfinite(state_tensors(state))
        if bad is not None:
            raise NonFiniteState(f"the state of step {step} holds NaN or infinite values ({bad}); not saved", bad)
        if _identity(self.path) != self._expected:
            raise CheckpointError(
                f"{self.path} was changed by another program since this run last wrote it; not replacing "
                "it (choose another --save_path)"
            )
        remove_stale_temps(self.path.parent, self.path.name)
        save_checkpoint(self.path, {**state, "run_id": self.run_id})
        self._expected = _identity(self.path)
        self.last_good = (self.path, step)
        return self.path


def plain_lrs(state_dict: dict) -> dict:
    """An optimizer's or LR scheduler's state dict with its learning rates as plain numbers. On the
    CUDA-graph path they are GPU tensors; stored as numbers, a checkpoint resumes on any path."""
    for group in state_dict.get("param_groups", []):
        for key in ("lr", "initial_lr"):
            if isinstance(group.get(key), torch.Tensor):
                group[key] = group[key].item()
    for key in ("base_lrs", "_last_lr"):
        if key in state_dict:
            state_dict[key] = [x.item() if isinstance(x, torch.Tensor) else x for x in state_dict[key]]
    return state_dict


def training_state(kind: str, trainer) -> Dict[str, Any]:
    """What both trainers' checkpoints hold alike: which run it is (`kind`, run id, config, step, the
    fingerprint of its data) and where its training stands (model, optimizer, LR schedule, the fp16 loss
    scaler or None, the random generators). Each trainer adds its history to it."""
    return {
        "kind": kind,
        "run_id": trainer.run_id,
        "config": dataclasses.asdict(trainer.config),
        "step": trainer.step,
        "fingerprint": trainer.fingerprint,
        "model": trainer.model.state_dict(),
        "optimizer": plain_lrs(trainer.optimizer.state_dict()),
        "scheduler": plain_lrs(trainer.scheduler.state_dict()),
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,  # fp16: scale S, growth
        "rng": rng_state(),
    }

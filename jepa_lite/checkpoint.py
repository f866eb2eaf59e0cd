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

import errno
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

import torch

FORMAT = "jepa_lite-checkpoint-v1"
TEMP_TAG = "jepa_lite-"  # temporary files are .NAME.jepa_lite-PID-XXXXXXXX.tmp
_TEMP = re.compile(r"^\.(?P<name>.+)\.jepa_lite-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


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
    """Write `state` to `path` atomically (temporary file + fsync + rename).

    A full disk (or a file-size limit) raises CheckpointError in one line, after removing the
    temporary file; the file at `path` is then what it was before."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{TEMP_TAG}{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # the permissions of any new file (mkstemp's are 0600)
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        no_room = _no_room(e)
        if no_room is not None:
            before = "the previous checkpoint there is intact" if path.exists() else "nothing was written"
            raise CheckpointError(f"could not write the checkpoint {path}: {no_room}; {before}. Free some space or choose another --save_path") from None
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _no_room(e: BaseException) -> Optional[str]:
    """The reason, if `e` (or what caused it: torch's writer wraps the OSError in a RuntimeError)
    is a full disk, a quota or a file-size limit; None otherwise."""
    seen = 0
    while e is not None and seen < 5:
        if isinstance(e, OSError) and e.errno in _NO_ROOM:
            return {errno.EFBIG: "file too large for this process's file-size limit (ulimit -f)"}.get(e.errno, "no space left on the device")
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> Dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; CheckpointError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}" if not path.exists() else f"checkpoint is not a regular file: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise CheckpointError(f"cannot read the checkpoint {path}: permission denied") from None
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or not a torch file): {first[:200]}") from None
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
        parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + ([f"has unknown {', '.join(map(repr, extra))}"] if extra else [])
        raise CheckpointError(f"{path} was written by another version of jepa_lite ({what} {' and '.join(parts)}); resume it with that version, or start a new run")


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
    """Put back what `rng_state` saved (the GPU generators only where CUDA is available)."""
    torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


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
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return False


def write_json(path: str | os.PathLike, obj: Any, **dumps) -> None:
    """Write `obj` as JSON to `path` atomically: a temporary file next to it, then a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, **dumps) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# The save-path rules
# ---------------------------------------------------------------------------------------------
def check_save_path(path: str | os.PathLike, run_id: Optional[str] = None, overwrite: bool = False) -> Path:
    """Rule 1 and the folder part of rule 3, without writing anything. Returns the path to write
    (a symbolic link is followed: the file it points to is what would be replaced)."""
    given = Path(path)
    path = Path(os.path.realpath(given))
    if os.path.lexists(path):
        try:
            st = os.stat(path)
        except OSError as e:
            raise CheckpointError(f"cannot inspect --save_path {given}: {e.strerror or e}") from None
        if stat.S_ISDIR(st.st_mode):
            raise CheckpointError(f"--save_path {given} is a folder; give a file name, e.g. {given / 'run.pt'}")
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"--save_path {given} is not a regular file (a device, pipe or socket); checkpoints go to regular files only")
        header = read_header(path)
        if header is None:
            raise CheckpointError(f"--save_path {given} exists and is not a jepa_lite checkpoint; the kit replaces only its own checkpoints: choose another path")
        if st.st_mode & 0o222 == 0:
            raise CheckpointError(f"--save_path {given} is read-only; the kit does not replace it: make it writable or choose another path")
        if header["run_id"] is None or header["run_id"] != run_id:
            if not overwrite:
                what = f"{header['kind']} run" if header.get("kind") else "run"
                raise CheckpointError(
                    f"--save_path {given} holds the checkpoint of another {what} (step {header['step']}); "
                    f"pass --overwrite (Python: overwrite=True) to replace it, --resume {given} to continue it, or choose another path"
                )
    folder = _existing_ancestor(path.parent, given)
    if not os.access(folder, os.W_OK | os.X_OK) or os.stat(folder).st_mode & 0o222 == 0:
        raise CheckpointError(f"cannot write checkpoints into {folder}: the folder is read-only; choose another --save_path")
    return path


def _existing_ancestor(folder: Path, given: Path) -> Path:
    """The nearest folder above (or at) `folder` that exists; CheckpointError if that is a file."""
    probe = folder
    while not os.path.lexists(probe):
        probe = probe.parent
    if not probe.is_dir():
        raise CheckpointError(f"cannot create the folder of --save_path {given}: {probe} is a file, not a folder")
    return probe


def check_room(path: Path, nbytes: int) -> None:
    """Rule 3's room check: CheckpointError if the folder of `path` has less than `nbytes` free, or
    the process may not write a file that large."""
    from .validation import human_bytes

    free = shutil.disk_usage(path.parent).free
    if free < nbytes:
        raise CheckpointError(f"not enough room for a checkpoint in {path.parent}: one takes about {human_bytes(nbytes)} (estimate), {human_bytes(free)} is free")
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, ValueError, OSError):
        return
    if limit != resource.RLIM_INFINITY and limit < nbytes:
        raise CheckpointError(f"this process may write files of at most {human_bytes(limit)} (ulimit -f), and a checkpoint takes about {human_bytes(nbytes)} (estimate)")


def _probe_writable(folder: Path) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{TEMP_TAG}probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoints into {folder}: {e.strerror or e}") from None


def remove_stale_temps(folder: Path, locked_name: Optional[str] = None) -> list:
    """Rule 5: remove the kit's temporary files in `folder` that no live process is writing. A temp
    file of `locked_name` (the checkpoint whose lock this process holds) is stale unless it is this
    process's; another name's is stale when its process is gone. Returns the removed paths."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        m = _TEMP.match(entry)
        if not m:
            continue
        pid = int(m["pid"])
        if pid == os.getpid():
            continue
        if m["name"] != locked_name and _alive(pid):
            continue
        try:
            os.unlink(folder / entry)
            removed.append(folder / entry)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class PathLock:
    """Rule 2: an exclusive lock on `.NAME.lock` next to `path`, held by one process at a time. The
    kernel drops an `flock` when its process exits, so a killed run leaves nothing stuck (the file
    itself may remain; it is just a name to lock)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.parent / f".{self.path.name}.lock"
        self.fd: Optional[int] = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the other rules still apply
            return
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise CheckpointError(f"cannot lock {self.path} ({self.lock_path}): {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise CheckpointError(f"{self.path} is being written by another run (process {holder}); wait for it to finish, or give this run another --save_path") from None
            try:  # the holder before us may have removed the file between our open and our flock
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.lock_path)  # while still holding it, so no one else locks a removed file
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


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
        self.given = Path(path)
        self.run_id = run_id
        self.overwrite = overwrite
        self.path = Path(os.path.realpath(self.given))
        self.lock = PathLock(self.path)
        self.last_good: Optional[Tuple[Path, int]] = None
        self._expected = None  # identity of the file at the path that this run may replace

    def check(self) -> None:
        self.path = check_save_path(self.given, self.run_id, self.overwrite)

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
            raise CheckpointError(f"{self.path} was changed by another program since this run last wrote it; not replacing it (choose another --save_path)")
        remove_stale_temps(self.path.parent, self.path.name)
        save_checkpoint(self.path, {**state, "run_id": self.run_id})
        self._expected = _identity(self.path)
        self.last_good = (self.path, step)
        return self.path

"""Every file and folder the kit writes goes through here, under one set of rules.

1. A name of the kit's own: the new version is written to `.NAME.jepa_lite-PID-XXXXXXXX.tmp` in the
   same folder (never `NAME.tmp`, a name a user may hold), flushed to disk (fsync), then renamed over
   NAME (`os.replace`: atomic). A process killed mid-write leaves the old version at NAME.
2. Folders too (a model folder, an export): the new folder is written beside the old one under a
   temporary name, then swapped in with one atomic exchange (Linux `renameat2(RENAME_EXCHANGE)`;
   elsewhere two renames, the old folder kept under a temporary name in between). A failure before the
   swap leaves the old folder whole and no half-written one at NAME.
3. A full disk, a file-size limit (`ulimit -f`) or any other refusal of the system (permissions, a
   folder on another device) is one line (`WriteError`), the old version intact and no temporary left.
4. One process per output: `PathLock`, an `flock` on `.NAME.lock` beside it; the kernel drops it when
   the process dies, however it dies.
5. Temporaries left by a killed writer are removed by the next writer into that folder, once no live
   process can be writing them (`remove_stale_temps`).

What may be replaced (only what the kit wrote) is each writer's rule: `checkpoint.SaveTarget` for
checkpoints, a marker field or file for results files and model folders.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

TEMP_TAG = "jepa_lite-"  # temporaries are .NAME.jepa_lite-PID-XXXXXXXX.tmp (files and folders)
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.jepa_lite-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class WriteError(ValueError):
    """An output that cannot be written; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# Files: temporary name of our own, fsync, atomic rename
# ---------------------------------------------------------------------------------------------
def temp_prefix(path: Path) -> str:
    return f".{path.name}.{TEMP_TAG}{os.getpid()}-"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", what: str = "the file") -> Iterator[Any]:
    """`with atomic_file(path) as f: f.write(...)`: on a clean exit the new content replaces `path` in
    one step; on any error (or a kill) `path` keeps what it held. Missing folders above `path` are made.
    A full disk, or any other refusal of the system, raises WriteError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise WriteError(
            f"could not write {what} {path}: {no_room(e) or e.strerror or e}; {_before(path, what)}"
        ) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # the permissions of any new file (mkstemp's are 0600)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        reason = no_room(e) or (e.strerror or str(e) if isinstance(e, OSError) else None)  # any OS refusal: one line
        if reason is not None:
            raise WriteError(f"could not write {what} {path}: {reason}; {_before(path, what)}") from None
        raise
    fsync_dir(path.parent)


def _before(path: Path, what: str) -> str:
    noun = what[4:] if what.startswith("the ") else what
    return f"the previous {noun} there is intact" if os.path.lexists(path) else "nothing was written"


def write_text(path: str | os.PathLike, text: str, what: str = "the file") -> None:
    with atomic_file(path, "w", what) as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any, what: str = "the results file", **dumps) -> None:
    """`obj` as JSON (plus a newline) to `path`, atomically (`atomic_file`)."""
    write_text(path, json.dumps(obj, **dumps) + "\n", what)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (POSIX; a no-op where folders cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def no_room(e: Optional[BaseException]) -> Optional[str]:
    """The reason, if `e` (or what caused it: torch's writer wraps the OSError in a RuntimeError)
    is a full disk, a quota or a file-size limit; None otherwise."""
    seen = 0
    while e is not None and seen < 5:
        code = e.errno if isinstance(e, OSError) else _rust_errno(str(e))  # safetensors' writer says "(os error 27)"
        if code in _NO_ROOM:
            return {errno.EFBIG: "file too large for this process's file-size limit (ulimit -f)"}.get(
                code, "no space left on the device"
            )
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def _rust_errno(message: str) -> Optional[int]:
    m = re.search(r"\(os error (\d+)\)", message)
    return int(m[1]) if m else None


# ---------------------------------------------------------------------------------------------
# Folders: written beside, then swapped in
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, what: str = "the folder") -> Iterator[Path]:
    """`with atomic_folder(out) as tmp: <write the files into tmp>`: on a clean exit every file is
    fsynced and `tmp` takes the place of `out` (an earlier `out` is exchanged out and removed); on any
    error `out` is what it was and `tmp` is removed. A full disk raises WriteError."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        _fsync_tree(tmp)
        _swap_in(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = no_room(e) or (e.strerror or str(e) if isinstance(e, OSError) else None)  # any OS refusal: one line
        if reason is not None:
            raise WriteError(f"could not write {what} {path}: {reason}; {_before(path, what)}") from None
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # after an exchange, the old folder is at tmp
    fsync_dir(path.parent)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


def _swap_in(new: Path, path: Path) -> None:
    """Put folder `new` at `path`. If `path` exists (a folder), exchange the two atomically where the
    system can (the old one is then at `new`), else rename the old one aside first."""
    if not os.path.lexists(path):
        os.rename(new, path)
        return
    if _exchange(new, path):
        return
    aside = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    os.rmdir(aside)
    os.rename(path, aside)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(aside, path)
        raise
    os.rename(aside, new)  # so that the caller removes the old folder


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# ---------------------------------------------------------------------------------------------
# Before any work: writable, room; one process per output; stale temporaries
# ---------------------------------------------------------------------------------------------
def existing_ancestor(folder: Path) -> Path:
    """The nearest folder above (or at) `folder` that exists; WriteError if that is not a folder."""
    probe = Path(folder)
    while not os.path.lexists(probe):
        probe = probe.parent
    if not probe.is_dir():
        raise WriteError(f"{probe} is a file, not a folder")
    return probe


def check_writable(folder: Path, what: str, flag: str) -> None:
    """WriteError unless a file can be created in `folder` (or the nearest existing folder above it):
    mode bits are read (root ignores them) and a real file is created and removed (read-only mounts,
    /proc)."""
    base = existing_ancestor(folder)
    if not os.access(base, os.W_OK | os.X_OK) or os.stat(base).st_mode & 0o222 == 0:
        raise WriteError(f"cannot write {what} into {base}: the folder is read-only; choose another {flag}")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{TEMP_TAG}probe-", dir=base)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise WriteError(f"cannot write {what} into {base}: {e.strerror or e}; choose another {flag}") from None


def check_room(folder: Path, nbytes: int, flag: str, largest: Optional[int] = None) -> None:
    """WriteError if `folder` has less than `nbytes` free, or this process may not write a file of
    `largest` bytes (default `nbytes`; the limit `ulimit -f` sets)."""
    from .validation import human_bytes

    base = existing_ancestor(folder)
    free = shutil.disk_usage(base).free
    if free < nbytes:
        raise WriteError(
            f"not enough room for {flag} in {base}: it takes about {human_bytes(nbytes)} (estimate), "
            f"{human_bytes(free)} is free"
        )
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, ValueError, OSError):
        return
    largest = nbytes if largest is None else largest
    if limit != resource.RLIM_INFINITY and limit < largest:
        raise WriteError(
            f"this process may write files of at most {human_bytes(limit)} (ulimit -f), and {flag} "
            f"needs one of about {human_bytes(largest)} (estimate)"
        )


def remove_stale_temps(folder: Path, locked_name: Optional[str] = None) -> list:
    """Remove the kit's temporaries (files or folders) in `folder` that no live process is writing. A
    temporary of `locked_name` (the output whose lock this process holds) is stale unless it is this
    process's; another name's is stale when its process is gone. Returns the removed paths."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        m = TEMP_PATTERN.match(entry)
        if not m:
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or (m["name"] != locked_name and _alive(pid)):
            continue
        target = Path(folder) / entry
        try:
            if stat.S_ISDIR(os.lstat(target).st_mode):
                shutil.rmtree(target)
            else:
                os.unlink(target)
            removed.append(target)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class PathLock:
    """One process per output: an exclusive lock on `.NAME.lock` next to `path`. The kernel drops an
    `flock` when its process exits, so a killed run leaves nothing stuck (the file itself may remain;
    it is just a name to lock). `flag` names the option in the refusal (--save_path, --out …)."""

    def __init__(self, path: Path, flag: str = "--save_path"):
        self.path = Path(path)
        self.flag = flag
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
                raise WriteError(f"cannot lock {self.path} ({self.lock_path}): {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise WriteError(
                    f"{self.path} is being written by another run (process {holder}); wait for it to finish, "
                    f"or give this run another {self.flag}"
                ) from None
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
        with contextlib.suppress(OSError):
            os.unlink(self.lock_path)  # while still holding it, so no one else locks a removed file
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "PathLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------------------------------------
# A folder output (a model folder, an export): checked before any work, replaced only if the kit wrote it
# ---------------------------------------------------------------------------------------------
def check_folder_output(path: str | os.PathLike, marker: str, flag: str, what: str) -> Path:
    """The folder `flag` names, checked before any work: new, empty, or a folder the kit wrote (it holds
    the file `marker`); the folder above it writable. A symbolic link is followed to the folder it names;
    a dangling one is refused. Returns the real path to write. WriteError otherwise, naming the fix."""
    given = Path(path)
    if os.path.islink(given) and not os.path.exists(given):
        raise WriteError(
            f"{flag} {given} is a symbolic link to {os.readlink(given)}, which does not exist; name a real folder"
        )
    real = Path(os.path.realpath(given))
    if os.path.lexists(real):
        if not real.is_dir():
            raise WriteError(f"{flag} {given} exists and is a file, not {what}; choose another {flag}")
        try:
            entries = os.listdir(real)
        except OSError as e:
            raise WriteError(f"cannot read {flag} {given}: {e.strerror or e}") from None
        if entries and not (real / marker).is_file():
            raise WriteError(
                f"{flag} {given} is not empty and not {what} written by jepa_lite (no {marker}); choose "
                "a new or empty folder"
            )
    else:
        try:
            existing_ancestor(real.parent)
        except WriteError as e:
            raise WriteError(f"{flag} {given}: {e}") from None
    check_writable(real.parent, what, flag)
    return real


@contextlib.contextmanager
def replacing_folder(path: str | os.PathLike, marker: str, flag: str, what: str) -> Iterator[Path]:
    """`with replacing_folder(out, MARKER, "--save_dir", "a model folder") as tmp: <write into tmp>`:
    `check_folder_output`, then under the output's lock (checked again there) the kit's stale
    temporaries beside it are removed and the new folder is written beside and swapped in
    (`atomic_folder`). The folder above is created if needed."""
    real = check_folder_output(path, marker, flag, what)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"cannot create the folder {real.parent}: {e.strerror or e}") from None
    with PathLock(real, flag):
        check_folder_output(path, marker, flag, what)
        remove_stale_temps(real.parent, real.name)
        with atomic_folder(real, what) as tmp:
            yield tmp

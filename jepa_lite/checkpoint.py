"""Checkpoints that survive a crash and load without running anyone's code.

* Atomic: the checkpoint is written to a temporary file in the same folder, flushed to disk, then
  renamed over the old one (`os.replace` is atomic on POSIX and Windows). A process killed mid-save
  leaves the previous checkpoint intact.
* Safe to load: `torch.load(weights_only=True)` only rebuilds tensors and plain containers, never
  unpickles arbitrary objects.
* Complete: model, optimizer, LR scheduler, step, RNG state, config and history — enough for a
  resumed run to continue exactly where the first one stopped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Dict

import torch

FORMAT = "jepa_lite-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why."""


def save_checkpoint(path: str | os.PathLike, state: Dict[str, Any]) -> None:
    """Write `state` to `path` atomically (temporary file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> Dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; CheckpointError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or not a torch file): {first[:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jepa_lite checkpoint")
    return state

"""Stopping within a second: a stop signal drops the step under way instead of finishing it.

A training step is forward, backward, then the update (gradient clipping, optimizer, EMA, scheduler).
Until the update begins, nothing a checkpoint holds has changed but the random-number generators, so
a step stopped there can be dropped: gradients cleared, generators put back, and the state is exactly
the one after the previous step, which is what the run then saves. A resumed run does that step again
and goes on exactly as a run that was never stopped.

Python runs a signal handler only between bytecodes, and on the CPU a backward pass is one call into
torch: for a batch of long rows, seconds without a bytecode. While a step is droppable, `StepGuard`
puts a check where Python gets control: at the entry of every module's forward (one global hook) and
at every parameter's gradient in the backward (a hook per parameter). The handler sets the trainer's
`stop_requested`; the next check raises `StepDropped`.

Not under `torch.compile` (`compile=True`): its guards see the hooks added and removed at every step and
recompile the model each time until dynamo's recompile limit (seconds a step, then eager). Only on the CPU
of a single process: under torchrun a rank that dropped its step would leave the
others waiting in the gradient all-reduce, and on a GPU the backward runs on another thread, where
no handler runs (a GPU step takes milliseconds). There the step is finished first, as before.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch

from .checkpoint import restore_rng_state, rng_state


def can_drop_steps(device: torch.device, distributed: bool, compiled: bool = False) -> bool:
    """Whether a stop may drop the step under way: on the CPU of one process, run eagerly (not under
    `torch.compile` or CUDA graphs); elsewhere the step is finished first (the module docstring says why;
    tests/test_stop_within_a_second.py measured the recompiles)."""
    return device.type == "cpu" and not distributed and not compiled


class StepDropped(BaseException):
    """A stop was asked for while a step was droppable: the step is abandoned (not an error, so it
    is a BaseException that no `except Exception` on the way swallows)."""


class StepGuard:
    """Makes a trainer's forward and backward droppable. `stop_requested()` says whether a stop was
    asked for; `enabled` is False where a step must be finished (see the module docstring)."""

    def __init__(self, stop_requested: Callable[[], bool], enabled: bool):
        self.stop_requested, self.enabled = stop_requested, enabled
        self.active = False  # inside the droppable part of a step
        self.attempting = False  # inside `attempt`, the only place a dropped step is caught
        self._rng = None

    def check(self, *_) -> None:
        """Raise StepDropped if a stop was asked for while a step is droppable (also a hook: any args)."""
        if self.active and self.stop_requested():
            raise StepDropped

    @contextlib.contextmanager
    def droppable(self, parameters: Iterable[torch.nn.Parameter]):
        """The part of a step that may be dropped (forward and backward, never the update); only while
        `attempt` runs the step (a `train_step` called on its own is never dropped)."""
        if not (self.enabled and self.attempting):
            yield
            return
        self._rng = rng_state()  # what `attempt` puts back: the forward may draw (dropout)
        hooks = [torch.nn.modules.module.register_module_forward_pre_hook(self.check)]
        hooks += [p.register_hook(self.check) for p in parameters if p.requires_grad]
        self.active = True
        try:
            self.check()
            yield
        finally:
            self.active = False
            for h in hooks:
                h.remove()

    def attempt(self, step: Callable[[], object], optimizer: torch.optim.Optimizer) -> bool:
        """Run `step()`; True if it finished, False if it was dropped (gradients cleared, generators
        put back: the trainer's state is that of the step before)."""
        self.attempting = True
        try:
            step()
            return True
        except StepDropped:
            optimizer.zero_grad(set_to_none=True)
            restore_rng_state(self._rng)
            return False
        finally:
            self.attempting = False

"""Implement-it-yourself exercises: the student writes the function a section taught, the kit checks it.

Each notebook 01–06 has one cell with a stub (`def my_span_mask(...): raise NotImplementedError`)
and, below it,

    check_function("01.3", my_span_mask)

which runs the student's function against the library on fixed, seeded inputs and checks a list of
**properties**, in order: the invariants the tests/ suite pins for the library's own version (same
statistics, same values, same gradients). The first property that fails is named, with what was
seen and a hint; nothing else is printed, and the worked solution never is (teachers:
`jepa_lite.course.solutions.show_solution("01.3")`).

A property is a function `check(fn) -> None | str`: None when it holds, else one line saying what
was seen. Exceptions raised by the student's function are reported as that property's failure. A
hint names the mistake the failure points to, never the line that fixes it. Every property runs
under a time limit (`Property.seconds`): a loop that never ends is stopped and reported as such, so
a check always finishes. A stub that returns None (`pass`, `...`) is reported as not written yet.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch

from .. import masking
from ..ema import ema_update
from ..losses import cosine_distance


@dataclass
class Property:
    name: str  # what must hold, in words
    check: Callable[[Callable], Optional[str]]  # None = holds; else what was seen
    hint: str  # shown when it fails: names the mistake, never gives the fix
    seconds: float = 60.0  # the student's code is stopped after this long (a loop that never ends)


@dataclass
class CodingExercise:
    task: str  # one line: the function to write
    properties: List[Property]
    prepare: Optional[Callable[[], object]] = None  # set-up run once before the clock starts (e.g. a trainer)


class TookTooLong(Exception):
    """Raised inside the student's code when a property's time limit is reached."""


class ReturnedNone(Exception):
    """The student's function returned None where a value was due: a stub left as `pass` or `...`."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise TookTooLong in the code run inside this block once `seconds` have passed.

    A POSIX main thread (a Jupyter kernel, pytest) uses a timer signal; elsewhere (Windows, other
    threads) a trace function looks at the clock at every line of Python."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():

        def on_alarm(signum, frame):
            raise TookTooLong

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return
    deadline = time.monotonic() + seconds

    def tracer(frame, event, arg):
        if time.monotonic() > deadline:
            raise TookTooLong
        return tracer

    previous_trace, frame, traced = sys.gettrace(), sys._getframe(1), []
    while frame is not None:  # frames already running (the caller's loop) are traced too
        traced.append((frame, frame.f_trace))
        frame.f_trace, frame = tracer, frame.f_back
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(previous_trace)
        for frame, f_trace in traced:
            frame.f_trace = f_trace


def _not_none(out):
    if out is None:
        raise ReturnedNone
    return out


# ---------------------------------------------------------------------------------------------
# 01 — the span sampler: my_span_mask(maskable, mask_ratio, mean_span_len, generator) -> (L,) bool
# ---------------------------------------------------------------------------------------------
def _rows(seed: int, n_rows: int, length: int, p_special: float):
    """Random maskable layouts: (length,) flag lists with specials at the ends and a few inside."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n_rows):
        flags = (torch.rand(length, generator=g) >= p_special).tolist()
        flags[0] = flags[-1] = False  # [CLS] ... [SEP]
        rows.append(flags)
    return rows


def _masks(fn, rows, mask_ratio, mean_span_len, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.as_tensor(_not_none(fn(r, mask_ratio, mean_span_len, g))) for r in rows]


def _span_stops(fn):
    """Short rows, small budgets, spans of length 1 (mean_span_len = 1): where an off-by-one loops."""
    rows = [[False] + [True] * n + [False] for n in (1, 2, 3, 5, 8)] + _rows(6, 20, 16, 0.2)
    for mean_span_len in (1.0, 3.0):
        _masks(fn, rows, 0.3, mean_span_len)


def _runs(mask) -> List[int]:
    """Lengths of the maximal runs of True in a 1-D mask."""
    runs, n = [], 0
    for m in mask.tolist() + [False]:
        if m:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def _span_shape(fn):
    mask = torch.as_tensor(_not_none(fn([False] + [True] * 10 + [False], 0.3, 3.0, torch.Generator().manual_seed(0))))
    if mask.dtype != torch.bool or tuple(mask.shape) != (12,):
        return f"for a row of 12 positions it returned dtype {mask.dtype}, shape {tuple(mask.shape)}"


def _span_specials(fn):
    rows = _rows(1, 200, 24, 0.2)
    for row, mask in zip(rows, _masks(fn, rows, 0.5, 4.0)):
        bad = [i for i, (ok, m) in enumerate(zip(row, mask.tolist())) if m and not ok]
        if bad:
            return f"it masked position(s) {bad} of the row {row}, which are not maskable"


def _span_budget(fn):
    rows = _rows(2, 200, 30, 0.15) + [[False] * 5, [False, True, True, False]]
    for row, mask in zip(rows, _masks(fn, rows, 0.3, 5.0)):
        n, b = sum(row), int(mask.sum())
        allowed = {0} if n == 0 else {max(1, math.floor(0.3 * n)), max(1, math.ceil(0.3 * n))}
        if b not in allowed:
            return f"a row with n = {n} maskable tokens got {b} masked; allowed b: {sorted(allowed)}"


def _span_unbiased(fn):
    rows = [[False] + [True] * 17 + [False]] * 2000  # mask_ratio · n = 0.3 · 17 = 5.1
    mean_k = sum(int(m.sum()) for m in _masks(fn, rows, 0.3, 5.0)) / len(rows)
    if abs(mean_k - 5.1) > 0.08:  # the standard error of the mean is ≈ 0.01
        return f"over 2000 rows of n = 17 the mean number masked was {mean_k:.3f}, not 0.3 · 17 = 5.1"


def _span_lengths(fn):
    for mean_span_len, rows in (
        (5.0, _rows(3, 150, 120, 0.0)),
        (1.0, _rows(4, 150, 60, 0.0)),
        (3.0, _rows(5, 300, 40, 0.1)),
    ):
        mine = [r for m in _masks(fn, rows, 0.3, mean_span_len) for r in _runs(m)]
        ref = [r for m in _masks(masking.sample_span_mask, rows, 0.3, mean_span_len, seed=1) for r in _runs(m)]
        a, b = sum(mine) / max(1, len(mine)), sum(ref) / len(ref)
        if abs(a - b) > 0.15 * b:
            return (
                f"with mean_span_len = {mean_span_len:g} the masked runs have mean length {a:.2f}; "
                f"the library's sample_span_mask gives {b:.2f} on the same rows"
            )


def _span_seeded(fn):
    row = [False] + [True] * 30 + [False]
    a, b = (torch.as_tensor(_not_none(fn(row, 0.3, 4.0, torch.Generator().manual_seed(7)))) for _ in range(2))
    if not torch.equal(a, b):
        return "two calls with generators seeded alike returned different masks"


SPAN_SAMPLER = CodingExercise(
    "my_span_mask(maskable, mask_ratio, mean_span_len, generator) → (L,) bool tensor, True = hidden",
    [
        Property(
            "stops: returns within 5 s on short rows, also when every span has length 1",
            _span_stops,
            "a loop that never ends: some pass of your loop counts tokens toward the budget that it did not hide "
            "(or hides none), so the count never reaches b. Compare what one pass counts with what it masks "
            "for a span of length 1.",
            seconds=5.0,
        ),
        Property(
            "returns a bool tensor with one flag per position",
            _span_shape,
            "the result must be a torch bool tensor as long as `maskable`, not a list of positions or of ints.",
        ),
        Property(
            "never masks a position that is not maskable ([CLS], [SEP], [PAD])",
            _span_specials,
            "a span started or ran onto a position whose flag in `maskable` is False.",
        ),
        Property(
            "masks exactly b = max(1, ⌊mask_ratio · n + U⌋) tokens (n maskable, 0 if n = 0)",
            _span_budget,
            "the count is off: the last span overshot the budget, a position was counted twice, "
            "or the row with nothing maskable got a mask.",
        ),
        Property(
            "the budget is unbiased: E[b] = mask_ratio · n",
            _span_unbiased,
            "the budget is rounded the same way every time, so on average it is too small or too large; "
            "§ 3 says what the random U is for.",
        ),
        Property(
            "masks spans whose lengths match the library's (geometric law, mean mean_span_len)",
            _span_lengths,
            "the masked runs are too short or too long on average: single tokens, fixed-length spans, "
            "or a span length that is not drawn from the law of § 4.",
        ),
        Property(
            "is reproducible: the same seed gives the same mask",
            _span_seeded,
            "some random number was drawn without the `generator` you were given.",
        ),
    ],
)


# ---------------------------------------------------------------------------------------------
# 02 — the two views: my_two_views(input_ids, attention_mask, special_ids, mask_token_id,
#      mask_ratio, mean_span_len, generator) -> (masked_input_ids, pred_mask)
# ---------------------------------------------------------------------------------------------
_SPECIALS, _MASK_ID, _PAD = (0, 101, 102), 103, 0


def _views_batch():
    """Two lines, the second padded: [CLS] w… [SEP] [PAD]…, ids 1000+ for words."""
    ids = torch.tensor([[101] + list(range(1000, 1018)) + [102], [101] + list(range(2000, 2007)) + [102] + [0] * 11])
    return ids, (ids != _PAD).long()  # (2, 20) each


def _views_call(fn, seed=0):
    ids, att = _views_batch()
    before = ids.clone()
    masked, pred_mask = _not_none(fn(ids, att, _SPECIALS, _MASK_ID, 0.4, 3.0, torch.Generator().manual_seed(seed)))
    return ids, att, before, torch.as_tensor(masked), torch.as_tensor(pred_mask)


def _views_shapes(fn):
    ids, _, _, masked, pred_mask = _views_call(fn)
    if (
        masked.shape != ids.shape
        or masked.dtype != ids.dtype
        or pred_mask.shape != ids.shape
        or pred_mask.dtype != torch.bool
    ):
        return (
            f"got masked_input_ids {tuple(masked.shape)} {masked.dtype} and pred_mask {tuple(pred_mask.shape)} "
            f"{pred_mask.dtype}; expected {tuple(ids.shape)} {ids.dtype} and {tuple(ids.shape)} torch.bool"
        )


def _views_maskable(fn):
    ids, att, _, _, pred_mask = _views_call(fn)
    special = torch.isin(ids, torch.tensor(_SPECIALS)) | (att == 0)
    if (pred_mask & special).any():
        return f"pred_mask is True at {int((pred_mask & special).sum())} special or padding position(s)"
    if (pred_mask.sum(dim=1) == 0).any():
        return "a line got no loss position at all (every line with a maskable token gets at least one)"


def _views_mask_token(fn):
    _, _, _, masked, pred_mask = _views_call(fn)
    if not (masked[pred_mask] == _MASK_ID).all():
        return "some positions of pred_mask do not hold the [MASK] id in masked_input_ids"


def _views_rest_unchanged(fn):
    ids, _, before, masked, pred_mask = _views_call(fn)
    if not torch.equal(ids, before):
        return "input_ids was changed in place: the target encoder must still read the full line"
    if not torch.equal(masked[~pred_mask], ids[~pred_mask]):
        return "masked_input_ids differs from input_ids at positions that are not in pred_mask"


def _views_same_as_library(fn):
    ids, att = _views_batch()
    for seed in range(3):
        _, _, _, masked, pred_mask = _views_call(fn, seed)
        ref_masked, ref_pred = masking.mask_batch(
            ids, att, _SPECIALS, _MASK_ID, 0.4, 3.0, torch.Generator().manual_seed(seed)
        )
        if not (torch.equal(pred_mask, ref_pred) and torch.equal(masked, ref_masked)):
            return f"with seed {seed} the views differ from masking.mask_batch's on the same generator"


TWO_VIEWS = CodingExercise(
    "my_two_views(input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator) "
    "→ (masked_input_ids, pred_mask)",
    [
        Property(
            "returns two (B, L) tensors: masked_input_ids with input_ids' dtype, and a bool pred_mask",
            _views_shapes,
            "return the pair (masked_input_ids, pred_mask) in that order, one flag per position; "
            "the context view holds token ids, as input_ids does.",
        ),
        Property(
            "puts loss positions only on real, non-special tokens, at least one per line",
            _views_maskable,
            "the maskable positions were too many: padding (attention_mask 0) or a special id was left in.",
        ),
        Property(
            "writes [MASK] at every loss position",
            _views_mask_token,
            "the context view still shows a token where the loss is computed: that is a give-away (§ 4).",
        ),
        Property(
            "leaves input_ids and every other position unchanged",
            _views_rest_unchanged,
            "the target view was overwritten (an in-place operation on input_ids), or positions outside "
            "pred_mask were changed.",
        ),
        Property(
            "gives the same views as masking.mask_batch with the same generator",
            _views_same_as_library,
            "the spans were drawn differently from the library: another sampler, more than one draw, "
            "or a generator other than the one you got.",
        ),
    ],
)


# ---------------------------------------------------------------------------------------------
# 03 — the EMA update: my_ema_update(target, online, m) -> None, in place
# ---------------------------------------------------------------------------------------------
def _ema_tensors(seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    make = lambda *s: torch.nn.Parameter(torch.randn(*s, generator=g), requires_grad=requires_grad)  # noqa: E731
    return [make(4, 3), make(5)], [make(4, 3), make(5)]


def _ema_in_place(fn):
    target, online = _ema_tensors()
    ids, before = [id(t) for t in target], [t.clone() for t in target]
    fn(target, online, 0.5)
    if [id(t) for t in target] != ids or all(torch.equal(a, b) for a, b in zip(target, before)):
        return "after the call with m = 0.5 the target tensors still hold their old values"


def _ema_extreme(m, what):
    def check(fn):
        target, online = _ema_tensors()
        want = [(t if m == 1.0 else o).clone() for t, o in zip(target, online)]
        fn(target, online, m)
        if not all(torch.equal(t, w) for t, w in zip(target, want)):
            return (
                f"with m = {m:g} the target should {what}; it is "
                f"off by up to {max(float((t - w).abs().max()) for t, w in zip(target, want)):.3g}"
            )

    return check


def _ema_values(fn):
    for m in (0.9, 0.99, 0.3):
        target, online = _ema_tensors(seed=1)
        ref = [t.clone() for t in target]
        ema_update(ref, online, m)
        fn(target, online, m)
        err = max(float((t - r).abs().max()) for t, r in zip(target, ref))
        if err > 1e-6:
            return f"with m = {m:g} the values differ from ema.ema_update's by up to {err:.3g}"


def _ema_online_unchanged(fn):
    target, online = _ema_tensors(seed=2)
    before = [o.clone() for o in online]
    fn(target, online, 0.9)
    if not all(torch.equal(o, b) for o, b in zip(online, before)):
        return "the online (context-encoder) tensors changed: only the target may move"


def _ema_no_grad(fn):
    target, online = _ema_tensors(seed=3, requires_grad=True)  # real parameters require grad
    fn(target, online, 0.9)
    if any(t.grad_fn is not None for t in target):
        return "the update was recorded by autograd: the target now has a grad_fn"


def _ema_half_life(fn):
    target, online = [torch.zeros(1)], [torch.ones(1)]
    h = math.log(0.5) / math.log(0.99)
    for _ in range(math.ceil(h)):
        fn(target, online, 0.99)
    if not 0.5 <= float(target[0]) < 0.5 + 0.01:
        return (
            f"after ⌈h⌉ = {math.ceil(h)} updates with m = 0.99 the target is at {float(target[0]):.4f}, "
            "not just past 0.5"
        )


EMA_UPDATE = CodingExercise(
    "my_ema_update(target, online, m): θ_tgt ← m·θ_tgt + (1 − m)·θ_online, in place, for lists of tensors",
    [
        Property(
            "changes the target tensors in place",
            _ema_in_place,
            "the new values went into a new tensor bound to a local name; the caller's tensors never saw them.",
        ),
        Property(
            "m = 1 leaves the target exactly unchanged",
            _ema_extreme(1.0, "stay exactly as it was"),
            "m weighs the *old target*: θ_tgt ← m·θ_tgt + (1 − m)·θ_online.",
        ),
        Property(
            "m = 0 copies the online tensors exactly",
            _ema_extreme(0.0, "equal the online tensors"),
            "with m = 0 nothing of the old target is kept.",
        ),
        Property(
            "gives the same values as ema.ema_update",
            _ema_values,
            "m = 0 and m = 1 come out right, the values between do not: the two weights do not add up to 1, "
            "or not every pair of tensors was updated.",
        ),
        Property(
            "leaves the online tensors unchanged",
            _ema_online_unchanged,
            "read the online tensors, never write to them.",
        ),
        Property(
            "works on parameters that require grad, without autograd recording it",
            _ema_no_grad,
            "autograd recorded the update (or refused an in-place change of a parameter): the target is not "
            "trained by gradients, so nothing of the update may be recorded (notebook 02 § 5).",
        ),
        Property(
            "a jump is half-closed after one half-life, h = ln 0.5 / ln m",
            _ema_half_life,
            "each update closes a share (1 − m) of the gap to the online value.",
        ),
    ],
)


# ---------------------------------------------------------------------------------------------
# 04 — the masked cosine loss: my_masked_cosine_loss(pred, target, pred_mask) -> scalar
# ---------------------------------------------------------------------------------------------
def _loss_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = (3.0 * torch.randn(2, 7, 5, generator=g)).requires_grad_(True)  # (B, L, D)
    target = torch.randn(2, 7, 5, generator=g)
    pred_mask = torch.rand(2, 7, generator=g) < 0.4
    pred_mask[0, 1] = pred_mask[1, 2] = True
    pred_mask[0, 0] = False
    return pred, target, pred_mask


def _reference_loss(pred, target, pred_mask):
    return cosine_distance(pred[pred_mask], target[pred_mask])  # (B, L, D)[pred_mask] -> (N, D)


def _loss_scalar(fn):
    out = _not_none(fn(*_loss_inputs()))
    if not (isinstance(out, torch.Tensor) and out.dim() == 0):
        return f"it returned {type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))}, not a 0-dim tensor"


def _loss_value(fn):
    for seed in range(3):
        pred, target, pred_mask = _loss_inputs(seed)
        got, want = (
            float(fn(pred, target, pred_mask).detach()),
            float(_reference_loss(pred, target, pred_mask).detach()),
        )
        if not math.isclose(got, want, abs_tol=1e-5):
            return f"it returned {got:.6f}; the library's loss on the same inputs is {want:.6f}"


def _loss_extremes(fn):
    pred, _, pred_mask = _loss_inputs()
    p = pred.detach()
    same, opposite = float(fn(p, 2.0 * p, pred_mask)), float(fn(p, -p, pred_mask))
    if not (math.isclose(same, 0.0, abs_tol=1e-5) and math.isclose(opposite, 2.0, abs_tol=1e-5)):
        return f"same direction gave {same:.4f} (should be 0), opposite directions {opposite:.4f} (should be 2)"


def _loss_only_masked(fn):
    pred, target, pred_mask = _loss_inputs()
    p2, t2 = pred.detach().clone(), target.clone()
    p2[~pred_mask] = torch.randn_like(p2[~pred_mask])
    t2[~pred_mask] = 0.0
    a, b = float(fn(pred.detach(), target, pred_mask)), float(fn(p2, t2, pred_mask))
    if not math.isclose(a, b, abs_tol=1e-6):
        return f"changing only unmasked positions moved the loss from {a:.6f} to {b:.6f}"


def _loss_mean(fn):
    pred, target, pred_mask = (x.detach() if x.dtype != torch.bool else x for x in _loss_inputs())
    a = float(fn(pred, target, pred_mask))
    b = float(fn(torch.cat([pred, pred]), torch.cat([target, target]), torch.cat([pred_mask, pred_mask])))
    if not math.isclose(a, b, abs_tol=1e-6):
        return f"the loss of a batch repeated twice is {b:.6f}, not the same {a:.6f} as the batch once"


def _loss_scale(fn):
    pred, target, pred_mask = _loss_inputs()
    a, b = float(fn(pred.detach(), target, pred_mask)), float(fn(0.01 * pred.detach(), 50.0 * target, pred_mask))
    if not math.isclose(a, b, abs_tol=1e-5):
        return f"scaling the vectors (pred × 0.01, target × 50) changed the loss from {a:.6f} to {b:.6f}"


def _loss_gradient(fn):
    pred, target, pred_mask = _loss_inputs()
    fn(pred, target, pred_mask).backward()
    mine, pred.grad = pred.grad, None
    if mine is None:
        return (
            "no gradient reached pred: compute the loss with torch operations on pred itself (no .item(), no .detach())"
        )
    _reference_loss(pred, target, pred_mask).backward()
    err = float((mine - pred.grad).abs().max())
    if err > 1e-5:
        return f"the gradient with respect to pred differs from the library's by up to {err:.3g}"


MASKED_COSINE_LOSS = CodingExercise(
    "my_masked_cosine_loss(pred, target, pred_mask) → mean over masked positions of 1 − cos(pred, target)",
    [
        Property(
            "returns a 0-dim tensor",
            _loss_scalar,
            "the loss must stay a torch tensor with one number in it: a Python float (.item()) cannot be "
            "back-propagated, and a vector is not yet a mean.",
        ),
        Property(
            "only masked positions count",
            _loss_only_masked,
            "positions outside pred_mask changed the loss: the visible tokens took part (§ 4 "
            "of notebook 02 says why they must not).",
        ),
        Property(
            "ignores the lengths of the vectors",
            _loss_scale,
            "the loss depends on how long the vectors are: it compares more than their directions.",
        ),
        Property(
            "is a mean over masked tokens, not a sum",
            _loss_mean,
            "the loss grows with the number of masked tokens, so a longer batch would weigh more.",
        ),
        Property(
            "is 0 for the same direction and 2 for opposite directions",
            _loss_extremes,
            "the ends of the scale are wrong: look at the sign, and at what the loss should be when the cosine is 1.",
        ),
        Property(
            "equals the library's loss",
            _loss_value,
            "every invariant above holds, yet the value differs: check the dimension you normalise and sum over (D).",
        ),
        Property(
            "has the library's gradient",
            _loss_gradient,
            "the value is right but autograd cannot follow it back to `pred` (a detach, a NumPy step, or a float).",
        ),
    ],
)


# ---------------------------------------------------------------------------------------------
# 05 — one training step: my_train_step(model, optimizer, batch, m, grad_clip) -> loss
# ---------------------------------------------------------------------------------------------
_LAB = {}


def _lab_trainer():
    """A tiny-encoder Trainer on the CPU, built once per session, and its state right after set-up."""
    if not _LAB:
        from ..train import TrainConfig, Trainer

        trainer = Trainer(
            TrainConfig.smoke(save_path=None, progress=False, device="cpu", steps=50, warmup_steps=1),
            log=lambda s: None,
        )
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():  # a target a little apart from the context encoder, as after some training:
            for p in trainer.model.target_encoder.parameters():  # then "EMA before the step" and "no EMA" differ
                p.add_(0.01 * torch.randn(p.shape, generator=g))
        _LAB["trainer"] = trainer
        _LAB["state"] = _snapshot(trainer)
    return _LAB["trainer"]


def _snapshot(trainer):
    return copy.deepcopy(
        {
            "model": trainer.model.state_dict(),
            "opt": trainer.optimizer.state_dict(),
            "sched": trainer.scheduler.state_dict(),
            "step": trainer.step,
        }
    )


def _restore(trainer, state):
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["opt"])
    trainer.scheduler.load_state_dict(state["sched"])
    trainer.step = state["step"]
    trainer.optimizer.zero_grad(set_to_none=True)


def _two_runs(fn, n_steps=1, grad_clip=None, m=None):
    """(library, student): losses and the model's parameters after `n_steps` steps from the same state.

    The library side is `Trainer.train_step`; the student's side calls fn(model, optimizer, batch, m,
    grad_clip) on the same model and optimizer, restored to the same state, with the same random
    numbers (dropout), and steps the LR scheduler as the trainer does between steps. `grad_clip` and
    `m` replace the trainer's settings for the comparison (m = 0 makes the order of step and EMA
    visible at once: the target must equal the context encoder *after* the step)."""
    trainer = _lab_trainer()
    config, momentum = trainer.config, trainer.momentum
    if grad_clip is not None:
        trainer.config = dataclasses.replace(config, grad_clip=grad_clip)
    if m is not None:
        trainer.momentum = lambda step: m
    try:
        return _library_and_student(trainer, fn, n_steps)
    finally:
        trainer.config, trainer.momentum = config, momentum
        _restore(trainer, _LAB["state"])


def _library_and_student(trainer, fn, n_steps):
    """Both sides of `_two_runs`, each from the saved state with the same seed (dropout)."""
    results = []
    for side in ("library", "student"):
        _restore(trainer, _LAB["state"])
        torch.manual_seed(0)
        losses, grads_on_target = [], False
        for s in range(n_steps):
            batch = trainer.get_batch(s)
            if side == "library":
                loss = trainer.train_step(batch)
            else:
                loss = fn(trainer.model, trainer.optimizer, batch, trainer.momentum(s), trainer.config.grad_clip)
                trainer.scheduler.step()
            grads_on_target |= any(p.grad is not None for p in trainer.model.target_encoder.parameters())
            losses.append(None if loss is None else float(loss.detach() if isinstance(loss, torch.Tensor) else loss))
        params = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        results.append({"losses": losses, "params": params, "grads_on_target": grads_on_target})
    return results


def _max_diff(a, b, prefix):
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if k.startswith(prefix))


def _step_loss(fn):
    lib, me = _two_runs(fn)
    if me["losses"][0] is None:
        raise ReturnedNone
    if me["losses"][0] is None or not math.isclose(me["losses"][0], lib["losses"][0], rel_tol=1e-5, abs_tol=1e-6):
        return f"it returned {me['losses'][0]}; Trainer.train_step's loss on the same batch is {lib['losses'][0]:.6f}"


def _step_context(n_steps=1, grad_clip=None, what="after one step"):
    def check(f):
        lib, me = _two_runs(f, n_steps, grad_clip)
        err = max(_max_diff(lib["params"], me["params"], p) for p in ("context_encoder.", "predictor."))
        if err > 1e-5:
            return f"{what} the context encoder and predictor differ from Trainer.train_step's by up to {err:.3g}"

    return check


def _target_as(params, old, weight_old, context):
    """Is every target parameter weight_old·old target + (1 − weight_old)·`context`'s (same name)?"""
    for k, v in params.items():
        if k.startswith("target_encoder.") and v.is_floating_point():
            want = weight_old * old[k] + (1 - weight_old) * context["context_encoder." + k[len("target_encoder.") :]]
            if not torch.allclose(v, want, atol=1e-6):
                return False
    return True


def _step_target(fn):
    for m in (0.9, 0.0):
        lib, me = _two_runs(fn, m=m)
        old = _LAB["state"]["model"]
        err = _max_diff(lib["params"], me["params"], "target_encoder.")
        if err <= 1e-6:
            continue
        mine = me["params"]
        if _target_as(mine, old, 1.0, old):
            return f"after one step with m = {m:g} the target encoder has not moved at all"
        if _target_as(mine, old, 1.0 - m, lib["params"]):
            return (
                f"with m = {m:g} the target moved a share m of the way to the context encoder, not "
                "1 − m: the weights are swapped"
            )
        if _target_as(mine, old, m, old):
            return f"with m = {m:g} the target followed the context encoder as it was before this step's update"
        return f"after one step with m = {m:g} the target encoder differs from Trainer.train_step's by up to {err:.3g}"


def _step_no_target_grad(fn):
    _, me = _two_runs(fn)
    if me["grads_on_target"]:
        return "a target-encoder parameter holds a gradient"


TRAIN_STEP = CodingExercise(
    "my_train_step(model, optimizer, batch, m, grad_clip) → loss: forward, backward, clip, AdamW step, EMA",
    [
        Property(
            "returns the loss of the batch",
            _step_loss,
            "the value returned is not the loss the model computed on this batch, before the step.",
        ),
        Property(
            "clips the global gradient norm to grad_clip",
            _step_context(grad_clip=1e-3, what="with grad_clip = 0.001"),
            "with a tiny grad_clip the weights still moved as far as without one: the gradients were not "
            "limited before the optimizer used them (or were limited after).",
        ),
        Property(
            "updates the context encoder and predictor like the trainer",
            _step_context(),
            "one of the four moves of a step is missing or out of order: forward, backward, clip, optimizer step.",
        ),
        Property(
            "moves the target encoder by the EMA, after the optimizer step",
            _step_target,
            "the line above says how the target moved; notebook 03 § 1 says how it should move, notebook 02 § 5 when.",
        ),
        Property(
            "starts each step from zero gradients",
            _step_context(n_steps=3, what="after three steps"),
            "one step is right, three are not: something of the earlier steps was carried into the next.",
        ),
        Property(
            "never gives the target encoder a gradient",
            _step_no_target_grad,
            "a gradient reached the target encoder: its embeddings were computed with autograd on.",
        ),
    ],
    prepare=lambda: _lab_trainer(),
)


# ---------------------------------------------------------------------------------------------
# 06 — the paired t statistic: paired_t_statistic(a, b) -> t = d̄ / (s / √n), d_i = a_i − b_i
# ---------------------------------------------------------------------------------------------
_SEEDS_A, _SEEDS_B = [0.50, 0.52, 0.47, 0.55, 0.49], [0.45, 0.50, 0.46, 0.50, 0.47]  # five seeds' scores


def _t_number(fn, a, b):
    out = fn(list(a), list(b))
    if out is None or out is Ellipsis:
        raise ReturnedNone
    return float(out)


def _t_variants(a, b):
    """What common slips compute instead of the paired t, keyed by the mistake in words."""
    from scipy import stats as scipy_stats

    from ..paired.stats import paired_t

    n, t = len(a), paired_t(a, b)["t"]
    return {
        "the differences were taken the other way round (b − a), so the sign is flipped": -t,
        "the standard deviation divides by n, not n − 1": t * math.sqrt(n / (n - 1)),
        "the standard error divides s by n, not by √n": t * math.sqrt(n),
        "the standard error is missing: d̄ / s, not d̄ over s / √n": t / math.sqrt(n),
        "this is the mean difference d̄ itself, not d̄ measured in standard errors": paired_t(a, b)["diff"],
        "this is the two-sample t of a and b as separate groups: the pairing (seed i with seed i) is lost": float(
            scipy_stats.ttest_ind(a, b).statistic
        ),
        "this is the p-value, not the t statistic": paired_t(a, b)["p"],
    }


def _t_matches(a, b):
    def check(fn):
        from ..paired.stats import paired_t

        got, want = _t_number(fn, a, b), paired_t(a, b)["t"]
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            return None
        for mistake, value in _t_variants(a, b).items():
            if math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-9):
                return f"it returned {got:.6g} for n = {len(a)} pairs: {mistake}"
        return f"it returned {got:.6g} for n = {len(a)} pairs; the paired t statistic is {want:.6g}"

    return check


PAIRED_T = CodingExercise(
    "paired_t_statistic(a, b) → t = d̄ / (s / √n) of the differences d_i = a_i − b_i (s with n − 1)",
    [
        Property(
            "returns the paired t statistic of five seeds' scores",
            _t_matches(_SEEDS_A, _SEEDS_B),
            "the line above names the term that differs; the exercise's formula gives each term in turn.",
            seconds=10.0,
        ),
        Property(
            "works for any number of pairs (three seeds, a − b negative)",
            _t_matches([0.1, 0.3, 0.2], [0.2, 0.1, 0.25]),
            "five pairs are right, three are not: something in the function still assumes five seeds.",
            seconds=10.0,
        ),
    ],
)


CODING_EXERCISES = {
    "01.3": SPAN_SAMPLER,
    "02.4": TWO_VIEWS,
    "03.3": EMA_UPDATE,
    "04.3": MASKED_COSINE_LOSS,
    "05.4": TRAIN_STEP,
    "06.4": PAIRED_T,
}


def first_failure(exercise_id: str, fn: Callable):
    """(index, Property, what was seen) of the first property `fn` breaks, or None if all hold.
    Raises NotImplementedError when fn is still the stub."""
    ex = get_coding_exercise(exercise_id)
    if ex.prepare is not None:
        ex.prepare()
    with torch.random.fork_rng(devices=[]):  # checks draw random numbers; the notebook's stream stays as it was
        for i, prop in enumerate(ex.properties):
            try:
                with time_limit(prop.seconds):
                    seen = prop.check(fn)
            except (NotImplementedError, ReturnedNone):
                raise
            except TookTooLong:
                seen = f"your function had not returned after {prop.seconds:g} s, and was stopped"
            except Exception as e:  # the student's code raised: that is what was seen
                seen = f"your function raised {type(e).__name__}: {e}"
            if seen is not None:
                return i, prop, seen
    return None


def check_function(exercise_id: str, fn: Callable) -> Optional[bool]:
    """Run `fn` against the library's properties for exercise `exercise_id`; print the verdict.

    Returns True when every property holds, False at the first that fails (named, with what was seen
    and a hint), None while `fn` is still a stub (it raises NotImplementedError or returns None)."""
    ex = get_coding_exercise(exercise_id)
    if _empty_body(fn):
        print(
            f"[{exercise_id}] not written yet: the function's body is only `pass` or `...`. Write "
            "it and run both cells again."
        )
        return None
    try:
        failure = first_failure(exercise_id, fn)
    except NotImplementedError:
        print(
            f"[{exercise_id}] not written yet: replace `raise NotImplementedError` with your code "
            "and run both cells again."
        )
        return None
    except ReturnedNone:
        print(
            f"[{exercise_id}] not written yet: your function returned None — is its `return` missing, "
            "or is it still `pass` / `...`? Write it and run both cells again."
        )
        return None
    n = len(ex.properties)
    if failure is None:
        print(f"[{exercise_id}] ✅ all {n} properties hold: " + "; ".join(p.name for p in ex.properties) + ".")
        return True
    i, prop, seen = failure
    print(f"[{exercise_id}] ❌ property {i + 1} of {n} fails: {prop.name}.\n    seen: {seen}\n    hint: {prop.hint}")
    return False


def _empty_body(fn: Callable) -> bool:
    """True for a function whose body is nothing but a docstring, `pass` and `...` (a stub, not an answer)."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):  # no source (a builtin, a lambda inside an expression): not a stub
        return False
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(defs) != 1:
        return False
    return all(
        isinstance(n, ast.Pass) or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in defs[0].body
    )


def get_coding_exercise(exercise_id: str) -> CodingExercise:
    if exercise_id not in CODING_EXERCISES:
        raise KeyError(f"unknown coding exercise '{exercise_id}'; known: {', '.join(CODING_EXERCISES)}")
    return CODING_EXERCISES[exercise_id]

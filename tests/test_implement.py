"""The implement-it-yourself checks: right code passes every property, planted wrong code fails the
property it breaks, and the stub is reported as not written yet."""

import math

import pytest
import torch
import torch.nn.functional as F

from jepa_lite.course import implement, solutions
from jepa_lite.masking import sample_span_length


@pytest.mark.parametrize("exercise_id", sorted(implement.CODING_EXERCISES))
def test_the_worked_solution_passes_every_property(exercise_id, capsys):
    assert implement.first_failure(exercise_id, solutions.SOLUTIONS[exercise_id]) is None
    assert implement.check_function(exercise_id, solutions.SOLUTIONS[exercise_id]) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", sorted(implement.CODING_EXERCISES))
def test_the_stub_is_not_written_yet(exercise_id, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    assert implement.check_function(exercise_id, stub) is None
    assert "not written yet" in capsys.readouterr().out


def test_solutions_are_never_printed_by_a_check(capsys):
    implement.check_function("03.3", solutions.ema_update_solution)
    assert "mul_" not in capsys.readouterr().out
    solutions.show_solution("03.3")
    assert "t.mul_(m).add_(o, alpha=1.0 - m)" in capsys.readouterr().out
    with pytest.raises(KeyError):
        solutions.show_solution("99.9")


# --- planted wrong implementations: each must fail, at the property it breaks ---------------------
def overshooting_spans(maskable, mask_ratio, mean_span_len, generator=None):
    """The article's scheme: whole spans until at least the target, the last span never clipped."""
    n, mask = sum(maskable), [False] * len(maskable)
    if n == 0:
        return torch.tensor(mask)
    target = max(1, round(mask_ratio * n))
    while sum(mask) < target:
        span = sample_span_length(mean_span_len, generator)
        free = [i for i, ok in enumerate(maskable) if ok and not mask[i]]
        i = free[torch.randint(len(free), (), generator=generator).item()]
        while span > 0 and i < len(mask) and maskable[i]:
            mask[i], i, span = True, i + 1, span - 1
    return torch.tensor(mask)


def single_tokens(maskable, mask_ratio, mean_span_len, generator=None):
    """Right budget, but scattered single tokens instead of spans."""
    n = sum(maskable)
    idx = [i for i, ok in enumerate(maskable) if ok]
    b = 0 if n == 0 else max(1, math.floor(mask_ratio * n + torch.rand((), generator=generator).item()))
    mask = torch.zeros(len(maskable), dtype=torch.bool)
    for j in torch.randperm(n, generator=generator)[:b].tolist():
        mask[idx[j]] = True
    return mask


def rounded_budget(maskable, mask_ratio, mean_span_len, generator=None):
    """Spans as they should be, but the budget rounded, b = max(1, round(r·n)): biased."""
    n, mask = sum(maskable), [False] * len(maskable)
    if n == 0:
        return torch.tensor(mask)
    budget, masked = max(1, round(mask_ratio * n)), 0
    while masked < budget:
        span = sample_span_length(mean_span_len, generator)
        free = [i for i, ok in enumerate(maskable) if ok and not mask[i]]
        i = free[torch.randint(len(free), (), generator=generator).item()]
        while span > 0 and i < len(mask) and maskable[i] and masked < budget:
            if not mask[i]:
                mask[i], masked = True, masked + 1
            i, span = i + 1, span - 1
    return torch.tensor(mask)


def masks_specials(maskable, mask_ratio, mean_span_len, generator=None):
    return solutions.span_mask_solution([True] * len(maskable), mask_ratio, mean_span_len, generator)


def in_place_views(input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator=None):
    masked, pred_mask = solutions.two_views_solution(
        input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator
    )
    return input_ids.masked_fill_(pred_mask, mask_token_id), pred_mask


def views_on_padding(input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator=None):
    from jepa_lite.masking import mask_spans

    pred_mask = mask_spans(torch.ones_like(input_ids, dtype=torch.bool), mask_ratio, mean_span_len, generator)
    return input_ids.masked_fill(pred_mask, mask_token_id), pred_mask


def swapped_momentum(target, online, m):
    with torch.no_grad():
        for t, o in zip(target, online):
            t.copy_((1 - m) * t + m * o)


def rebinds_only(target, online, m):
    for t, o in zip(target, online):
        t = m * t + (1 - m) * o  # noqa: F841 — rebinds a local name, changes nothing


def without_no_grad(target, online, m):
    """The right formula, in place, but outside torch.no_grad(): fails on real parameters."""
    for t, o in zip(target, online):
        t.mul_(m).add_(o, alpha=1 - m)


def no_normalise(pred, target, pred_mask):
    return (1.0 - (pred[pred_mask] * target[pred_mask]).sum(dim=-1)).mean()


def every_position(pred, target, pred_mask):
    return (1.0 - F.cosine_similarity(pred, target, dim=-1)).mean()


def summed(pred, target, pred_mask):
    return (1.0 - F.cosine_similarity(pred[pred_mask], target[pred_mask], dim=-1)).sum()


def as_float(pred, target, pred_mask):
    return solutions.masked_cosine_loss_solution(pred, target, pred_mask).item()


def ema_before_step(model, optimizer, batch, m, grad_clip):
    out = model(batch)
    optimizer.zero_grad()
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), grad_clip)
    model.update_target(m)  # too early: the target follows the old weights
    optimizer.step()
    return out.loss


def no_clipping(model, optimizer, batch, m, grad_clip):
    out = model(batch)
    optimizer.zero_grad()
    out.loss.backward()
    optimizer.step()
    model.update_target(m)
    return out.loss


def no_zero_grad(model, optimizer, batch, m, grad_clip):
    out = model(batch)
    out.loss.backward()  # gradients of earlier steps add up
    torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), grad_clip)
    optimizer.step()
    model.update_target(m)
    return out.loss


def no_ema(model, optimizer, batch, m, grad_clip):
    out = model(batch)
    optimizer.zero_grad()
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), grad_clip)
    optimizer.step()
    return out.loss


def off_by_one_spans(maskable, mask_ratio, mean_span_len, generator=None):
    """Hides ℓ − 1 tokens of each span but counts what it hid: a span of length 1 hides nothing, and
    with mean_span_len = 1 every span has length 1 — the loop never ends."""
    n, mask = sum(maskable), [False] * len(maskable)
    if n == 0:
        return torch.tensor(mask)
    budget, masked = max(1, math.floor(mask_ratio * n + torch.rand((), generator=generator).item())), 0
    while masked < budget:
        span = sample_span_length(mean_span_len, generator)
        free = [i for i, ok in enumerate(maskable) if ok and not mask[i]]
        i = free[torch.randint(len(free), (), generator=generator).item()]
        for j in range(i, min(i + span - 1, len(mask))):  # off by one: range end should be i + span
            if maskable[j] and not mask[j] and masked < budget:
                mask[j], masked = True, masked + 1
    return torch.tensor(mask)


def unseeded_spans(maskable, mask_ratio, mean_span_len, generator=None):
    """Right in every way but one: its random numbers come from the global stream, not `generator`."""
    return solutions.span_mask_solution(maskable, mask_ratio, mean_span_len, None)


def views_with_specials(
    input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator=None
):
    from jepa_lite.masking import mask_spans

    pred_mask = mask_spans(attention_mask.bool(), mask_ratio, mean_span_len, generator)  # [CLS]/[SEP] left maskable
    return input_ids.masked_fill(pred_mask, mask_token_id), pred_mask


def views_without_mask_token(
    input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator=None
):
    _, pred_mask = solutions.two_views_solution(
        input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator
    )
    return input_ids.clone(), pred_mask  # the loss positions, but the context view still shows the tokens


def views_own_generator(
    input_ids, attention_mask, special_ids, mask_token_id, mask_ratio, mean_span_len, generator=None
):
    return solutions.two_views_solution(
        input_ids,
        attention_mask,
        special_ids,
        mask_token_id,
        mask_ratio,
        mean_span_len,
        torch.Generator().manual_seed(1234),
    )


def writes_online(target, online, m):
    with torch.no_grad():
        for t, o in zip(target, online):
            t.mul_(m).add_(o, alpha=1 - m)
            o.copy_(t)  # the online tensors must stay as they are


def plus_cosine(pred, target, pred_mask):
    return (1.0 + F.cosine_similarity(pred[pred_mask], target[pred_mask], dim=-1)).mean()


def swapped_step_momentum(model, optimizer, batch, m, grad_clip):
    out = model(batch)
    optimizer.zero_grad()
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), grad_clip)
    optimizer.step()
    model.update_target(1 - m)  # the weights swapped
    return out.loss


# 06.4 — the paired t statistic, four ways a student gets it wrong
def t_population_sd(a, b):
    """s divides by n (numpy's default std), not n − 1."""
    import numpy as np

    d = np.asarray(a) - np.asarray(b)
    return d.mean() / (d.std() / math.sqrt(len(d)))


def t_reversed(a, b):
    """The differences b − a."""
    import numpy as np

    d = np.asarray(b) - np.asarray(a)
    return d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))


def t_unpaired(a, b):
    """Two separate groups: the pairing is thrown away."""
    from scipy import stats

    return stats.ttest_ind(a, b).statistic


def t_five_seeds(a, b):
    """√5 written in: right for the notebook's five seeds, wrong for any other n."""
    import numpy as np

    d = np.asarray(a) - np.asarray(b)
    return d.mean() / (d.std(ddof=1) / math.sqrt(5))


def t_lists_subtracted(a, b):
    """a − b on plain Python lists: a TypeError, reported as what was seen."""
    d = a - b
    return sum(d) / len(d)


PLANTED = [
    ("01.3", off_by_one_spans, "stops"),
    ("01.3", unseeded_spans, "reproducible"),
    ("02.4", views_with_specials, "only on real, non-special tokens"),
    ("02.4", views_without_mask_token, "writes [MASK]"),
    ("02.4", views_own_generator, "same views as masking.mask_batch"),
    ("03.3", writes_online, "leaves the online tensors unchanged"),
    ("04.3", plus_cosine, "is 0 for the same direction"),
    ("05.4", swapped_step_momentum, "moves the target encoder"),
    ("01.3", overshooting_spans, "masks exactly b"),
    ("01.3", single_tokens, "masks spans whose lengths"),
    ("01.3", rounded_budget, "unbiased"),
    ("01.3", masks_specials, "never masks a position that is not maskable"),
    ("02.4", in_place_views, "leaves input_ids"),
    ("02.4", views_on_padding, "only on real, non-special tokens"),
    ("03.3", swapped_momentum, "m = 1 leaves"),
    ("03.3", rebinds_only, "in place"),
    ("03.3", without_no_grad, "require grad"),
    ("04.3", no_normalise, "ignores the lengths of the vectors"),
    ("04.3", every_position, "only masked positions count"),
    ("04.3", summed, "is a mean over masked tokens"),
    ("04.3", as_float, "0-dim tensor"),
    ("05.4", ema_before_step, "moves the target encoder"),
    ("05.4", no_clipping, "clips the global gradient norm"),
    ("05.4", no_zero_grad, "starts each step from zero gradients"),
    ("05.4", no_ema, "moves the target encoder"),
    ("06.4", t_population_sd, "five seeds"),
    ("06.4", t_reversed, "five seeds"),
    ("06.4", t_unpaired, "five seeds"),
    ("06.4", t_five_seeds, "any number of pairs"),
    ("06.4", t_lists_subtracted, "five seeds"),
]


@pytest.mark.parametrize("exercise_id,wrong,broken", PLANTED, ids=[f"{e}-{f.__name__}" for e, f, _ in PLANTED])
def test_a_planted_wrong_implementation_fails_at_the_property_it_breaks(exercise_id, wrong, broken, capsys):
    failure = implement.first_failure(exercise_id, wrong)
    assert failure is not None, f"{wrong.__name__} passed every property of {exercise_id}"
    _, prop, seen = failure
    assert broken in prop.name, (prop.name, seen)
    assert implement.check_function(exercise_id, wrong) is False
    out = capsys.readouterr().out
    assert "❌" in out and prop.name in out and "hint:" in out


def test_an_exception_in_the_students_code_is_reported_as_the_failing_property():
    def broken(target, online, m):
        raise ValueError("oops")

    i, prop, seen = implement.first_failure("03.3", broken)
    assert i == 0 and "ValueError: oops" in seen


def test_a_check_leaves_the_notebooks_random_stream_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    implement.check_function("05.4", solutions.train_step_solution)
    implement.check_function("04.3", solutions.masked_cosine_loss_solution)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_each_exercise_has_at_least_three_planted_mistakes():
    counts = {e: sum(1 for x, _, _ in PLANTED if x == e) for e in implement.CODING_EXERCISES}
    assert min(counts.values()) >= 3, counts


def test_the_three_ways_to_get_the_target_wrong_get_three_different_diagnoses():
    seen = {f.__name__: implement.first_failure("05.4", f)[2] for f in (no_ema, swapped_step_momentum, ema_before_step)}
    assert "not moved at all" in seen["no_ema"]
    assert "swapped" in seen["swapped_step_momentum"]
    assert "before this step" in seen["ema_before_step"]


def test_each_slip_in_the_paired_t_gets_its_own_diagnosis():
    seen = {f.__name__: implement.first_failure("06.4", f)[2] for f in (t_population_sd, t_reversed, t_unpaired)}
    assert "n − 1" in seen["t_population_sd"]
    assert "other way round" in seen["t_reversed"]
    assert "pairing" in seen["t_unpaired"]
    assert "TypeError" in implement.first_failure("06.4", t_lists_subtracted)[2]


def test_a_paired_t_that_never_returns_is_stopped(capsys):
    def forever(a, b):
        while True:
            pass

    assert implement.check_function("06.4", forever) is False
    assert "had not returned after 10 s" in capsys.readouterr().out


def test_a_loop_that_never_ends_is_stopped_and_named(capsys):
    import time

    start = time.monotonic()
    assert implement.check_function("01.3", off_by_one_spans) is False
    assert time.monotonic() - start < 30
    out = capsys.readouterr().out
    assert "had not returned after 5 s" in out and "never ends" in out


def test_the_time_limit_also_stops_code_outside_the_main_thread():
    import threading

    caught = []

    def spin():
        try:
            with implement.time_limit(0.5):
                while True:
                    pass
        except implement.TookTooLong:
            caught.append(True)

    t = threading.Thread(target=spin)
    t.start()
    t.join(timeout=20)
    assert caught == [True]


@pytest.mark.parametrize(
    "exercise_id", sorted(set(implement.CODING_EXERCISES) - {"03.3"})
)  # 03.3 returns None by design
def test_a_stub_that_returns_none_is_not_written_yet(exercise_id, capsys):
    def stub(*args, **kwargs):
        pass

    assert implement.check_function(exercise_id, stub) is None
    assert "not written yet" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", sorted(implement.CODING_EXERCISES))
def test_a_stub_left_as_pass_or_ellipsis_is_not_written_yet(exercise_id, capsys):
    def stub_pass(*args):
        """The stub's docstring."""
        pass

    def stub_ellipsis(*args): ...

    for stub in (stub_pass, stub_ellipsis):
        assert implement.check_function(exercise_id, stub) is None
        assert "not written yet" in capsys.readouterr().out


def test_a_pass_like_lambda_of_the_ema_exercise_fails_the_first_property(capsys):
    assert implement.check_function("03.3", lambda target, online, m: None) is False
    assert "property 1 of" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", sorted(implement.CODING_EXERCISES))
def test_hints_and_messages_name_the_mistake_without_giving_the_solution(exercise_id):
    import inspect
    import re

    calls = set(re.findall(r"[A-Za-z_][\w.]*\(", inspect.getsource(solutions.SOLUTIONS[exercise_id])))
    calls -= {"len(", "range(", "max(", "sum(", "bool(", "zip(", "float(", "int(", "list(", "def ("}
    calls = {c for c in calls if not c.endswith("_solution(")}
    texts = [p.hint for p in implement.CODING_EXERCISES[exercise_id].properties]
    texts += [implement.first_failure(e, f)[2] for e, f, _ in PLANTED if e == exercise_id]
    for text in texts:
        assert not [c for c in calls if c in text], (text, [c for c in calls if c in text])

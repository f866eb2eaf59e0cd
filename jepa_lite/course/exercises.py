"""Self-checks for the notebooks' exercises.

Each exercise has an id ("01.1" = notebook 01, exercise 1). The student writes an answer in the
notebook and runs

    check_answer("01.1", answer)

which prints whether it is right, with a hint when it is not. The expected values are computed here
from the formulas the notebooks teach, not typed in as magic numbers. *Experiment* exercises
("change a setting, run, read a number") compute their expected value by running the same library
code with the notebook's settings, passed along: `check_answer("03.4", answer, steps=STEPS)`.

Equivalent answers are accepted: numbers within the stated tolerance of the exact value or of a
by-hand value the notebook also teaches (`also`), numbers given as strings ("0.9", "9/10"), words
whatever their case, spacing, quotes or underscores ("Context encoder" = 'context_encoder'), and
tuples given as strings ("(17, 128)", "17 x 128") or as torch.Size.
Functions the student writes are checked by `implement.check_function`, not here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence


@dataclass
class Exercise:
    question: str  # one line, as in the notebook
    expected: Callable[[], Any]  # computes the right answer
    hint: str  # shown after a wrong answer
    why: str  # shown after a right answer
    rel_tol: float = 1e-3  # tolerance for numbers (relative), absolute floor abs_tol
    abs_tol: float = 1e-3
    also: Sequence[Callable[[], Any]] = ()  # other accepted values, e.g. the by-hand approximation


def _p(mean_span_len: float) -> float:
    return 1.0 / mean_span_len


EXERCISES = {
    "01.1": Exercise(
        "n = 23 maskable tokens, mask_ratio = 0.3: what is the probability that the budget b is 7?",
        lambda: (0.3 * 23) % 1.0,  # b = ⌈r·n⌉ = 7 exactly when U ≥ 1 − frac(r·n)
        "b = max(1, ⌊r·n + U⌋) with U ~ Uniform(0, 1). Here r·n = 6.9: b = 7 exactly when U ≥ 0.1.",
        "r·n = 6.9, so b is 7 with probability 0.9 and 6 with probability 0.1: E[b] = 6.9 = r·n.",
        abs_tol=0.005,
    ),
    "01.2": Exercise(
        "mean_span_len = 4: what fraction of drawn spans have length 3 or more?",
        lambda: (1.0 - _p(4)) ** 2,
        "P(ℓ ≥ 3) = 1 − P(1) − P(2) with P(ℓ) = p(1 − p)^(ℓ−1), p = 1/4; or: the first two 'coin flips' both fail.",
        "P(ℓ ≥ 3) = (1 − p)² = 0.75² = 0.5625: a geometric law has no memory, each extra "
        "token is a fresh 3-in-4 chance.",
        abs_tol=0.005,
    ),
    "02.1": Exercise(
        "Two lines tokenise to 9 and 14 ids ([CLS]/[SEP] included). How many padding positions "
        "does the padded batch hold?",
        lambda: 14 - 9,
        "The batch is padded to its longest line; only the shorter line gets [PAD] tokens.",
        "Both rows have length 14, the short one ends with 5 [PAD] tokens (attention_mask 0 there).",
        abs_tol=0,
    ),
    "02.2": Exercise(
        "Which tensor of a Batch does the target encoder read: 'input_ids' or 'masked_input_ids'?",
        lambda: "input_ids",
        "The target encoder must produce the embedding of the hidden tokens, so it has to see them.",
        "The target encoder reads the full text (input_ids); the context encoder reads masked_input_ids.",
    ),
    "02.3": Exercise(
        "A batch has pred_mask.sum() == 17 and hidden size D = 128. What is the shape of out.pred (a tuple)?",
        lambda: (17, 128),
        "The loss only uses masked positions: (B, L, D)[pred_mask] keeps one D-vector per masked token.",
        "(B, L, D)[pred_mask] → (N, D) with N = 17 masked tokens: the predictor runs on those rows only.",
    ),
    "03.1": Exercise(
        "What is the half-life, in steps, of m = 0.999?",
        lambda: math.log(0.5) / math.log(0.999),
        "h = ln 0.5 / ln m; by hand, ln(0.999) ≈ −0.001, so h ≈ 0.69 / 0.001.",
        "h = ln 0.5 / ln 0.999 ≈ 692.8 steps exactly, ≈ 690 by hand with 0.69 / (1 − m): both are right.",
        abs_tol=1.0,
        rel_tol=0.0,
        also=(lambda: 0.69 / (1 - 0.999), lambda: math.log(2) / (1 - 0.999)),
    ),
    "03.2": Exercise(
        "Which momentum m gives a half-life of exactly 20 steps?",
        lambda: 0.5 ** (1.0 / 20),
        "Solve m^h = 0.5 for m: m = 0.5^(1/h).",
        "m = 0.5^(1/20) ≈ 0.9659: after 20 steps m^20 = 0.5 of the old weights is left (by "
        "hand: 1 − 0.69/20 ≈ 0.9655).",
        abs_tol=5e-4,
        rel_tol=0.0,
        also=(lambda: 1 - 0.69 / 20,),
    ),
    "04.1": Exercise(
        "Cosine distance 1 − cos(p, t) between p = (1, 0) and t = (0, 3)?",
        lambda: 1.0,
        "The two arrows are at 90°, and the length of t does not matter for a cosine.",
        "cos 90° = 0, so the distance is 1; scaling t to any length changes nothing.",
    ),
    "04.2": Exercise(
        "p = (0.3, 0), t = (0, 0.4), i.e. (3, 0) and (0, 4) shrunk by 10×: give (L2 distance "
        "‖p − t‖, cosine distance 1 − cos(p, t)).",
        lambda: (0.1 * math.hypot(3.0, 4.0), 1.0),
        "‖(3, 0) − (0, 4)‖ = 5, and shrinking both vectors by 10× shrinks that by 10× too; "
        "the angle between them does not change.",
        "(0.5, 1.0): L2 = 5 / 10 falls just by shrinking the vectors, without a better prediction; "
        "the cosine distance stays at 1 (a right angle).",
    ),
    "00.1": Exercise(
        "A line has 20 maskable tokens and mask_ratio = 0.3. How many target embeddings must "
        "the predictor produce for it?",
        lambda: round(0.3 * 20),
        "The loss is computed at the masked positions only, one predicted embedding per masked "
        "token; mask_ratio is the fraction masked.",
        "0.3 × 20 = 6 masked tokens, so 6 predicted embeddings, each compared with the target "
        "encoder's embedding of that token.",
        abs_tol=0,
    ),
    "00.2": Exercise(
        "Which encoder does the optimizer update: 'context_encoder' or 'target_encoder'?",
        lambda: "context_encoder",
        "One of the two never receives a gradient; it only follows the other through θ_tgt ← m·θ_tgt + (1 − m)·θ_ctx.",
        "The optimizer updates the context encoder (and the predictor); the target encoder "
        "is an EMA of the context encoder.",
    ),
    "05.1": Exercise(
        "warmup_steps = 20, steps = 200: what is lr_factor at optimizer step 65?",
        lambda: 0.5 * (1.0 + math.cos(math.pi * (65 - 20) / (200 - 20))),
        "Step 65 is past warm-up: progress = (65 − 20) / (200 − 20), and the factor is ½(1 + cos(π · progress)).",
        "progress = 45 / 180 = 0.25, so the factor is ½(1 + cos(π/4)) ≈ 0.854: the LR is still at 85 % of its peak.",
        abs_tol=0.002,
        rel_tol=0.0,
    ),
    "05.2": Exercise(
        "A line of 9 tokens ([CLS] and [SEP] included) sits in a batch padded to length 14; "
        "probe.mean_pool weights each position by its attention_mask. Over how many hidden "
        "vectors does it average?",
        lambda: 9,
        "attention_mask is 1 at every real token, [CLS] and [SEP] included, and 0 at padding.",
        "9: the 5 padding positions have attention_mask 0 and are left out; [CLS] and [SEP] "
        "count, as in sentence-transformers.",
        abs_tol=0,
    ),
    "05.3": Exercise(
        "The probe splits 480 sentences (8 topics × 60) with test_fraction = 0.25, per topic. "
        "How many sentences are in the test split?",
        lambda: 8 * round(0.25 * 60),
        "train_test_split is stratified: each topic puts round(0.25 × 60) of its sentences in the test split.",
        "8 × 15 = 120 test sentences (and 360 to fit the classifier); guessing gives 1/8 = 12.5 % on them.",
        abs_tol=0,
    ),
    "06.1": Exercise(
        "A Text of 10 tokens, k = 2 predictor tokens: how many tokens long is its Text view [BOS] Text [SEP] [PRED]×k?",
        lambda: 1 + 10 + 1 + 2,
        "Count the pieces of paired.text_view: one [BOS], the Text, one [SEP], then k [PRED] tokens.",
        "1 + 10 + 1 + 2 = 14; Pred(Enc(Text)) is the last layer's hidden state at position 14, the last [PRED].",
        abs_tol=0,
    ),
    "06.2": Exercise(
        "batch_size = 32, λ > 0, loss_dropout = 0.5: on average, how many sequences go through "
        "the model per training step?",
        lambda: 32 + 0.5 * 2 * 32,
        "Every step runs the 32 LM rows; a step that keeps the JEPA term adds 32 Text views "
        "and 32 Code views; loss dropout skips that half the time.",
        "32 + ½ · 64 = 64 rows: loss dropout 0.5 removes a third of the compute of full LLM-JEPA (96 rows per step).",
        abs_tol=0,
    ),
    "06.3": Exercise(
        "Which JEPA distance can a model drive to 0 by shrinking every embedding towards "
        "the zero vector: 'cosine' or 'l2'?",
        lambda: "l2",
        "Scale every embedding by a small number: which of 1 − cos(p, t) and ‖p − t‖ changes?",
        "‖p − t‖ shrinks with the scale of the embeddings, 1 − cos does not; that is why "
        "the paper finds L2 collapsing and uses cosine.",
    ),
    "07.1": Exercise(
        "A pair has 6 Text tokens and 4 Code tokens. How many different spans [s, t) can STP draw on its row?",
        lambda: _stp_span_count(6 + 4),
        "n = 10 content tokens; a span is 0 ≤ s < t ≤ n, and it is never all of them (t − s < n).",
        "n(n + 1)/2 − 1 = 55 − 1 = 54 spans: every pair of cut points but the one that takes the whole row.",
        abs_tol=0,
    ),
    "07.2": Exercise(
        "batch_size = 32, λ > 0, objective = 'stp': how many sequences go through the model per training step?",
        lambda: 32,
        "STP reads the hidden states of the LM row it already runs for the LM loss: does it need a second view?",
        "32: the LM rows alone. LLM-JEPA's separate rows need 96 (LM row, Text view, Code view per pair).",
        abs_tol=0,
    ),
}


def _stp_span_count(n: int) -> int:
    """Every span STP's draw can give on n content tokens, counted by enumerating (s, t)."""
    return sum(1 for s in range(n) for t in range(s + 1, n + 1) if t - s < n)


# --- experiment exercises: change a setting, run, read a number ------------------------------------
def _overshoot_at_015(n_rows: int = 480) -> float:
    from .explore import compare_maskers

    return compare_maskers(mask_ratio=0.15, mean_span_len=5, n_rows=n_rows)["overshooting (article)"]["masked_fraction"]


def _loss_positions_at_005() -> int:
    from .explore import DEFAULT_SENTENCE, load_tokenizer, two_views
    from .widgets import COMPANION

    return two_views(load_tokenizer("minilm"), [DEFAULT_SENTENCE, COMPANION], mask_ratio=0.05, mean_span_len=3, seed=0)[
        "n_loss_positions"
    ]


MOMENTA = (0.0, 0.5, 0.9, 0.99, 0.996)  # the momenta of notebook 03's collapse panel


def _smallest_healthy_momentum(steps: int = 200, log_every: int = 20) -> float:
    """The smallest m of MOMENTA whose run ends without the trainer's collapse warning."""
    from ..diagnostics import collapse_warning
    from .runs import final_metrics, run_history

    for m in MOMENTA:
        if collapse_warning(final_metrics(run_history(ema_m=m, steps=steps, log_every=log_every))) is None:
            return m
    return float("nan")


def _final(metric: str, steps: int = 200, **settings) -> float:
    from .runs import final_metrics, run_history

    return final_metrics(run_history(steps=steps, **settings))[metric]


EXPERIMENTS = ("00.3", "01.4", "02.5", "03.4", "04.4", "05.5")  # the experiment exercises below

EXERCISES.update(
    {
        "00.3": Exercise(
            "Train § 3's run for twice as many steps: what loss does it end with?",
            lambda steps=400: _final("loss", steps, log_every=10),
            "Set EXPERIMENT_STEPS = 2 * STEPS in the experiment cell, run it, and read the printed final "
            "loss (3 decimals).",
            "On the notebook's seed the longer run ends lower: the predictor keeps fitting these 480 lines. "
            "Whether the embeddings became more useful, the loss cannot say (notebook 05 § 11 measures it).",
            abs_tol=0.005,
            rel_tol=0.0,
        ),
        "01.4": Exercise(
            "Run § 3's comparison with mask_ratio = 0.15 instead of 0.3: what fraction does the "
            "overshooting scheme hide?",
            _overshoot_at_015,
            "Change mask_ratio in the experiment cell, run it, and read the overshooting row; "
            "give the measured number.",
            "Asked for 0.15 it hides far more, relatively, than asked for 0.3: a budget of 2–3 "
            "tokens and spans of mean 5 overshoot by whole spans.",
            abs_tol=0.005,
            rel_tol=0.0,
        ),
        "02.5": Exercise(
            "Build § 1's two-line batch with mask_ratio = 0.05: how many loss positions does it hold?",
            _loss_positions_at_005,
            "Run explore.two_views(tokenizer, lines, mask_ratio=0.05, mean_span_len=3, seed=0) "
            "and read views['n_loss_positions'].",
            "2: 0.05 · n is below 1 for both lines, and every line with a maskable token gets "
            "at least one: b = max(1, ⌊r·n + U⌋).",
            abs_tol=0,
        ),
        "03.4": Exercise(
            "Of m = 0, 0.5, 0.9, 0.99, 0.996, which is the smallest momentum whose run ends without "
            "a collapse warning?",
            _smallest_healthy_momentum,
            "Move the collapse panel's slider (or run the experiment cell) for each m; the printed "
            "verdict uses the trainer's thresholds.",
            "Below that momentum the target follows the context encoder too closely, and both "
            "slide together to a constant.",
            abs_tol=1e-9,
            rel_tol=0.0,
        ),
        "04.4": Exercise(
            "Run § 4's three losses at m = 0.99: what std does the L2 run end with?",
            lambda steps=200: _final("std", steps, loss="l2", ema_m=0.99),
            "Set the momentum of the experiment cell to 0.99, run it, and read the std of the l2 row (3 decimals).",
            "The L2 run that ended near collapse at m = 0.9 (§ 4) is healthy at m = 0.99: on "
            "this small problem the slow target does most of the work.",
            abs_tol=0.005,
            rel_tol=0.0,
        ),
        "05.5": Exercise(
            "Train the tiny encoder with mean_span_len = 1 (single tokens): what loss does the run end with?",
            lambda steps=200: _final("loss", steps, mean_span_len=1.0),
            "Set EXPERIMENT_SPAN in the experiment cell to 1.0, run it, and read the printed final loss (3 decimals).",
            "The two runs end within a few thousandths of each other (one run each; the same holds on seeds 0, "
            "1 and 2, which the kit's tests try): spans leave far fewer visible neighbours "
            "(01 § 6), yet on these short lines the JEPA loss hardly tells them apart — the loss "
            "is not the whole story (§ 11).",
            abs_tol=0.005,
            rel_tol=0.0,
        ),
    }
)


def _number(x: Any) -> float:
    """A number from a number or a string: "0.9", " 690 ", "9/10"."""
    if isinstance(x, str):
        x = x.strip().strip("'\"")
        if re.fullmatch(r"[-+]?[\d.]+\s*/\s*[\d.]+", x):
            num, den = x.split("/")
            return float(num) / float(den)
    if isinstance(x, bool):
        raise TypeError("a truth value is not a number")
    return float(x)


def _word(x: str) -> str:
    """'Context encoder', "context_encoder", ' CONTEXT-ENCODER ' → 'context_encoder'."""
    return re.sub(r"[\s_\-]+", "_", x.strip().strip("'\"` ").strip().lower())


def _numbers(x: Any) -> list:
    """The numbers of a tuple given as a tuple, list, torch.Size or string ("(17, 128)", "17 x 128")."""
    if isinstance(x, str):
        return [float(v) for v in re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", x)]
    return [_number(v) for v in x]


def _close(a: float, b: float, ex: Exercise) -> bool:
    return math.isclose(float(a), float(b), rel_tol=ex.rel_tol, abs_tol=ex.abs_tol)


def _call(f: Callable, settings: dict):
    return f(**settings) if settings else f()


def is_correct(exercise_id: str, answer: Any, **settings) -> Optional[bool]:
    """True / False, or None when the answer is still the placeholder `...` or None.

    `settings` go to the expected-value function of experiment exercises (e.g. steps=STEPS)."""
    ex = get_exercise(exercise_id)
    if answer is None or answer is Ellipsis:
        return None
    expected = _call(ex.expected, settings)
    if isinstance(expected, str):
        return isinstance(answer, str) and _word(answer) == _word(expected)
    try:
        if isinstance(expected, tuple):
            got = _numbers(answer)
            return len(got) == len(expected) and all(_close(a, b, ex) for a, b in zip(got, expected))
        value = _number(answer)
    except (TypeError, ValueError):
        return False
    return any(_close(value, v, ex) for v in [expected] + [_call(f, {}) for f in ex.also])


def get_exercise(exercise_id: str) -> Exercise:
    if exercise_id not in EXERCISES:
        raise KeyError(f"unknown exercise '{exercise_id}'; known: {', '.join(EXERCISES)}")
    return EXERCISES[exercise_id]


def check_answer(exercise_id: str, answer: Any, **settings) -> Optional[bool]:
    """Print whether `answer` solves exercise `exercise_id` (with a hint if not); return is_correct."""
    ex = get_exercise(exercise_id)
    ok = is_correct(exercise_id, answer, **settings)
    if ok is None:
        print(f"[{exercise_id}] not answered yet: replace the ... above with your answer and run both cells again.")
    elif ok:
        print(f"[{exercise_id}] ✅ correct. {ex.why}")
    else:
        print(f"[{exercise_id}] ❌ not quite (you gave {answer!r}). Hint: {ex.hint}")
    return ok

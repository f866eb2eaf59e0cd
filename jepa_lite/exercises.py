"""Self-checks for the notebooks' exercises.

Each exercise has an id ("01.1" = notebook 01, exercise 1). The student writes an answer in the
notebook and runs

    check_answer("01.1", answer)

which prints whether it is right, with a hint when it is not. The expected values are computed here
from the formulas the notebooks teach, not typed in as magic numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass
class Exercise:
    question: str  # one line, as in the notebook
    expected: Callable[[], Any]  # computes the right answer
    hint: str  # shown after a wrong answer
    why: str  # shown after a right answer
    rel_tol: float = 1e-3  # tolerance for numbers (relative), absolute floor abs_tol
    abs_tol: float = 1e-3


def _p(mean_span_len: float) -> float:
    return 1.0 / mean_span_len


EXERCISES = {
    "01.1": Exercise(
        "n = 23 maskable tokens, mask_ratio = 0.3: what is the probability that the budget k is 7?",
        lambda: (0.3 * 23) % 1.0,  # k = ⌈r·n⌉ = 7 exactly when U ≥ 1 − frac(r·n)
        "k = ⌊r·n + U⌋ with U ~ Uniform(0, 1). Here r·n = 6.9: k = 7 exactly when U ≥ 0.1.",
        "r·n = 6.9, so k is 7 with probability 0.9 and 6 with probability 0.1: E[k] = 6.9 = r·n.",
        abs_tol=0.005,
    ),
    "01.2": Exercise(
        "mean_span_len = 4: what fraction of drawn spans have length 3 or more?",
        lambda: (1.0 - _p(4)) ** 2,
        "P(ℓ ≥ 3) = 1 − P(1) − P(2) with P(ℓ) = p(1 − p)^(ℓ−1), p = 1/4; or: the first two 'coin flips' both fail.",
        "P(ℓ ≥ 3) = (1 − p)² = 0.75² = 0.5625: a geometric law has no memory, each extra token is a fresh 3-in-4 chance.",
        abs_tol=0.005,
    ),
    "02.1": Exercise(
        "Two lines tokenise to 9 and 14 ids ([CLS]/[SEP] included). How many padding positions does the padded batch hold?",
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
        "h = ln 0.5 / ln m. Hint: ln(0.999) ≈ −0.001.",
        "h = ln 0.5 / ln 0.999 ≈ 692.8 steps: roughly 0.69 / (1 − m) when m is close to 1.",
        abs_tol=1.0,
        rel_tol=0.0,
    ),
    "03.2": Exercise(
        "Which momentum m gives a half-life of exactly 20 steps?",
        lambda: 0.5 ** (1.0 / 20),
        "Solve m^h = 0.5 for m: m = 0.5^(1/h).",
        "m = 0.5^(1/20) ≈ 0.9659: after 20 steps m^20 = 0.5 of the old weights is left.",
        abs_tol=5e-4,
        rel_tol=0.0,
    ),
    "04.1": Exercise(
        "Cosine distance 1 − cos(p, t) between p = (1, 0) and t = (0, 3)?",
        lambda: 1.0,
        "The two arrows are at 90°, and the length of t does not matter for a cosine.",
        "cos 90° = 0, so the distance is 1; scaling t to any length changes nothing.",
    ),
    "04.2": Exercise(
        "L2 distance ‖p − t‖ for p = (0.3, 0) and t = (0, 0.4), i.e. (3, 0) and (0, 4) shrunk by 10×?",
        lambda: 0.1 * math.hypot(3.0, 4.0),
        "‖(3, 0) − (0, 4)‖ = 5; shrinking both vectors by 10× shrinks the distance by 10× too.",
        "0.5 = 5 / 10: an L2 loss can be lowered just by shrinking every embedding, without better predictions. Cosine distance stays at 1.",
    ),
    "00.1": Exercise(
        "A line has 20 maskable tokens and mask_ratio = 0.3. How many target embeddings must the predictor produce for it?",
        lambda: round(0.3 * 20),
        "The loss is computed at the masked positions only, one predicted embedding per masked token; mask_ratio is the fraction masked.",
        "0.3 × 20 = 6 masked tokens, so 6 predicted embeddings, each compared with the target encoder's embedding of that token.",
        abs_tol=0,
    ),
    "00.2": Exercise(
        "Which encoder does the optimizer update: 'context_encoder' or 'target_encoder'?",
        lambda: "context_encoder",
        "One of the two never receives a gradient; it only follows the other through θ_tgt ← m·θ_tgt + (1 − m)·θ_ctx.",
        "The optimizer updates the context encoder (and the predictor); the target encoder is an EMA of the context encoder.",
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
        "A line of 9 tokens ([CLS] and [SEP] included) sits in a batch padded to length 14. Over how many hidden vectors does mean pooling average?",
        lambda: 9,
        "probe.mean_pool weights each position by its attention_mask: 1 for real tokens (specials included), 0 for padding.",
        "9: the 5 padding positions have attention_mask 0 and are left out; [CLS] and [SEP] count, as in sentence-transformers.",
        abs_tol=0,
    ),
    "05.3": Exercise(
        "The probe splits 480 sentences (8 topics × 60) with test_fraction = 0.25, per topic. How many sentences are in the test split?",
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
        "batch_size = 32, λ > 0, loss_dropout = 0.5: on average, how many sequences go through the model per training step?",
        lambda: 32 + 0.5 * 2 * 32,
        "Every step runs the 32 LM rows; a step that keeps the JEPA term adds 32 Text views and 32 Code views; loss dropout skips that half the time.",
        "32 + ½ · 64 = 64 rows: loss dropout 0.5 removes a third of the compute of full LLM-JEPA (96 rows per step).",
        abs_tol=0,
    ),
    "06.3": Exercise(
        "Which JEPA distance can a model drive to 0 by shrinking every embedding towards the zero vector: 'cosine' or 'l2'?",
        lambda: "l2",
        "Scale every embedding by a small number: which of 1 − cos(p, t) and ‖p − t‖ changes?",
        "‖p − t‖ shrinks with the scale of the embeddings, 1 − cos does not; that is why the paper finds L2 collapsing and uses cosine.",
    ),
}


def _close(a: float, b: float, ex: Exercise) -> bool:
    return math.isclose(float(a), float(b), rel_tol=ex.rel_tol, abs_tol=ex.abs_tol)


def is_correct(exercise_id: str, answer: Any) -> Optional[bool]:
    """True / False, or None when the answer is still the placeholder `...` or None."""
    ex = get_exercise(exercise_id)
    if answer is None or answer is Ellipsis:
        return None
    expected = ex.expected()
    if isinstance(expected, str):
        return isinstance(answer, str) and answer.strip().strip("'\"").lower() == expected.lower()
    if isinstance(expected, tuple):
        try:
            return tuple(int(x) for x in answer) == expected
        except (TypeError, ValueError):
            return False
    try:
        return _close(answer, expected, ex)
    except (TypeError, ValueError):
        return False


def get_exercise(exercise_id: str) -> Exercise:
    if exercise_id not in EXERCISES:
        raise KeyError(f"unknown exercise '{exercise_id}'; known: {', '.join(EXERCISES)}")
    return EXERCISES[exercise_id]


def check_answer(exercise_id: str, answer: Any) -> Optional[bool]:
    """Print whether `answer` solves exercise `exercise_id` (with a hint if not); return is_correct."""
    ex = get_exercise(exercise_id)
    ok = is_correct(exercise_id, answer)
    if ok is None:
        print(f"[{exercise_id}] not answered yet: replace the ... above with your answer and run both cells again.")
    elif ok:
        print(f"[{exercise_id}] ✅ correct. {ex.why}")
    else:
        print(f"[{exercise_id}] ❌ not quite (you gave {answer!r}). Hint: {ex.hint}")
    return ok

"""The notebooks' helpers: exercise checks, fast mode, and the numbers the notebooks claim."""

import math

import pytest
import torch

from jepa_lite import course
from jepa_lite.course import explore
from jepa_lite.course.exercises import EXERCISES, check_answer, is_correct

# experiment exercises run the library with the notebook's settings; here, small ones
SMALL = {
    "00.3": {"steps": 20},
    "01.4": {"n_rows": 40},
    "03.4": {"steps": 20},
    "04.4": {"steps": 20},
    "05.5": {"steps": 20},
}


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_every_exercise_accepts_its_answer_and_rejects_a_wrong_one(exercise_id, capsys):
    settings = SMALL.get(exercise_id, {})
    expected = EXERCISES[exercise_id].expected(**settings)
    assert check_answer(exercise_id, expected, **settings) is True
    wrong = (
        "masked_input_ids" if isinstance(expected, str) else (1, 3) if isinstance(expected, tuple) else expected + 3.0
    )
    assert check_answer(exercise_id, wrong, **settings) is False
    assert check_answer(exercise_id, ..., **settings) is None
    assert "not answered yet" in capsys.readouterr().out


def test_exercise_values():
    assert is_correct("01.1", 0.9) and is_correct("01.2", 0.5625) and is_correct("02.1", 5)
    assert is_correct("02.3", torch.Size([17, 128])) and is_correct("03.1", 693)
    assert is_correct("03.2", 0.966) and is_correct("04.1", 1) and is_correct("04.2", (0.5, 1.0))
    assert is_correct("02.5", 2) and is_correct("03.4", 0.5, steps=20) is not None


def test_checks_accept_equivalent_answers():
    assert is_correct("03.1", 690)  # the by-hand value 0.69 / (1 − m) that notebook 03 § 2 teaches
    assert is_correct("03.1", 692.8) and is_correct("03.1", "693") and not is_correct("03.1", 650)
    assert is_correct("03.2", 1 - 0.69 / 20) and not is_correct("03.2", 0.95)
    assert is_correct("00.2", "context encoder") and is_correct("00.2", " Context_Encoder ")
    assert is_correct("02.2", "'input_ids'") and not is_correct("02.2", "masked input ids")
    assert is_correct("02.3", "(17, 128)") and is_correct("02.3", "17 x 128") and is_correct("02.3", [17, 128])
    assert not is_correct("02.3", "(17, 128, 1)") and not is_correct("02.3", "(128, 17)")
    assert is_correct("04.2", "0.5, 1") and not is_correct("04.2", 0.5)  # both distances are asked for
    assert is_correct("01.1", "9/10") and is_correct("01.1", "0.9") and not is_correct("01.1", True)


def test_a_hint_says_hint_once(capsys):
    for exercise_id in EXERCISES:
        check_answer(
            exercise_id,
            "certainly wrong"
            if isinstance(EXERCISES[exercise_id].expected(**SMALL.get(exercise_id, {})), str)
            else -99.0,
            **SMALL.get(exercise_id, {}),
        )
    for line in capsys.readouterr().out.splitlines():
        assert line.count("Hint") <= 1, line


def test_fast_mode_switch(monkeypatch):
    monkeypatch.setenv(course.FAST_ENV, "1")
    assert course.fast_mode() and course.pick(fast=1, full=2) == 1
    monkeypatch.setenv(course.FAST_ENV, "0")
    assert not course.fast_mode() and course.pick(fast=1, full=2) == 2


def test_colab_url_derives_from_repo_url():
    assert course.colab_url("01_span_masking.ipynb") == (
        "https://colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/01_span_masking.ipynb"
    )


def test_overshooting_scheme_overshoots_and_the_kit_does_not():
    c = explore.compare_maskers(0.3, 5, n_rows=160)
    assert c["overshooting (article)"]["masked_fraction"] > 0.36
    for name in ("sample_span_mask (readable)", "mask_spans (vectorised)"):
        assert abs(c[name]["masked_fraction"] - 0.3) < 0.02
        assert c[name]["specials_masked"] == 0


def test_longer_spans_hide_more_neighbours():
    d = explore.neighbour_visibility([1, 5], n_rows=160)
    assert d["frac_adjacent"][0] > 0.85 > d["frac_adjacent"][1]


def test_l2_shrinks_the_scale_and_cosine_does_not():
    cos, l2 = explore.scale_toy("cosine", steps=300), explore.scale_toy("l2", steps=300)
    assert l2["norm"][-1] < 0.05 * l2["norm"][0]
    assert cos["norm"][-1] > 0.9 * cos["norm"][0]


def test_vector_losses_match_hand_computation():
    d = explore.vector_losses(60, 1.0, 1.0)
    assert d["cosine"] == pytest.approx(0.5, abs=1e-6)
    assert d["l2"] == pytest.approx(1.0, abs=1e-6)  # equilateral triangle
    assert d["mse"] == pytest.approx(0.5, abs=1e-6)
    assert math.isclose(explore.ema_chase(0.9)["half_life"], math.log(0.5) / math.log(0.9))

"""Claims the notebooks' prose makes about what their cells compute, checked against that code.

Each test names the notebook section whose text it guards, reads the sentence from the notebook (so
that a rewrite of the prose without the code, or of the code without the prose, fails here) and runs
the library with the notebook's own settings, in fast and full mode where they differ.
"""

import math
from pathlib import Path

import nbformat
import pytest
import torch

from jepa_lite import explore
from jepa_lite.diagnostics import CollapseThresholds, collapse_warning
from jepa_lite.ema import half_life
from jepa_lite.masking import sample_span_mask
from jepa_lite.runs import final_metrics, run_history

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def markdown(name: str) -> str:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_01_the_floor_of_the_budget_on_a_short_row():
    """01 § 3: 'with n = 3 and mask_ratio = 0.3, r·n = 0.9 but b is always 1'."""
    assert "with n = 3\nand mask_ratio = 0.3, r·n = 0.9 but b is always 1" in markdown("01_span_masking.ipynb")
    g = torch.Generator().manual_seed(0)
    assert {int(sample_span_mask([True] * 3, 0.3, 5, g).sum()) for _ in range(300)} == {1}


def test_03_the_jump_is_half_closed_at_step_50_plus_68():
    """03 § 2: '50 + 68 ... 1 − m^(j+1) ... h = 68.97, after ⌈h⌉ = 69 updates'."""
    text = markdown("03_ema_target.ipynb")
    assert "h = 68.97, after ⌈h⌉ = 69 updates — at step 50 + 68" in text
    assert round(half_life(0.99), 2) == 68.97
    chase = explore.ema_chase(m=0.99, kind="jump")
    first = next(t for t, v in zip(chase["t"], chase["target"]) if v >= 0.5)
    assert first == 50 + 68 and math.ceil(half_life(0.99)) == 69
    j = 10
    assert chase["target"][50 + j] == pytest.approx(1 - 0.99 ** (j + 1), abs=1e-6)
    assert "a target with a half-life\nof one step" in text and half_life(0.5) == pytest.approx(1.0)


@pytest.mark.parametrize("steps", [150, 200], ids=["fast", "full"])
def test_03_m0_and_m05_collapse_and_m0996_recovers(steps):
    """03 § 3: m = 0 collapses below the std threshold, m = 0.5 is hardly better, m = 0.996 recovers."""
    text = markdown("03_ema_target.ipynb")
    assert "`CollapseThresholds().min_std` = 0.1" in text and CollapseThresholds().min_std == 0.1
    final = {m: final_metrics(run_history(ema_m=m, steps=steps, log_every=5)) for m in (0.0, 0.5, 0.996)}
    assert final[0.0]["std"] < 0.1 and collapse_warning(final[0.0])
    assert final[0.5]["std"] < 0.1 and collapse_warning(final[0.5])
    assert final[0.996]["std"] > 0.3 and collapse_warning(final[0.996]) is None


def test_04_the_run_without_a_predictor_ends_healthier():
    """04 § 5: 'the run **without** a predictor ends the *healthier* one' (STEPS = 200 in both modes)."""
    assert "the run **without** a predictor ends the *healthier* one" in markdown("04_cosine_loss.ipynb")
    with_pred = final_metrics(run_history(loss="cosine", ema_m=0.9, steps=200))
    no_pred = final_metrics(run_history(loss="cosine", ema_m=0.9, steps=200, predictor=False))
    assert no_pred["std"] > with_pred["std"] and no_pred["mean_cos"] < with_pred["mean_cos"]

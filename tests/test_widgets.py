"""The notebooks' widget panels, driven headlessly: moving a control changes what is drawn."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from jepa_lite.course import viz, widgets


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def masked_boxes_in_figure(fig) -> int:
    """Number of token boxes drawn in the masked colour in the top panel of a masking figure."""
    ax = fig.axes[0]
    target = matplotlib.colors.to_rgba(viz.COLORS["masked"])
    return sum(1 for t in ax.texts if t.get_bbox_patch() is not None and t.get_bbox_patch().get_facecolor() == target)


def test_masking_explorer_ratio_slider_changes_the_masked_tokens_drawn():
    panel = widgets.masking_explorer()
    assert panel.last is not None  # the panel rendered the defaults once
    panel.controls["mask_ratio"].value = 0.1
    low = panel.last["sentence"]
    assert masked_boxes_in_figure(plt.gcf()) == low["n_masked"]
    panel.controls["mask_ratio"].value = 0.8
    high = panel.last["sentence"]
    assert masked_boxes_in_figure(plt.gcf()) == high["n_masked"]
    assert high["n_masked"] > low["n_masked"]
    n = high["n_maskable"]
    assert high["n_masked"] in (int(0.8 * n), int(0.8 * n) + 1)
    assert all(s == "special" for tok, s in zip(high["tokens"], high["status"]) if tok in ("[CLS]", "[SEP]"))


def test_masking_explorer_span_slider_changes_the_law_and_seed_changes_the_mask():
    panel = widgets.masking_explorer()
    panel.controls["mean_span_len"].value = 2.0
    assert panel.last["stats"]["pmf"][0] == pytest.approx(0.5)
    panel.controls["mean_span_len"].value = 8.0
    assert panel.last["stats"]["pmf"][0] == pytest.approx(1 / 8)
    masks = set()
    for seed in range(5):
        panel.controls["seed"].value = seed
        masks.add(tuple(panel.last["sentence"]["mask"]))
    assert len(masks) > 1


def test_render_is_pure_same_settings_same_data():
    panel = widgets.masking_explorer()
    a = panel.render(mask_ratio=0.4, mean_span_len=3.0, seed=7)
    b = panel.render(mask_ratio=0.4, mean_span_len=3.0, seed=7)
    assert a["sentence"]["mask"] == b["sentence"]["mask"]
    assert a["stats"]["drawn"] == b["stats"]["drawn"]


def test_two_views_explorer_sentence_and_ratio_controls():
    panel = widgets.two_views_explorer()
    first = panel.last["target_tokens"][0]
    options = [v for _, v in panel.controls["sentence"].options]
    panel.controls["sentence"].value = options[3]
    assert panel.last["target_tokens"][0] != first
    panel.controls["mask_ratio"].value = 0.1
    few = panel.last["n_loss_positions"]
    panel.controls["mask_ratio"].value = 0.7
    many = panel.last["n_loss_positions"]
    assert many > few
    b = panel.last["batch"]
    assert int(b.pred_mask.sum()) == many
    assert not (b.pred_mask & (b.attention_mask == 0)).any()  # never a loss position on padding


def test_ema_explorer_half_life_and_extremes():
    panel = widgets.ema_explorer()
    panel.controls["m"].value = 0.99
    d = panel.last
    h = d["half_life"]
    assert h == pytest.approx(68.97, abs=0.01)
    t_half = d["jump_at"] + round(h)
    assert d["target"][t_half] == pytest.approx(0.5, abs=0.01)
    panel.controls["m"].value = 0.0
    assert panel.last["target"] == panel.last["online"]  # m = 0: the target is the online weight
    panel.controls["path"].value = "sine"
    assert panel.last["kind"] == "sine"


def test_vector_explorer_cosine_ignores_length_l2_does_not():
    panel = widgets.vector_explorer()
    panel.controls["angle_deg"].value = 90.0
    assert panel.last["cosine"] == pytest.approx(1.0, abs=1e-6)
    l2_before = panel.last["l2"]
    panel.controls["pred_len"].value = 0.5
    panel.controls["target_len"].value = 0.5
    assert panel.last["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert panel.last["l2"] == pytest.approx(l2_before / 2, rel=1e-4)


def test_collapse_explorer_trains_once_per_momentum_and_caches():
    panel = widgets.collapse_explorer(momenta=(0.0, 0.996), steps=20)
    slow = panel.last["history"]
    panel.controls["ema_m"].value = 0.0
    fast = panel.last["history"]
    assert fast is not slow and fast["loss"] != slow["loss"]
    assert panel.last["shown"] == ["m=0", "m=0.996"]
    panel.controls["ema_m"].value = 0.996
    assert panel.last["history"] is slow  # cached: no retraining


def test_show_displays_and_returns_the_current_values(capsys):
    panel = widgets.vector_explorer()
    panel.controls["angle_deg"].value = 180.0
    data = widgets.show(panel)
    assert data["cosine"] == pytest.approx(2.0, abs=1e-6)


def test_show_draws_no_second_figure():
    """The panel's one figure is drawn inside its output widget; `show` must not draw a static copy
    beside it (that copy went stale after the first slider move)."""
    calls = []
    panel = widgets.vector_explorer()
    render = panel.render
    panel.render = lambda **kw: calls.append(kw) or render(**kw)
    figures = len(plt.get_fignums())
    widgets.show(panel)
    assert calls == [] and len(plt.get_fignums()) == figures
    panel.controls["angle_deg"].value = 90.0  # a slider move redraws inside the output widget
    assert panel.last["angle_deg"] == 90.0

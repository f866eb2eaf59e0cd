"""Notebook 05's live plot and similarity panel, notebook 00's set-up check, and the figures they draw.

Driven headlessly: call the callback / move a control, check what is drawn changes with it.
"""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from jepa_lite import course
from jepa_lite.course import viz, widgets
from jepa_lite.train import TrainConfig, Trainer, lr_factor


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def fake_trainer(n_logs: int, steps: int = 100):
    history = {
        "step": [10 * (k + 1) for k in range(n_logs)],
        "loss": [1.0 / (k + 1) for k in range(n_logs)],
        "lr": [1e-3] * n_logs,
        "std": [0.5] * n_logs,
        "mean_cos": [0.3] * n_logs,
        "rank": [20.0] * n_logs,
        "step_loss": [1.0] * (10 * n_logs),
    }
    return SimpleNamespace(history=history, config=SimpleNamespace(steps=steps))


def logged_line(fig, panel: int = 0):
    """x and y data of the 'logged' curve of a panel of a training_curves figure."""
    line = [ln for ln in fig.axes[panel].get_lines() if ln.get_label() == "logged"][0]
    return list(line.get_xdata()), list(line.get_ydata())


def test_live_loss_plot_redraws_with_each_record():
    plt.close("all")  # figures other tests left open would be counted below
    live = widgets.LiveLossPlot()
    live(fake_trainer(2), {})
    first = live.figure
    assert live.n_draws == 1 and live.last["step"] == 20
    assert logged_line(first) == ([10, 20], [1.0, 0.5])
    live(fake_trainer(3), {})
    assert live.n_draws == 2 and live.last["step"] == 30
    assert logged_line(live.figure)[1] == [1.0, 0.5, pytest.approx(1 / 3)]
    assert live.figure is not first and plt.get_fignums() == [live.figure.number]  # replaced, not stacked
    assert live.figure.axes[0].get_xlim() == (0, 100)  # fixed x axis: the plot does not rescale


def test_live_loss_plot_draws_into_an_output_widget():
    out = widgets.widgets.Output()
    live = widgets.LiveLossPlot(metrics=("loss", "std"), output=out)
    live(fake_trainer(4), {})
    assert len(live.figure.axes) == 2 and live.last["curves"]["std"] == [0.5] * 4


def test_live_loss_plot_as_a_real_trainer_callback():
    live = widgets.LiveLossPlot()
    cfg = TrainConfig.smoke(steps=20, log_every=5, save_path=None, progress=False)
    torch.set_num_threads(1)
    history = Trainer(cfg, callbacks=[live], log=lambda s: None).fit()
    assert live.n_draws == 4
    assert live.last["curves"]["loss"] == history["loss"]
    assert logged_line(live.figure)[0] == [5, 10, 15, 20]


def test_similarity_explorer_controls_change_the_map():
    g = torch.Generator().manual_seed(0)
    topics = ["a"] * 6 + ["b"] * 6
    clustered = torch.cat([torch.ones(6, 1), -torch.ones(6, 1)]) @ torch.ones(1, 8) + 0.1 * torch.randn(
        12, 8, generator=g
    )
    noise = torch.randn(12, 8, generator=g)
    panel = widgets.similarity_explorer({"clustered": clustered, "noise": noise}, topics, per_topic=3)
    assert panel.last["encoder"] == "clustered" and panel.last["sim"].shape == (6, 6)
    assert panel.last["contrast"] > 1.5
    panel.controls["encoder"].value = "noise"
    assert panel.last["encoder"] == "noise" and panel.last["contrast"] < 1.0
    panel.controls["per_topic"].value = 5
    assert panel.last["sim"].shape == (10, 10) and panel.last["rows"] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]


def test_figures_show_the_data_they_are_given():
    factors = [lr_factor(s, 20, 200) for s in range(200)]
    fig = viz.lr_schedule_figure(factors, 20, lr=1e-3)
    assert max(fig.axes[0].get_lines()[0].get_ydata()) == pytest.approx(1e-3)
    fig = viz.resume_figure([3.0, 2.0, 1.0], [3.0, 2.0, 1.0], 2)
    assert [list(ln.get_ydata()) for ln in fig.axes[0].get_lines()[:2]] == [[3.0, 2.0, 1.0]] * 2
    fig = viz.probe_bars({"x": 0.5, "y": 0.9}, chance=0.125)
    assert [p.get_width() for p in fig.axes[0].patches] == [0.5, 0.9]
    sim = torch.eye(4)
    fig = viz.similarity_grid({"one": sim, "two": sim, "three": sim}, ["a", "a", "b", "b"], {"one": 0.25})
    assert "+0.250" in fig.axes[0].get_title() and not fig.axes[3].axison  # 4th slot of the 2×2 grid is blank


def test_check_setup_reports_every_backbone_offline(capsys):
    results = course.check_setup()
    assert results["ok"]
    assert results["corpus"] == {"sentences": 480, "topics": 8}
    assert results["tiny"]["dim"] == 128 and results["minilm"]["dim"] == 384
    assert results["device"] in ("cpu", "cuda", "mps")
    assert "❌" not in capsys.readouterr().out

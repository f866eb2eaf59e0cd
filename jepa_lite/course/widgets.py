"""Interactive panels for the notebooks: sliders wired to a pure `render(...)` function.

Every panel is built the same way (`_panel`): controls + one `ipywidgets.Output` that `draw_into` fills. The panel
keeps its pieces as attributes, so tests and curious students can drive it without a browser:

    panel = masking_explorer()
    panel.render(mask_ratio=0.5, mean_span_len=3, seed=1)   # draw once, return the data drawn
    panel.controls["mask_ratio"].value = 0.6                 # what moving the slider does
    panel.last                                               # data of the latest slider redraw

`render` computes with `explore.py`, draws with `viz.py`, ends with `plt.show()` and returns the
data it drew. Only built-in ipywidgets are used (they work on ipywidgets 7.7 and 8, in JupyterLab,
Colab and VS Code). Sliders whose redraw is slow have `continuous_update=False`.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ..data import builtin_labelled_corpus
from . import explore, viz
from .runs import run_history

_STYLE = {"description_width": "initial"}


def _panel(render: Callable[..., Dict], controls: Dict[str, widgets.Widget]) -> widgets.VBox:
    """VBox(controls, output): the output holds the one figure of `render(**values)`, redrawn in place.

    The defaults are drawn once, when the panel is built, and again whenever a control changes.
    `render` ends with `plt.show()`; `draw_into` catches what it displays and hands it to the output
    widget as its new state, all at once, so the panel shows exactly one figure, always the current
    one. Nothing is drawn into the cell itself. Display the panel with `show(panel)` or `display(panel)`.
    """
    panel = widgets.VBox()
    panel.render = render
    panel.controls = controls
    panel.last = None
    out = widgets.Output()

    def update(change=None):
        values = {k: w.value for k, w in controls.items()}
        panel.last = draw_into(out, lambda: render(**values))

    for control in controls.values():
        control.observe(update, names="value")
    update()  # the defaults, drawn once
    panel.out = out
    panel.defaults = {k: w.value for k, w in controls.items()}
    panel.children = (widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")), out)
    return panel


def draw_into(out: widgets.Output, draw: Callable[[], object]):
    """Run `draw()` (it ends with `plt.show()`) and make what it displayed and printed `out`'s content.

    Why not `with out: draw()` (what `ipywidgets.interactive_output` does)? That routes the figure
    through the front end, and a headless runner (`jupyter nbconvert --execute`, nbclient) mimics
    the front end by sending a message back to the kernel on the very socket it is waiting on for the
    cell's reply: now and then the reply is never seen and the run hangs with the kernel idle
    (jupyter/nbclient#312; notebook 02's panel hung in 3 of 4 runs). Here the kernel itself sets the
    widget's `outputs`, which every front end renders (JupyterLab, Notebook 7, VS Code, Colab) and
    which sends nothing back. An error in `draw` is shown in `out` and raised.
    """
    from IPython.utils.capture import capture_output

    with capture_output(display=True) as captured:
        try:
            result = draw()
        except Exception:
            import traceback

            out.outputs = ({"output_type": "stream", "name": "stderr", "text": traceback.format_exc()},)
            raise
    figures = [_as_output(o.data, o.metadata) for o in captured.outputs]
    printed = [
        {"output_type": "stream", "name": name, "text": text}
        for name, text in (("stdout", captured.stdout), ("stderr", captured.stderr))
        if text
    ]
    out.outputs = tuple(figures + printed)  # one assignment: the old figure is replaced, never stacked
    return result


def _as_output(data: Dict, metadata: Dict) -> Dict:
    """One displayed object as an output of an `ipywidgets.Output` (binary data base64-encoded, as Jupyter sends it)."""
    import base64

    data = {k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for k, v in data.items()}
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def show(panel: widgets.VBox) -> Dict:
    """Display the panel (its controls and its one live figure); return the data of that figure.

    The figure was drawn when the panel was built, into the panel's own output widget: `show` draws
    nothing more, so no stale copy is left behind after the first slider move."""
    from IPython.display import display

    display(panel)
    return panel.last


def _slider(kind, description, value, lo, hi, step, **kw):
    return kind(
        value=value, min=lo, max=hi, step=step, description=description, continuous_update=False, style=_STYLE, **kw
    )


# ---------------------------------------------------------------------------------------------
# 01 — span masking
# ---------------------------------------------------------------------------------------------
def masking_explorer(tokenizer=None, sentence: str = explore.DEFAULT_SENTENCE) -> widgets.VBox:
    """Sliders mask_ratio, mean_span_len, seed → the sentence's tokens coloured masked / visible /
    special, and the span-length histogram against the geometric law."""
    tokenizer = tokenizer or explore.load_tokenizer("minilm")

    def render(mask_ratio: float, mean_span_len: float, seed: int) -> Dict:
        data = {
            "sentence": explore.mask_sentence(tokenizer, sentence, mask_ratio, mean_span_len, seed),
            "stats": explore.span_length_stats(mean_span_len, mask_ratio, seed),
        }
        viz.masking_figure(data["sentence"], data["stats"])
        plt.show()
        return data

    controls = {
        "mask_ratio": _slider(widgets.FloatSlider, "mask_ratio", 0.3, 0.05, 0.9, 0.05),
        "mean_span_len": _slider(widgets.FloatSlider, "mean_span_len", 5.0, 1.0, 10.0, 0.5),
        "seed": _slider(widgets.IntSlider, "seed", 0, 0, 50, 1),
    }
    return _panel(render, controls)


# ---------------------------------------------------------------------------------------------
# 02 — two views
# ---------------------------------------------------------------------------------------------
def example_sentences(per_topic: int = 1) -> list:
    """The first `per_topic` sentences of each topic of the built-in corpus."""
    texts, topics = builtin_labelled_corpus()
    seen: Dict[str, int] = {}
    out = []
    for t, topic in zip(texts, topics):
        if seen.get(topic, 0) < per_topic:
            seen[topic] = seen.get(topic, 0) + 1
            out.append(t)
    return out


COMPANION = "Bees dance to show the way."  # a short second line, so the batch needs padding


def two_views_explorer(tokenizer=None, sentences: Optional[Sequence[str]] = None) -> widgets.VBox:
    """Dropdown sentence + mask settings → both views of a two-line batch and its loss positions."""
    tokenizer = tokenizer or explore.load_tokenizer("minilm")
    sentences = list(sentences or example_sentences())

    def render(sentence: str, mask_ratio: float, mean_span_len: float, seed: int) -> Dict:
        views = explore.two_views(tokenizer, [sentence, COMPANION], mask_ratio, mean_span_len, seed)
        viz.two_views_figure(views)
        plt.show()
        return views

    label = lambda s: s if len(s) <= 60 else s[:57] + "..."  # noqa: E731
    controls = {
        "sentence": widgets.Dropdown(
            options=[(label(s), s) for s in sentences],
            value=sentences[0],
            description="sentence",
            style=_STYLE,
            layout=widgets.Layout(width="520px"),
        ),
        "mask_ratio": _slider(widgets.FloatSlider, "mask_ratio", 0.3, 0.05, 0.9, 0.05),
        "mean_span_len": _slider(widgets.FloatSlider, "mean_span_len", 3.0, 1.0, 10.0, 0.5),
        "seed": _slider(widgets.IntSlider, "seed", 0, 0, 50, 1),
    }
    return _panel(render, controls)


# ---------------------------------------------------------------------------------------------
# 03 — the EMA target
# ---------------------------------------------------------------------------------------------
def ema_explorer(steps: int = 400) -> widgets.VBox:
    """Momentum slider + path of the online parameter → the EMA target chasing it, half-life marked."""

    def render(m: float, path: str) -> Dict:
        data = explore.ema_chase(m, path, steps)
        viz.ema_chase_figure(data)
        plt.show()
        return data

    controls = {
        "m": _slider(widgets.FloatSlider, "momentum m", 0.95, 0.0, 0.999, 0.001, readout_format=".3f"),
        "path": widgets.Dropdown(
            options=["jump", "sine", "random walk"], value="jump", description="online path", style=_STYLE
        ),
    }
    return _panel(render, controls)


def collapse_explorer(
    momenta: Sequence[float] = (0.0, 0.5, 0.9, 0.99, 0.996),
    steps: int = 200,
    value: Optional[float] = None,
    log_every: int = 20,
) -> widgets.VBox:
    """Momentum slider → a real training run (tiny encoder, smoke preset) and its collapse metrics.

    Runs are cached (`runs.run_history`): each momentum trains once; the curves of every run
    trained so far stay in the plot, faint, for comparison. Below the plot, one line per run: its
    final metrics and whether the trainer's collapse thresholds (`diagnostics.collapse_warning`) fire.
    """
    from ..diagnostics import collapse_warning
    from .runs import final_metrics

    def render(ema_m: float) -> Dict:
        history = run_history(ema_m=ema_m, steps=steps, log_every=log_every)
        shown = {
            f"m={m:g}": run_history(ema_m=m, steps=steps, log_every=log_every)
            for m in momenta
            if _is_cached(m, steps, log_every) or m == ema_m
        }
        viz.metric_curves(
            shown, highlight=f"m={ema_m:g}", title=f"tiny encoder, {steps} steps: the highlighted run is m = {ema_m:g}"
        )
        plt.show()
        verdicts = {}
        for label, h in shown.items():
            final = final_metrics(h)
            verdicts[label] = "collapsed" if collapse_warning(final) else "healthy"
            print(
                f"{label:8s} loss {final['loss']:.3f}  std {final['std']:.3f}  mean_cos {final['mean_cos']:.3f}  "
                f"rank {final['rank']:5.1f}  → {verdicts[label]}"
            )
        return {"ema_m": ema_m, "history": history, "shown": list(shown), "verdicts": verdicts}

    controls = {
        "ema_m": widgets.SelectionSlider(
            options=list(momenta),
            value=value if value is not None else momenta[-1],
            description="EMA momentum m",
            continuous_update=False,
            style=_STYLE,
        )
    }
    return _panel(render, controls)


def _is_cached(m: float, steps: int, log_every: int) -> bool:
    from .runs import cached_runs, run_key

    return (
        run_key(
            {
                "save_path": None,
                "progress": False,
                "ema_m": m,
                "steps": steps,
                "log_every": log_every,
                "predictor": True,
            }
        )
        in cached_runs()
    )


# ---------------------------------------------------------------------------------------------
# 04 — the loss
# ---------------------------------------------------------------------------------------------
def vector_explorer() -> widgets.VBox:
    """Angle and length sliders → a 2-D prediction and target as arrows, and their losses."""

    def render(angle_deg: float, pred_len: float, target_len: float) -> Dict:
        data = explore.vector_losses(angle_deg, pred_len, target_len)
        viz.vector_toy_figure(data)
        plt.show()
        return data

    controls = {
        "angle_deg": _slider(widgets.FloatSlider, "angle (°)", 45.0, 0.0, 180.0, 5.0),
        "pred_len": _slider(widgets.FloatSlider, "‖p‖", 1.0, 0.1, 2.0, 0.1),
        "target_len": _slider(widgets.FloatSlider, "‖t‖", 1.0, 0.1, 2.0, 0.1),
    }
    return _panel(render, controls)


# ---------------------------------------------------------------------------------------------
# 05 — training
# ---------------------------------------------------------------------------------------------
class LiveLossPlot:
    """A Trainer callback that redraws the training curves at every log step.

        live = LiveLossPlot()
        Trainer(cfg, callbacks=[live]).fit()     # the Trainer calls live(trainer, record) each log step

    In a notebook the figure is replaced in place: inside `output` if you pass an
    `ipywidgets.Output` (display it; `draw_into` fills it), else by clearing the cell's output
    (`IPython.display.clear_output(wait=True)`, which works in every frontend and leaves the last
    figure in the saved notebook). Outside a kernel (scripts, tests) it only builds the figure.
    `last` holds what was drawn last: the step and a copy of the curves.
    """

    def __init__(
        self, metrics: Sequence[str] = viz.TRAINING_PANELS, output: Optional[widgets.Output] = None, title: str = ""
    ):
        self.metrics = tuple(metrics)
        self.output = output
        self.title = title
        self.n_draws = 0
        self.last: Optional[Dict] = None
        self.figure = None

    def render(self, history: Dict, total_steps: Optional[int] = None) -> Dict:
        """Draw the curves of `history` once (a pure function of its arguments); return what was drawn."""
        from IPython import get_ipython
        from IPython.display import clear_output

        in_kernel = getattr(get_ipython(), "kernel", None) is not None  # a Jupyter kernel, not a script
        if self.output is None and in_kernel:
            clear_output(wait=True)
        if self.figure is not None:
            plt.close(self.figure)
        step = history["step"][-1] if history.get("step") else 0
        title = f"{self.title}  step {step}/{total_steps}" if total_steps else self.title
        self.figure = viz.training_curves(history, self.metrics, total_steps, title=title.strip())
        if self.output is not None:
            draw_into(self.output, plt.show)  # the new figure replaces the old one in `output`
        else:
            plt.show()
        self.n_draws += 1
        self.last = {"step": step, "curves": {m: list(history.get(m, [])) for m in ("step",) + self.metrics}}
        return self.last

    def __call__(self, trainer, record: Dict) -> None:
        self.render(trainer.history, trainer.config.steps)


def similarity_explorer(embeddings: Dict[str, "object"], topics: Sequence[str], per_topic: int = 4) -> widgets.VBox:
    """Encoder dropdown + sentences-per-topic slider → the cosine-similarity heatmap of sentence
    embeddings, rows grouped by topic, and the within − between topic contrast.

    `embeddings` maps a name ("MiniLM, after JEPA", ...) to the (N, D) sentence embeddings of the
    corpus, computed once (`probe.sentence_embeddings`): moving a control only slices and redraws.
    """
    from . import probe

    names = list(embeddings)

    def render(encoder: str, per_topic: int) -> Dict:
        rows = probe.examples_per_topic(topics, per_topic)
        groups = [topics[i] for i in rows]
        sim = probe.similarity_matrix(embeddings[encoder][rows])  # (n, n)
        stats = probe.block_contrast(sim, groups)
        fig, ax = plt.subplots(figsize=(5.2, 4.4))
        viz.draw_similarity(ax, sim, groups, title=f"{encoder}\nwithin − between topic = {stats['contrast']:+.3f}")
        fig.tight_layout()
        plt.show()
        return {"encoder": encoder, "rows": rows, "sim": sim, **stats}

    controls = {
        "encoder": widgets.Dropdown(
            options=names, value=names[0], description="encoder", style=_STYLE, layout=widgets.Layout(width="360px")
        ),
        "per_topic": _slider(widgets.IntSlider, "sentences per topic", per_topic, 2, 12, 1),
    }
    return _panel(render, controls)

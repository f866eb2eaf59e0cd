"""Notebook plumbing: the fast-mode switch, seeding, and where the kit lives online.

Every notebook starts with

    from jepa_lite import course
    FAST = course.setup()

`setup` seeds every random generator, makes matplotlib draw inline, and returns the fast-mode flag.
Fast mode (`JEPA_LITE_FAST=1`, used by CI) shrinks steps and sizes; the cells are the same in both
modes, only the numbers change — pick them with `course.pick(fast=..., full=...)`.
"""

from __future__ import annotations

import os
import random
import sys

REPO_URL = "https://github.com/jepa-lite/jepa_lite"  # the one place the repository address is written
FAST_ENV = "JEPA_LITE_FAST"  # set to "1" for fast mode


def fast_mode() -> bool:
    """True when the environment variable JEPA_LITE_FAST is "1"."""
    return os.environ.get(FAST_ENV) == "1"


def pick(fast, full):
    """`fast` in fast mode, `full` otherwise: `steps = course.pick(fast=100, full=300)`."""
    return fast if fast_mode() else full


def on_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def colab_url(notebook: str) -> str:
    """The "Open in Colab" address of `notebooks/<notebook>` in REPO_URL's main branch."""
    path = REPO_URL.split("github.com/", 1)[1]
    return f"https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook}"


# Colab renders the built-in ipywidgets (sliders, buttons, Output) by itself. Its custom widget
# manager (`google.colab.output.enable_custom_widget_manager()`) is only for widgets of other packages
# (ipympl, bqplot, plotly's FigureWidget, …): list such a package here for the notebook that imports
# it, and that notebook's Colab cell turns the manager on. No notebook needs one today.
THIRD_PARTY_WIDGETS: dict = {}  # notebook file name -> the widget packages it imports


def colab_cell(notebook: str) -> str:
    """The source of `notebook`'s first code cell: on Colab only, fetch the kit and install it.

    It installs the kit alone (`pip install -e`, no extras, no upgrade), so Colab's torch, numpy,
    matplotlib and ipywidgets stay as they are: the kit's lowest versions (pyproject.toml) are at or
    below Colab's (`.ci/colab-pins.txt`; tests/test_colab.py checks both).
    """
    lines = [
        "# On Colab only: fetch the kit and install it (elsewhere it is already installed: pip install -e .)",
        "import sys",
        'if "google.colab" in sys.modules:',
        f'    REPO_URL = "{REPO_URL}"  # the same address as jepa_lite.course.REPO_URL',
        "    !git clone -q --depth 1 {REPO_URL} /content/jepa_lite",
        "    !pip install -q -e /content/jepa_lite  # the kit alone: Colab's own packages stay as they are",
        '    sys.path.insert(0, "/content/jepa_lite")',
    ]
    if THIRD_PARTY_WIDGETS.get(notebook):
        lines += [
            "    from google.colab import output",
            "    output.enable_custom_widget_manager()  # for " + ", ".join(THIRD_PARTY_WIDGETS[notebook]),
        ]
    return "\n".join(lines)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch, so that every notebook cell gives the same numbers each run."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0) -> bool:
    """Seed everything, draw matplotlib figures inline (inside IPython), and return fast_mode()."""
    seed_everything(seed)
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        ip = None
    if ip is not None and "ipykernel" in sys.modules:
        ip.run_line_magic("matplotlib", "inline")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 90, "axes.spines.top": False, "axes.spines.right": False})
    fast = fast_mode()
    if fast:
        print(f"fast mode ({FAST_ENV}=1): fewer steps and smaller samples")
    from ..encoders import minilm_missing

    missing = minilm_missing()
    if missing:  # say it once, up front, instead of a traceback in the first cell that needs MiniLM
        print(f"note: {missing}, then restart the kernel; until then the cells that use MiniLM stop with this message")
    return fast


def check_setup(minilm: bool = True) -> dict:
    """Check that the course can run here, offline; print one line per check and return the results.

    Looks at: the torch version and the device the trainer would pick, the built-in corpus, the tiny
    encoder with its locally built tokenizer, and (if `minilm`) the pretrained MiniLM that ships in a
    pip package. Nothing is downloaded. A failed check prints what to do instead of raising.
    """
    import time

    import torch

    from ..data import DataError, builtin_labelled_corpus
    from ..encoders import BackboneError, count_parameters, load_backbone
    from ..train import pick_device

    results: dict = {"torch": torch.__version__, "device": str(pick_device("auto"))}
    print(f"torch {results['torch']}; the trainer's device='auto' picks: {results['device']}")
    try:
        texts, topics = builtin_labelled_corpus()
        results["corpus"] = {"sentences": len(texts), "topics": len(set(topics))}
        print(f"built-in corpus: {len(texts)} sentences on {len(set(topics))} topics ✅")
    except DataError as e:
        results["corpus"] = None
        print(f"built-in corpus: ❌ {e}")
    for name in ("tiny", "minilm") if minilm else ("tiny",):
        start = time.perf_counter()
        try:
            encoder, tokenizer, dim = load_backbone(name)
            seconds = time.perf_counter() - start
            results[name] = {
                "dim": dim,
                "parameters": count_parameters(encoder),
                "vocab": len(tokenizer),
                "seconds": seconds,
            }
            print(
                f"backbone {name!r}: hidden size {dim}, {count_parameters(encoder) / 1e6:.1f} M parameters, "
                f"vocabulary {len(tokenizer)}, loaded offline in {seconds:.1f} s ✅"
            )
        except BackboneError as e:
            results[name] = None
            print(f"backbone {name!r}: ❌ {e}")
    results["ok"] = all(results.get(k) for k in ("corpus", "tiny") + (("minilm",) if minilm else ()))
    return results

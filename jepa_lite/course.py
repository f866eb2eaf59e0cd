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
    return fast

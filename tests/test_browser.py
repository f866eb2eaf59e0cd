"""The notebooks as a student meets them: real JupyterLab, real (headless) Chromium.

For notebooks 01–06 this test starts JupyterLab on 127.0.0.1 with a token, opens the notebook in
Chromium driven by Playwright, runs all cells, and checks in the page itself: no error outputs;
sliders rendered as widgets (not as the text `IntSlider(...)` or "Loading widget..."); notebook 05's
live loss plot is there; and every slider panel shows exactly one figure, before and after one of
its sliders moves (and the figure after is a new one). A planted notebook that shows a panel with a
stale static copy below it must fail that count. JupyterLab and the browser are stopped when the
module ends, also on failure; every wait is bounded.

The classic look: Jupyter Notebook 7 (`pip install notebook`; the `/tree` page and one notebook per
tab at `/notebooks/...`, what most students know as "Jupyter Notebook") gets the same check on one
notebook with a panel (01) and on the planted duplicate, in fast mode like the rest. Notebook 7 is
built from JupyterLab's own components, so a notebook's cells, outputs and widgets carry the same
classes and the same `window.jupyterapp` commands as in JupyterLab; what differs is the page (its
URL, its shell: one document, no side panels). Without the `notebook` package (7 or newer) those two
tests are skipped with a message (in CI, where the dev extra installs it, that is a failure).

Colab's front end is not covered: it is Google's own page, served only from colab.research.google.com,
which no test here can reach (no network). What stands in for it is `.ci/colab.sh`: the kernel side
at Colab's versions (ipywidgets 7.7.1, torch, transformers, matplotlib, numpy as `.ci/colab-pins.txt`
pins them), every notebook run and every widget callback tested headless; how Colab draws those
built-in widgets is not tested.

Needs Debian's Chromium (`apt-get install chromium`) and `pip install playwright` (no
`playwright install`: the system Chromium is used). Without them the test is skipped with a message
— except in CI (CI=true), where `.ci/run` installs them and a missing browser is a failure.
Screenshots go to $BROWSER_ARTIFACTS when set (CI: test-artifacts/browser).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HOW = "install Chromium and Playwright to run it: apt-get install chromium && pip install playwright"
try:
    import playwright.sync_api as playwright_sync
except ImportError:
    playwright_sync = None
if playwright_sync is None or not Path(CHROMIUM).exists():
    missing = "the playwright package" if playwright_sync is None else f"Chromium at {CHROMIUM}"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"browser test: {missing} is missing in CI; .ci/run should have installed it")
    pytest.skip(f"browser test skipped: {missing} is missing; {HOW}", allow_module_level=True)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ART = Path(os.environ.get("BROWSER_ARTIFACTS", "")) if os.environ.get("BROWSER_ARTIFACTS") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebook7_missing() -> str | None:
    """Why Jupyter Notebook 7 cannot be tested here, or None."""
    try:
        version = importlib.metadata.version("notebook")
    except importlib.metadata.PackageNotFoundError:
        return "the notebook package is not installed (pip install 'notebook>=7')"
    if int(version.split(".")[0]) < 7:
        return (
            f"notebook {version} is the old classic Notebook (6.x); this test drives Notebook "
            "7 (pip install 'notebook>=7')"
        )
    return None


# the two front ends: how to start each on a folder, and the URL of a notebook in it
FRONT_ENDS = {
    "jupyterlab": (
        [
            "-m",
            "jupyterlab",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        "/lab/tree/{name}?reset",
    ),
    "notebook": (["-m", "notebook", "--JupyterNotebookApp.expose_app_in_browser=True"], "/notebooks/{name}"),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from serve(tmp_path_factory, "jupyterlab")


@pytest.fixture(scope="module")
def classic(tmp_path_factory):
    """Jupyter Notebook 7 on the same notebooks (skipped where the package is missing, except in CI)."""
    why = notebook7_missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"classic Notebook test: {why}; in CI the dev extra should have installed it")
        pytest.skip(f"classic Notebook test skipped: {why}")
    yield from serve(tmp_path_factory, "notebook")


def serve(tmp_path_factory, front_end: str):
    """Start `front_end` on a copy of notebooks/ (plus the planted notebook) with a token; yield
    (base URL, token, URL pattern of a notebook); stop it and its kernels at the end."""
    tmp = tmp_path_factory.mktemp(front_end)
    root = tmp / "root"
    shutil.copytree(NOTEBOOKS, root)
    planted_notebook(root / PLANTED)
    settings = tmp / "settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )  # every cell in the DOM
    env = dict(
        os.environ,
        JEPA_LITE_FAST="1",
        MPLBACKEND="Agg",
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
    )
    port, token = _free_port(), secrets.token_hex(16)
    args, pattern = FRONT_ENDS[front_end]
    cmd = [
        sys.executable,
        *args,
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    log = open(tmp / f"{front_end}.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp / f"{front_end}.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                    break
            except Exception:
                assert time.monotonic() < deadline, f"{front_end} did not start in 60 s"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", token, pattern
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # server + its kernels
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            timeout=60_000,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-extensions",
            ],
        )
        try:
            yield b
        finally:
            b.close()


KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"""
OUTPUTS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code')
  .map(c => ({count: c.model.executionCount, source: c.model.sharedModel.getSource(),
     outputs: c.model.outputs.toJSON().map(o => ({type: o.output_type, ename: o.ename || null,
        evalue: o.evalue || null, png: !!(o.data && o.data['image/png'])}))}))"""
# A slider panel is a code cell whose output holds a widget box with a slider. Its figures are the
# <img> elements anywhere in that cell's output area: inside the panel's output widget, or beside it
# (a stale static copy, the bug this test exists to catch).
PANEL_CELLS = ".jp-NotebookPanel .jp-CodeCell:has(.jp-OutputArea .widget-vbox .widget-slider)"
FIGURE_SOURCES = """(cell) => Array.from(cell.querySelectorAll('.jp-OutputArea img')).map(i => i.src)"""

PLANTED = "planted_duplicate.ipynb"  # a panel shown the old way: live figure + a static copy below it


def planted_notebook(path: Path) -> None:
    """A one-panel notebook that displays the panel and then draws its defaults again as a plain figure."""
    import nbformat

    cells = [
        "from jepa_lite import course\nfrom jepa_lite.course import widgets\nfrom IPython.display "
        "import display\nFAST = course.setup()",
        "panel = widgets.vector_explorer()\ndisplay(panel)\npanel.render(**panel.defaults);",
    ]
    kernel = nbformat.read(
        NOTEBOOKS / "01_span_masking.ipynb", as_version=4
    ).metadata  # its kernelspec: no kernel dialog
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata=kernel), path)


def run_notebook(page, server, name):
    """Open `name` in the server's front end, run all cells, wait for the kernel; return the cells' outputs."""
    url, token, pattern = server
    page.goto(
        f"{url}{pattern.format(name=name)}{'&' if '?' in pattern else '?'}token={token}", wait_until="domcontentloaded"
    )
    page.wait_for_function(KERNEL_IDLE, timeout=90_000, polling=250)
    # run all; the command's promise resolves when the last cell finishes (False on error)
    page.evaluate("async () => await window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(KERNEL_IDLE, timeout=600_000, polling=500)
    return page.evaluate(OUTPUTS)


def move_first_slider(page, cell) -> None:
    """Drag the panel's first slider with the mouse, as a student does, by the fewest pixels that
    change its value (right, or left when it sits at its maximum); the value is sent on release.
    (Not the arrow keys: Notebook 7 binds ArrowRight in command mode to "move to the heading below",
    which takes the key from the focused slider there.)"""
    handle = cell.locator(".widget-slider").first.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    sign = -1 if float(now) >= float(top) else 1
    page.mouse.move(x, y)
    page.mouse.down()
    for dx in range(1, 600):
        page.mouse.move(x + sign * dx, y)
        if handle.get_attribute("aria-valuenow") != now:
            break
    page.mouse.up()
    assert handle.get_attribute("aria-valuenow") != now, f"the slider did not move from {now} in a {dx}-pixel drag"


def figures_per_panel(page, limit=None, timeout_ms: int = 120_000) -> list:
    """For every slider panel (the first `limit` ones): (figures before, figures after one slider
    step). Waits until the panel's figure has been redrawn (a new image) before counting again."""
    counts = []
    cells = page.locator(PANEL_CELLS)
    for i in range(cells.count() if limit is None else min(limit, cells.count())):
        cell = cells.nth(i)
        cell.scroll_into_view_if_needed()
        page.wait_for_function(
            "(c) => c.querySelectorAll('.jp-OutputArea img').length > 0",
            arg=cell.element_handle(),
            timeout=60_000,
            polling=200,
        )
        before = cell.evaluate(FIGURE_SOURCES)
        move_first_slider(page, cell)
        page.wait_for_function(
            "([c, b]) => { const s = Array.from(c.querySelectorAll('.jp-OutputArea img')).map(i => i.src);"
            " return s.length > 0 && s.some(x => !b.includes(x)); }",
            arg=[cell.element_handle(), before],
            timeout=timeout_ms,
            polling=200,
        )
        page.wait_for_function(KERNEL_IDLE, timeout=timeout_ms, polling=250)
        counts.append((len(before), len(cell.evaluate(FIGURE_SOURCES))))
    return counts


# notebook, sliders it must show at least, slider panels it holds
CASES = [
    ("01_span_masking.ipynb", 3, 1),
    ("02_two_views.ipynb", 3, 1),
    ("03_ema_target.ipynb", 2, 2),
    ("04_cosine_loss.ipynb", 3, 1),
    ("05_training.ipynb", 1, 1),
    ("06_llm_jepa_paper.ipynb", 2, 1),
]


def new_page(browser, url):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url) else r.abort())
    return ctx, page


def check_notebook(browser, server, name, min_sliders, n_panels, shots: str = "") -> None:
    """Run `name` in the server's front end and check what the module docstring lists."""
    ctx, page = new_page(browser, server[0])
    stem = shots + name.split(".")[0]
    try:
        cells = run_notebook(page, server, name)
        if ART:
            ART.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ART / f"{stem}_run.png"), full_page=True)
        errors = [o for c in cells for o in c["outputs"] if o["type"] == "error"]
        assert not errors, errors  # stderr streams (warnings) are allowed; error outputs are not
        assert all(c["count"] is not None for c in cells), "some cells did not run"

        text = page.locator(".jp-NotebookPanel .jp-Notebook").text_content()
        for bad in ("IntSlider(", "FloatSlider(", "VBox(", "Loading widget", "Error displaying widget"):
            assert bad not in text
        assert page.locator(".jp-NotebookPanel .widget-slider").count() >= min_sliders
        if name.startswith("05"):  # the live loss plot: the cell that trains with LiveLossPlot shows a figure
            live = [c for c in cells if "history = tiny.fit()" in c["source"]]  # trains with a LiveLossPlot callback
            assert live and any(o["png"] for c in live for o in c["outputs"]), live
        # notebook 06's panels train a model on demand: only its first panel is moved
        counts = figures_per_panel(page, limit=1 if name.startswith("06") else None)
        assert len(counts) == n_panels, counts
        assert counts == [(1, 1)] * len(counts), f"figures per slider panel (before, after a slider move): {counts}"
        if ART:
            page.locator(PANEL_CELLS).first.screenshot(path=str(ART / f"{stem}_panel.png"))
    finally:
        ctx.close()


def count_planted(browser, server) -> list:
    """(figures before, after a slider move) of the planted notebook's one panel."""
    ctx, page = new_page(browser, server[0])
    try:
        cells = run_notebook(page, server, PLANTED)
        assert not [o for c in cells for o in c["outputs"] if o["type"] == "error"]
        return figures_per_panel(page)
    finally:
        ctx.close()


@pytest.mark.parametrize("name,min_sliders,n_panels", CASES)
def test_notebook_in_jupyterlab(lab, browser, name, min_sliders, n_panels):
    check_notebook(browser, lab, name, min_sliders, n_panels)


def test_the_figure_count_catches_a_planted_duplicate(lab, browser):
    """The check above can fail: a panel displayed with a static copy of its defaults below it (what
    `widgets.show` used to do) counts 2 figures, before and after the slider moves."""
    assert count_planted(browser, lab) == [(2, 2)]  # the live figure and the stale copy: not [(1, 1)]


CLASSIC_CASES = [c for c in CASES if c[0].startswith("01")]  # one notebook with a panel: CI time stays small


@pytest.mark.parametrize("name,min_sliders,n_panels", CLASSIC_CASES)
def test_notebook_in_classic_notebook(classic, browser, name, min_sliders, n_panels):
    check_notebook(browser, classic, name, min_sliders, n_panels, shots="classic_")


def test_the_figure_count_catches_a_planted_duplicate_in_classic_notebook(classic, browser):
    assert count_planted(browser, classic) == [(2, 2)]

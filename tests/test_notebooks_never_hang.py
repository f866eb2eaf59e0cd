"""No notebook can hang: the cause found in notebook 02 is gone, and a cell that runs too long fails loudly.

The cause: a panel drew its figure with `with out: ...` (ipywidgets' `interactive_output`). A headless
runner (nbclient, behind `jupyter nbconvert --execute`) mimics the Output widget by sending a comm
message back to the kernel, on the socket it is waiting on for the cell's reply, for every output;
now and then that reply is never seen and the run waits forever with the kernel idle
(jupyter/nbclient#312). Panels now set the widget's outputs from the kernel (`widgets.draw_into`):
nothing is routed through the runner's mimic, so nothing is sent back.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


def notebook(tmp_path, *cells) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_panel_routes_no_output_through_a_headless_runners_widget_mimic(tmp_path):
    from nbclient import NotebookClient

    class Client(NotebookClient):  # counts the Output widgets that capture this run's outputs
        hooks = 0

        def register_output_hook(self, msg_id, hook):
            Client.hooks += 1
            super().register_output_hook(msg_id, hook)

    path = notebook(
        tmp_path,
        "from jepa_lite.course import widgets\npanel = widgets.vector_explorer()\nwidgets.show(panel);",
        'panel.controls["angle_deg"].value = 90.0\n'
        'print(len(panel.out.outputs), sorted(panel.out.outputs[0]["data"]), panel.last["angle_deg"])',
    )
    nb = nbformat.read(path, as_version=4)
    Client(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert Client.hooks == 0, "a panel's output went through the runner's Output-widget mimic (the hang's cause)"
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert printed.split() == ["1", "['image/png',", "'text/plain']", "90.0"], printed  # one figure, the new one
    shown = [o for o in nb.cells[0].outputs if o.output_type == "display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0].data  # the panel, not a loose figure


def test_a_cell_that_runs_too_long_fails_loudly(tmp_path):
    """The repository's conftest.py gives each notebook cell JEPA_LITE_CELL_TIMEOUT seconds under nbval."""
    path = notebook(tmp_path, "x = 1", "import time\ntime.sleep(600)", "print(x)")
    env = {**os.environ, "JEPA_LITE_CELL_TIMEOUT": "3"}
    start = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", "--nbval-lax", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0, r.stdout[-2000:]
    assert "Timeout of 3 seconds exceeded" in r.stdout, r.stdout[-2000:]
    assert time.monotonic() - start < 120


@pytest.mark.parametrize("fast,want", [("1", 300.0), ("0", 1200.0)])
def test_the_cell_timeout_defaults(monkeypatch, fast, want):
    import importlib.util

    spec = importlib.util.spec_from_file_location("repo_conftest", ROOT / "conftest.py")  # not tests/conftest.py
    repo_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(repo_conftest)
    monkeypatch.delenv("JEPA_LITE_CELL_TIMEOUT", raising=False)
    monkeypatch.setenv("JEPA_LITE_FAST", fast)
    assert repo_conftest.cell_timeout() == want

"""The notebooks' Colab cell against Colab's versions (.ci/colab-pins.txt) and the kit's dependencies.

The cell installs the kit alone, and pip then changes nothing Colab ships as long as every version
the kit (and what it pulls in) asks for admits Colab's: these tests check that, and that the cell
turns on Colab's custom widget manager exactly for notebooks that use a third-party widget.
`.ci/colab.sh` checks the same on real installs."""

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from jepa_lite import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
# Packages whose widgets Colab draws only through its custom widget manager (a line such as
# `%matplotlib widget` is ipympl's).
WIDGET_PACKAGES = {
    "ipympl",
    "bqplot",
    "plotly",
    "ipyvolume",
    "ipyleaflet",
    "pythreejs",
    "ipycanvas",
    "ipyvuetify",
    "ipydatagrid",
    "anywidget",
    "ipyvue",
}


def colab_pins() -> dict:
    pins = {}
    for line in (ROOT / ".ci" / "colab-pins.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def kit_requirements(extras=("notebooks",)) -> list:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += [r for r in project["optional-dependencies"][extra] if not r.startswith("jepa_lite")]
    return [Requirement(r) for r in reqs]


def first_code_cell(path: Path) -> str:
    return next(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_pins_are_the_issues_colab_versions():
    assert {k: str(v) for k, v in colab_pins().items()} == {
        "torch": "2.11.0",
        "transformers": "5.15.0",
        "matplotlib": "3.10.0",
        "numpy": "2.1.3",
        "ipywidgets": "7.7.1",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_starts_with_the_colab_cell(path):
    assert first_code_cell(path) == course.colab_cell(path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_colab_cell_installs_the_kit_alone(path):
    pip_lines = [line.strip() for line in first_code_cell(path).splitlines() if re.match(r"\s*!\s*pip\b", line)]
    assert len(pip_lines) == 1
    args = pip_lines[0].split("#")[0].split()[1:]
    assert args == ["install", "-q", "-e", "/content/jepa_lite"]  # no extras, no -U, no other package


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_custom_widget_manager_only_for_third_party_widgets(path):
    tm = TransformerManager()
    code = "\n".join(
        tm.transform_cell(c.source) for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
    )
    imported = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", code, re.M))
    if re.search(r"matplotlib['\"]?,\s*['\"]widget|%matplotlib\s+(widget|ipympl)", code):
        imported.add("ipympl")
    uses = sorted(imported & WIDGET_PACKAGES)
    assert uses == sorted(course.THIRD_PARTY_WIDGETS.get(path.name, [])), (
        f"{path.name} uses {uses}: list them in course.THIRD_PARTY_WIDGETS"
    )
    assert ("enable_custom_widget_manager" in first_code_cell(path)) == bool(uses)


def test_the_widget_check_can_fail(monkeypatch):
    monkeypatch.setitem(course.THIRD_PARTY_WIDGETS, NOTEBOOKS[0].name, ["ipympl"])
    assert "enable_custom_widget_manager()" in course.colab_cell(NOTEBOOKS[0].name)
    with pytest.raises(AssertionError):
        test_custom_widget_manager_only_for_third_party_widgets(NOTEBOOKS[0])


def test_the_kits_lowest_versions_admit_colabs():
    """What the Colab cell installs: the kit without extras. (The notebooks extra is for JupyterLab,
    which needs ipywidgets 8; Colab draws the widgets itself, with its ipywidgets 7.7.1.)"""
    pins = colab_pins()
    for req in kit_requirements(extras=()):
        name = canonicalize_name(req.name)
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"{req} would replace Colab's {name} {pins[name]}"
            )


def test_nothing_the_kit_pulls_in_asks_for_another_version_of_a_pin():
    """The dependency closure of the kit's own requirements, as installed here (in .ci/colab.sh: at
    Colab's versions): no requirement on a pinned package may exclude Colab's version."""
    pins = colab_pins()
    seen, todo, conflicts = set(), [r for r in kit_requirements(extras=())], []
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if name in pins and not req.specifier.contains(pins[name], prereleases=True):
            conflicts.append(str(req))
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in (md.requires(name) or [])]
        except md.PackageNotFoundError:
            pass  # not installed here: its own requirements cannot be read
    assert {"torch", "transformers", "sentence-transformers"} <= seen  # the walk really went through the kit's closure
    assert not conflicts, conflicts

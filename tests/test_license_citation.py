"""The kit's license and citation files: LICENSE, pyproject's SPDX license string and CITATION.cff."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NLRX = ROOT / "jepa_lite" / "resources" / "nl_rx_synth"

# Citation File Format 1.2.0: the keys a file may hold at the top level, and the ones it must hold
CFF_KEYS = {
    "abstract",
    "authors",
    "cff-version",
    "commit",
    "contact",
    "date-released",
    "doi",
    "identifiers",
    "keywords",
    "license",
    "license-url",
    "message",
    "preferred-citation",
    "references",
    "repository",
    "repository-artifact",
    "repository-code",
    "title",
    "type",
    "url",
    "version",
}
CFF_REQUIRED = {"authors", "cff-version", "message", "title"}


def citation() -> dict:
    yaml = pytest.importorskip("yaml")  # PyYAML comes with jupyter (the notebooks extra)
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def test_license_file_is_mit_for_the_kits_authors():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) 20\d\d the jepa_lite authors$", text, re.M)
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_pyproject_declares_an_spdx_license_with_its_files():
    """PEP 639: a license expression string (no deprecated table) and the files it covers; the shipped
    NL-RX-SYNTH data keeps its Apache-2.0 license, so the expression names both."""
    from packaging.version import Version

    project = PROJECT["project"]
    assert isinstance(project["license"], str) and project["license"] == "MIT AND Apache-2.0"
    files = project["license-files"]
    assert "LICENSE" in files and all((ROOT / f).is_file() for f in files)
    assert (NLRX / "LICENSE").relative_to(ROOT).as_posix() in files
    assert "Apache License" in (NLRX / "LICENSE").read_text(encoding="utf-8")
    floor = next(r for r in PROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    assert Version(floor.split(">=")[1]) >= Version("77")  # the first setuptools to read license strings and files


def test_citation_file_cites_the_kit_the_paper_and_the_data():
    cff = citation()
    assert cff["cff-version"] == "1.2.0"
    assert CFF_REQUIRED <= set(cff) <= CFF_KEYS, set(cff) - CFF_KEYS
    assert cff["type"] == "software" and "jepa_lite" in cff["title"]
    assert cff["authors"] == [{"name": "the jepa_lite authors"}]
    assert str(cff["version"]) == PROJECT["project"]["version"]
    assert cff["license"] == "MIT"  # the kit's own code; the data's license is with the data (reference below)
    refs = {r["title"]: r for r in cff["references"]}
    paper = refs["LLM-JEPA: Large Language Models Meet Joint Embedding Predictive Architectures"]
    names = lambda r: [(a["given-names"], a["family-names"]) for a in r["authors"]]  # noqa: E731
    assert names(paper) == [("Hai", "Huang"), ("Yann", "LeCun"), ("Randall", "Balestriero")]
    assert {"type": "other", "value": "arXiv:2509.14252", "description": "arXiv identifier"} in paper["identifiers"]
    assert paper["url"] == "https://arxiv.org/abs/2509.14252"
    data = refs["Neural Generation of Regular Expressions from Natural Language with Minimal Domain Knowledge"]
    assert [f"{g} {f}" for g, f in names(data)] == [
        "Nicholas Locascio",
        "Karthik Narasimhan",
        "Eduardo DeLeon",
        "Nate Kushman",
        "Regina Barzilay",
    ]
    assert data["year"] == 2016 and "EMNLP 2016" in data["conference"]["name"]
    assert any(i["value"] == "arXiv:1608.03000" for i in data["identifiers"])
    assert "jepa_lite/resources/nl_rx_synth/" in data["notes"] and (NLRX / "NOTICE.md").is_file()
    # the data's own notice names the same people and identifiers
    notice = " ".join((NLRX / "NOTICE.md").read_text(encoding="utf-8").split())
    for ref in (paper, data):
        assert ", ".join(f"{g} {f}" for g, f in names(ref)) + "." in notice
        assert ref["identifiers"][0]["value"] in notice

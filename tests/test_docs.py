"""The README is a map and docs/ holds the rest: the README's size and line lengths, every relative link
(and its #anchor) in README.md and docs/*.md resolves, the Colab links are the kit's one address.

Line lengths, our rule: prose lines (README and docs/) at most 120 characters, as the code; in the
README, table rows, code and image lines at most 400 (a table row cannot wrap)."""

import re
from pathlib import Path

import pytest

from jepa_lite import course

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_CHARS = 15_000
PROSE_MAX, ANY_LINE_MAX = 120, 400

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def prose_and_other_lines(text: str):
    """(line number, line, is_prose): code blocks, tables, headings and images are not prose."""
    inside = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
            yield n, line, False
            continue
        yield n, line, not (inside or line.startswith(("|", "#", "![", "<!--")))


def outside_code(text: str) -> str:
    return "\n".join(line for _, line, _ in _outside_code_lines(text))


def _outside_code_lines(text: str):
    inside = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            yield n, line, True


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set:
    return {
        slug(line.lstrip("#"))
        for line in outside_code(path.read_text(encoding="utf-8")).splitlines()
        if line.startswith("#")
    }


def test_readme_is_a_map_of_at_most_15000_characters():
    text = README.read_text(encoding="utf-8")
    assert len(text) <= README_MAX_CHARS, f"README.md has {len(text):,} characters; move detail to docs/"
    # it keeps the parts a user looks for, in this order
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    for want in ("Quick start", "The course", "Train on your own text", "Use it from Python", "Where the rest lives"):
        assert want in headings, want
    assert headings.index("Quick start") < headings.index("The course") < headings.index("Train on your own text")
    assert "](assets/preview.png)" in text and (ROOT / "assets" / "preview.png").is_file()


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_line_is_too_long(path):
    long = []
    for n, line, prose in prose_and_other_lines(path.read_text(encoding="utf-8")):
        if prose and len(line) > PROSE_MAX or path == README and len(line) > ANY_LINE_MAX:
            long.append(f"{n}: {len(line)} characters")
    assert not long, long


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path):
    broken = []
    for target in LINK.findall(outside_code(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # https:, mailto: — not ours to check offline
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading '#{anchor}' in {resolved.name}")
    assert not broken, broken


def test_link_checker_catches_a_broken_link_and_anchor(tmp_path):
    """The link test must be able to fail: a missing file and a missing heading are both found."""
    (tmp_path / "a.md").write_text(
        "# Title\n\n[ok](b.md#real-heading) [gone](c.md) [bad](b.md#nothing)\n", encoding="utf-8"
    )
    (tmp_path / "b.md").write_text("# Real heading\n", encoding="utf-8")
    page = tmp_path / "a.md"
    found = [
        t
        for t in LINK.findall(page.read_text())
        if not (tmp_path / t.partition("#")[0]).exists()
        or (t.partition("#")[2] and t.partition("#")[2] not in anchors(tmp_path / t.partition("#")[0]))
    ]
    assert found == ["c.md", "b.md#nothing"]
    assert slug("The paper's objective (`--objective paired`)") == "the-papers-objective---objective-paired"


def test_every_docs_page_is_on_the_readmes_map():
    text = README.read_text(encoding="utf-8")
    rest = text.split("## Where the rest lives", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", rest))
    assert listed == {p.name for p in DOCS}


def test_readme_colab_links_are_the_kits_one_address():
    """The course table links every notebook on Colab through course.REPO_URL, and says once, plainly,
    that the address is a placeholder."""
    text = README.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `0")]
    names = [line.split("|")[1].strip().strip("`") for line in rows]
    assert names == sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for name, row in zip(names, rows):
        assert f"[open]({course.colab_url(name + '.ipynb')})" in row, name
    colab = set(re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", text))
    assert colab == {course.colab_url(n + ".ipynb") for n in names}  # no other Colab address anywhere
    assert text.count("**That address is a placeholder:**") == 1
    assert f"`{course.REPO_URL}`" in text and "`REPO_URL`" in text


def test_the_testing_page_states_these_limits():
    text = " ".join((ROOT / "docs" / "testing.md").read_text(encoding="utf-8").split())
    assert (
        f"a map of at most {README_MAX_CHARS:,} characters, with prose lines of at most {PROSE_MAX} characters" in text
    )


def test_the_commands_the_readme_names_are_installed():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    named = set(re.findall(r"`(jepa-lite-[a-z]+)`", README.read_text(encoding="utf-8")))
    assert named and named <= set(scripts), named - set(scripts)

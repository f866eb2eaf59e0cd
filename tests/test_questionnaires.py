"""Each notebook 00–05 ends its exercises with a "why" questionnaire; the answer key (docs/answers.md) has an
answer to every question, and none of it is in the student's notebook."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
COURSE = sorted((ROOT / "notebooks").glob("0[0-5]_*.ipynb"))
KEY = (ROOT / "docs" / "answers.md").read_text(encoding="utf-8")


def questionnaire(path):
    cells = nbformat.read(path, as_version=4).cells
    found = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("### Questionnaire")]
    assert len(found) == 1, "one questionnaire per notebook"
    summary = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Summary"))
    assert found[0] < summary, "the questionnaire comes before the summary"
    return cells[found[0]].source, cells


def answers(notebook_number):
    section = re.split(r"\n## ", KEY)
    text = next(s for s in section if s.startswith(f"{notebook_number} · "))
    return dict(re.findall(r"- \*\*(Q\d+)\.\*\* (.+?)(?=\n- \*\*Q|\Z)", text, re.S))


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_every_notebook_asks_why_and_the_key_answers_every_question(path):
    text, cells = questionnaire(path)
    questions = dict(re.findall(r"\*\*(Q\d+)\.\*\* (.+)", text))
    assert list(questions) == [f"Q{k}" for k in range(1, len(questions) + 1)] and len(questions) >= 4
    assert all(q.rstrip().endswith("?") for q in questions.values())
    reasons = [q for q in questions.values() if re.search(r"\b(why|what would|how can|what does .* mean)\b", q, re.I)]
    assert len(reasons) >= len(questions) - 1, "the questionnaire asks for reasons, not numbers"
    key = answers(path.name[:2])
    assert set(key) == set(questions), (sorted(key), sorted(questions))
    assert all(len(a.split()) >= 15 for a in key.values()), "an answer is a reasoned sentence or two"
    student_view = "\n".join(c.source for c in cells)
    assert "answers.md" not in student_view
    for a in key.values():  # no answer sentence leaks into the notebook
        first = re.split(r"(?<=[.:;])\s", a.replace("\n  ", " "))[0]
        assert first not in student_view.replace("\n", " "), first

"""The house style is checked, not hoped for: `ruff format` and `ruff check` (configured in pyproject.toml:
lines ≤ 120, import order, pycodestyle and pyflakes) pass on the package, the tests and the CI scripts."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args):
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_code_is_formatted():
    r = ruff("format", "--check", "--diff", ".")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_the_linter_finds_nothing():
    r = ruff("check", "--output-format", "concise", ".")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_the_linter_would_catch_a_long_line_and_an_unsorted_import(tmp_path):
    """The configuration is the project's: a file breaking it, checked with the project's settings, fails."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport os\n\nx = '" + "a" * 130 + "'\nprint(os, sys, x)\n", encoding="utf-8")
    r = ruff("check", "--output-format", "concise", "--config", str(ROOT / "pyproject.toml"), str(bad))
    assert r.returncode == 1 and "E501" in r.stdout and "I001" in r.stdout, r.stdout + r.stderr

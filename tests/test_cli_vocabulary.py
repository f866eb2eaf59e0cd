"""Both command lines speak one vocabulary (--model, --data), keep the old names with a note, and show examples."""

import shlex
import tomllib
from pathlib import Path

import pytest

from jepa_lite import cli
from jepa_lite.paired import cli as paired_cli

ROOT = Path(__file__).resolve().parent.parent


def test_new_and_old_names_give_the_same_config(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("a line of text\nanother line\n")
    new = cli.config_from_args(vars(cli.build_parser().parse_args(["--model", "tiny", "--data", str(text)])))
    old = cli.config_from_args(vars(cli.build_parser().parse_args(["--model_name", "tiny", "--text_file", str(text)])))
    assert new == old and new.model_name == "tiny" and new.text_file == str(text)


def test_an_old_name_prints_one_note_and_a_new_one_none(capsys):
    cli.note_old_names(["--model_name", "tiny", "--text_file=x.txt", "--steps", "3"])
    err = capsys.readouterr().out.splitlines()
    assert err == [
        "note: --model_name is now called --model; the old name still works",
        "note: --text_file is now called --data; the old name still works",
    ]
    cli.note_old_names(["--model", "tiny", "--data", "x.txt"])
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("parser", [cli.build_parser, paired_cli.build_parser], ids=["train", "paired"])
def test_help_shows_examples_that_parse(parser):
    p = parser()
    assert "--model" in p.format_help() and "--data" in p.format_help() and "examples:" in p.format_help()
    examples = [line.split("#")[0] for line in p.epilog.splitlines() if line.strip().startswith("jepa-lite-")]
    assert len(examples) >= 2
    for line in examples:
        parser().parse_args(shlex.split(line)[1:])  # an example that does not parse exits 2 here


def test_console_scripts_are_declared_and_documented():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert (
        scripts["jepa-lite-train"] == "jepa_lite.cli:main"
        and scripts["jepa-lite-paired"] == "jepa_lite.paired.cli:main"
    )
    docs = (ROOT / "README.md").read_text() + "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    for name in scripts:
        assert name in docs, name

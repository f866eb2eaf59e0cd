"""The trainers are split by idea (issue 25): the Trainer class stays short and builds itself from
short builders, the paired trainer reads no command-line code, the paired package's index holds no
code and names files that exist, and a formula the kit needs twice is defined once."""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "jepa_lite"


def tree(relative: str) -> ast.Module:
    return ast.parse((PACKAGE / relative).read_text(encoding="utf-8"))


def lines(node: ast.AST) -> int:
    return node.end_lineno - node.lineno + 1


def top_level_imports(module: ast.Module) -> list:
    """(module, names) of the imports at module level (not those inside functions)."""
    return [
        (("." * n.level) + (n.module or ""), [a.name for a in n.names])
        for n in module.body
        if isinstance(n, ast.ImportFrom)
    ]


def test_trainer_is_at_most_400_lines_and_its_builders_at_most_25():
    trainer = next(n for n in tree("train.py").body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    assert lines(trainer) <= 400
    builders = [f for f in trainer.body if isinstance(f, ast.FunctionDef) and f.name.startswith("_build")]
    assert len(builders) >= 5
    assert {f.name: lines(f) for f in builders if lines(f) > 25} == {}
    update = next(f for f in trainer.body if isinstance(f, ast.FunctionDef) and f.name == "_update")
    assert "nano.train_step" in ast.get_docstring(update)


def test_the_trainers_init_only_calls_its_builders_in_at_most_25_lines():
    trainer = next(n for n in tree("train.py").body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    init = next(f for f in trainer.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    assert lines(init) <= 25


def test_the_trainers_import_no_command_line_code_at_load():
    for relative in ("train.py", "paired/trainer.py"):
        imports = top_level_imports(tree(relative))
        assert not [m for m, _ in imports if m.endswith("cli")], relative
        cli_names = {"_Parser", "run_cli", "main", "build_parser", "config_from_args", "stop_on_signals"}
        assert not [(m, n) for m, names in imports if m.endswith("train") for n in names if n in cli_names], relative


def test_paired_index_holds_no_code_and_names_files_that_exist():
    index = tree("paired/__init__.py")
    assert not [n for n in ast.walk(index) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    named = set(re.findall(r"\b(\w+\.py)\b", ast.get_docstring(index)))
    assert {"nano.py", "trainer.py", "rows.py", "config.py", "cli.py"} <= named
    assert sorted(f for f in named if not (PACKAGE / "paired" / f).exists()) == []


def test_the_paired_names_stay_importable_from_the_package():
    import jepa_lite.paired as paired
    from jepa_lite.paired import trainer

    names = ["IGNORE", "PairedConfig", "PairedTrainer", "code_view", "last_hidden", "lm_row", "pad_rows", "text_view"]
    assert [name for name in names if not hasattr(paired, name)] == []
    assert paired.PairedTrainer is trainer.PairedTrainer


def test_a_formula_used_twice_is_defined_once():
    defined = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.col_offset == 0:
                defined.setdefault(node.name, []).append(str(path.relative_to(PACKAGE)))
    assert defined["lr_factor"] == ["nano.py"]
    from jepa_lite import masking
    from jepa_lite.course import solutions

    assert (
        solutions.span_mask_solution is masking.sample_span_mask
    )  # the worked solution is the library's loop, not a copy
    assert "sample_span_length" not in (PACKAGE / "course" / "solutions.py").read_text(encoding="utf-8")

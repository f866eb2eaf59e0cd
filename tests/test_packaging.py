"""The set-up files agree with each other and with the README."""

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name → conda-forge name where they differ


def requirement_name(req: str) -> str:
    return re.split(r"[<>=!\[ ;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_every_pyproject_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [requirement_name(r) for r in project["dependencies"]]
    for group in project["optional-dependencies"].values():
        wanted += [requirement_name(r) for r in group if not r.startswith("jepa_lite")]
    env = (ROOT / "environment.yml").read_text()
    listed = {requirement_name(line.strip().lstrip("- ")) for line in env.splitlines() if line.strip().startswith("- ")}
    missing = [n for n in wanted if CONDA_NAMES.get(n, n) not in listed]
    assert not missing, f"environment.yml lacks {missing}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"## Quick start", readme)
    after_marker = readme.split("<!-- test-command", 1)[1]
    command = re.search(r"```bash\n(.+?)\n```", after_marker, re.S).group(1).strip()
    assert "pytest" in command and "torch==2.13.0" in command
    # .ci/run must extract exactly that line
    awk = re.search(r"cmd=\$\((awk .+?README\.md)\)", (ROOT / ".ci" / "run").read_text(), re.S).group(1)
    extracted = subprocess.run(["bash", "-c", awk], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert extracted == command

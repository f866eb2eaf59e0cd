"""The set-up files agree with each other and with the README."""

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name → conda-forge name where they differ


def requirement_name(req: str) -> str:
    return re.split(r"[<>=!\[ ;]", req.strip(), maxsplit=1)[0].lower()


def env_requirements(name: str) -> dict:
    """{package name: requirement} of every `- ` line of a conda environment file (its pip list too)."""
    items = re.findall(r"^\s*- ([^#\n]+)", (ROOT / name).read_text(), re.M)  # `- item  # comment`
    items = [i.strip() for i in items if i.strip() not in ("conda-forge", "pip:") and not i.startswith("-e ")]
    return {requirement_name(r): r for r in items}


def readme_torch_pin() -> str:
    """The torch the Quick start installs, from the test command CI runs (`torch==X.Y.Z`)."""
    pins = set(re.findall(r"torch==([0-9.]+)", (ROOT / "README.md").read_text()))
    assert len(pins) == 1, f"the README pins torch more than one way: {pins}"
    return pins.pop()


def test_environment_yml_lists_every_pyproject_dependency():
    """environment.yml = the Quick start (dependencies + notebooks extra); environment-dev.yml = the dev extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [requirement_name(r) for r in project["dependencies"] + project["optional-dependencies"]["notebooks"]]
    dev = [requirement_name(r) for r in project["optional-dependencies"]["dev"] if not r.startswith("jepa_lite")]
    for name, names in (("environment.yml", wanted), ("environment-dev.yml", dev)):
        listed = set(env_requirements(name)) - {"python", "pip"}
        missing = [n for n in names if n not in listed and CONDA_NAMES.get(n) not in listed]
        assert not missing, f"{name} lacks {missing}"
        extra = listed - set(names) - {CONDA_NAMES.get(n) for n in names}
        assert not extra, f"{name} lists {extra}, which its part of pyproject.toml does not"


def test_environment_yml_installs_the_quick_starts_torch_and_python():
    env = env_requirements("environment.yml")
    assert env["torch"] == f"torch=={readme_torch_pin()}" and "pytorch" not in env  # PyPI's build, as the Quick start's
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert env["python"] == f"python{floor}"  # not one fixed Python: Colab runs 3.13
    assert "- -e ." in (ROOT / "environment.yml").read_text()
    assert "conda env update -f environment-dev.yml" in (ROOT / "environment.yml").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"## Quick start", readme)
    after_marker = readme.split("<!-- test-command", 1)[1]
    command = re.search(r"```bash\n(.+?)\n```", after_marker, re.S).group(1).strip()
    assert "pytest" in command and "torch==2.13.0" in command
    assert "JEPA_LITE_FAST=1 .venv/bin/python -m pytest" in command  # fast mode set in the command itself
    # .ci/run must extract exactly that line
    awk = re.search(r"cmd=\$\((awk .+?README\.md)\)", (ROOT / ".ci" / "run").read_text(), re.S).group(1)
    extracted = subprocess.run(["bash", "-c", awk], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert extracted == command


def test_ci_leaves_fast_mode_to_the_readme_command():
    """CI must not switch fast mode on behind the command's back: what the README says is what runs."""
    run = (ROOT / ".ci" / "run").read_text()
    assert not re.search(r"^\s*export JEPA_LITE_FAST", run, re.M)
    assert re.search(r"^unset JEPA_LITE_FAST", run, re.M)


def test_quick_start_opens_the_course_with_the_launcher():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    run_kit = re.search(r"\*\*Run the kit\*\*.*?```bash\n(.+?)\n```", quick, re.S).group(1)
    assert run_kit.endswith(".venv/bin/python -m jepa_lite.course.lab")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["jepa-lite-lab"] == "jepa_lite.course.lab:main"


def floors_file() -> dict:
    lines = (ROOT / ".ci" / "floors.txt").read_text().splitlines()
    return dict(line.strip().split("==") for line in lines if line.strip() and not line.startswith("#"))


def test_floors_script_installs_exactly_the_declared_floors():
    """.ci/floors.sh installs .ci/floors.txt; each of its versions is the `>=` floor pyproject.toml
    and environment.yml declare, so the floors that are declared are the floors that were run."""
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [
        r for g in project["optional-dependencies"].values() for r in g if not r.startswith("jepa_lite")
    ]
    declared = {}
    for req in reqs:
        # one floor; a ceiling only where a newer minor version changes what the tests check (ruff's formatter)
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)(,<[0-9.]+)?", req.split(";")[0].strip())
        assert m, f"{req}: every requirement has one floor, `name>=version`"
        declared[m.group(1).lower()] = Version(m.group(2))
    floors = {k.lower(): Version(v) for k, v in floors_file().items()}
    assert floors == declared
    env = (ROOT / "environment.yml").read_text() + (ROOT / "environment-dev.yml").read_text()
    for name, version in declared.items():
        if name == "torch":  # the conda environment pins the Quick start's torch, at or above the floor
            assert Version(readme_torch_pin()) >= version and re.search(
                rf"^\s*- torch=={readme_torch_pin()}\b", env, re.M
            )
            continue
        conda = CONDA_NAMES.get(name, name)
        m = re.search(rf"^\s*- {re.escape(conda)}>=([0-9.]+)", env, re.M)
        assert m and Version(m.group(1)) == version, f"environment.yml: {conda} should be >={version}"
    assert "FLOORS=.ci/floors.txt" in (ROOT / ".ci" / "floors.sh").read_text()


def test_readme_states_the_declared_python():
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert floor.startswith(">=")
    assert f"You need Python {floor[2:]} or newer" in (ROOT / "README.md").read_text()

"""`.ci/venv.sh`, the set-up shared by `.ci/floors.sh` and `.ci/colab.sh`: its check that the wanted
versions are exactly what got installed must pass on the versions installed here and fail, naming
each one, on a version that is not (or a package that is missing). The scripts themselves build
venvs with a few GB of downloads: they are run by hand (docs/testing.md), not here."""

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def installed_exactly(wanted: Path) -> subprocess.CompletedProcess:
    script = f'set -euo pipefail; source .ci/venv.sh; pip=("{sys.executable}" -m pip); installed_exactly "{wanted}"'
    return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_installed_exactly_passes_on_what_is_installed(tmp_path):
    wanted = tmp_path / "pins.txt"
    wanted.write_text(
        f"# a comment line\npytest=={version('pytest')}\n\nNBVAL=={version('nbval')}\n"
    )  # case is ignored
    r = installed_exactly(wanted)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_installed_exactly_names_every_version_that_differs(tmp_path):
    wanted = tmp_path / "pins.txt"
    wanted.write_text(f"pytest=={version('pytest')}\nnbval==0.0.1\nno-such-package-jl==1.0\n")
    r = installed_exactly(wanted)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines == [
        f"bash: wanted nbval==0.0.1, installed nbval=={version('nbval')}",
        "bash: wanted no-such-package-jl==1.0, installed nothing",
    ], r.stderr


def test_both_scripts_use_the_shared_set_up():
    for name in ("floors.sh", "colab.sh"):
        text = (ROOT / ".ci" / name).read_text()
        assert (
            "source .ci/venv.sh" in text
            and 'fresh_venv "$VENV"' in text
            and "installed_exactly" in text
            and "fast_suite" in text
        )

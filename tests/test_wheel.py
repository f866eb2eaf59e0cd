"""The kit as a user of the Python ecosystem gets it: a wheel and an sdist built from this tree, the
wheel installed into a fresh virtual environment outside the repository, and run from a folder
outside it — the smoke test, the paired trainer on the shipped kit_lm, `TrainConfig.smoke()`, and the
course launcher (started, checked, stopped). Nothing downloads: the build backend is this
environment's setuptools (no build isolation), the wheel goes in with --no-deps, and the fresh
environment reads its dependencies (torch, transformers, JupyterLab) from this one's site-packages,
after its own, so `import jepa_lite` can only find the wheel's copy."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import site
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCES = (
    ".git",
    ".venv*",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    "my-course",
    "checkpoints",
    "test-artifacts",
    ".ipynb_checkpoints",
)
SHIPPED = (
    "jepa_lite/resources/corpus/sentences.tsv",
    "jepa_lite/resources/kit_lm/model.safetensors",
    "jepa_lite/resources/kit_lm/tokenizer.json",
    "jepa_lite/resources/study.json",
    "jepa_lite/resources/probe_scores.json",
    "jepa_lite/resources/nl_rx_synth/synth_train.jsonl",
    "jepa_lite/course/notebooks/00_overview.ipynb",
    "jepa_lite/course/notebooks/06_llm_jepa_paper.ipynb",
)


def run(cmd, cwd, env, timeout=300) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def build(src: Path, out: Path, sdist: bool) -> Path:
    """Build with setuptools' PEP 517 backend in `src`; the wheel (or sdist) file in `out`."""
    kind = "sdist" if sdist else "wheel"
    r = run(
        [sys.executable, "-c", f"from setuptools import build_meta as b; print(b.build_{kind}({str(out)!r}))"],
        cwd=src,
        env=dict(os.environ, PYTHONPATH=""),
    )
    # a data folder under jepa_lite/ that pyproject.toml's packages does not list: setuptools warns it may be left out
    assert "is absent from the `packages` configuration" not in r.stderr, r.stderr[-3000:]
    return out / r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools", reason="builds with this environment's setuptools (nothing downloads)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCES))  # the build writes build/ there
    return build(src, tmp / "dist", sdist=False), build(src, tmp / "dist", sdist=True)


def test_the_wheel_and_the_sdist_hold_the_data_and_the_notebooks(wheel, tmp_path):
    whl, sdist = wheel
    names = set(zipfile.ZipFile(whl).namelist())
    assert set(SHIPPED) <= names, sorted(set(SHIPPED) - names)
    assert not [n for n in names if n.startswith(("assets/", "notebooks/", "tests/"))]  # nothing outside the package
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # 3.11.4+
    assert {"pyproject.toml", "notebooks/00_overview.ipynb", "jepa_lite/resources/kit_lm/model.safetensors"} <= members
    again = build(tmp_path / sdist.name.removesuffix(".tar.gz"), tmp_path / "dist", sdist=False)  # from the sdist alone
    assert set(zipfile.ZipFile(again).namelist()) == names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """(python of a fresh venv holding the wheel, a user's folder outside the repository, the environment)."""
    whl, _ = wheel
    tmp = tmp_path_factory.mktemp("installed")
    venv, user = tmp / "venv", tmp / "user"
    user.mkdir()
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=os.environ)
    python = venv / "bin" / "python"
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(whl)],
        cwd=tmp,
        env=os.environ,
    )
    own = Path(
        run([python, "-c", "import site; print(site.getsitepackages()[0])"], cwd=user, env=os.environ).stdout.strip()
    )
    (own / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # read after its own
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        JEPA_LITE_FAST="1",
        HF_HUB_OFFLINE="1",
        HOME=str(tmp / "home"),
        JUPYTER_CONFIG_DIR=str(tmp / "home" / "config"),
        JUPYTER_DATA_DIR=str(tmp / "home" / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "home" / "runtime"),
    )
    return python, user, env


def test_the_installed_wheel_trains_outside_the_repository(installed):
    python, user, env = installed
    own = python.parent.parent
    out = run(
        [python, "-m", "jepa_lite.train", "--smoke_test", "--steps", "2", "--log_every", "1", "--no_progress"],
        cwd=user,
        env=env,
    )
    assert "done: 2 steps" in out.stdout

    from jepa_lite.paired.pairs import regex_pairs, save_jsonl

    train, test = regex_pairs(8, 2, seed=0)
    save_jsonl(train, user / "train.jsonl")
    save_jsonl(test, user / "test.jsonl")
    # one process (each start imports torch and transformers): TrainConfig.smoke() and a Trainer on it
    # read the packaged corpus, from the wheel's jepa_lite; then the paired trainer on the shipped kit_lm
    paired = [
        "--model",
        "kit_lm",
        "--data",
        "train.jsonl",
        "--test_data",
        "test.jsonl",
        "--steps",
        "2",
        "--batch_size",
        "4",
        "--lbd",
        "1",
        "--device",
        "cpu",
        "--no_progress",
    ]
    code = (
        "import sys, jepa_lite; from jepa_lite.train import TrainConfig, Trainer; from jepa_lite.paired.cli "
        "import main; "
        "t = Trainer(TrainConfig.smoke(steps=2, save_path=None, progress=False), log=lambda s: None); t.fit(); "
        f"print('smoke', jepa_lite.__file__, len(t.corpus), flush=True); sys.exit(main({paired!r}))"
    )
    out = run([python, "-c", code], cwd=user, env=env).stdout
    where, lines = next(line for line in out.splitlines() if line.startswith("smoke ")).split()[1:]
    assert Path(where).resolve().is_relative_to(own.resolve()) and int(lines) == 480
    assert "model 'kit_lm'" in out and "exact match on 2 test pairs" in out


def test_the_installed_launcher_copies_the_course_and_starts(installed):
    pytest.importorskip("jupyterlab", reason="the launcher needs JupyterLab (the notebooks extra)")
    from jupyterlab.commands import get_app_dir

    python, user, env = installed
    env = dict(env, JUPYTERLAB_DIR=get_app_dir())  # the built app lives in the dependencies' environment
    port, token = _free_port(), secrets.token_hex(16)
    lab = subprocess.Popen(
        [
            python.parent / "jepa-lite-lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
        ],
        cwd=user,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 90
        while True:
            assert lab.poll() is None, f"the launcher exited with {lab.returncode}:\n{lab.stdout.read()[-3000:]}"
            try:
                if _status(f"{base}/api/status?token={token}") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not answer in 90 s"
            time.sleep(0.3)
        assert _status(f"{base}/api/contents/00_overview.ipynb?content=0&token={token}") == 200
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait(5)
    course = user / "jepa-lite-course"  # the installed kit's working copy, under the folder it started from
    assert sorted(p.name for p in course.glob("*.ipynb")) == sorted(
        p.name for p in (ROOT / "notebooks").glob("*.ipynb")
    )
    assert json.loads((course / "00_overview.ipynb").read_text())["cells"]

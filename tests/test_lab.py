"""The Quick start's launcher, `python -m jepa_lite.course.lab`: a real JupyterLab server, started as the
user who runs the tests (root in CI and in containers) and, when that is root, also as an ordinary
user; each must answer, open the course at 00 and carry the no-news setting. The course it opens is a
working copy: a student's session (notebooks saved with outputs) leaves `git status` clean and a
student's edited copy is never replaced. Every wait is bounded and the server is stopped at the end,
also on failure."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from jepa_lite.course import lab

ROOT = Path(__file__).resolve().parent.parent
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def test_allow_root_only_for_root(tmp_path):
    as_root = lab.lab_args(ROOT / "notebooks", tmp_path, root=True)
    as_user = lab.lab_args(ROOT / "notebooks", tmp_path, ["--port", "9999"], root=False)
    assert "--allow-root" in as_root and "--allow-root" not in as_user
    assert as_user[-2:] == ["--port", "9999"]  # the user's own arguments come last and win
    assert f"--LabApp.default_url=/lab/tree/{lab.FIRST_NOTEBOOK}" in as_user
    assert lab.find_notebooks() == ROOT / "notebooks"


def test_the_working_folder_is_git_ignored_in_a_clone_and_outside_the_package_when_installed(tmp_path):
    assert lab.working_folder(ROOT / "notebooks") == ROOT / lab.CLONE_COPY
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{lab.CLONE_COPY}/00_overview.ipynb"], cwd=ROOT)
    if (ROOT / ".git").exists():
        assert ignored.returncode == 0, f"{lab.CLONE_COPY}/ is not in .gitignore"
    packaged = Path(lab.__file__).resolve().parent / "notebooks"  # where a wheel keeps the course
    assert lab.working_folder(packaged, start=tmp_path) == tmp_path / lab.INSTALLED_COPY


def test_the_course_is_copied_once_and_a_students_copy_is_never_replaced(tmp_path):
    course, work = ROOT / "notebooks", tmp_path / "course"
    shipped = sorted(p.name for p in course.iterdir() if p.suffix in (".ipynb", ".md"))
    assert lab.FIRST_NOTEBOOK in shipped and "GLOSSARY.md" in shipped
    assert lab.copy_course(course, work) == {"copied": shipped, "same": [], "kept": []}
    assert all((work / n).read_bytes() == (course / n).read_bytes() for n in shipped)
    mine = work / "01_span_masking.ipynb"
    mine.write_text("my edits")
    (work / "02_two_views.ipynb").unlink()  # deleted: the course's version comes back
    again = lab.copy_course(course, work)
    assert again["copied"] == ["02_two_views.ipynb"] and again["kept"] == ["01_span_masking.ipynb"]
    assert mine.read_text() == "my edits" and not list(work.glob(".*copying"))


def test_copying_the_course_uses_no_name_the_student_may_hold(tmp_path):
    """The copy goes through the kit's one writer (a temporary name of its own): a student's file named
    like the old temporary (`.NAME.copying`) is left alone, and nothing temporary remains."""
    work = tmp_path / "course"
    work.mkdir()
    planted = work / f".{lab.FIRST_NOTEBOOK}.copying"
    planted.write_text("mine")
    lab.copy_course(ROOT / "notebooks", work)
    assert planted.read_text() == "mine" and not [n for n in os.listdir(work) if "jepa_lite-" in n]


def test_bad_working_folders_are_one_error_line_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert lab.main(["--course_dir", str(tmp_path / "file"), "--no-browser"]) == 2
    assert lab.main(["--course_dir"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err), err
    assert (tmp_path / "file").read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["file"]
    assert lab.split_course_dir(["--port", "1", "--course_dir=x", "--no-browser"]) == (
        "x",
        ["--port", "1", "--no-browser"],
    )


def test_the_notebooks_carry_the_kernelspec_ipykernel_writes():
    """Opening a notebook in Jupyter must not rewrite its metadata (a tracked file changed by a look)."""
    from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

    spec = {"display_name": get_kernel_dict()["display_name"], "language": "python", "name": KERNEL_NAME}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert json.loads(path.read_text(encoding="utf-8"))["metadata"]["kernelspec"] == spec, path.name


def test_settings_folder_keeps_an_installed_override(tmp_path, monkeypatch):
    app = tmp_path / "app"
    (app / "settings").mkdir(parents=True)
    (app / "settings" / "overrides.json").write_text(json.dumps({NOTIFICATION: {"fetchNews": "true"}, "x:y": {"a": 1}}))
    monkeypatch.setattr("jupyterlab.commands.get_app_dir", lambda: str(app))
    out = tmp_path / "out"
    out.mkdir()
    written = json.loads((lab.write_settings_dir(out) / "overrides.json").read_text())
    assert written[NOTIFICATION] == {"fetchNews": "true", "checkForUpdates": False}  # theirs wins, ours fills in
    assert written["x:y"] == {"a": 1}


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"x:y": 3}'])
def test_a_broken_installed_override_file_is_one_error_line(tmp_path, monkeypatch, capsys, content):
    """(Before: a JSONDecodeError traceback from the launcher.) The user's file is named and left as it is."""
    app = tmp_path / "app"
    (app / "settings").mkdir(parents=True)
    (app / "settings" / "overrides.json").write_text(content)
    monkeypatch.setattr("jupyterlab.commands.get_app_dir", lambda: str(app))
    monkeypatch.setattr(
        "jupyterlab.labapp.LabApp.launch_instance", lambda **kw: pytest.fail("the server must not start")
    )
    assert lab.main(["--course_dir", str(tmp_path / "course")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "overrides.json" in err[0]
    assert (app / "settings" / "overrides.json").read_text() == content
    assert not (tmp_path / "course").exists()  # said before anything was copied


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    """(status, Location header, body) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=5) as r:
            return r.status, r.headers.get("Location"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location"), b""


def become(user: str):
    """A preexec_fn that turns the child process into `user`."""
    entry = pwd.getpwnam(user)

    def preexec():
        os.setgid(entry.pw_gid)
        os.setgroups([])
        os.setuid(entry.pw_uid)

    return preexec


def launch_and_check(
    tmp_path: Path, user: str | None = None, in_browser=None, kit: Path = ROOT, course_dir: bool = True
) -> str:
    """Start the launcher of the kit at `kit` (as `user` if given; its working copy of the course in
    tmp_path/course, or where the launcher puts it when `course_dir` is False), check the server,
    call `in_browser(base_url, token)` if given, stop it; return its log."""
    home = tmp_path / "home"
    home.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for p in [tmp_path, home]:
            os.chown(p, entry.pw_uid, entry.pw_gid)
    env = dict(
        os.environ,
        HOME=str(home),
        PYTHONPATH=str(kit),
        JEPA_LITE_FAST="1",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    preexec = become(user) if user is not None else None
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jepa_lite.course.lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--LabApp.expose_app_in_browser=True",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
    ]
    if course_dir:
        cmd += ["--course_dir", str(tmp_path / "course")]
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, (
                    f"the launcher exited with {proc.returncode}:\n" + log_path.read_text()[-3000:]
                )
                try:
                    if _get(f"{base}/api/status?token={token}")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, (
                    "JupyterLab did not answer in 90 s:\n" + log_path.read_text()[-3000:]
                )
                time.sleep(0.3)
            status, location, _ = _get(f"{base}/?token={token}")
            assert status == 302 and location.startswith(f"/lab/tree/{lab.FIRST_NOTEBOOK}"), (status, location)
            status, _, body = _get(f"{base}/lab/api/settings/{NOTIFICATION}?token={token}")
            schema = json.loads(body)["schema"]["properties"]
            # "none" is the setting's own default, which makes JupyterLab ask its news question
            assert schema["fetchNews"]["default"] == "false" and schema["checkForUpdates"]["default"] is False
            status, _, body = _get(f"{base}/api/contents/{lab.FIRST_NOTEBOOK}?content=0&token={token}")
            assert status == 200, "the server's folder is not the course's notebooks/"
            if in_browser is not None:
                in_browser(base, token)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
    return log_path.read_text()


def command_line(log: str) -> str:
    """The JupyterLab command line the launcher printed."""
    return next(line for line in log.splitlines() if line.startswith("jepa_lite: jupyter lab "))


def test_launcher_reaches_the_server_as_whoever_runs_it(tmp_path):
    log = launch_and_check(tmp_path)
    assert ("--allow-root" in command_line(log)) == (os.geteuid() == 0)
    assert "Running as root is not recommended" not in log
    assert f"--ServerApp.root_dir={tmp_path / 'course'}" in command_line(log)  # the copy, not notebooks/
    assert (tmp_path / "course" / lab.FIRST_NOTEBOOK).is_file()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_a_students_session_leaves_git_status_clean(tmp_path):
    """A clone (the kit's package, notebooks and .gitignore, committed), its launcher started with no
    --course_dir, a notebook saved through JupyterLab with outputs and a changed kernel (what autosave
    does): the tracked notebooks are untouched, the save is in my-course/, `git status` is clean."""
    clone = tmp_path / "clone"
    files = git(ROOT, "ls-files", "jepa_lite", "notebooks", ".gitignore", "pyproject.toml").splitlines()
    for name in files:
        if (ROOT / name).is_file():  # a file deleted in the working tree is not copied
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, clone / name)
    git(clone, "init", "-q")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "clone")
    tracked = (clone / "notebooks" / lab.FIRST_NOTEBOOK).read_bytes()

    def student(base, token):
        url = f"{base}/api/contents/{lab.FIRST_NOTEBOOK}?token={token}"
        with urllib.request.urlopen(url, timeout=10) as r:
            model = json.loads(r.read())
        nb = model["content"]
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "my run\n"}]
        code["execution_count"] = 1
        nb["metadata"]["language_info"] = {"name": "python", "version": "3.x"}
        body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
        req = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200

    log = launch_and_check(tmp_path, in_browser=student, kit=clone, course_dir=False)
    work = clone / lab.CLONE_COPY
    assert f"--ServerApp.root_dir={work}" in command_line(log)
    assert "my run" in (work / lab.FIRST_NOTEBOOK).read_text(encoding="utf-8")  # the save went to the copy
    assert (clone / "notebooks" / lab.FIRST_NOTEBOOK).read_bytes() == tracked
    assert git(clone, "status", "--porcelain", "--untracked-files=all") == ""
    assert lab.copy_course(clone / "notebooks", work)["kept"] == [lab.FIRST_NOTEBOOK]  # the next start keeps it


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start the launcher as another user")
def test_launcher_as_an_ordinary_user_needs_no_allow_root():
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import jupyterlab, jepa_lite.course.lab"],
            cwd="/",
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            preexec_fn=become("nobody"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except PermissionError:
        probe = None
    if probe is None or probe.returncode != 0:  # e.g. an interpreter under /root, which nobody may read
        pytest.skip(f"user 'nobody' cannot run this Python ({sys.executable}) or read the kit here")
    tmp = Path(tempfile.mkdtemp(prefix="jepa_lite_lab_test_"))  # under /tmp, which every user may enter
    try:
        log = launch_and_check(tmp, user="nobody")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert "--allow-root" not in command_line(log)


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def test_in_the_browser_the_course_opens_at_00_without_the_news_question(tmp_path):
    """What the student sees: the 00 notebook open, and no "get notified about official Jupyter
    news?" notification (a plain `jupyter lab` with fresh settings shows it, bottom right)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")

    def look(base, token):
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                timeout=60_000,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) else r.abort())
                page.goto(f"{base}/?token={token}", wait_until="domcontentloaded", timeout=60_000)
                page.wait_for_function(
                    "() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=120_000, polling=250
                )
                page.evaluate("async () => await window.jupyterapp.restored")
                title = page.evaluate("() => window.jupyterapp.shell.currentWidget.title.label")
                assert title == lab.FIRST_NOTEBOOK
                # the question is asked once the app is restored and the settings are loaded
                page.wait_for_function("() => !!window.jupyterapp.serviceManager.settings", timeout=30_000)
                page.wait_for_timeout(3000)
                assert "official Jupyter news" not in page.locator("body").inner_text()
            finally:
                browser.close()

    launch_and_check(tmp_path, in_browser=look)

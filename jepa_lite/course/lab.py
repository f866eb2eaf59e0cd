"""Open the course in JupyterLab with one command that works for everyone: `python -m jepa_lite.course.lab`.

What it adds to a plain `jupyter lab notebooks/`:

- **as root** (a container, a cloud VM) it passes `--allow-root`, which JupyterLab otherwise demands
  (it stops with "Running as root is not recommended"); a normal user's command line stays as it was;
- **no network, no pop-up**: JupyterLab neither fetches its news feed nor checks for updates, and its
  first-start question "get notified about official Jupyter news?" (a notification that covers the
  lower right of the figures) is answered "no" for this session only — the user's own JupyterLab
  settings are not touched;
- **your own copy of the course**: on first use the notebooks are copied into a working folder, and
  JupyterLab opens there, at `00_overview.ipynb`. In a clone that folder is `my-course/` in the
  repository (git-ignored: your edits, outputs and autosaves never touch the tracked notebooks, and
  `git pull` never conflicts with them); with the kit installed from a wheel it is `./jepa-lite-course`
  under the folder you start from. A notebook already in the working folder is never replaced: to get
  the course's version of one again, delete your copy and start the launcher.
  `--course_dir DIR` names another working folder.

Any other argument is handed to JupyterLab unchanged: `python -m jepa_lite.course.lab --port 8899 --no-browser`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..writer import WriteError, atomic_file

FIRST_NOTEBOOK = "00_overview.ipynb"
CLONE_COPY = "my-course"  # the working folder in a clone, beside notebooks/ (listed in .gitignore)
INSTALLED_COPY = "jepa-lite-course"  # the working folder of an installed kit, under the current folder
COURSE_FILES = (".ipynb", ".md")  # what the working folder gets: the notebooks and the glossary
# Defaults for two JupyterLab settings, given to this session's server as setting overrides
# (JupyterLab reads `<app_settings_dir>/overrides.json`); a value the user set in JupyterLab wins.
SETTING_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def is_root() -> bool:
    """True for the superuser on Unix (uid 0); False on Windows, which has no such rule in Jupyter."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def find_notebooks(start: Optional[Path] = None) -> Optional[Path]:
    """The course as shipped (read only): `notebooks/` beside the jepa_lite package (a clone installed
    with `pip install -e .`), else the copy inside the installed package (jepa_lite/course/notebooks,
    package data of a wheel), else `notebooks/` under the current folder. None when none holds it."""
    clone = Path(__file__).resolve().parents[2] / "notebooks"  # jepa_lite/course/lab.py → the repository
    packaged = Path(__file__).resolve().parent / "notebooks"
    for folder in (clone, packaged, (start or Path.cwd()) / "notebooks", start or Path.cwd()):
        if (folder / FIRST_NOTEBOOK).is_file():
            return folder
    return None


def working_folder(course: Path, start: Optional[Path] = None) -> Path:
    """Where the student works: `my-course/` beside the clone's notebooks/ (git-ignored), else
    `jepa-lite-course/` under the current folder (never inside an installed package)."""
    if course == Path(__file__).resolve().parents[2] / "notebooks":
        return course.parent / CLONE_COPY
    return (start or Path.cwd()) / INSTALLED_COPY


def copy_course(course: Path, work: Path) -> Dict[str, List[str]]:
    """Copy each course file (notebook, glossary) that `work` lacks; never replace one it holds.

    Returns {"copied": names copied now, "same": names already there as shipped, "kept": names there
    that differ from the course's (the student's edits, or a copy from an older course)}."""
    work.mkdir(parents=True, exist_ok=True)
    done: Dict[str, List[str]] = {"copied": [], "same": [], "kept": []}
    for source in sorted(course.iterdir()):
        if source.suffix not in COURSE_FILES or not source.is_file():
            continue
        target = work / source.name
        if target.exists():
            done["same" if target.read_bytes() == source.read_bytes() else "kept"].append(source.name)
            continue
        # the one writer: a temporary name of the kit's own, then a rename, so a copy cut short never
        # poses as the student's file and no name the student may hold is used on the way
        with open(source, "rb") as src, atomic_file(target, "wb", "the course file") as f:
            shutil.copyfileobj(src, f)
        done["copied"].append(source.name)
    return done


def check_working_folder(work: Path) -> Optional[str]:
    """One line saying why `work` cannot hold the course, or None."""
    if work.exists() and not work.is_dir():
        return f"{work} exists and is not a folder; give another --course_dir"
    parent = next((p for p in [work, *work.parents] if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write the course into {work}; give a folder you may write to with --course_dir"
    return None


def lab_args(notebooks: Path, settings_dir: Path, extra: Sequence[str] = (), root: Optional[bool] = None) -> List[str]:
    """The JupyterLab command line (without the program name) for the course in `notebooks`."""
    args = [
        f"--ServerApp.root_dir={notebooks}",
        f"--LabApp.default_url=/lab/tree/{FIRST_NOTEBOOK}",  # where `/` and the opened browser go
        f"--LabApp.app_settings_dir={settings_dir}",  # holds overrides.json: no news question
        "--LabApp.news_url=None",  # never fetch the news feed
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",  # never ask PyPI for a newer JupyterLab
    ]
    if is_root() if root is None else root:
        args.append("--allow-root")
    return args + list(extra)


def installed_overrides() -> dict:
    """The installed JupyterLab's overrides.json ({} if none); ValueError (one line, naming the file) if
    it is not a JSON object of settings per plugin."""
    from jupyterlab.commands import get_app_dir

    item = Path(get_app_dir()) / "settings" / "overrides.json"
    if not item.is_file():
        return {}
    try:
        overrides = json.loads(item.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(
            f"JupyterLab's settings file {item} cannot be read ({type(e).__name__}: {str(e)[:80]}); "
            "fix it or move it away"
        ) from None
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise ValueError(
            f"JupyterLab's settings file {item} is not an object of settings per plugin; fix it or move it away"
        )
    return overrides


def write_settings_dir(folder: Path) -> Path:
    """Fill `folder` as JupyterLab's app settings folder: the installed one's files (if any), with the
    kit's overrides merged under the ones already there (`installed_overrides`). Returns `folder`."""
    from jupyterlab.commands import get_app_dir

    installed = Path(get_app_dir()) / "settings"
    overrides = installed_overrides()
    if installed.is_dir():
        for item in installed.iterdir():
            if item.name != "overrides.json" and not (folder / item.name).exists():
                (folder / item.name).symlink_to(item)
    for plugin, values in SETTING_OVERRIDES.items():
        overrides[plugin] = {**values, **overrides.get(plugin, {})}
    (folder / "overrides.json").write_text(json.dumps(overrides, indent=2), encoding="utf-8")
    return folder


class LabError(Exception):
    """Why the launcher cannot start, in one line that says what to do."""


def split_course_dir(args: Sequence[str]) -> tuple[Optional[str], List[str]]:
    """(--course_dir's value or None, the other arguments): `--course_dir DIR` or `--course_dir=DIR`."""
    rest, value, i = [], None, 0
    while i < len(args):
        if args[i] == "--course_dir":
            if i + 1 == len(args):
                raise LabError("--course_dir needs a folder")
            value, i = args[i + 1], i + 2
            continue
        if args[i].startswith("--course_dir="):
            value = args[i].split("=", 1)[1]
        else:
            rest.append(args[i])
        i += 1
    return value, rest


def course_folders(course_dir: Optional[str]) -> tuple[Path, Path]:
    """(the course as shipped, the student's working folder), both checked before anything is written."""
    notebooks = find_notebooks()
    if notebooks is None:
        raise LabError(
            f"no course here: {FIRST_NOTEBOOK} is neither beside the jepa_lite package nor in ./notebooks; "
            "reinstall the kit (its notebooks are package data) or run this from the repository folder"
        )
    work = Path(course_dir).expanduser().resolve() if course_dir else working_folder(notebooks)
    problem = check_working_folder(work)
    if problem:
        raise LabError(problem)
    return notebooks, work


def main(argv: Optional[Sequence[str]] = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    if extra[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    try:
        course_dir, extra = split_course_dir(extra)
        notebooks, work = course_folders(course_dir)
        try:
            from jupyterlab.labapp import LabApp
        except ImportError:
            raise LabError(
                "JupyterLab is not installed here; install the kit with its notebooks extra: pip "
                'install -e ".[notebooks]"'
            ) from None
        try:
            installed_overrides()  # a broken settings file is said before anything is copied
        except ValueError as e:
            raise LabError(str(e)) from None
        try:
            done = copy_course(notebooks, work)
        except (OSError, WriteError) as e:  # a full disk, a folder that turned read-only
            raise LabError(f"could not copy the course into {work}: {getattr(e, 'strerror', None) or e}") from None
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"jepa_lite: your copy of the course is {work} ({len(done['copied'])} files copied now)", flush=True)
    for name in done["kept"]:
        print(
            f"jepa_lite: kept your {name} (it differs from the course's; delete it to get the course's again)",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="jepa_lite_lab_") as tmp:
        # The app settings folder's parent is where JupyterLab looks for `static/package.json`
        # (the built app's metadata); point it at the installed app's.
        from jupyterlab.commands import get_app_dir

        static = Path(get_app_dir()) / "static"
        if static.is_dir():
            (Path(tmp) / "static").symlink_to(static)
        settings = Path(tmp) / "settings"
        settings.mkdir()
        write_settings_dir(settings)
        args = lab_args(work, settings, extra)
        print("jepa_lite: jupyter lab " + " ".join(args), flush=True)
        try:
            LabApp.launch_instance(argv=args)
        except SystemExit as e:  # JupyterLab's own exit (bad argument, Ctrl-C twice)
            return int(e.code or 0) if not isinstance(e.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

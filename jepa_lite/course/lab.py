"""Open the course in JupyterLab with one command that works for everyone: `python -m jepa_lite.course.lab`.

What it adds to a plain `jupyter lab notebooks/`:

- **as root** (a container, a cloud VM) it passes `--allow-root`, which JupyterLab otherwise demands
  (it stops with "Running as root is not recommended"); a normal user's command line stays as it was;
- **no network, no pop-up**: JupyterLab neither fetches its news feed nor checks for updates, and its
  first-start question "get notified about official Jupyter news?" (a notification that covers the
  lower right of the figures) is answered "no" for this session only — the user's own JupyterLab
  settings are not touched;
- **the course at 00**: the server's folder is `notebooks/` and the browser opens `00_overview.ipynb`.

Any other argument is handed to JupyterLab unchanged: `python -m jepa_lite.course.lab --port 8899 --no-browser`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

FIRST_NOTEBOOK = "00_overview.ipynb"
# Defaults for two JupyterLab settings, given to this session's server as setting overrides
# (JupyterLab reads `<app_settings_dir>/overrides.json`); a value the user set in JupyterLab wins.
SETTING_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def is_root() -> bool:
    """True for the superuser on Unix (uid 0); False on Windows, which has no such rule in Jupyter."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def find_notebooks(start: Optional[Path] = None) -> Optional[Path]:
    """The course's `notebooks/` folder: beside the jepa_lite package (a clone installed with
    `pip install -e .`), else under the current folder. None when neither holds the course."""
    here = Path(__file__).resolve().parents[2] / "notebooks"  # jepa_lite/course/lab.py → the repository
    for folder in (here, (start or Path.cwd()) / "notebooks", start or Path.cwd()):
        if (folder / FIRST_NOTEBOOK).is_file():
            return folder
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


def write_settings_dir(folder: Path) -> Path:
    """Fill `folder` as JupyterLab's app settings folder: the installed one's files (if any), with the
    kit's overrides merged under the ones already there. Returns `folder`. ValueError (one line) if the
    installed overrides.json is not a JSON object of settings per plugin."""
    from jupyterlab.commands import get_app_dir

    app_dir = Path(get_app_dir())
    installed = app_dir / "settings"
    overrides: dict = {}
    if installed.is_dir():
        for item in installed.iterdir():
            if item.name == "overrides.json":
                try:
                    overrides = json.loads(item.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
                    raise ValueError(f"JupyterLab's settings file {item} cannot be read ({type(e).__name__}: {str(e)[:80]}); "
                                     "fix it or move it away") from None
                if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
                    raise ValueError(f"JupyterLab's settings file {item} is not an object of settings per plugin; fix it or move it away")
            elif not (folder / item.name).exists():
                (folder / item.name).symlink_to(item)
    for plugin, values in SETTING_OVERRIDES.items():
        overrides[plugin] = {**values, **overrides.get(plugin, {})}
    (folder / "overrides.json").write_text(json.dumps(overrides, indent=2), encoding="utf-8")
    return folder


def main(argv: Optional[Sequence[str]] = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    if extra[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    notebooks = find_notebooks()
    if notebooks is None:
        print(f"error: no course here: {FIRST_NOTEBOOK} is neither beside the jepa_lite package nor in ./notebooks; "
              "run this from the repository folder", file=sys.stderr)  # fmt: skip
        return 2
    try:
        from jupyterlab.labapp import LabApp
    except ImportError:
        print('error: JupyterLab is not installed here; install the kit with its notebooks extra: pip install -e ".[notebooks]"', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="jepa_lite_lab_") as tmp:
        # The app settings folder's parent is where JupyterLab looks for `static/package.json`
        # (the built app's metadata); point it at the installed app's.
        from jupyterlab.commands import get_app_dir

        static = Path(get_app_dir()) / "static"
        if static.is_dir():
            (Path(tmp) / "static").symlink_to(static)
        settings = Path(tmp) / "settings"
        settings.mkdir()
        try:
            write_settings_dir(settings)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        args = lab_args(notebooks, settings, extra)
        print("jepa_lite: jupyter lab " + " ".join(args), flush=True)
        try:
            LabApp.launch_instance(argv=args)
        except SystemExit as e:  # JupyterLab's own exit (bad argument, Ctrl-C twice)
            return int(e.code or 0) if not isinstance(e.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

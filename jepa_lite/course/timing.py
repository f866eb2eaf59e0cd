"""How long each notebook takes to run, top to bottom, in a fresh kernel: the README's run-time column.

    python -m jepa_lite.course.timing --out assets/bench/notebook_times.json  # every notebook, full and fast
    python -m jepa_lite.course.timing --only 06_llm_jepa_paper --modes full   # one notebook, one mode
    python -m jepa_lite.course.timing --repeat 10 --cell_timeout 300          # every notebook 10 times: none may hang
    python -m jepa_lite.course.timing --repeat 10 --runner nbconvert          # the same through `jupyter nbconvert`

Each notebook is executed with `nbclient` in a new kernel started in `notebooks/` (as JupyterLab
would), offline, with `JEPA_LITE_FAST=1` for fast mode and without it for full mode; the time is the
wall-clock time of executing every cell (kernel start excluded), so reading time is not included.
With `--runner nbconvert` each run is instead the command a teacher types, `jupyter nbconvert --to
notebook --execute`, in a subprocess; its time is the subprocess's wall-clock time, kernel start and
nbconvert's own start included, so it is a few seconds longer than nbclient's for the same notebook.
Nothing is written into the notebooks. The results file records the machine (CPU count, torch
threads) and the versions, since times are only comparable on the same machine: measure on an idle
one, all notebooks in one run.

A cell that runs past `--cell_timeout` seconds (default 600) stops the notebook with a message naming the
cell, and the command exits 1: with `--repeat N` it is the check that no notebook hangs (issue 26).
Through nbconvert any failure (a non-zero exit) fails the run the same way, and the whole subprocess is
stopped after `cell_timeout` × (code cells) + 120 s, so not even a hang outside a cell can last.
"""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence
from unittest import mock

from ..checkpoint import json_marked
from ..writer import PathLock, WriteError, check_writable, write_json
from . import FAST_ENV

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TIMES_FILE = Path(__file__).resolve().parents[2] / "assets" / "bench" / "notebook_times.json"
MODES = ("full", "fast")
RUNNERS = ("nbclient", "nbconvert")
BACKSTOP_SLACK = 120  # seconds an nbconvert run may take beyond its cells' timeouts (start-up, writing)
KIND = "jepa_lite.notebook_times"  # marks the results file


def notebook_paths(only: Sequence[str] = ()) -> Dict[str, Path]:
    """{name: path} of the course notebooks (00_… to 06_…), or of the names in `only`."""
    paths = {p.stem: p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}
    unknown = [n for n in only if n not in paths]
    if unknown:
        raise ValueError(f"no notebook named {', '.join(unknown)}; the notebooks are {', '.join(paths)}")
    return {n: paths[n] for n in only} if only else paths


class RunFailed(Exception):
    """A notebook run that did not finish: the message is one line saying why."""


def mode_env(mode: str) -> Dict[str, str]:
    """This process's environment with JEPA_LITE_FAST=1 in fast mode and without it in full mode."""
    env = {k: v for k, v in os.environ.items() if k != FAST_ENV}
    if mode == "fast":
        env[FAST_ENV] = "1"
    return env


def time_notebook(path: Path, mode: str, timeout: int = 600) -> float:
    """Seconds to execute every cell of `path` in a fresh kernel, in `mode` ("full" or "fast").
    A cell that runs past `timeout` seconds raises nbclient's CellTimeoutError."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = mode_env(mode)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    with mock.patch.dict(os.environ, env, clear=True):  # the kernel inherits the environment it starts in
        with client.setup_kernel():
            start = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            return time.perf_counter() - start


def nbconvert_command(path: Path, out_dir: Path, timeout: int) -> list:
    """`jupyter nbconvert --to notebook --execute` of `path`, the executed copy written into `out_dir`."""
    execute = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute"]
    output = ["--output-dir", str(out_dir), "--output", path.name]
    return execute + [f"--ExecutePreprocessor.timeout={timeout}"] + output + [str(path)]


def backstop(path: Path, timeout: int) -> int:
    """Seconds after which a whole nbconvert run is stopped: `timeout` per code cell + BACKSTOP_SLACK."""
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    return timeout * sum(c.cell_type == "code" for c in cells) + BACKSTOP_SLACK


def time_notebook_nbconvert(path: Path, mode: str, timeout: int = 600) -> float:
    """Seconds `jupyter nbconvert --to notebook --execute` takes on `path` in `mode`, run in a subprocess
    from the notebook's folder: kernel start included (unlike time_notebook). The executed copy goes to a
    temporary folder, never next to the notebook. Raises RunFailed if nbconvert exits non-zero (a cell
    past `timeout` seconds, an error) or runs past `backstop` seconds; then, or if interrupted, nbconvert is
    killed (and its kernel exits with it)."""
    limit = backstop(path, timeout)
    with tempfile.TemporaryDirectory(prefix="jepa_lite_nbconvert_") as out_dir:
        start = time.perf_counter()
        # nbconvert in a session of its own, killed whole at the backstop; its kernel (started in another
        # session) exits within a second of nbconvert, through ipykernel's parent poller
        proc = subprocess.Popen(
            nbconvert_command(path, Path(out_dir), timeout),
            cwd=path.parent,
            env=mode_env(mode),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            raise RunFailed(f"nbconvert ran past the backstop of {limit} s and was killed") from None
        finally:
            if proc.poll() is None:
                # past the backstop, or this command was interrupted (Ctrl-C): nbconvert is not left running
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RunFailed(nbconvert_failure(err, proc.returncode, timeout))
    return seconds


def nbconvert_failure(stderr: str, returncode: int, timeout: int) -> str:
    """One line saying why nbconvert failed: nbclient's timeout message, else the last line of its stderr
    (the error that stopped the notebook), without colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    timed_out = [line.split("CellTimeoutError: ", 1)[1] for line in lines if "CellTimeoutError: " in line]
    if timed_out:
        return f"a cell ran past {timeout} s: {timed_out[-1]}"
    return f"nbconvert exited {returncode}: {lines[-1] if lines else '(no message)'}"


def last_line(error: Exception) -> str:
    """The last non-empty line of an error's message (nbclient's ends with the cell's exception), without the
    terminal's colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def machine() -> Dict:
    """What the times depend on: CPU count, torch threads, Python and package versions."""
    import torch
    import transformers

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ..cli import _Parser  # one-line argparse errors, exit 2

    p = _Parser(
        prog="python -m jepa_lite.course.timing", description="Time every notebook, top to bottom, in a fresh kernel."
    )
    p.add_argument("--out", help=f"write the times as JSON here (e.g. {TIMES_FILE}); default: print only")
    p.add_argument("--only", nargs="+", default=(), help="notebook names (e.g. 06_llm_jepa_paper); default: all")
    p.add_argument("--modes", nargs="+", default=MODES, choices=MODES, help="full and/or fast (default both)")
    p.add_argument(
        "--repeat", type=int, default=1, help="run each notebook this many times, each in a fresh kernel (default 1)"
    )
    p.add_argument(
        "--cell_timeout", type=int, default=600, help="seconds a cell may run before the notebook fails (default 600)"
    )
    p.add_argument(
        "--runner",
        default="nbclient",
        choices=RUNNERS,
        help="nbclient (cells timed, kernel start excluded) or nbconvert (the `jupyter nbconvert --execute` a "
        "teacher types, timed whole); default nbclient",
    )
    args = p.parse_args(argv)
    if args.repeat < 1 or args.cell_timeout < 1:
        print(
            f"error: --repeat and --cell_timeout must be at least 1; got {args.repeat} and {args.cell_timeout}",
            file=sys.stderr,
        )
        return 2
    try:
        paths = notebook_paths(args.only)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        print(f"error: --out {out} must be a file in an existing folder", file=sys.stderr)
        return 2
    if out is not None and args.repeat > 1:
        print("error: --out records one run per notebook; leave out --repeat", file=sys.stderr)
        return 2
    if out is not None and args.runner != "nbclient":
        print("error: --out records nbclient's times (kernel start excluded); leave out --runner", file=sys.stderr)
        return 2
    if out is not None and out.exists() and not json_marked(out, "kind", KIND):
        print(f"error: --out {out} exists and is not a notebook-times file; name a new file", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    lock = PathLock(out, "--out") if out is not None else None
    try:
        if out is not None:
            try:
                check_writable(out.parent, "the notebook times", "--out")
                lock.acquire()  # one timing run per file, held until the file is written
            except WriteError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        times: Dict[str, Dict[str, float]] = {}
        failed = 0
        run_notebook = time_notebook_nbconvert if args.runner == "nbconvert" else time_notebook
        for name, path in paths.items():
            for mode in args.modes:
                for run in range(1, args.repeat + 1):
                    label = f"{name:22s} {mode:4s}" + (f" run {run:2d}" if args.repeat > 1 else "")
                    try:
                        seconds = run_notebook(path, mode, args.cell_timeout)
                    except CellTimeoutError as e:
                        failed += 1
                        print(f"{label} ❌ a cell ran past {args.cell_timeout} s: {str(e).splitlines()[0]}", flush=True)
                        continue
                    except RunFailed as e:
                        failed += 1
                        print(f"{label} ❌ {args.runner}: {e}", flush=True)
                        continue
                    except CellExecutionError as e:  # a cell raised: one failed run, the loop goes on
                        failed += 1
                        print(f"{label} ❌ a cell raised: {last_line(e)}", flush=True)
                        continue
                    times.setdefault(name, {})[mode] = round(seconds, 1)
                    print(f"{label} {seconds:7.1f} s", flush=True)
        if failed:
            how = "failed (a cell timeout or an error)"
            print(f"{failed} run(s) {how}", file=sys.stderr)
            return 1
        if out is not None:
            write_json(
                out,
                {"kind": KIND, "date": time.strftime("%Y-%m-%d"), "machine": machine(), "seconds": times},
                "the notebook times",
                indent=1,
            )
            print(f"wrote {out}")
    except WriteError as e:  # after the notebooks ran: the file could not be written (a full disk)
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())

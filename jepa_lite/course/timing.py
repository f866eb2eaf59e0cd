"""How long each notebook takes to run, top to bottom, in a fresh kernel: the README's run-time column.

    python -m jepa_lite.course.timing --out assets/bench/notebook_times.json  # every notebook, full and fast
    python -m jepa_lite.course.timing --only 06_llm_jepa_paper --modes full   # one notebook, one mode
    python -m jepa_lite.course.timing --repeat 10 --cell_timeout 300          # every notebook 10 times: none may hang

Each notebook is executed with `nbclient` in a new kernel started in `notebooks/` (as JupyterLab
would), offline, with `JEPA_LITE_FAST=1` for fast mode and without it for full mode; the time is the
wall-clock time of executing every cell (kernel start excluded), so reading time is not included.
Nothing is written into the notebooks. The results file records the machine (CPU count, torch
threads) and the versions, since times are only comparable on the same machine: measure on an idle
one, all notebooks in one run.

A cell that runs past `--cell_timeout` seconds (default 600) stops the notebook with a message naming the
cell, and the command exits 1: with `--repeat N` it is the check that no notebook hangs (issue 26).
"""

from __future__ import annotations

import os
import platform
import sys
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
KIND = "jepa_lite.notebook_times"  # marks the results file


def notebook_paths(only: Sequence[str] = ()) -> Dict[str, Path]:
    """{name: path} of the course notebooks (00_… to 06_…), or of the names in `only`."""
    paths = {p.stem: p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}
    unknown = [n for n in only if n not in paths]
    if unknown:
        raise ValueError(f"no notebook named {', '.join(unknown)}; the notebooks are {', '.join(paths)}")
    return {n: paths[n] for n in only} if only else paths


def time_notebook(path: Path, mode: str, timeout: int = 600) -> float:
    """Seconds to execute every cell of `path` in a fresh kernel, in `mode` ("full" or "fast").
    A cell that runs past `timeout` seconds raises nbclient's CellTimeoutError."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != FAST_ENV}
    if mode == "fast":
        env[FAST_ENV] = "1"
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    with mock.patch.dict(os.environ, env, clear=True):  # the kernel inherits the environment it starts in
        with client.setup_kernel():
            start = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            return time.perf_counter() - start


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
    if out is not None and out.exists() and not json_marked(out, "kind", KIND):
        print(f"error: --out {out} exists and is not a notebook-times file; name a new file", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellTimeoutError

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
        for name, path in paths.items():
            for mode in args.modes:
                for run in range(1, args.repeat + 1):
                    label = f"{name:22s} {mode:4s}" + (f" run {run:2d}" if args.repeat > 1 else "")
                    try:
                        seconds = time_notebook(path, mode, args.cell_timeout)
                    except CellTimeoutError as e:
                        failed += 1
                        print(f"{label} ❌ a cell ran past {args.cell_timeout} s: {str(e).splitlines()[0]}", flush=True)
                        continue
                    times.setdefault(name, {})[mode] = round(seconds, 1)
                    print(f"{label} {seconds:7.1f} s", flush=True)
        if failed:
            print(f"{failed} run(s) stopped by the cell timeout", file=sys.stderr)
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

"""The table of docs/testing.md's "Ten runs in a row", read from the logs of `timing --repeat` (issue 26).

    python -m jepa_lite.course.loop_report assets/bench/notebook_loops/*.log

Each log is the console output of one `python -m jepa_lite.course.timing --repeat N ...` loop, its first
line the command as run (`$ python -m ...`, which names the runner). A run is a line
`<notebook> <mode> run <k> <seconds> s` (done) or `<notebook> <mode> run <k> ❌ <why>` (failed); a loop
stopped before its end simply has fewer lines. Per log, mode and notebook the table gives the runs done,
the failures (verbatim) and the min / median / max seconds of the runs done.
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .timing import notebook_paths

RUN = re.compile(r"^(?P<name>\d\d_\w+)\s+(?P<mode>full|fast) run\s+(?P<run>\d+)\s+(?:(?P<s>[\d.]+) s|❌ (?P<why>.*))$")
HEADER = "| runner | mode | notebook | runs done | failed | min s | median s | max s |"


def read_log(path: Path) -> Dict:
    """{"command", "runner", "runs": [(notebook, mode, seconds or None, why or None)]} of one loop's log."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("$ "):
        raise ValueError(f"{path}: the first line must be the command as run, starting with '$ '")
    command = lines[0][2:]
    runner = re.search(r"--runner (\S+)", command)
    runs = []
    for line in lines[1:]:
        m = RUN.match(line.strip())
        if m:
            seconds = float(m["s"]) if m["s"] else None
            runs.append((m["name"], m["mode"], seconds, m["why"]))
    return {"command": command, "runner": runner[1] if runner else "nbclient", "runs": runs}


def rows(log: Dict, modes: Sequence[str]) -> List[str]:
    """One table row per mode and notebook the loop was asked for (all, or its `--only` list); a notebook the
    loop never reached has 0 runs and dashes."""
    only = re.search(r"--only ((?:\d\d_\w+ ?)+)", log["command"])
    names = notebook_paths(only[1].split() if only else ())
    out = []
    for mode in modes:
        for name in names:
            mine = [(s, why) for n, m, s, why in log["runs"] if (n, m) == (name, mode)]
            done = sorted(s for s, _ in mine if s is not None)
            failed = [why for s, why in mine if s is None]
            times = [f"{min(done):.1f}", f"{statistics.median(done):.1f}", f"{max(done):.1f}"] if done else ["–"] * 3
            cells = [
                log["runner"],
                mode,
                f"`{name}`",
                str(len(done)),
                "; ".join(failed).replace("|", "\\|") or "0",
            ] + times
            out.append("| " + " | ".join(cells) + " |")
    return out


def table(paths: Sequence[Path]) -> str:
    """The markdown table of every log in `paths`, in that order."""
    body = []
    for path in paths:
        log = read_log(path)
        modes = re.search(r"--modes ((?:(?:full|fast) ?)+)", log["command"])
        body += rows(log, modes[1].split() if modes else ("full", "fast"))
    return "\n".join([HEADER, "|" + "---|" * 8] + body)


def main(argv: Optional[Sequence[str]] = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("error: name the loop logs (e.g. assets/bench/notebook_loops/*.log)", file=sys.stderr)
        return 2
    print(table(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's run-time column is the file `python -m jepa_lite.course.timing` wrote, and the command
refuses bad input before it runs anything."""

import json
import time
from pathlib import Path

import pytest

from jepa_lite.course import timing

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_run_times_are_the_measured_ones():
    record = json.loads(timing.TIMES_FILE.read_text(encoding="utf-8"))
    assert record["kind"] == "jepa_lite.notebook_times"
    times = record["seconds"]
    assert set(times) == set(timing.notebook_paths())  # every notebook, each in both modes
    rows = {line.split("|")[1].strip().strip("`"): line for line in README.splitlines() if line.startswith("| `0")}
    for name, t in times.items():
        assert rows[name].rstrip().endswith(f"| {t['full']:.0f} s / {t['fast']:.0f} s |"), name
    m = record["machine"]
    assert (
        f"measured with `python -m jepa_lite.course.timing` on {record['date']} ({m['cpu_count']} CPU cores" in README
    )


def test_the_timing_command_refuses_bad_input_before_running(tmp_path, capsys):
    assert timing.main(["--only", "07_nothing"]) == 2
    mine = tmp_path / "mine.json"
    mine.write_text('{"my": "data"}')
    assert timing.main(["--out", str(mine), "--only", "00_overview"]) == 2
    assert mine.read_text() == '{"my": "data"}'
    assert timing.main(["--out", str(tmp_path / "no" / "t.json")]) == 2
    assert timing.main(["--out", str(tmp_path / "t.json"), "--runner", "nbconvert"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error:") for line in err)


def test_repeat_with_a_cell_timeout_stops_a_hanging_notebook_and_fails(tmp_path, monkeypatch, capsys):
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time\ntime.sleep(600)")]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "98_sleepy.ipynb")
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("y = 2")], metadata=nb.metadata),
        tmp_path / "99_quick.ipynb",
    )
    monkeypatch.setattr(timing, "NOTEBOOKS", tmp_path)
    assert timing.main(["--repeat", "2", "--modes", "fast", "--cell_timeout", "3"]) == 1
    out = capsys.readouterr()
    assert out.out.count("❌ a cell ran past 3 s") == 2 and out.out.count("99_quick") == 2
    assert "2 run(s) failed (a cell timeout or an error)" in out.err
    assert (
        timing.main(["--repeat", "0"]) == 2 and timing.main(["--repeat", "2", "--out", str(tmp_path / "t.json")]) == 2
    )


def planted(tmp_path, name, *cells):
    """A notebook of `cells` at tmp_path/name.ipynb, for the python3 kernel."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / f"{name}.ipynb")


def test_the_nbconvert_runner_fails_a_hanging_notebook_loudly_and_passes_a_good_one(tmp_path, monkeypatch, capsys):
    planted(tmp_path, "98_sleepy", "x = 1", "import time\ntime.sleep(600)")
    # the kernel runs in the notebook's folder, with JEPA_LITE_FAST=1 in fast mode
    planted(
        tmp_path,
        "99_quick",
        f"import os\nassert os.getcwd() == {str(tmp_path)!r}\nassert os.environ['JEPA_LITE_FAST'] == '1'",
    )
    before = sorted(tmp_path.iterdir())
    monkeypatch.setattr(timing, "NOTEBOOKS", tmp_path)
    start = time.monotonic()
    assert timing.main(["--modes", "fast", "--cell_timeout", "3", "--runner", "nbconvert"]) == 1
    assert time.monotonic() - start < 240
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines[0].startswith("98_sleepy              fast ❌ nbconvert: a cell ran past 3 s: A cell timed out"), lines
    assert lines[1].startswith("99_quick               fast") and lines[1].endswith(" s"), lines
    assert "1 run(s) failed (a cell timeout or an error)" in out.err
    assert sorted(tmp_path.iterdir()) == before  # the executed copies went to a temporary folder


def gone(pid: str) -> bool:
    """True once process `pid` has exited (gone, or a zombie waiting to be reaped)."""
    try:
        return "State:\tZ" in (Path("/proc") / pid / "status").read_text()
    except FileNotFoundError:
        return True


def test_the_nbconvert_backstop_kills_a_run_that_outlasts_it(tmp_path, monkeypatch):
    planted(
        tmp_path,
        "98_sleepy",
        "import os\nopen('kernel.pid', 'w').write(str(os.getpid()))",
        "import time\ntime.sleep(600)",
    )
    monkeypatch.setattr(timing, "backstop", lambda path, timeout: 20)
    start = time.monotonic()
    with pytest.raises(timing.RunFailed, match="nbconvert ran past the backstop of 20 s and was killed"):
        timing.time_notebook_nbconvert(tmp_path / "98_sleepy.ipynb", "fast", timeout=600)
    assert time.monotonic() - start < 90
    pid = (tmp_path / "kernel.pid").read_text()
    for _ in range(30):
        if gone(pid):
            break
        time.sleep(1)
    else:
        raise AssertionError("the kernel outlived the killed nbconvert run")


def test_why_an_nbconvert_run_failed_is_one_line():
    colour = "\x1b[31mZeroDivisionError\x1b[39m: division by zero\n"
    assert timing.nbconvert_failure("Traceback ...\n" + colour + "\n", 1, 300) == (
        "nbconvert exited 1: ZeroDivisionError: division by zero"
    )
    stopped = "nbclient.exceptions.CellTimeoutError: A cell timed out while it was being executed, after 3 seconds.\n"
    assert timing.nbconvert_failure(stopped + "-------------------\nimport time\n", 1, 3) == (
        "a cell ran past 3 s: A cell timed out while it was being executed, after 3 seconds."
    )
    assert timing.nbconvert_failure("", 137, 3) == "nbconvert exited 137: (no message)"


def test_an_unknown_runner_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        timing.main(["--runner", "papermill"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument --runner: invalid choice: 'papermill'"), err


def test_the_loop_table_counts_runs_failures_and_times_per_notebook(tmp_path):
    from jepa_lite.course import loop_report

    log = tmp_path / "b.log"
    log.write_text(
        "$ python -m jepa_lite.course.timing --repeat 2 --modes fast --runner nbconvert\n"
        "[IPKernelApp] WARNING | Kernel is running over TCP without encryption.\n"
        "00_overview            fast run  1    12.0 s\n"
        "00_overview            fast run  2    10.0 s\n"
        "01_span_masking        fast run  1 ❌ nbconvert: a cell ran past 3 s: A cell timed out | x\n",
        encoding="utf-8",
    )
    rows = loop_report.table([log]).splitlines()
    assert rows[0] == loop_report.HEADER and len(rows) == 2 + len(timing.notebook_paths())
    assert rows[2] == "| nbconvert | fast | `00_overview` | 2 | 0 | 10.0 | 11.0 | 12.0 |"
    failed = "nbconvert: a cell ran past 3 s: A cell timed out \\| x"
    assert rows[3] == f"| nbconvert | fast | `01_span_masking` | 0 | {failed} | – | – | – |"
    # a notebook the loop never reached
    assert rows[-1].startswith("| nbconvert | fast | `07_semantic_tubes` | 0 | 0 | – |")
    only = "$ python -m jepa_lite.course.timing --repeat 1 --modes full --only 05_training 07_semantic_tubes\n"
    log.write_text(only + "05_training            full run  1    90.0 s\n", encoding="utf-8")
    assert loop_report.table([log]).splitlines()[2:] == [  # a loop run with --only: its notebooks alone
        "| nbclient | full | `05_training` | 1 | 0 | 90.0 | 90.0 | 90.0 |",
        "| nbclient | full | `07_semantic_tubes` | 0 | 0 | – | – | – |",
    ]
    log.write_text("00_overview            fast run  1    12.0 s\n", encoding="utf-8")
    with pytest.raises(ValueError, match="the first line must be the command as run"):
        loop_report.table([log])


def test_the_ten_runs_table_in_the_docs_is_the_one_the_loop_logs_give():
    from jepa_lite.course import loop_report

    logs = sorted((ROOT / "assets" / "bench" / "notebook_loops").glob("*.log"))
    assert logs, "no loop logs in assets/bench/notebook_loops"
    page = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    assert loop_report.table(logs) in page
    runs = [r for log in logs for r in loop_report.read_log(log)["runs"]]
    assert all(seconds is not None for _, _, seconds, _ in runs)  # none failed
    assert f"No run failed and none was stopped by the cell timeout: {len(runs)} runs in all." in " ".join(page.split())


def test_a_cell_that_raises_is_one_failed_run_and_the_loop_goes_on(tmp_path, monkeypatch, capsys):
    """nbclient runner: a notebook whose cell raises counts as a failed run (one line naming the error), and the
    other notebooks of the loop still run."""
    import nbformat

    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")], metadata=meta), tmp_path / "97_bad.ipynb"
    )
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("y = 2")], metadata=meta), tmp_path / "99_quick.ipynb"
    )
    monkeypatch.setattr(timing, "NOTEBOOKS", tmp_path)
    assert timing.main(["--repeat", "2", "--modes", "fast", "--cell_timeout", "60"]) == 1
    out = capsys.readouterr()
    assert (
        out.out.count("97_bad                 fast run") == 2
        and out.out.count("❌ a cell raised: ZeroDivisionError") == 2
    )
    assert out.out.count("99_quick") == 2 and "2 run(s) failed (a cell timeout or an error)" in out.err

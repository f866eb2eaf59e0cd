"""The README's run-time column is the file `python -m jepa_lite.course.timing` wrote, and the command
refuses bad input before it runs anything."""

import json
from pathlib import Path

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
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error:") for line in err)


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
    assert "2 run(s) stopped by the cell timeout" in out.err
    assert (
        timing.main(["--repeat", "0"]) == 2 and timing.main(["--repeat", "2", "--out", str(tmp_path / "t.json")]) == 2
    )

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
    assert f"measured with `python -m jepa_lite.course.timing` on {record['date']} ({m['cpu_count']} CPU cores" in README


def test_the_timing_command_refuses_bad_input_before_running(tmp_path, capsys):
    assert timing.main(["--only", "07_nothing"]) == 2
    mine = tmp_path / "mine.json"
    mine.write_text('{"my": "data"}')
    assert timing.main(["--out", str(mine), "--only", "00_overview"]) == 2
    assert mine.read_text() == '{"my": "data"}'
    assert timing.main(["--out", str(tmp_path / "no" / "t.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error:") for line in err)

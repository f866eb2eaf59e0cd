"""The studies' `prepare` (issue 24): the splits and the scratch model are written into a temporary
folder of the kit's own (`tempfile.TemporaryDirectory` under TMPDIR), never into a user's place. A full
disk there (RLIMIT_FSIZE in the child) is one `error:` line and exit 2 (no run has started), with the
folder removed; a SIGKILL while it is written leaves the user's --out folder untouched."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from test_guarantees import env, one_error_line

MODULES = ["jepa_lite.paired.nlrx_study", "jepa_lite.paired.study"]


def kits(tmpdir) -> list:
    """The kit's work folders under TMPDIR (torch keeps its own caches there too)."""
    return [n for n in os.listdir(tmpdir) if n.startswith(("jepa_lite_nlrx_", "jepa_lite_study_"))]


def splits_written(tmpdir) -> bool:
    """Whether a split (.jsonl) is in a folder under TMPDIR. Other programs come and go there too (the C++
    compiler that torch.compile runs keeps its temporary files in TMPDIR): a name may vanish while read."""
    for d in tmpdir.iterdir():
        try:
            if d.is_dir() and any(f.name.endswith(".jsonl") for f in d.iterdir()):
                return True
        except OSError:  # gone since it was listed
            continue
    return False


def study_env(tmpdir):
    return {**env(), "TMPDIR": str(tmpdir)}


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("limit", [20_000, 3_000_000])  # the splits, or the scratch model's safetensors
def test_a_full_disk_while_preparing_is_one_line_exit_2_and_leaves_nothing(tmp_path, module, limit):
    work, mine = tmp_path / "tmp", tmp_path / "mine"
    work.mkdir(), mine.mkdir()
    out = mine / "s.json"
    script = textwrap.dedent(f"""
        import resource, runpy, sys
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
        sys.argv = ["x", "--fast", "--device", "cpu", "--out", {str(out)!r}]
        runpy.run_module({module!r}, run_name="__main__")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=study_env(work), timeout=300)
    assert r.returncode == 2, r.stderr[-3000:]
    line = one_error_line(r.stderr)
    assert "could not write the study's work files" in line and "TMPDIR" in line, line
    assert kits(work) == []  # the work folder went with the failure
    assert not out.exists()
    assert [n for n in os.listdir(mine) if not n.endswith(".lock")] == []


@pytest.mark.parametrize("module", MODULES)
def test_sigkill_while_preparing_leaves_the_users_folder_untouched(tmp_path, module, monkeypatch):
    work, mine = tmp_path / "tmp", tmp_path / "mine"
    work.mkdir(), mine.mkdir()
    (mine / "s.json.tmp").write_text("my notes")
    out = mine / "s.json"
    p = subprocess.Popen(
        [sys.executable, "-m", module, "--fast", "--device", "cpu", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=study_env(work),
    )
    deadline = time.monotonic() + 240
    while not splits_written(work):
        assert p.poll() is None and time.monotonic() < deadline, "the study never started writing its splits"
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert (mine / "s.json.tmp").read_text() == "my notes"
    if out.exists():  # only ever a whole results file
        json.loads(out.read_text())
    assert [n for n in os.listdir(mine) if not n.endswith(".lock")] == ["s.json.tmp"]  # nothing else of ours
    assert len(kits(work)) == 1  # what a SIGKILL leaves is under TMPDIR, in a folder named as the kit's own
    import tempfile

    from jepa_lite.paired.study import sweep_work_folders

    monkeypatch.setattr(tempfile, "tempdir", str(work))
    left = kits(work)[0]
    prefix = next(p for p in ("jepa_lite_nlrx_", "jepa_lite_study_") if left.startswith(p))
    assert sweep_work_folders(prefix) == [left] and kits(work) == []  # the next study's start removes it


def test_a_later_study_sweeps_the_work_folders_of_killed_ones_and_no_other(tmp_path, monkeypatch):
    import tempfile

    from jepa_lite.paired.study import sweep_work_folders

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that has ended: its pid names no process now
    for name in (f"jepa_lite_study_{gone.pid}_x1", f"jepa_lite_study_{os.getpid()}_x2", "jepa_lite_study_notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "splits.jsonl").write_text("{}")
    (tmp_path / f"jepa_lite_nlrx_{gone.pid}_x3").mkdir()  # another study's prefix: not this sweep's
    assert sweep_work_folders("jepa_lite_study_") == [f"jepa_lite_study_{gone.pid}_x1"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"jepa_lite_study_{os.getpid()}_x2", "jepa_lite_study_notes", f"jepa_lite_nlrx_{gone.pid}_x3"]
    )

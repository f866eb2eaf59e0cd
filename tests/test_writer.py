"""One writer for every file and folder the kit writes (`jepa_lite.writer`): a temporary name of the kit's
own (a user's `NAME.tmp` is never touched), atomic replace of files and swap of folders, one process per
output, a full disk answered in one line with the old version whole. Process-level behaviour (file-size
limits, the lock) is tested on real processes."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jepa_lite import writer
from jepa_lite.checkpoint import save_checkpoint
from jepa_lite.paired import study

ROOT = Path(__file__).resolve().parent.parent


def env():
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("HF_")},
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_users_dot_tmp_file_survives_every_writer(tmp_path):
    """(Before: write_json wrote `<out>.tmp` and renamed it away, so the user's file of that name was gone.)"""
    for name in ("r.json", "c.pt", "m"):
        (tmp_path / f"{name}.tmp").write_text("my notes")
    writer.write_json(tmp_path / "r.json", {"a": 1})
    save_checkpoint(tmp_path / "c.pt", {"step": 1})
    with writer.atomic_folder(tmp_path / "m") as tmp:
        (tmp / "w.txt").write_text("new")
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1} and (tmp_path / "m" / "w.txt").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["c.pt", "c.pt.tmp", "m", "m.tmp", "r.json", "r.json.tmp"]
    assert all((tmp_path / f"{n}.tmp").read_text() == "my notes" for n in ("r.json", "c.pt", "m"))


def test_the_writer_makes_missing_folders_and_a_file_in_the_way_is_one_line(tmp_path):
    target = tmp_path / "odd dir ü" / "deeper" / "figures.json"
    writer.write_json(target, {"a": 1})
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1}
    (tmp_path / "plain").write_text("a user's file\n")
    with pytest.raises(writer.WriteError, match=r"^could not write the results file .*plain/x\.json: .*; nothing was"):
        writer.write_json(tmp_path / "plain" / "x.json", {"a": 1})
    assert (tmp_path / "plain").read_text() == "a user's file\n"


def test_a_folder_is_swapped_in_whole_or_not_at_all(tmp_path):
    out = tmp_path / "model"
    with writer.atomic_folder(out) as tmp:
        (tmp / "a").write_text("old a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b").write_text("old b")
    with pytest.raises(RuntimeError):
        with writer.atomic_folder(out) as tmp:
            (tmp / "a").write_text("new a")
            raise RuntimeError("the writer failed half-way")
    assert (out / "a").read_text() == "old a" and (out / "sub" / "b").read_text() == "old b"
    with writer.atomic_folder(out) as tmp:
        (tmp / "c").write_text("new c")
    assert sorted(os.listdir(out)) == ["c"]  # the new version only, nothing of the old one mixed in
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary left


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_full_disk_leaves_the_old_version_whole_and_no_temporary(tmp_path, kind):
    """RLIMIT_FSIZE in a child process stands in for a full disk: one WriteError line, old version intact."""
    out = tmp_path / ("r.json" if kind == "file" else "model")
    if kind == "file":
        writer.write_json(out, {"old": True})
        write = f"writer.write_json({str(out)!r}, {{'big': 'x' * 200_000}})"
    else:
        with writer.atomic_folder(out) as tmp:
            (tmp / "w").write_text("old")
        write = f"with writer.atomic_folder({str(out)!r}) as t:\n    (t / 'w').write_text('x' * 200_000)"
    script = textwrap.dedent("""
        import resource, sys
        from pathlib import Path
        from jepa_lite import writer
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
        try:
        {write}
        except writer.WriteError as e:
            print(f"error: {{e}}", file=sys.stderr)
            sys.exit(2)
    """).format(write=textwrap.indent(write, "    "))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env(), timeout=60)
    assert r.returncode == 2, r.stderr
    line = one_error_line(r.stderr)
    assert "ulimit -f" in line and "previous" in line and "intact" in line
    if kind == "file":
        assert json.loads(out.read_text()) == {"old": True}
    else:
        assert (out / "w").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == [out.name]


def test_a_stale_temporary_folder_of_a_dead_writer_is_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = tmp_path / f".model.jepa_lite-{dead}-abc123.tmp"
    (stale / "sub").mkdir(parents=True)
    (tmp_path / "model.tmp").mkdir()  # a user's folder of a similar name
    assert writer.remove_stale_temps(tmp_path) == [stale]
    assert sorted(os.listdir(tmp_path)) == ["model.tmp"]


def test_two_studies_on_one_out_the_second_is_refused_and_a_planted_tmp_survives(tmp_path, capsys):
    """Two processes on one results file: the second stops before any work with one `error:` line naming
    the first; the first's writes leave the user's `s.json.tmp` alone."""
    out = tmp_path / "s.json"
    planted = tmp_path / "s.json.tmp"
    planted.write_text("my notes")
    first = subprocess.Popen(
        [sys.executable, "-m", "jepa_lite.paired.study", "--fast", "--out", str(out)],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not (tmp_path / ".s.json.lock").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert first.poll() is None, first.stderr.read()
        assert study.main(["--fast", "--out", str(out)]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "being written by another run" in line and str(first.pid) in line
        while not out.exists() and first.poll() is None and time.time() < deadline:  # the first run's write
            time.sleep(0.2)
        assert json.loads(out.read_text())["kind"] == study.KIND
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert planted.read_text() == "my notes"
    assert not [n for n in os.listdir(tmp_path) if "jepa_lite-" in n]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"kind": "jepa_lite.study"}',
        '{"kind": "jepa_lite.study", "config": {}, "runs": [{}]}',
        '{"kind": "jepa_lite.study", "config": {"nope": 1}, "runs": []}',
        "[" * 100_000,
    ],
)
def test_the_study_refuses_a_damaged_results_file_on_resume_in_one_line(tmp_path, capsys, content):
    out = tmp_path / "s.json"
    out.write_text(content)
    assert study.main(["--fast", "--resume", "--out", str(out)]) == 2
    one_error_line(capsys.readouterr().err)
    assert out.read_text() == content


def test_the_study_refuses_a_device_this_machine_lacks(tmp_path, capsys):
    assert study.main(["--fast", "--device", "cuda:3", "--out", str(tmp_path / "s.json")]) == 2
    assert "cuda:3" in one_error_line(capsys.readouterr().err) and os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", ["timing", "probe"])
def test_the_notebook_times_and_probe_scores_refuse_an_out_another_process_writes(tmp_path, capsys, command):
    """The lock is taken before any notebook or probe runs: the refusal costs nothing."""
    from jepa_lite.course import probe, timing

    out = tmp_path / "r.json"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from jepa_lite import writer; import time\nwith writer.PathLock({str(out)!r}):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        env=env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.perf_counter()
        main = timing.main if command == "timing" else probe.main
        assert main(["--out", str(out)]) == 2
        assert time.perf_counter() - start < 5
        assert str(holder.pid) in one_error_line(capsys.readouterr().err)
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_sigkill_mid_write_leaves_a_whole_version_and_the_next_writer_cleans_up(tmp_path, kind):
    """A writer killed at random moments: what is at the name is always one whole version (each version
    holds one digit, repeated), never a mix or a half; the dead writer's temporaries are removed afterwards."""
    import signal

    out = tmp_path / ("r.txt" if kind == "file" else "m")
    if kind == "file":
        body = "writer.write_text(out, str(i % 10) * 3_000_000)"
    else:
        body = (
            "with writer.atomic_folder(out) as t:\n        (t / 'a').write_text(str(i % 10) * "
            "1_500_000)\n        (t / 'b').write_text(str(i % 10) * 1_500_000)"
        )
    script = (
        f"from pathlib import Path\nfrom jepa_lite import writer\nout = Path({str(out)!r})\ni "
        f"= 0\nwhile True:\n    i += 1\n    {body}\n"
    )
    for delay in (0.4, 0.55, 0.7, 0.85):
        p = subprocess.Popen([sys.executable, "-c", script], env=env())
        time.sleep(delay)
        while not out.exists():
            time.sleep(0.02)
        time.sleep(0.1)
        p.send_signal(signal.SIGKILL)
        p.wait()
        texts = [out.read_text()] if kind == "file" else [(out / "a").read_text(), (out / "b").read_text()]
        assert len(set("".join(texts))) == 1 and all(len(t) == len(texts[0]) for t in texts), (
            "a mixed or partial version"
        )
        if kind == "folder":
            assert sorted(os.listdir(out)) == ["a", "b"]
    writer.remove_stale_temps(tmp_path)  # what SaveTarget, replacing_folder and the study call before they write
    assert not [n for n in os.listdir(tmp_path) if "jepa_lite-" in n]

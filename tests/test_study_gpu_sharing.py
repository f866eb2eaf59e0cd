"""The studies' workers share a CUDA GPU through a private MPS daemon (`study.shared_gpu`): started before
the sitting, named to the workers through the environment, stopped and cleaned up after; refused in one
line where it cannot be had. A stand-in `nvidia-cuda-mps-control` on PATH records what it was asked."""

import json
import math
import os
import re
import stat
import statistics
import sys
from pathlib import Path

import pytest
from scipy import stats

from jepa_lite.paired import study
from jepa_lite.paired.study import MPS_ENV, StudyError, shared_gpu


def stand_in(folder: Path, exit_code: int = 0) -> Path:
    """A fake control program: appends its arguments, stdin and MPS folders to calls.log; exits `exit_code`."""
    log = folder / "calls.log"
    program = folder / "bin" / "nvidia-cuda-mps-control"
    program.parent.mkdir()
    program.write_text(
        "#!/bin/sh\n"
        f'echo "args=$* pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY" >> "{log}"\n'
        f'if [ -z "$*" ]; then cat >> "{log}"; fi\n'
        + (f'echo "cannot start: the GPU is busy" >&2\nexit {exit_code}\n' if exit_code else "exit 0\n")
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return log


PROBE_OK = (sys.executable, "-c", "import os; assert os.path.isdir(os.environ['CUDA_MPS_PIPE_DIRECTORY'])")


@pytest.fixture
def clean_env(monkeypatch):
    for k in MPS_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(study, "MPS_PROBE", PROBE_OK)  # a CUDA client that works (this machine may have no GPU)
    return monkeypatch


def test_mps_is_started_named_to_the_workers_and_stopped_after(tmp_path, clean_env):
    log = stand_in(tmp_path)
    clean_env.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    lines = []
    with shared_gpu("auto", "cuda", 16, log=lines.append) as sharing:
        assert sharing == "mps"
        pipe, logs = (Path(os.environ[k]) for k in MPS_ENV)
        assert pipe.is_dir() and logs.is_dir() and pipe.parent == logs.parent
        started = log.read_text()
    assert started == f"args=-d pipe={pipe} log={logs}\n"
    assert log.read_text() == started + f"args= pipe={pipe} log={logs}\nquit\n"  # the same daemon told to quit
    assert not any(os.environ.get(k) for k in MPS_ENV) and not pipe.parent.exists()
    assert lines and "MPS" in lines[0]


@pytest.mark.parametrize("mode, device, workers", [("off", "cuda", 16), ("auto", "cpu", 16), ("auto", "cuda", 1)])
def test_no_daemon_where_it_is_not_asked_for(tmp_path, clean_env, mode, device, workers):
    log = stand_in(tmp_path)
    clean_env.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with shared_gpu(mode, device, workers) as sharing:
        assert sharing == "time slices" and not any(os.environ.get(k) for k in MPS_ENV)
    assert not log.exists()


def test_auto_goes_on_in_time_slices_and_mps_is_one_error_line(tmp_path, clean_env):
    stand_in(tmp_path, exit_code=1)
    clean_env.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    lines = []
    with shared_gpu("auto", "cuda", 8, log=lines.append) as sharing:
        assert sharing == "time slices"
    assert lines == [
        "MPS not used (nvidia-cuda-mps-control -d failed: cannot start: the GPU is busy); the workers share the "
        "GPU in time slices"
    ]
    with pytest.raises(StudyError, match=r"^--share_gpu mps: nvidia-cuda-mps-control -d failed: cannot start"):
        with shared_gpu("mps", "cuda", 8):
            pytest.fail("entered without a daemon")
    clean_env.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(StudyError, match=r"^--share_gpu mps: nvidia-cuda-mps-control is not on PATH$"):
        with shared_gpu("mps", "cuda", 8):
            pass
    with pytest.raises(StudyError, match=r"^--share_gpu mps: --device cpu is no CUDA GPU$"):
        with shared_gpu("mps", "cpu", 8):
            pass


def test_a_daemon_no_cuda_process_can_use_is_stopped_and_not_used(tmp_path, clean_env):
    log = stand_in(tmp_path)
    clean_env.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    clean_env.setattr(study, "MPS_PROBE", (sys.executable, "-c", "raise SystemExit('no CUDA through MPS here')"))
    lines = []
    with shared_gpu("auto", "cuda", 8, log=lines.append) as sharing:
        assert sharing == "time slices" and not any(os.environ.get(k) for k in MPS_ENV)
    assert lines == [
        "MPS not used (a CUDA process could not use the MPS daemon: no CUDA through MPS here); the workers share "
        "the GPU in time slices"
    ]
    calls = log.read_text().splitlines()
    assert calls[0].startswith("args=-d ") and calls[1].startswith("args= ") and calls[2] == "quit"  # stopped
    with pytest.raises(StudyError, match=r"^--share_gpu mps: a CUDA process could not use the MPS daemon: no CUDA"):
        with shared_gpu("mps", "cuda", 8):
            pytest.fail("entered without a daemon")


def test_a_daemon_set_up_already_is_left_to_itself(tmp_path, clean_env):
    log = stand_in(tmp_path)
    clean_env.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    clean_env.setenv("CUDA_MPS_PIPE_DIRECTORY", "/tmp/theirs")
    with shared_gpu("auto", "cuda", 8) as sharing:
        assert sharing == "time slices" and os.environ["CUDA_MPS_PIPE_DIRECTORY"] == "/tmp/theirs"
    with pytest.raises(StudyError, match="CUDA_MPS_PIPE_DIRECTORY is set already"):
        with shared_gpu("mps", "cuda", 8):
            pass
    assert not log.exists()


def test_the_study_commands_take_share_gpu(capsys):
    from jepa_lite.paired import nlrx_study

    for command in (study.main, nlrx_study.main):
        with pytest.raises(SystemExit) as stopped:
            command(["--share_gpu", "always"])
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and "--share_gpu" in err and "invalid choice" in err


def key(r: dict) -> tuple:
    """What names an NL-RX study run (its settings and seed)."""
    return r["stage"], r["start"], r["lbd"], r["lr"], r["seed"], r["n_train"]


def sharing_figures() -> dict:
    """docs/study.md's table and sentences on MPS, from the two re-made sub-grids of 2026-12-07 and the committed
    study file."""
    import json
    import math
    import statistics

    from scipy import stats

    root = Path(__file__).resolve().parent.parent
    committed = json.loads((root / "jepa_lite/resources/study_nlrx.json").read_text(encoding="utf-8"))

    old = {key(r): r for r in committed["runs"]}
    out, waves = {}, {}
    for name in ("off", "mps"):
        wave = json.loads(
            (root / f"assets/bench/h100_2026-12-07/study_wave_{name.replace('off', 'time_slices')}.json").read_text(
                encoding="utf-8"
            )
        )
        waves[name] = wave
        runs, sitting = wave["runs"], wave["sitting"]
        assert sitting["gpu_sharing"] == {"off": "time slices", "mps": "mps"}[name] and sitting["workers"] == 16
        out[f"{name}_runs"], out[f"{name}_s"] = len(runs), f"{sitting['seconds']:.1f}"
        out[f"{name}_rate"] = f"{60 * len(runs) / sitting['seconds']:.1f}"
        moved = [r["exact_match"]["test"] - old[key(r)]["exact_match"]["test"] for r in runs if r["lbd"] > 0]
        mean, sd = statistics.mean(moved), statistics.stdev(moved)
        half = stats.t.ppf(0.975, len(moved) - 1) * sd / math.sqrt(len(moved))
        out[f"{name}_d"], out[f"{name}_n"] = f"{mean:+.3f}", len(moved)
        out[f"{name}_lo"], out[f"{name}_hi"] = f"{mean - half:+.3f}", f"{mean + half:+.3f}"
    same = [key(r) for r in waves["off"]["runs"]]  # the 16 λ > 0 runs that time slices made: MPS made them first
    mps = {key(r): r for r in waves["mps"]["runs"]}
    assert len(same) == 16 and all(old[k]["lbd"] > 0 for k in same) and [key(r) for r in waves["mps"]["runs"][:16]]
    fit = {
        name: statistics.mean(w_run["fit_seconds"] for w_run in waves[name]["runs"] if key(w_run) in same)
        for name in ("off", "mps")
    }
    assert {key(r) for r in waves["mps"]["runs"][:16]} == set(same)  # the first 16 MPS finished: those, at once
    out["off_fit"], out["mps_fit"] = f"{fit['off']:.1f}", f"{fit['mps']:.1f}"
    out["speedup"] = f"{fit['off'] / fit['mps']:.2f}"
    out["committed_fit"] = f"{statistics.mean(old[k]['fit_seconds'] for k in same):.1f}"
    lm = [r for r in mps.values() if r["lbd"] == 0]
    out["lm_n"] = len(lm)
    out["lm_same"] = sum(
        r["exact_match"] == old[key(r)]["exact_match"] and r["history"] == old[key(r)]["history"] for r in lm
    )
    cells = {}
    for r in committed["runs"]:
        if r["stage"] == "lambda" and r["start"] == "pretrained":
            cells.setdefault((r["lbd"], r["lr"]), []).append(r["exact_match"]["test"])
    spreads = [statistics.stdev(v) for v in cells.values()]
    out["sd_lo"], out["sd_hi"] = f"{min(spreads):.3f}", f"{max(spreads):.3f}"
    return out


def test_the_study_page_quotes_the_mps_measurement_as_the_files_hold_it():
    page = (Path(__file__).resolve().parent.parent / "docs" / "study.md").read_text(encoding="utf-8")
    section = page[page.index("### Sharing the GPU between the workers") : page.index("## Semantic Tube")]
    f = sharing_figures()
    text = " ".join(section.split())
    for line in (
        f"| time slices (`off`) | {f['off_runs']} in {f['off_s']} s | {f['off_rate']} runs/min | {f['off_fit']} s each "
        "(fit, mean) |",
        f"| MPS | {f['mps_runs']} in {f['mps_s']} s | {f['mps_rate']} runs/min | {f['mps_fit']} s each: "
        f"**{f['speedup']}× faster** |",
        f"({f['lm_same']} of {f['lm_n']}, exact match and loss history)",
        f"moved by {f['mps_d']} on average under MPS (95% t interval {f['mps_lo']} to {f['mps_hi']}, "
        f"{f['mps_n']} runs)",
        f"by {f['off_d']} in time slices ({f['off_lo']} to {f['off_hi']}, {f['off_n']} runs)",
        f"a spread of {f['sd_lo']}–{f['sd_hi']} between the seeds of one setting",
        f"The same 16 runs took {f['committed_fit']} s each in the committed sittings",
    ):
        assert line in text, line
    assert float(f["speedup"]) < 3 and "short of the 3×" in text  # the page says the target is not met
    assert f["lm_same"] == f["lm_n"] > 0
    lo, hi = float(f["mps_lo"]), float(f["mps_hi"])
    assert lo < 0 < hi and max(-lo, hi) < float(f["sd_lo"])  # "stay what they were": within the seeds' spread


def test_a_stopped_sitting_still_stops_its_daemon(tmp_path, clean_env):
    """Ctrl-C or SIGTERM (which the study commands turn into KeyboardInterrupt) inside the sitting: the daemon is
    told to quit, its folder removed and the variables gone, and the interruption goes on up."""
    log = stand_in(tmp_path)
    clean_env.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(KeyboardInterrupt):
        with shared_gpu("mps", "cuda", 4, log=lambda s: None):
            folder = Path(os.environ["CUDA_MPS_PIPE_DIRECTORY"]).parent
            raise KeyboardInterrupt
    assert log.read_text().splitlines()[-1] == "quit" and not folder.exists()
    assert not any(os.environ.get(k) for k in MPS_ENV)


def test_the_study_page_quotes_the_graphed_steps_as_the_files_hold_them():
    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "study.md").read_text(encoding="utf-8")
    text = " ".join(page[page.index("#### Each step as one launch") : page.index("## Semantic Tube")].split())
    bench = root / "assets/bench/h100_2026-12-07"
    alone = {}
    for line in (bench / "alone.txt").read_text(encoding="utf-8").splitlines()[1:]:
        m = re.fullmatch(
            r"(new|old) code, cuda_graphs (True|False): ([\d.]+) ms/step wall, ([\d.]+) ms/step host CPU", line
        )
        alone[m[1], m[2] == "True"] = float(m[3]), float(m[4])
    eager, graphed, old = alone["new", False], alone["new", True], alone["old", False]
    assert (
        f"{eager[0]:.1f} ms per step eager, {graphed[0]:.2f} ms graphed ({eager[0] / graphed[0]:.1f}× faster)" in text
    )
    assert f"and {old[0]:.1f} ms with the code before graphs" in text
    assert all(abs(wall - cpu) <= 0.01 * wall for wall, cpu in alone.values())  # host CPU time = wall time
    wave = json.loads((bench / "study_wave_graphs.json").read_text(encoding="utf-8"))
    runs, sitting = wave["runs"], wave["sitting"]
    assert sitting["cuda_graphs"] and sitting["gpu_sharing"] == "mps" and sitting["workers"] == 16 and len(runs) == 32
    jepa = [r for r in runs if r["lbd"] > 0]
    fit = statistics.mean(r["fit_seconds"] for r in jepa)
    per_step = 1000 * fit / jepa[0]["steps"]
    assert f"made the 32 runs in {sitting['seconds']:.1f} s, and a λ > 0 run took {fit:.1f} s to fit" in text
    assert f"{per_step:.1f} ms per step" in text and f"{per_step / graphed[0]:.1f} times as long as alone" in text
    committed = json.loads((root / "jepa_lite/resources/study_nlrx.json").read_text(encoding="utf-8"))

    old_runs = {key(r): r for r in committed["runs"]}
    before = statistics.mean(old_runs[key(r)]["fit_seconds"] for r in jepa)
    assert f"fitted the same λ > 0 runs in {before:.1f} s on average" in text and before < 3 * fit  # not 3× faster
    assert moved_by(runs, old_runs, 32) in text


def moved_by(runs, committed: dict, n: int) -> str:
    """How the page words the mean move of the runs' test exact match from the committed runs, with its 95% t
    interval (paired by run)."""
    moved = [r["exact_match"]["test"] - committed[key(r)]["exact_match"]["test"] for r in runs]
    assert len(moved) == n
    mean = statistics.mean(moved)
    half = stats.t.ppf(0.975, len(moved) - 1) * statistics.stdev(moved) / math.sqrt(len(moved))
    return (
        f"moved by {mean:+.3f} on average from the committed runs (95% t interval {mean - half:+.3f} to "
        f"{mean + half:+.3f}, {n} runs)"
    )


def test_the_study_page_quotes_the_step_rows_timing_as_the_files_hold_them():
    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "study.md").read_text(encoding="utf-8")
    text = " ".join(page[page.index("Since then a step's rows") : page.index("## Semantic Tube")].split())
    bench = root / "assets/bench/h100_2026-12-07"
    log = (bench / "study_wave_rows_log.txt").read_text(encoding="utf-8")
    eager, graphed = (
        float(re.search(rf"new code, cuda_graphs {g}: ([\d.]+) ms/step wall", log)[1]) for g in ("False", "True")
    )
    before = float(re.search(r"cuda_graphs True: ([\d.]+) ms/step", (bench / "alone.txt").read_text())[1])
    assert f"{eager:.2f} ms per step eager and {graphed:.2f} ms graphed, {before / graphed:.1f}× faster" in text
    committed = {key(r): r for r in json.loads((root / "jepa_lite/resources/study_nlrx.json").read_text())["runs"]}
    waves = {}
    for code in ("new", "old"):
        wave = json.loads((bench / f"study_wave_{code}_rows.json").read_text(encoding="utf-8"))
        assert wave["sitting"]["workers"] == 16 and wave["sitting"]["gpu_sharing"] == "mps"
        assert wave["sitting"].get("cuda_graphs", False) == (code == "new") and len(wave["runs"]) == 32
        jepa = [r for r in wave["runs"] if r["lbd"] > 0]
        waves[code] = wave["sitting"]["seconds"], statistics.mean(r["fit_seconds"] for r in jepa), wave["runs"]
    (new, fit, runs), (old, fit_old, _) = waves["new"], waves["old"]
    assert f"took {new:.1f} s with today's code and {old:.1f} s with the code before graphs" in text
    per_step = 1000 * fit / runs[0]["steps"]
    assert f"fitted in {fit:.1f} s against {fit_old:.1f} s, {per_step:.1f} ms per step, " in text
    assert f"{per_step / graphed:.1f} times its step alone" in text
    assert moved_by(runs, committed, 32) in text


def test_the_study_page_quotes_runs_trained_as_one_as_the_files_hold_them():
    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "study.md").read_text(encoding="utf-8")
    text = " ".join(page[page.index("##### Runs trained as one") : page.index("## Semantic Tube")].split())
    bench = root / "assets/bench/h100_2026-12-07"
    steps = json.loads((bench / "batched_steps.json").read_text(encoding="utf-8"))
    assert steps["device"] == "NVIDIA H100 80GB HBM3"
    assert f"within {max(c['max_dw'] for c in steps['check']):.1e} of the runs alone" in text
    alone = steps["alone_graphed_ms"][0]
    assert f"took {alone:.2f} ms per step ({1000 / alone:.0f} run-steps per second)" in text
    ms = {int(k): v[0] for k, v in steps["batched"].items()}
    assert (
        f"took {ms[1]:.2f} ms (K = 1), {ms[4]:.2f} ms (K = 4), {ms[8]:.2f} ms (K = 8: {8000 / ms[8]:.0f} run-steps/s)"
        in text
    )
    assert f"{ms[16]:.2f} ms (K = 16: {16000 / ms[16]:.0f} run-steps/s)" in text and ms[4] > ms[8]
    log = (bench / "batched_log.txt").read_text(encoding="utf-8")
    assert "re-made 0 of 32" in log and "Command terminated by signal 9" in log
    stopped = float(re.search(r"together wave: wall ([\d.]+) s", log)[1])
    assert f"stopped it at {stopped:.0f} s" in text
    wave = json.loads((bench / "study_wave_new_rows.json").read_text(encoding="utf-8"))
    assert f"made the 32 runs in {wave['sitting']['seconds']:.1f} s" in text

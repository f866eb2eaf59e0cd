"""The studies' workers share a CUDA GPU through a private MPS daemon (`study.shared_gpu`): started before
the sitting, named to the workers through the environment, stopped and cleaned up after; refused in one
line where it cannot be had. A stand-in `nvidia-cuda-mps-control` on PATH records what it was asked."""

import os
import stat
from pathlib import Path

import pytest

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


@pytest.fixture
def clean_env(monkeypatch):
    for k in MPS_ENV:
        monkeypatch.delenv(k, raising=False)
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
    assert lines == ["MPS did not start (cannot start: the GPU is busy); the workers share the GPU in time slices"]
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

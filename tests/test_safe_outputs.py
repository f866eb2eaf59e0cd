"""The kept model is never lost (issue 24, item 2): the paired `--save_dir` and the export folder are checked
before any work (writable, room, not the user's, no dangling link), written beside and swapped in (a failure
mid-write leaves the old folder whole, `--model DIR --save_dir DIR` included), and non-finite weights are
refused. On real processes, with RLIMIT_FSIZE for a full disk."""

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SMALL = dict(
    n_train=48,
    n_test=8,
    batch_size=8,
    tiny_dim=32,
    tiny_layers=1,
    log_every=1,
    progress=False,
    device="cpu",
    warmup_steps=0,
)
PAIRED = [
    sys.executable,
    "-m",
    "jepa_lite.paired",
    "--steps",
    "2",
    "--log_every",
    "1",
    "--no_progress",
    "--device",
    "cpu",
    "--batch_size",
    "8",
]


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
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def tree(folder: Path) -> dict:
    """{relative path: sha256} of every file under `folder`."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    from jepa_lite.paired import PairedConfig, PairedTrainer

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("kept") / "model"
    PairedTrainer(PairedConfig(**SMALL, steps=2, save_dir=str(out)), log=lambda s: None).fit()
    return out


def test_save_dir_is_checked_before_step_1(tmp_path):
    """(Before: every step trained, then an OSError traceback and the model gone.)"""
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere" / "model")
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))"
    for save_dir, words, pre in [
        ("/proc/jepa_lite_model", "cannot write", None),
        (str(link), "does not exist", None),
        (str(tmp_path / "m"), "ulimit -f", limit),
    ]:
        cmd = (
            PAIRED + ["--save_dir", save_dir]
            if pre is None
            else [
                sys.executable,
                "-c",
                f"{pre}\nimport runpy, sys\n"
                f"sys.argv = {['x', *PAIRED[3:], '--save_dir', save_dir]!r}\n"
                "runpy.run_module('jepa_lite.paired', run_name='__main__')",
            ]
        )
        r = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300)
        assert r.returncode == 2 and words in one_error_line(r.stderr), r.stderr
        assert "step " not in r.stdout
    assert sorted(os.listdir(tmp_path)) == ["link"]


def test_a_failed_save_in_place_leaves_the_model_it_started_from_whole(tmp_path, kept):
    """`--model DIR --save_dir DIR`: the disk fills (RLIMIT_FSIZE lowered after step 1) while the new folder
    is written; the old folder is byte for byte what it was, no half-written folder or temporary is left."""
    model = tmp_path / "model"
    subprocess.run(["cp", "-r", str(kept), str(model)], check=True)
    before = tree(model)
    script = textwrap.dedent(f"""
        import resource, sys
        from jepa_lite.paired import PairedConfig, PairedTrainer
        from jepa_lite.paired.causal_lm import CausalLMError

        def fill_disk(trainer, record):
            if trainer.step == 2:
                resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

        config = PairedConfig(**{SMALL!r}, steps=2, model={str(model)!r}, save_dir={str(model)!r})
        try:
            PairedTrainer(config, callbacks=[fill_disk], log=lambda s: None).fit()
        except CausalLMError as e:
            print(f"error: {{e}}", file=sys.stderr)
            sys.exit(1)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 1, r.stderr
    assert "ulimit -f" in one_error_line(r.stderr) and "intact" in r.stderr
    assert tree(model) == before
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_save_in_place_replaces_the_folder_whole(tmp_path, kept):
    from jepa_lite.paired import PairedConfig, PairedTrainer

    model = tmp_path / "model"
    subprocess.run(["cp", "-r", str(kept), str(model)], check=True)
    (model / "stray.txt").write_text("from the old version")  # the swap leaves nothing of the old folder
    before = tree(model)
    t = PairedTrainer(
        PairedConfig(**SMALL, steps=2, lr=1e-2, model=str(model), save_dir=str(model)), log=lambda s: None
    )
    t.fit()
    after = tree(model)
    assert "stray.txt" not in after and after["model.safetensors"] != before["model.safetensors"]
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_non_finite_weights_are_not_saved(tmp_path):
    from jepa_lite.paired import PairedConfig, PairedTrainer
    from jepa_lite.paired.causal_lm import CausalLMError

    t = PairedTrainer(PairedConfig(**SMALL, steps=0), log=lambda s: None)
    with torch.no_grad():
        next(t.model.parameters())[0, 0] = float("nan")
    with pytest.raises(CausalLMError, match="NaN or infinite"):
        t.save_pretrained(str(tmp_path / "m"))
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from jepa_lite.train import TrainConfig, Trainer

    path = tmp_path_factory.mktemp("ckpt") / "c.pt"
    preset = {
        k: v
        for k, v in TrainConfig.smoke().__dict__.items()
        if k not in ("save_path", "save_every", "progress", "steps")
    }
    Trainer(TrainConfig(**{**preset, "steps": 1, "save_path": str(path), "progress": False}), log=lambda s: None).fit()
    return path


def export_cli(*args, pre: str = ""):
    script = f"{pre}\nimport sys\nfrom jepa_lite.export import main\nsys.exit(main({list(map(str, args))!r}))"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env(), timeout=300)


def test_export_refuses_an_unwritable_place_a_dangling_link_and_a_full_disk_in_one_line(tmp_path, ckpt):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))"
    for out, words, pre in [
        ("/proc/jepa_lite_export", "cannot write", ""),
        (link, "does not exist", ""),
        (tmp_path / "e", "ulimit -f", limit),
    ]:
        r = export_cli(ckpt, out, "--no_sentence_transformers", pre=pre)
        assert r.returncode == 2 and words in one_error_line(r.stderr), r.stderr
    assert sorted(os.listdir(tmp_path)) == ["link"]


def test_a_failed_export_leaves_the_earlier_export_whole(tmp_path, ckpt):
    """The room check is bypassed so that the disk fills mid-write: one line, the earlier export as it was."""
    out = tmp_path / "e"
    assert export_cli(ckpt, out, "--no_sentence_transformers").returncode == 0
    before = tree(out)
    limit = (
        "import resource, jepa_lite.export as ex; ex.check_room = lambda *a, **k: None\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))"
    )
    r = export_cli(ckpt, out, "--no_sentence_transformers", "--encoder", "context", pre=limit)
    assert r.returncode == 2 and "ulimit -f" in one_error_line(r.stderr) and "intact" in r.stderr
    assert tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["e"]


def test_export_refuses_non_finite_weights(tmp_path, ckpt):
    from jepa_lite.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(ckpt)
    name = next(k for k, v in state["model"].items() if k.startswith("target_encoder.") and v.is_floating_point())
    state["model"][name] = torch.full_like(state["model"][name], float("inf"))
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, state)
    r = export_cli(bad, tmp_path / "e", "--no_sentence_transformers")
    assert r.returncode == 2 and "NaN or infinite" in one_error_line(r.stderr)
    assert sorted(os.listdir(tmp_path)) == ["bad.pt"]


def test_pretrain_refuses_an_unwritable_out_before_any_work(capsys):
    from jepa_lite.paired import pretrain

    assert pretrain.main(["--out", "/proc/jepa_lite_lm", "--steps", "1"]) == 2
    assert "cannot write" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "damage, words",
    [
        ("config without max_length", "lacks 'max_length'"),
        ("config None", "no config"),
        ("model a list", "not a dict of tensors"),
        ("tiny_dim a string", "tiny_dim"),
    ],
)
def test_export_of_a_crafted_checkpoint_is_one_line_and_writes_nothing(tmp_path, capsys, ckpt, damage, words):
    """(Before: KeyError, TypeError or AttributeError tracebacks.)"""
    from jepa_lite.checkpoint import load_checkpoint, save_checkpoint
    from jepa_lite.export import main

    state = {k: v for k, v in load_checkpoint(ckpt).items() if k != "format"}
    if damage == "config without max_length":
        state["config"] = {k: v for k, v in state["config"].items() if k != "max_length"}
    elif damage == "config None":
        state["config"] = None
    elif damage == "model a list":
        state["model"] = [1]
    else:
        state["config"] = {**state["config"], "tiny_dim": "x"}
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, state)
    assert main([str(bad), str(tmp_path / "e"), "--no_sentence_transformers"]) == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert sorted(os.listdir(tmp_path)) == ["bad.pt"]

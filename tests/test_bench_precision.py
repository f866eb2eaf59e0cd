"""`python -m jepa_lite.bench --precision`: one fast-path row per precision asked, fp16 + GradScaler among them.

What can be checked without a GPU: the flag's parsing; that on the CPU an fp16 row is not run and
says why (fp16 is the kit's path for CUDA GPUs without native bf16, and the kit refuses it on the
CPU), while the other rows run; that fp16 alone on the CPU is one error line before any work; and
the fp16 row's loss-scaler figures, with the GPU simulated as in tests/test_train_precision.py (the
trainer resolves its precision as on a T4, so fp16 autocast and the GradScaler run on the CPU).
The fp16 row's speed is the bench's to print on a CUDA GPU; nothing here times anything.
"""

import argparse
import math

import pytest
import torch

from jepa_lite import bench, config, train
from jepa_lite import precision as P

QUICK = [
    "--model",
    "tiny",
    "--skip",
    "masking,corpus,original",
    "--steps",
    "2",
    "--warmup",
    "0",
    "--lines",
    "200",
    "--device",
    "cpu",
]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def code_of(argv) -> int:
    try:
        return bench.main(argv)
    except SystemExit as e:  # argparse's own errors
        return e.code


def test_precision_list_parses_one_or_several_names():
    assert bench.precision_list("fp16") == ["fp16"]
    assert bench.precision_list("fp32, bf16,fp16") == ["fp32", "bf16", "fp16"]
    for bad in ("fp8", "fp32,fp8", "fp32,,bf16", "", "fp32,fp32"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.precision_list(bad)


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--precision", "fp8"], "invalid choice: 'fp8' (choose from auto, fp32, bf16, fp16"),
        (["--precision", "bf16,bf16"], "names a precision twice"),
        (["--objective", "paired", "--precision", "fp32,bf16"], "with --objective paired, --precision takes one value"),
        (
            ["--device", "cpu", "--precision", "fp16"] + QUICK[:-2],
            "precision fp16 needs a CUDA GPU; this run is on cpu",
        ),
        (
            ["--objective", "paired", "--device", "cpu", "--precision", "fp16"],
            "precision fp16 needs a CUDA GPU; this run is on cpu",
        ),
    ],
)
def test_bad_precisions_are_one_error_line_before_any_work(flags, expected, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(bench, "run_worker", lambda *a, **k: pytest.fail("a worker ran"))
    assert code_of(flags) == 2
    captured = capsys.readouterr()
    assert expected in one_error_line(captured.err)
    assert captured.out == ""  # not even the header: refused before any work


def test_on_the_cpu_the_fp16_row_is_not_run_and_says_why(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    asked = []
    real = bench.run_worker

    def recording(kind, args, data_file, precision="auto"):
        asked.append((kind, precision))
        return real(kind, args, data_file, precision)

    monkeypatch.setattr(bench, "run_worker", recording)
    assert bench.main(QUICK + ["--precision", "fp32,fp16"]) == 0
    out = capsys.readouterr().out
    assert asked == [("fast", "fp32")]  # fp16 never reaches a worker on the CPU
    rows = {line.split("  ")[1].strip(): line for line in out.splitlines() if line.startswith("  fast path")}
    assert set(rows) == {"fast path fp32", "fast path fp16 + GradScaler"}, out
    assert "tok/s" in rows["fast path fp32"] and "not run" not in rows["fast path fp32"]
    fp16 = rows["fast path fp16 + GradScaler"]
    assert "not run: fp16 autocast + GradScaler is for CUDA GPUs" in fp16 and "on the cpu the kit refuses it" in fp16
    assert "tok/s" not in fp16  # no figure pretends to be an fp16 measurement


def test_auto_row_names_what_auto_resolved_to(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert bench.main(QUICK + ["--precision", "auto"]) == 0
    out = capsys.readouterr().out
    assert [line.split("  ")[1].strip() for line in out.splitlines() if line.startswith("  fast path")] == [
        "fast path fp32 (auto)"
    ]


def test_fp16_row_reports_the_loss_scale_and_the_steps_it_skipped(monkeypatch):
    """On a simulated T4 the worker trains in fp16 with a GradScaler whose first scale (2^24) makes the
    first steps' gradients overflow: each skipped step halves the scale, and the row's count of skipped
    timed steps (AdamW's step count lagging the trainer's) must equal the halvings over those steps."""
    on_a_t4 = lambda name, device: P.resolve_precision(name, torch.device("cuda"), capability=(7, 5))  # noqa: E731
    monkeypatch.setattr(train, "resolve_precision", on_a_t4)  # what the trainer resolves
    monkeypatch.setattr(config, "resolve_precision", on_a_t4)  # what TrainConfig.validate checks (config.py)
    monkeypatch.setattr(
        train, "grad_scaler", lambda precision, device: torch.amp.GradScaler(device.type, init_scale=2.0**24)
    )
    args = argparse.Namespace(
        model="tiny",
        batch_size=8,
        max_length=24,
        steps=12,
        warmup=0,
        device="cpu",
        compile=False,
        cuda_graphs=True,
        precision=["fp16"],
        sdpa="kit",
        profile=None,
    )
    out = bench.worker_fast(args, bench.mixed_length_lines(200))
    assert out["precision"] == "fp16" and out["cuda_graphs"] is False
    first, last = out["scale"]
    assert first <= 2.0**24 and last < first  # (the untimed warm-up steps may have halved it already)
    halvings = math.log2(first / last)  # the scale only grows after 2000 good steps: here it only halves
    assert out["skipped_steps"] == halvings >= 1
    assert out["skipped_steps"] < args.steps  # and some steps did train
    assert math.isfinite(out["loss"])


def test_fp32_row_has_no_scaler_figures(monkeypatch):
    args = argparse.Namespace(
        model="tiny",
        batch_size=8,
        max_length=24,
        steps=2,
        warmup=0,
        device="cpu",
        compile=False,
        cuda_graphs=True,
        precision=["fp32"],
        sdpa="kit",
        profile=None,
    )
    out = bench.worker_fast(args, bench.mixed_length_lines(100))
    assert out["precision"] == "fp32" and "scale" not in out and "skipped_steps" not in out

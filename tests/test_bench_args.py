"""The bench hands its flags to the worker processes it starts: a worker re-checks its arguments
(`bench.check_args`) before it runs, so a flag the parent does not hand over is a flag the worker
sees at its default. The README's BERT-base command (`--batch_size 512 --steps 150 --warmup 150
--skip masking,corpus,original`) failed that way: the worker, given neither --skip nor --lines,
checked the original loop's line count against the default 50,000 lines ("got 50000"), also when
--lines 160000 was given. Checked here on the argument hand-over alone: nothing trains."""

import pytest

from jepa_lite import bench
from jepa_lite.errors import ConfigError

# The README's BERT-base row, on the CPU (check_args asks for the device: CUDA is not here).
BERT_BASE = [
    "--model",
    "random:bert",
    "--batch_size",
    "512",
    "--device",
    "cpu",
    "--steps",
    "150",
    "--warmup",
    "150",
    "--compile",
    "--skip",
    "masking,corpus,original",
]


def worker_args(parent_argv, kind="fast", precision="fp32"):
    parent = bench.build_parser().parse_args(parent_argv)
    bench.check_args(parent)  # the parent accepts it
    return parent, bench.build_parser().parse_args(bench.worker_argv(kind, parent, "/tmp/lines.txt", precision))


@pytest.mark.parametrize("extra", [[], ["--lines", "160000"]])
def test_the_readme_bert_base_command_passes_its_workers_checks(extra):
    parent, worker = worker_args(BERT_BASE + extra)
    bench.check_args(worker)  # raised "the original loop reads each line once: … got 50000" before
    for flag in (
        "model",
        "batch_size",
        "max_length",
        "steps",
        "warmup",
        "device",
        "sdpa",
        "lines",
        "mask_batch",
        "skip",
        "compile",
        "cuda_graphs",
    ):
        assert getattr(worker, flag) == getattr(parent, flag), flag
    assert worker._worker == "fast" and worker._data == "/tmp/lines.txt" and worker.precision == ["fp32"]


def test_lines_reach_the_worker_when_the_original_loop_runs():
    """Without `original` in --skip the line count matters: 512 × (10 + 150) = 81,920 lines."""
    flags = [f for f in BERT_BASE if f != "--compile"]
    flags[flags.index("--skip") + 1] = "masking,corpus"
    with pytest.raises(ConfigError, match="must be at least batch_size × \\(warm-up \\+ steps\\) = 81920; got 50000"):
        worker_args(flags)  # the parent refuses the default 50,000 lines itself
    parent, worker = worker_args(flags + ["--lines", "81920"], kind="original")
    assert worker.lines == 81920 and worker.skip == "masking,corpus"
    bench.check_args(worker)


def test_the_profile_file_goes_to_the_fast_worker_only(tmp_path):
    profile = str(tmp_path / "profile.txt")
    parent = bench.build_parser().parse_args(BERT_BASE + ["--profile", profile])
    assert bench.worker_argv("fast", parent, "d.txt")[-2:] == ["--profile", profile]
    assert "--profile" not in bench.worker_argv("original", parent, "d.txt")

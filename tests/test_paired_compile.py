"""`--compile` with one row per pair: the transformer compiled once for any batch and length, the CPU
speed-up of the laptop studies. It trains as the eager model does; it compiles in the first steps and
never again (a stop's per-step hooks stay off under compile: stopping.py); embeddings and generation run
eagerly; without a working C++ compiler the CPU run is refused in one line, before any work."""

import os
import subprocess
import sys

import pytest
import torch
from test_paired_packed import small
from torch._dynamo.utils import counters

from jepa_lite.errors import ConfigError
from jepa_lite.fastpath import compiler_works

pytestmark = pytest.mark.skipif(not compiler_works(), reason="torch.compile needs a C++ compiler on the CPU")


def graphs_made() -> int:
    return counters["stats"]["unique_graphs"]


@pytest.mark.parametrize("views, groups", [("packed", 2), ("separate", 1)])
def test_the_compiled_model_trains_as_the_eager_one_and_compiles_only_at_the_start(views, groups):
    # loss dropout: steps with the JEPA term and LM-only steps, rows of several lengths
    settings = dict(steps=4, views=views, length_groups=groups, lbd=1.0, loss_dropout=0.5, log_every=1)
    eager, compiled = small(**settings), small(compile=True, **settings)
    assert not compiled.guard.enabled  # no per-step hooks for the compiled code's guards to see
    eager.fit()
    compiled.fit()
    for key in ("lm_loss", "jepa_loss"):
        torch.testing.assert_close(
            torch.tensor(compiled.history[key]), torch.tensor(eager.history[key]), rtol=1e-4, atol=1e-5, equal_nan=True
        )
    made = graphs_made()
    compiled.config.steps = eager.config.steps = 10  # six steps more, of other lengths: no new compile
    compiled.fit()
    eager.fit()
    assert graphs_made() == made
    torch.testing.assert_close(
        torch.tensor(compiled.history["lm_loss"]), torch.tensor(eager.history["lm_loss"]), rtol=1e-3, atol=1e-5
    )
    for (name, a), b in zip(compiled.model.named_parameters(), eager.model.parameters()):
        assert "_orig_mod" not in name  # compiled in place: checkpoints keep the parameters' names
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)
    assert compiled.evaluate(compiled.test_pairs[:6]) == eager.evaluate(eager.test_pairs[:6])
    compiled.embed(compiled.test_pairs[:4])
    assert graphs_made() == made  # measuring runs eagerly


def test_compile_on_a_cpu_without_a_cpp_compiler_is_one_error_line(monkeypatch):
    import jepa_lite.fastpath
    import jepa_lite.train as masked_span

    monkeypatch.setattr(jepa_lite.fastpath, "compiler_works", lambda: False)
    with pytest.raises(ConfigError, match="--compile on the CPU needs a working C.. compiler"):
        small(steps=1, compile=True)
    small(steps=1)  # without --compile nothing is asked of a compiler
    # the masked-span trainer says the same
    with pytest.raises(ConfigError, match="--compile on the CPU needs a working C.. compiler"):
        masked_span.Trainer(masked_span.TrainConfig(compile=True, device="cpu", steps=1))


def test_on_a_gpu_one_row_per_pair_is_refused_in_one_line_before_any_work(monkeypatch):
    import jepa_lite.paired.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "pick_device", lambda name: torch.device("cuda"))  # what a GPU machine picks
    monkeypatch.setattr(trainer_module, "load_pairs", lambda config: pytest.fail("work began before the check"))
    with pytest.raises(ConfigError, match="--compile without --pack_length is for the CPU; on a GPU use"):
        small(steps=1, compile=True, precision="fp32")


def test_the_compiler_probe_says_no_where_no_compiler_runs(tmp_path):
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)
    probe = "from jepa_lite.fastpath import compiler_works; print(compiler_works())"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]

"""Step time of the compiled bf16 CPU step with inductor's own random numbers (default) or aten's
(`torch._inductor.config.fallback_random`): MiniLM, batch 8, steps 80-160 after 80 warm-up steps; one process each.

    PYTHONPATH=. python assets/bench/cpu_pred_rows_2026-12-07/fallback_random.py 0   # then 1
"""

import contextlib
import io
import sys
import time

import torch
import torch._inductor.config as inductor_config

from jepa_lite import bench
from jepa_lite.train import TrainConfig, Trainer

inductor_config.fallback_random = sys.argv[1] == "1"
cfg = TrainConfig(
    model_name="minilm",
    batch_size=8,
    max_length=128,
    steps=80,
    warmup_steps=0,
    log_every=10**6,
    save_path=None,
    device="cpu",
    progress=False,
    compile=True,
    lr=2e-5,
    ema_m=0.99,
    precision="bf16",
)
torch.manual_seed(0)
t = Trainer(cfg, texts=bench.mixed_length_lines(50000), log=lambda s: None)
with contextlib.redirect_stdout(io.StringIO()):
    t.fit()
t.config.steps = 160
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    t.fit()
print(f"fallback_random {inductor_config.fallback_random}: {(time.perf_counter() - t0) / 80 * 1000:.1f} ms/step")

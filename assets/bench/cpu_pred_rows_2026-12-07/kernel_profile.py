"""torch.profiler table of 10 compiled bf16 CPU steps of the kit (MiniLM, batch 8; steps 60-70), with inductor's
kernels named (`cpp.enable_kernel_profile`). With `--no_dropout` every dropout of the model is set to p = 0 first
(to see what its random numbers cost; not a training setting).

    PYTHONPATH=. python assets/bench/cpu_pred_rows_2026-12-07/kernel_profile.py [--no_dropout]
"""

import contextlib
import io
import sys

import torch
import torch._inductor.config as inductor_config

from jepa_lite import bench
from jepa_lite.train import TrainConfig, Trainer

inductor_config.cpp.enable_kernel_profile = True
cfg = TrainConfig(
    model_name="minilm",
    batch_size=8,
    max_length=128,
    steps=60,
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
if "--no_dropout" in sys.argv:
    for m in t.model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
with contextlib.redirect_stdout(io.StringIO()):
    t.fit()
t.config.steps = 70
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
    with contextlib.redirect_stdout(io.StringIO()):
        t.fit()
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=70))

"""Profile three steps of one `jepa_lite.paired.bench` path on CUDA (after 4 warm-up steps and 3 timed
unprofiled): python3 assets/bench/h100_2026-12-08/profile_lm_flex.py lm_flex OUTFILE [BATCH] (PYTHONPATH=.)."""

import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from jepa_lite.paired import PairedConfig, PairedTrainer
from jepa_lite.paired.bench import PAIRED_PATHS, ROW_TOKENS, data_path

name, out = sys.argv[1], sys.argv[2]
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1160
_, ov = PAIRED_PATHS[name]
if ov.get("pack_length") == "rows":
    ov = {**ov, "pack_length": ROW_TOKENS}
cfg = PairedConfig(
    model="random:llama-135m",
    data=data_path("nlrx"),
    batch_size=batch,
    max_length=128,
    device="cuda",
    precision="auto",
    steps=20,
    progress=False,
    predictors=0,
    **ov,
)
tr = PairedTrainer(cfg, log=lambda s: None)
for _ in range(4):
    tr.train_step()
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(3):
    tr.train_step()
torch.cuda.synchronize()
print(f"{name}: {1e3 * (time.perf_counter() - t0) / 3:.1f} ms/step unprofiled")
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    for _ in range(3):
        tr.train_step()
    torch.cuda.synchronize()
with open(out, "w") as f:
    f.write(prof.key_averages().table(sort_by="cuda_time_total", row_limit=45, max_name_column_width=70))
    f.write("\n\nby CPU time\n")
    f.write(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25, max_name_column_width=70))
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=20, max_name_column_width=60))

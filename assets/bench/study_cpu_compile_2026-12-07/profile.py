"""Where a compiled kit-study step's time goes on one CPU core: torch.profiler over 10 steps (λ = 1, scratch start,
the study's settings), the matrix products' FLOPs and time, against lone matrix products timed on the same core.

    python assets/bench/study_cpu_compile_2026-12-07/profile.py OUT.json
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from jepa_lite.paired import PairedTrainer, study

torch.set_num_threads(1)

c = study.StudyConfig()
paths = study.prepare(c, Path(tempfile.mkdtemp()))
cfg = study.paired_config(study.RunSpec(stage="lambda", start="scratch", lbd=1.0, seed=1), c, paths)
assert cfg.compile and cfg.length_groups == 3 and cfg.views == "packed"
tr = PairedTrainer(cfg, log=lambda s: None)
for _ in range(10):
    tr.train_step()
t = time.perf_counter()
with profile(activities=[ProfilerActivity.CPU], with_flops=True) as p:
    for _ in range(10):
        tr.train_step()
wall = (time.perf_counter() - t) / 10
events = p.key_averages()
total = sum(e.self_cpu_time_total for e in events)
mm = next(e for e in events if e.key == "aten::mm")


def lone(m, k, n, reps):
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(5):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * m * k * n / ((time.perf_counter() - t) / reps) / 1e9


out = {
    "what": __doc__,
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "step_ms_under_the_profiler": round(wall * 1e3, 1),
    "mm_calls_per_step": mm.count / 10,
    "mm_gflop_per_step": round(mm.flops / 10 / 1e9, 3),
    "mm_ms_per_step": round(mm.self_cpu_time_total / 10 / 1e3, 2),
    "mm_share_of_cpu_time": round(mm.self_cpu_time_total / total, 3),
    "mm_gflop_per_s": round(mm.flops / (mm.self_cpu_time_total * 1e-6) / 1e9, 1),
    "lone_mm_gflop_per_s": {
        "2048x128 @ 128x384": round(lone(2048, 128, 384, 200), 1),
        "2048x1024 @ 1024x1024": round(lone(2048, 1024, 1024, 10), 1),
    },
    "top_self_cpu_ms_per_step": {
        e.key[:60]: round(e.self_cpu_time_total / 10 / 1e3, 2)
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
    },
}
Path(sys.argv[1]).write_text(json.dumps(out, indent=1, ensure_ascii=False))
print(json.dumps(out, indent=1, ensure_ascii=False))

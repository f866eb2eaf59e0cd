"""Resident memory and step time of the kit's compiled CPU bf16 step with fewer matrix-product shapes: lengths padded
to a multiple of 4 or 8 (`fastpath.length_multiple`), the predictor's rows bounded at the padded length or at it
rounded up to 32 (`fastpath.pred_length_step`).

    PYTHONPATH=. python assets/bench/cpu_shapes_2026-12-07/shapes_rss.py OUT.json

MiniLM, batch 8, the bench's 50,000 generated lines, bf16 autocast, compiled; each variant in a process of its own,
the variants in turns, twice (2 threads, nothing else running). Resident memory (/proc) after 10, 70 and 110 steps;
the step time is the mean of steps 70-110. Also the number of distinct oneDNN matrix-product shapes met over the
110 steps (ONEDNN_VERBOSE), in one more process per variant."""

import collections
import contextlib
import io
import json
import os
import subprocess
import sys
import time

VARIANTS = {"steps of 4, rows at L": (4, 1), "steps of 4, rows at L↑32": (4, 32), "steps of 8, rows at L↑32": (8, 32)}


def one(name: str) -> dict:
    import torch

    import jepa_lite.train as train
    from jepa_lite import bench

    multiple, step = VARIANTS[name]
    train.length_multiple = lambda device, dtype: multiple
    train.pred_length_step = lambda device: step
    cfg = train.TrainConfig(
        model_name="minilm",
        batch_size=8,
        max_length=128,
        steps=1,
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
    t = train.Trainer(cfg, texts=bench.mixed_length_lines(50000), log=lambda s: None)
    rss = {}
    for n in (10, 70, 110):
        t.config.steps = n
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            t.fit()
        rss[n] = round(bench.resident_mb())
    return {"variant": name, "rss_mb": rss, "ms_per_step_70_110": round((time.perf_counter() - t0) / 40 * 1000, 1)}


def run(name: str, verbose: bool = False) -> str:
    env = dict(os.environ, ONEDNN_VERBOSE="1") if verbose else None
    out = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True, env=env)
    return out.stdout


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2])))
        sys.exit(0)
    runs = []
    for _ in range(2):
        for name in VARIANTS:
            runs.append(json.loads(run(name).strip().splitlines()[-1]))
            print(runs[-1], flush=True)
    shapes = {}
    for name in VARIANTS:
        lines = [x.split(",") for x in run(name, verbose=True).splitlines() if x.startswith("onednn_verbose")]
        met = collections.Counter(x[5] for x in lines if len(x) > 5 and x[2:4] == ["primitive", "exec"])
        shapes[name] = len({(x[5], x[-2]) for x in lines if len(x) > 5 and x[2:4] == ["primitive", "exec"]})
        print(name, shapes[name], dict(met), flush=True)
    with open(sys.argv[1], "w") as f:
        json.dump(
            {
                "date": "2026-12-07",
                "machine": "2-core CPU with AMX (this project's dev machine), torch 2.13",
                "runs": runs,
                "onednn_shapes": shapes,
            },
            f,
            indent=1,
        )

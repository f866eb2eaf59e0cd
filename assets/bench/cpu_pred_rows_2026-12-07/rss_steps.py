"""Resident memory and step time of the kit's CPU bf16 step over 240 steps, the predictor on the N masked rows
(the step before fastpath.fixed_predictor_rows) or on C rows fixed by the batch's shape (the step now).

    PYTHONPATH=. python assets/bench/cpu_pred_rows_2026-12-07/rss_steps.py OUT.json

MiniLM, batch 8, the bench's 50,000 generated lines, bf16 autocast, eager and compiled; each variant in a process of
its own, one after the other (2 threads, nothing else running). Resident memory (/proc) after every 20 steps; the
step time is the mean of steps 140-240, when every padded length has been met."""

import contextlib
import io
import json
import subprocess
import sys
import time

STEPS = list(range(20, 241, 20))


def one(rows: str, compiled: bool) -> dict:
    import torch

    from jepa_lite import bench
    from jepa_lite.train import TrainConfig, Trainer

    cfg = TrainConfig(
        model_name="minilm",
        batch_size=8,
        max_length=128,
        steps=STEPS[0],
        warmup_steps=0,
        log_every=10**6,
        save_path=None,
        device="cpu",
        progress=False,
        compile=compiled,
        lr=2e-5,
        ema_m=0.99,
        precision="bf16",
    )
    torch.manual_seed(0)
    t = Trainer(cfg, texts=bench.mixed_length_lines(50000), log=lambda s: None)
    if rows == "n":  # the N-row step: the model's forward, pred_index not padded
        t.fixed_pred, t.plan.fixed_pred_index = False, False
        t.forward = torch.compile(t.model, dynamic=True) if compiled else t.model
    rss, at = [], {}
    for n in STEPS:
        t.config.steps = n
        with contextlib.redirect_stdout(io.StringIO()):
            t.fit()
        rss.append(round(bench.resident_mb()))
        at[n] = time.perf_counter()
    return {
        "rows": rows,
        "compile": compiled,
        "steps": STEPS,
        "rss_mb": rss,
        "peak_mb": round(bench.peak_resident_mb()),
        "ms_per_step_140_240": round((at[240] - at[140]) / 100 * 1000, 1),
    }


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], sys.argv[3] == "1")))
        sys.exit(0)
    runs = []
    for compiled in ("0", "1"):
        for rows in ("n", "fixed"):
            out = subprocess.run(
                [sys.executable, __file__, "--one", rows, compiled], capture_output=True, text=True, check=True
            ).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(runs[-1], flush=True)
    with open(sys.argv[1], "w") as f:
        json.dump(
            {
                "date": "2026-12-07",
                "machine": "2-core CPU with AMX (this project's dev machine), torch 2.13",
                "runs": runs,
            },
            f,
            indent=1,
        )

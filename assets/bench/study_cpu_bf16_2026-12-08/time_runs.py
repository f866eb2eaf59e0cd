"""Study runs timed on a laptop-like CPU, one torch thread, for `study.estimate_seconds`.

    PYTHONPATH=CODE python assets/bench/study_cpu_bf16_2026-12-08/time_runs.py timing PRECISION OUT.json GATE [PASSES]
    PYTHONPATH=CODE python assets/bench/study_cpu_bf16_2026-12-08/time_runs.py seeds bf16 OUT.json SEED...

`timing`: a warm-up (20 steps of the λ = 1 and the λ = 0 run of each study: compiling), then, once every process
started with the same GATE folder has warmed up (each leaves a file there and waits for the other), a λ = 0 and a
λ = 1 run (scratch start, seed 1, the study's own settings; NL-RX-SYNTH at learning rate 2e-3) of the kit's study
and of NL-RX-SYNTH's, in `PRECISION`, each trained and scored by the study's own `run_one`, PASSES times over
(default 1). Two such processes side by side, one core each (taskset), time two versions of the code in one
sitting; the faster one given two passes keeps the other core busy until the slower one ends. `seeds`: NL-RX-SYNTH
runs of the pretrained start at λ = 0 and 0.01 (the λ the committed study chose), learning rate 2e-3, for each
SEED, as the committed study's runs of those settings. The file is rewritten after every run."""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from jepa_lite.paired import PairedConfig, PairedTrainer, study
from jepa_lite.paired import nlrx_study as ns


def write(out: Path, data: dict) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, out)


def warm_up_config(spec, c, paths: dict):
    """The run's PairedConfig (code older than `nlrx_study.run_config` built it inside `run_one`, the same way)."""
    if hasattr(ns, "run_config"):
        return ns.run_config(spec, c, paths)
    return PairedConfig(
        model=paths[f"model:{spec.start}"],
        data=paths["train:0"],
        test_data=paths["test"],
        lbd=spec.lbd,
        lr=spec.lr,
        batch_size=c.batch_size,
        seed=spec.seed,
        device=c.device,
        precision=c.precision,
        views=c.views,
        progress=False,
    )


def brief(record: dict) -> dict:
    return {
        k: record[k] for k in ("stage", "start", "lbd", "lr", "seed", "steps", "seconds", "fit_seconds", "exact_match")
    }


def main(mode: str, precision: str, out: str, *rest: str) -> None:
    torch.set_num_threads(1)
    out = Path(out)
    c = ns.NlrxConfig(precision=precision)
    paths = ns.prepare(c, Path(tempfile.mkdtemp()))
    data = {"what": __doc__, "mode": mode, "precision": precision, "torch": torch.__version__}
    if mode == "seeds":
        data["runs"] = []
        for spec in [ns.RunSpec("lambda", "pretrained", lbd, 2e-3, int(s)) for s in rest for lbd in (0.0, 0.01)]:
            data["runs"].append(brief(ns.run_one(spec, c, paths)))
            write(out, data)
            print(data["runs"][-1], flush=True)
        return
    kit = study.StudyConfig(precision=precision)
    kit_paths = study.prepare(kit, Path(tempfile.mkdtemp()))
    data["warm_up"], data["runs"] = {}, {"kit": [], "nlrx": []}
    for lbd in (1.0, 0.0):
        for name, cfg in (
            ("kit", study.paired_config(study.RunSpec("lambda", "scratch", lbd, 1), kit, kit_paths)),
            ("nlrx", warm_up_config(ns.RunSpec("lambda", "scratch", lbd, 2e-3, 1), c, paths)),
        ):
            t = time.perf_counter()
            cfg.steps, cfg.warmup_steps = 20, 2
            PairedTrainer(cfg, log=lambda s: None).fit()
            data["warm_up"][f"{name}_{lbd:g}"] = round(time.perf_counter() - t, 2)
    gate = Path(rest[0])
    (gate / f"{os.getpid()}").touch()
    while len(list(gate.iterdir())) < 2:  # the other process of the sitting
        time.sleep(0.5)
    for _ in range(int(rest[1]) if len(rest) > 1 else 1):
        for lbd in (0.0, 1.0):
            for name, record in (
                ("kit", lambda: study.run_one(study.RunSpec("lambda", "scratch", lbd, 1), kit, kit_paths)),
                ("nlrx", lambda: ns.run_one(ns.RunSpec("lambda", "scratch", lbd, 2e-3, 1), c, paths)),
            ):
                data["runs"][name].append(brief(record()))
                write(out, data)
                print(name, data["runs"][name][-1], flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])

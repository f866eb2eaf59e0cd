"""The paired objective's benchmark lives beside the paper's code (jepa_lite/paired/bench.py); the core
benchmark hands `--objective paired` over to it in a process of its own, and never imports the paper."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from jepa_lite.paired import PairedConfig, PairedTrainer

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted(p for p in (ROOT / "jepa_lite").glob("*.py"))  # the training core: the package's top-level modules


def imported_modules(path: Path) -> set:
    """Every module an `import` or `from … import` in `path` names, made absolute (jepa_lite.…)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "jepa_lite." * (node.level > 0) + (node.module or "")
            found |= {base} | {f"{base}.{a.name}".replace("..", ".") for a in node.names}
    return found


def test_the_core_imports_neither_the_paper_nor_the_course():
    assert len(CORE) >= 10 and ROOT / "jepa_lite" / "bench.py" in CORE
    for path in CORE:
        bad = sorted(m for m in imported_modules(path) if re.match(r"jepa_lite\.(paired|course)\b", m))
        assert not bad, f"{path.name} imports {bad}"


def test_the_import_check_sees_relative_imports(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from .paired.rows import lm_row\n    from . import course\n")
    assert {"jepa_lite.paired.rows", "jepa_lite.course"} <= imported_modules(planted)


def test_bench_objective_paired_runs_the_paired_bench_without_importing_the_paper():
    """The same report through both commands; the core process never loads jepa_lite.paired."""
    flags = [
        "--objective",
        "paired",
        "--batch_size",
        "4",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--max_length",
        "96",
    ]
    probe = (
        "import sys; from jepa_lite import bench; code = bench.main(sys.argv[1:]); "
        "assert not [m for m in sys.modules if m.startswith('jepa_lite.paired')], 'the core "
        "imported the paper'; sys.exit(code)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-c", probe, *flags], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("jepa_lite benchmark, paired objective · device cpu")
    for label in (
        "LM only (λ = 0)",
        "LM only, LM rows packed in rows of 1,024+",
        "LM + JEPA, separate rows (3 per pair)",
        "LM + JEPA, packed (1 row per pair)",
        "LM + JEPA, pairs packed in rows of 1,024+",
        "peer: HF Trainer, 3 rows of 512 per pair",
        "LM + JEPA, separate, loss dropout 0.5",
        "LM + STP, the LM row alone (λ = 0.02)",
    ):
        assert any(line.strip().startswith(label) and "ms/step" in line for line in lines), (label, r.stdout)
    assert re.search(r"^packed LM \+ JEPA / LM only: \d+\.\d\d× step time \(target ≤ 1\.5×\)$", r.stdout, re.M), (
        r.stdout
    )
    assert re.search(r"^kit's fastest LM \+ JEPA / peer: \d+\.\d\d× LM tokens/s \(target ≥ 3×\)$", r.stdout, re.M)
    assert re.search(r"^pairs in rows / LM only: \d+\.\d\d× step time$", r.stdout, re.M)
    fastest = r"^kit's fastest LM \+ JEPA \((packed|rows)\) / kit's fastest LM only \((lm_only|lm_rows)\): "
    assert re.search(fastest + r"\d+\.\d\d× step time \(target ≤ 1\.2×\)$", r.stdout, re.M), r.stdout
    assert "MFU" not in r.stdout  # no peak FLOP/s on the CPU: no MFU
    assert re.search(r"^LM \+ STP / LM only: \d+\.\d\d× step time \(target ≤ 1\.1×\)$", r.stdout, re.M), r.stdout


def test_paired_bench_flags_are_one_line_errors():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for flags, expected in (
        (["--batch_size", "0"], "batch_size must be between 1 and"),
        (["--lines", "5"], "unrecognized arguments"),
        (["--data", "/nonexistent/pairs.jsonl"], "--data /nonexistent/pairs.jsonl: no such file"),
        (["--paths", "lm_only,fast"], "--paths: unknown path fast; choose from lm_only, lm_rows"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "jepa_lite.paired.bench", *flags],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
        assert (
            r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and expected in r.stderr
        ), r.stderr


def test_the_core_bench_passes_the_paired_flags_on_and_json_holds_what_was_printed(tmp_path):
    """`python -m jepa_lite.bench --objective paired` hands the paired bench's own flags (--data, --paths,
    --json) on as given; the --json file holds the figures the report printed, and is never replaced."""
    out = tmp_path / "odd dir ü" / "figures.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    flags = ["--objective", "paired", "--data", "nlrx", "--paths", "stp", "--json", str(out)]
    flags += ["--batch_size", "4", "--steps", "1", "--warmup", "0", "--device", "cpu"]

    def bench(*extra):
        cmd = [sys.executable, "-m", "jepa_lite.bench", *flags, *extra]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)

    r = bench()
    assert r.returncode == 0, r.stderr
    assert "NL-RX-SYNTH training pairs" in r.stdout and f"figures: {out}" in r.stdout
    import json

    saved = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(saved["results"]) == ["lm_only", "stp"] and saved["failed"] == {} and saved["data"] == "nlrx"
    ratio = saved["results"]["stp"]["step_s"] / saved["results"]["lm_only"]["step_s"]
    assert saved["targets"] == [f"LM + STP / LM only: {ratio:.2f}× step time (target ≤ 1.1×)"]
    assert saved["targets"][0] in r.stdout.splitlines()
    before = out.read_bytes()
    again = bench()
    assert (
        again.returncode == 2
        and again.stderr == f"error: --json {out} exists; the bench does not replace files: give a new name\n"
    )
    assert again.stdout == "" and out.read_bytes() == before  # refused before any work, the file untouched
    masked = subprocess.run(
        [sys.executable, "-m", "jepa_lite.bench", "--data", "nlrx"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert masked.returncode == 2 and "unrecognized arguments: --data nlrx" in masked.stderr  # masked span: no --data


def test_the_peer_reads_the_embeddings_the_kit_reads_and_scores_every_real_token():
    """The peer row does the official step's work: its JEPA term is the kit's on the same pairs, its LM
    loss Hugging Face's mean over every real token of the 3B rows."""
    import torch

    from jepa_lite.paired import IGNORE, PairedConfig, PairedTrainer, jepa_distance
    from jepa_lite.paired.peer import peer_loss, peer_rows
    from jepa_lite.paired.rows import lm_loss

    torch.manual_seed(0)
    t = PairedTrainer(
        PairedConfig(n_train=40, n_test=8, batch_size=4, tiny_dim=32, tiny_layers=1, progress=False, device="cpu"),
        log=lambda s: None,
    )
    t.model.eval()
    idx = t.batch_indices(0)
    examples = peer_rows([t.train_text[i] for i in idx], [t.train_code[i] for i in idx], t.ids, 96)
    batch = {k: torch.stack([e[k] for e in examples]) for k in examples[0]}
    assert batch["lm_ids"].shape == (4, 96) and int(batch["code_mask"][0].sum()) == len(t.train_code[idx[0]]) + 2
    with torch.no_grad():
        _, x, y = t.separate_forward(idx)
        jepa = peer_loss(t.model, batch, lbd=1.0, gamma=0.0)
        both = peer_loss(t.model, batch, lbd=0.0, gamma=1.0)
        ids = torch.cat([batch["lm_ids"], batch["text_ids"], batch["code_ids"]])
        mask = torch.cat([batch["lm_mask"], batch["text_mask"], batch["code_mask"]])
        logits = t.model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(jepa, jepa_distance(x, y), rtol=1e-5, atol=1e-5)
    # the kit's own mean next-token CE (rows.lm_loss) with every real token of every row as a label
    torch.testing.assert_close(both, lm_loss(logits, ids.masked_fill(mask == 0, IGNORE)), rtol=1e-5, atol=1e-5)


def test_paths_are_chosen_in_the_tables_order_and_a_target_line_needs_its_paths():
    from jepa_lite.paired.bench import chosen_paths, target_lines

    assert chosen_paths("stp, rows") == ["lm_only", "rows", "stp"]  # LM only, the base, always runs
    assert chosen_paths(None)[0] == "lm_only" and len(chosen_paths(None)) == 10

    def r(step_s, tflops=1.0, tok=1000.0):
        return {"step_s": step_s, "tflops": tflops, "lm_tokens_per_s": tok}

    lines = target_lines(
        {"lm_only": r(0.2), "lm_flex": r(0.1, 250.0), "flex": r(0.11, tok=900), "peer": r(1, tok=100)}, 1000
    )
    assert lines == [
        "kit's fastest LM + JEPA (flex) / kit's fastest LM only (lm_flex): 1.10× step time (target ≤ 1.2×)",
        "kit's fastest LM only: 25.0% MFU (target ≥ 25% in bf16)",
        "kit's fastest LM + JEPA / peer: 9.00× LM tokens/s (target ≥ 3×)",
    ]
    assert target_lines({"lm_only": r(0.2)}, None) == []


def test_the_performance_page_quotes_nlrx_tokens_per_lm_row():
    """docs/performance.md: NL-RX-SYNTH's LM rows are about 28 tokens with the kit's tokenizer (the tokenizer
    of `tiny` and `random:llama-135m`), so ~1,160 pairs make 32k real tokens per step."""
    from jepa_lite.paired.nlrx import FILES

    torch.set_num_threads(1)
    t = PairedTrainer(PairedConfig(data=str(FILES["train"]), steps=1, device="cpu", progress=False), log=lambda s: None)
    mean = sum(len(a) + len(b) + 3 for a, b in zip(t.train_text, t.train_code)) / len(t.train_text)
    page = " ".join((ROOT / "docs" / "performance.md").read_text(encoding="utf-8").split())
    assert f"about {round(mean)} LM-row tokens each" in page
    assert f"so ~{round(32768 / mean, -1):,.0f} pairs make the issue's ~32k real tokens per step" in page


def test_the_stp_rows_of_the_performance_page_are_the_json_files():
    """docs/performance.md's STP rows: on the CPU the geometric mean of the ten runs' STP / LM-only step-time
    ratios, its 95% t interval on the log ratios, their range and the LM-only step's median; on the H100 the one
    run's ratio and MFU; each as the JSON files hold them, and the verdicts they allow."""
    import json
    import math
    import statistics

    from scipy import stats

    runs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "assets/bench/stp_cpu").glob("*.json"))]
    assert len(runs) == 10
    for r in runs:
        assert (r["data"], r["batch_size"], r["steps"], r["warmup"], r["threads"]) == ("nlrx", 32, 30, 3, 2)
        assert r["device"].startswith("cpu") and r["results"]["stp"]["precision"] == "fp32" and not r["failed"]
    logs = [math.log(r["results"]["stp"]["step_s"] / r["results"]["lm_only"]["step_s"]) for r in runs]
    mean = statistics.mean(logs)
    half = stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    lm_ms = statistics.median(r["results"]["lm_only"]["step_s"] for r in runs) * 1e3
    page = " ".join((ROOT / "docs" / "performance.md").read_text(encoding="utf-8").split())
    row = (
        f"| 2-core CPU, `tiny`, NL-RX-SYNTH, fp32, batch 32, 10 runs | {lm_ms:.1f} ms/step (median) | "
        f"**{math.exp(mean):.2f}×** (geometric mean; 95% t interval on the log ratios {math.exp(mean - half):.2f}–"
        f"{math.exp(mean + half):.2f}×; runs {math.exp(min(logs)):.2f}–{math.exp(max(logs)):.2f}×) |"
    )
    assert row in page
    assert (
        "On the CPU the target, the STP step at most 1.1× the LM-only step, is met: the interval lies below it." in page
    ) == (math.exp(mean + half) <= 1.1)
    ratios, lm_ms = [], []
    for name, where in (("stp_1160", "one run, before the change below"), ("stp_1160_after", None)):
        gpu = json.loads((ROOT / f"assets/bench/h100_2026-12-07/{name}.json").read_text(encoding="utf-8"))
        assert gpu["device"] == "cuda (NVIDIA H100 80GB HBM3)" and gpu["batch_size"] == 1160 and gpu["data"] == "nlrx"
        lm, tube = gpu["results"]["lm_only"], gpu["results"]["stp"]
        ratios.append(tube["step_s"] / lm["step_s"])
        head = (
            "H100, `random:llama-135m`, NL-RX-SYNTH, bf16, batch 1,160 (~32k LM tokens), " + where
            if where
            else "H100, the same, one run, after the change below (another call, another H100 machine)"
        )
        row = (
            f"| {head} | {lm['step_s'] * 1e3:.1f} ms/step, {100 * lm['tflops'] / gpu['peak_tflops']:.1f}% MFU | "
            f"**{ratios[-1]:.2f}×** |"
        )
        assert row in page
        assert round(lm["lm_tokens_per_s"] * lm["step_s"], -3) == 33000  # ~32k real LM tokens a step
        lm_ms.append(f"{lm['step_s'] * 1e3:.1f}")
    before, after = ratios
    assert (before > 1.1) == ("On the H100 it was not at first." in page)
    assert (after <= 1.1) == ("the H100 meets the target too." in page)
    assert f"LM-only steps of the two calls ({lm_ms[0]} and {lm_ms[1]} ms)" in page


def paired_lines(log: str) -> dict:
    """{path label: (ms/step, MFU %)} of the lines a paired bench printed (the last run's line per label)."""
    found = {}
    for m in re.finditer(r"^  (\S.*?\S)\s{2,}([\d,.]+) ms/step .*?([\d.]+)% MFU$", log, re.M):
        found[m.group(1)] = (float(m.group(2).replace(",", "")), float(m.group(3)))
    return found


def test_the_first_gpu_fast_path_figures_are_the_logs():
    log = (ROOT / "assets/bench/h100_2026-12-07/log.txt").read_text(encoding="utf-8")
    lines = paired_lines(log[log.rindex("jepa_lite benchmark") :])  # the second bench of the call: the fast paths
    lm_ms, lm_mfu = lines["LM only (λ = 0)"]
    flex_ms, flex_mfu = lines["LM only, rows, FlexAttention, compiled"]
    assert "NVIDIA H100 80GB HBM3" in log and "batch 1160 pairs · NL-RX-SYNTH training pairs" in log
    page = " ".join((ROOT / "docs" / "performance.md").read_text(encoding="utf-8").split())
    assert (
        f"LM only in padded rows, eager, {lm_ms:.1f} ms/step at {lm_mfu:.1f}% MFU; LM only in rows through "
        f"FlexAttention, compiled, {flex_ms:.1f} ms/step at **{flex_mfu:.1f}% MFU**, {lm_ms / flex_ms:.1f}× faster, "
        "short of the 25% target." in page
    )
    assert flex_mfu < 25 and "LM + JEPA, rows, FlexAttention, compiled" not in lines and "peer" not in str(lines)


def profile_share(table: str, prefix: str) -> float:
    """Self CUDA % of the first row of a torch.profiler table whose name starts with `prefix`."""
    for line in table.splitlines():
        if line.strip().startswith(prefix):
            return float(line.split()[-4].rstrip("%"))
    raise AssertionError(prefix)


SECOND_RUN = (  # docs/performance.md's paragraph on the second GPU fast-path run, figures from its files
    "A second run of the same command on 2026-12-08, on another H100 machine "
    "(`assets/bench/h100_2026-12-08/log.txt`): LM only {lm_ms:.1f} ms/step at {lm_mfu:.1f}% MFU; LM only "
    "through FlexAttention, compiled, {flex_ms:.1f} ms/step at {flex_mfu:.1f}% MFU; again the time limit "
    "stopped it before the LM + JEPA path and the peer. Both paths were slower than in the first run (the"
    " code has changed since, among others the LM loss moved into the compiled function, "
    "`rows.lm_sum_and_states`; whether the code or the machine made the difference was not measured). A "
    "profile of three FlexAttention steps after seven (`profile_lm_flex.py`, its output "
    "`profile_lm_flex.txt`): {unprof:.1f} ms/step unprofiled, {gpu:.0f} ms of GPU time per step, of which"
    " matrix products {mm:.0f}%, FlexAttention's backward {fb:.0f}% and forward {ff:.0f}%, the rest "
    "mostly inductor's element-wise kernels. So the GPU idles about a third of each step: the host's work"
    " (launches, each step's rows and block mask) is not hidden behind it, and even a GPU busy all the "
    "time would run this step at about {busy:.0f}% MFU."
)


def second_run_values() -> dict:
    """The figures of the second GPU fast-path run's paragraph, from its log and profile."""
    folder = ROOT / "assets/bench/h100_2026-12-08"
    log = (folder / "log.txt").read_text(encoding="utf-8")
    lines = paired_lines(log)
    table = (folder / "profile_lm_flex.txt").read_text(encoding="utf-8")
    table = table[: table.index("by CPU time")]
    gpu = float(re.search(r"Self CUDA time total: ([\d.]+)ms", table).group(1)) / 3  # three profiled steps
    unprof = float(re.search(r"lm_flex: ([\d.]+) ms/step unprofiled", log).group(1))
    flex_ms, flex_mfu = lines["LM only, rows, FlexAttention, compiled"]
    return {
        "lm_ms": lines["LM only (λ = 0)"][0],
        "lm_mfu": lines["LM only (λ = 0)"][1],
        "flex_ms": flex_ms,
        "flex_mfu": flex_mfu,
        "unprof": unprof,
        "gpu": gpu,
        "mm": profile_share(table, "aten::mm"),
        "fb": profile_share(table, "triton_tem_fused_flex_attention_backward"),
        "ff": profile_share(table, "triton_tem_fused__unsafe_view_clone_expand_flex_attention"),
        "busy": flex_mfu * flex_ms / gpu,
    }


def test_the_second_gpu_fast_path_run_is_quoted_from_its_files():
    v = second_run_values()
    log = (ROOT / "assets/bench/h100_2026-12-08/log.txt").read_text(encoding="utf-8")
    assert "NVIDIA H100 80GB HBM3" in log and "batch 1160 pairs · NL-RX-SYNTH training pairs" in log
    assert "LM + JEPA, rows, FlexAttention, compiled" not in log and "peer" not in log
    first = paired_lines((ROOT / "assets/bench/h100_2026-12-07/log.txt").read_text(encoding="utf-8"))
    assert v["flex_ms"] > first["LM only, rows, FlexAttention, compiled"][0]  # "Both paths were slower"
    assert v["lm_ms"] > first["LM only (λ = 0)"][0]
    assert 0.25 < 1 - v["gpu"] / v["unprof"] < 0.45  # "idles about a third of each step"
    page = " ".join((ROOT / "docs" / "performance.md").read_text(encoding="utf-8").split())
    assert " ".join(SECOND_RUN.format(**v).split()) in page

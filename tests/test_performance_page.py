"""docs/performance.md quotes the masked-span CPU measurements as the files in assets/bench hold them."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "assets" / "bench" / "cpu_pred_rows_2026-12-07"


def words(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def bench_rows(path: Path) -> dict:
    """The kit's and the original loop's figures in one saved `python -m jepa_lite.bench` output."""
    text = path.read_text(encoding="utf-8")
    orig = re.search(r"original loop \(fp32\)\s+[\d,]+ tok/s\s+([\d.]+) ms/step", text)
    fast = re.search(r"fast path bf16\s+[\d,]+ tok/s\s+([\d.]+) ms/step.*ratio ([\d.]+)× tok/s, ([\d.]+)× memory", text)
    assert orig and fast, path
    return {"orig_ms": float(orig[1]), "ms": fast[1], "ratio": fast[2] + "×", "mem": fast[3] + "×"}


def bench_peaks(path: Path) -> tuple:
    """(original's, kit's) peak memory in MB in one saved bench output."""
    found = re.findall(r"peak memory\s+([\d,]+) MB", path.read_text(encoding="utf-8"))
    assert len(found) == 2, path
    return tuple(int(x.replace(",", "")) for x in found)


def page_text() -> str:
    """docs/performance.md with its line breaks and runs of spaces as single spaces."""
    return " ".join((ROOT / "docs" / "performance.md").read_text(encoding="utf-8").split())


def span(rows) -> str:
    """'a–b× and c–d×': the least and greatest tokens/s ratio and peak-memory ratio of bench outputs (`bench_rows`)."""
    ratio, mem = [float(r["ratio"][:-1]) for r in rows], [float(r["mem"][:-1]) for r in rows]
    return f"{min(ratio):.2f}–{max(ratio):.2f}× and {min(mem):.2f}–{max(mem):.2f}×"


def flat_from(steps, rss, within=0.01) -> int:
    """The first step from which every later reading is within `within` of the last one."""
    last = rss[-1]
    first = len(rss) - 1
    while first > 0 and abs(rss[first - 1] - last) <= within * last:
        first -= 1
    return steps[first]


def test_the_cpu_predictor_rows_paragraph_quotes_its_files():
    data = json.loads((FOLDER / "rss_steps.json").read_text(encoding="utf-8"))
    run = {(r["rows"], r["compile"]): r for r in data["runs"]}
    assert len(run) == 4
    for compiled in (False, True):
        n = run["n", compiled]["rss_mb"]
        assert n[-1] > n[-6] > n[0]  # N rows: still growing over the last 100 steps
        assert run["fixed", compiled]["rss_mb"][-1] < n[-1]
    before = [bench_rows(FOLDER / f"before_{i}.txt") for i in (1, 2)]
    after = [bench_rows(FOLDER / f"after_{i}.txt") for i in (1, 2, 3)]
    orig = [r["orig_ms"] for r in before + after]
    values = {
        "eager_n": f"{run['n', False]['rss_mb'][-1]:,}",
        "eager_fixed": f"{run['fixed', False]['rss_mb'][-1]:,}",
        "eager_flat": flat_from(run["fixed", False]["steps"], run["fixed", False]["rss_mb"]),
        "comp_n": f"{run['n', True]['rss_mb'][-1]:,}",
        "comp_fixed": f"{run['fixed', True]['rss_mb'][-1]:,}",
        "eager_n_ms": run["n", False]["ms_per_step_140_240"],
        "eager_fixed_ms": run["fixed", False]["ms_per_step_140_240"],
        "comp_n_ms": run["n", True]["ms_per_step_140_240"],
        "comp_fixed_ms": run["fixed", True]["ms_per_step_140_240"],
        "before_ratios": words(r["ratio"] for r in before),
        "before_ms": words(r["ms"] for r in before),
        "before_mem": words(r["mem"] for r in before),
        "after_ratios": words(r["ratio"] for r in after),
        "after_ms": words(r["ms"] for r in after),
        "after_mem": words(r["mem"] for r in after),
        "orig_ms": f"{min(orig):.1f}–{max(orig):.1f}",
    }
    page = page_text()
    for key, value in values.items():
        print(key, value)
    expected = (
        f"resident memory at step 240 {values['eager_n']} MB with N rows, still growing, against "
        f"{values['eager_fixed']} MB with C rows, flat (within 1% of its last value) from step {values['eager_flat']}; "
        f"compiled, {values['comp_n']} against {values['comp_fixed']} MB; steps 140–240 took {values['eager_n_ms']} → "
        f"{values['eager_fixed_ms']} ms eager and {values['comp_n_ms']} → {values['comp_fixed_ms']} ms compiled."
    )
    assert expected in page
    assert f"{span(after)} the memory, on a day" in page
    extra = [bench_peaks(FOLDER / f"after_{i}.txt") for i in (1, 2, 3)]
    extra = [fast - orig for orig, fast in extra]
    assert f"beyond the original's ({min(extra)}–{max(extra)} MB in the three runs after)" in page
    expected = (
        f"before {values['before_ratios']} the original loop's tokens/s ({values['before_ms']} ms per step, peak "
        f"memory {values['before_mem']} the original's); after {values['after_ratios']} ({values['after_ms']} ms, "
        f"{values['after_mem']}). That day the original loop took {values['orig_ms']} ms per step,"
    )
    assert expected in page


def kernel_row(path: Path, prefix: str) -> tuple:
    """(self CPU %, mean ms per call) of the profile table's row whose name starts with `prefix`."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(prefix):
            cells = line.split()
            assert cells[-2].endswith("ms"), line
            return float(cells[1].rstrip("%")), float(cells[-2][:-2])
    raise AssertionError(f"{prefix} not in {path}")


def test_the_cpu_targets_paragraph_quotes_the_profiles_and_the_fallback_run():
    kernel = "graph_2_cpp_fused__to_copy_add_arange_bitwise_and_embedding_expand"
    share, ms = kernel_row(FOLDER / "kernel_profile.txt", kernel)
    _, ms_no_dropout = kernel_row(FOLDER / "kernel_profile_no_dropout.txt", kernel)
    page = page_text()
    assert (
        f"takes {ms:.1f} ms per step, {share:.0f}% of the CPU time; the same kernel takes {ms_no_dropout:.1f} ms"
        in page
    )
    assert f"So about {ms - ms_no_dropout:.0f} ms of a ~214 ms step are dropout's random numbers" in page
    runs = dict(
        re.fullmatch(r"fallback_random (True|False): ([\d.]+) ms/step", line).groups()
        for line in (FOLDER / "fallback_random.txt").read_text(encoding="utf-8").splitlines()
    )
    assert f"gave {runs['True']} against {runs['False']} ms per step, one run each: no gain." in page
    assert abs(float(runs["True"]) / float(runs["False"]) - 1) < 0.02
    fixed = json.loads((FOLDER / "rss_steps.json").read_text(encoding="utf-8"))["runs"][3]
    assert (fixed["rows"], fixed["compile"]) == ("fixed", True) and abs(fixed["ms_per_step_140_240"] - 214) < 1


SHAPES = ROOT / "assets" / "bench" / "cpu_shapes_2026-12-07"


def minus(text: str) -> str:
    """A signed number as the page writes it: a minus sign, not a hyphen."""
    return text.replace("-", "−")


def shapes_values(data: dict) -> dict:
    """The figures of the "Fewer shapes for oneDNN to keep" paragraph, from the files it names (`data`: the
    contents of shapes_rss.json)."""
    variants = list(data["onednn_shapes"])
    rss = {v: [r["rss_mb"]["110"] for r in data["runs"] if r["variant"] == v] for v in variants}
    before = [bench_rows(SHAPES / f"before_{i}.txt") for i in (1, 2, 3)]
    after = [bench_rows(SHAPES / f"after_{i}.txt") for i in (1, 2, 3)]
    peaks = [(bench_peaks(SHAPES / f"before_{i}.txt"), bench_peaks(SHAPES / f"after_{i}.txt")) for i in (1, 2, 3)]
    orig = [r["orig_ms"] for r in before + after]
    values = {f"s{i}": data["onednn_shapes"][v] for i, v in enumerate(variants)}
    values.update({f"r{i}": words(f"{x:,}" for x in rss[v]) for i, v in enumerate(variants)})
    values.update(
        b_ratio=words(r["ratio"] for r in before),
        b_mem=words(r["mem"] for r in before),
        a_ratio=words(r["ratio"] for r in after),
        a_mem=words(r["mem"] for r in after),
        d_ratio=words(minus(f"{float(a['ratio'][:-1]) - float(b['ratio'][:-1]):+.2f}") for a, b in zip(after, before)),
        d_mb=words(minus(f"{fa - fb:+d}") for (_, fb), (_, fa) in peaks),
        orig=f"{min(orig):.1f}–{max(orig):.1f}",
        extra=f"{min(fa - oa for _, (oa, fa) in peaks)}–{max(fa - oa for _, (oa, fa) in peaks)}",
        span_before=span(before),
        span_after=span(after),
    )
    return values


def test_the_fewer_shapes_paragraph_quotes_its_files():
    data = json.loads((SHAPES / "shapes_rss.json").read_text(encoding="utf-8"))
    values = shapes_values(data)
    shapes = list(data["onednn_shapes"].values())
    assert shapes == sorted(shapes, reverse=True)  # each step of the change removed shapes
    page = page_text()
    expected = (
        "still met {s0} matrix-product shapes (`ONEDNN_VERBOSE`)"
        " | {s0} → {s1} → {s2} shapes, resident memory after 110 steps {r0} → {r1} → {r2} MB."
        " | before {b_ratio} the original loop's tokens/s (peak memory {b_mem} the original's); after {a_ratio}"
        " ({a_mem}). Pair by pair, after minus before: {d_ratio} in the ratio, {d_mb} MB in peak memory."
        " | took {orig} ms per step that day."
        " | {extra} MB with fewer shapes"
    ).format(**values)
    for part in expected.split(" | "):
        assert part in page, part
    assert (
        f'With fewer shapes ("On the CPU" above): {values["span_after"]} the memory, on a day the same code before the '
        f"change gave {values['span_before']}." in page
    )


def test_the_steps_of_16_sentence_quotes_its_files():
    """Lengths in steps of 16 (a worktree of the code with `length_multiple` returning 16 on the CPU in bf16) against
    the trainer's 8, in turns: less memory, every pair slower."""
    eight = [bench_rows(SHAPES / f"steps8_{i}.txt") for i in (1, 2, 3)]
    sixteen = [bench_rows(SHAPES / f"steps16_{i}.txt") for i in (1, 2, 3)]
    diff = [float(b["ratio"][:-1]) - float(a["ratio"][:-1]) for a, b in zip(eight, sixteen)]
    assert all(d < 0 for d in diff)  # "every pair slower"
    page = page_text()
    expected = (
        f"peak memory {words(r['mem'] for r in sixteen)} the original's against {words(r['mem'] for r in eight)}, "
        f"but {words(r['ratio'] for r in sixteen)} its tokens/s against {words(r['ratio'] for r in eight)}, every "
        f"pair slower ({words(minus(f'{d:+.2f}') for d in diff)}): the trainer keeps 8."
    )
    assert expected in page, expected

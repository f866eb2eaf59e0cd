"""The tokenisation and memory figures of docs/scale.md (moved there from the README) are the ones the bench
wrote (assets/bench/tokenise_1M_minilm.json, tokenise_1M_tiny.json, rss_10M.json)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


BENCH = ROOT / "assets" / "bench"


def readme() -> str:
    return " ".join((ROOT / "docs" / "scale.md").read_text(encoding="utf-8").split())  # one line: prose wraps anywhere


def peak_mb(figures: dict, path: str) -> float:
    """A path's peak resident memory in MB. Files written before the bench read ru_maxrss as KiB (they
    have no "peak_mb_from") hold it in units of 1,024 bytes / 1,000: × 1.024, as docs/scale.md says."""
    return figures[path]["peak_mb"] * (1 if "peak_mb_from" in figures else 1.024)


def test_readme_tokenisation_figures_match_the_bench_file():
    figures = json.loads((BENCH / "tokenise_1M_minilm.json").read_text())
    text = readme()
    assert "peak_mb_from" not in figures and "the peaks below are the files' figures × 1.024" in text
    for path in ("today", "streamed"):
        r = figures[path]
        assert f"{r['seconds']:.1f} s | {peak_mb(figures, path):,.0f} MB" in text, path
    budget = 1e3 + 4 * figures["streamed"]["tokens"] / 1e6
    assert peak_mb(figures, "streamed") <= budget < peak_mb(figures, "today")
    assert f"{budget:,.0f} MB: over" in text


def test_readme_tiny_backbone_figures_match_the_bench_files():
    """The streamed run (tokenise_1M_tiny.json, written by the bench) and the old path's, whose run only
    printed (tokenise_1M_tiny_partial.txt, the bench's output as it was)."""
    import re

    figures = json.loads((BENCH / "tokenise_1M_tiny.json").read_text())
    text = readme()
    r = figures["streamed"]
    assert figures["model"] == "tiny" and figures["lines"] == r["lines"] == 1_000_000 and "today" not in figures
    budget = 1e3 + 4 * r["tokens"] / 1e6
    assert peak_mb(figures, "streamed") <= budget, "the tiny backbone's streamed path is over its budget"
    assert (
        f"| streamed (this kit), 2-core machine | {r['seconds']:.1f} s | {peak_mb(figures, 'streamed'):,.0f} "
        "MB | within |" in text
    )
    assert f"({r['tokens']:,} tokens, {r['tokens'] / r['lines']:.1f} per line)" in text
    old = (BENCH / "tokenise_1M_tiny_partial.txt").read_text()
    seconds, peak, tokens = re.search(r"today +([\d.]+) s +peak RSS +([\d,]+) MB +([\d,]+) tokens", old).groups()
    assert int(tokens.replace(",", "")) == r["tokens"]  # the same file, the same tokens by both paths
    assert (
        f"| before, H200 machine, 3 cores | {seconds} s | {float(peak.replace(',', '')) * 1.024:,.0f} "
        f"MB | {budget:,.0f} MB: over |" in text
    )


def test_readme_rss_over_steps_figures_match_the_bench_file():
    figures = json.loads((BENCH / "rss_10M.json").read_text())
    c, text = figures["cached"], readme()
    rss = c[
        "rss_over_steps"
    ]  # [(step, MB)]: after the cache, then after building the Trainer (step 0), then every 10 steps
    assert figures["lines"] == c["lines"] == 10_000_000 and [s for s, _ in rss[1:]] == list(range(0, 151, 10))
    assert (BENCH / "rss_10M.png").stat().st_size < 100_000
    assert "![resident memory over 150 training steps on a 10,000,000-line file](../assets/bench/rss_10M.png)" in text
    command = (
        "python -m jepa_lite.bench --tokenise --lines 10000000 --skip today,streamed --rss_steps "
        "150 --batch_size 16 --rss_plot assets/bench/rss_10M.png --rss_json assets/bench/rss_10M.json"
    )
    assert f"`{command}`" in text
    assert f"({figures['size_mb']:,.0f} MB, {c['tokens']:,} MiniLM tokens)" in text
    assert f"Resident memory was {rss[1][1]:,.0f} MB at step 0 and {rss[2][1]:,.0f} MB at step 10" in text
    assert f"then {rss[-1][1]:,.0f} MB at step 150: {rss[-1][1] - rss[2][1]:,.0f} MB more over 140 steps" in text
    cache_bytes = 4096 + -(-c["tokens"] * 2 // 8) * 8 + 8 * (c["lines"] + 1)  # data.TokenCache's layout, uint16 ids
    assert f"over 140 steps that read {140 * 16:,} of the {c['lines']:,} lines" in text
    assert f"its token cache is {cache_bytes / 1e6:,.0f} MB" in text
    budget = 1e3 + 4 * c["tokens"] / 1e6
    assert max(mb for _, mb in rss) <= peak_mb(figures, "cached") * 1.001 and peak_mb(figures, "cached") <= budget
    assert f"was {peak_mb(figures, 'cached'):,.0f} MB, within 1 GB + 4 B/token = {budget:,.0f} MB" in text
    assert f"the time ({round(c['seconds'] / 60)} minutes) says nothing" in text


def test_bench_tokenise_section_runs_both_paths_on_the_same_tokens(capsys, monkeypatch):
    """`python -m jepa_lite.bench --tokenise`: today's path and the streamed one, each in its own
    process, must count the same lines and tokens (the figures themselves are the bench's to print)."""
    import re

    from jepa_lite import bench

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    assert bench.main(["--tokenise", "--lines", "300", "--model", "tiny", "--skip", "cached"]) == 0
    out = capsys.readouterr().out
    found = {m[0]: m[1] for m in re.findall(r"^  (today|streamed) .*? ([\d,]+) tokens", out, re.M)}
    assert set(found) == {"today", "streamed"} and found["today"] == found["streamed"], out
    assert "streamed / today:" in out


def test_bench_rss_over_steps_trains_on_the_token_cache_and_writes_plot_and_json(tmp_path, capsys, monkeypatch):
    """`--rss_steps` (the 10,000,000-line measurement in small): the cached path, then a training run on
    that cache recording resident memory at step 0 and every 10 steps; the plot and the JSON written;
    neither replaced on a second run."""
    import re

    from jepa_lite import bench

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    plot, figures = tmp_path / "rss.png", tmp_path / "rss.json"
    flags = [
        "--tokenise",
        "--lines",
        "300",
        "--model",
        "tiny",
        "--skip",
        "today,streamed",
        "--rss_steps",
        "20",
        "--batch_size",
        "4",
        "--rss_plot",
        str(plot),
        "--rss_json",
        str(figures),
    ]
    assert bench.main(flags) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"training 20 steps on the token cache \(batch 4\): resident memory [\d,]+ MB at step 0, [\d,]+ MB at step 20",
        out,
    ), out
    r = json.loads(figures.read_text())
    assert r["lines"] == 300 and r["cached"]["lines"] == 300 and "today" not in r
    assert [s for s, _ in r["cached"]["rss_over_steps"]] == [0, 0, 10, 20]
    assert plot.stat().st_size > 1000
    stamp = figures.read_bytes()
    again = [str(tmp_path / "new.png") if f == str(plot) else f for f in flags]  # a new plot name, the same JSON
    assert (
        bench.main(again) == 2
        and f"--rss_json {figures} exists; the bench does not replace files" in capsys.readouterr().err
    )
    assert figures.read_bytes() == stamp and not (tmp_path / "new.png").exists()

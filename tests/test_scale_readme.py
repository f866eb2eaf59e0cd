"""The README's tokenisation figures are the ones the bench wrote (assets/bench/tokenise_1M_minilm.json)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tokenisation_figures_match_the_bench_file():
    figures = json.loads((ROOT / "assets" / "bench" / "tokenise_1M_minilm.json").read_text())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in ("today", "streamed"):
        r = figures[path]
        assert f"{r['seconds']:.1f} s | {r['peak_mb']:,.0f} MB" in readme, path
    budget = 1e3 + 4 * figures["streamed"]["tokens"] / 1e6
    assert figures["streamed"]["peak_mb"] <= budget < figures["today"]["peak_mb"]
    assert f"{budget:,.0f} MB: over" in readme


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

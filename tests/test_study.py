"""The study runner and its results file: complete grids, pure runs, paired statistics that are right."""

import dataclasses
import json
import math
import random
import statistics
from pathlib import Path

import pytest

from jepa_lite.paired import stats, study
from jepa_lite.paired.study import RunSpec, StudyConfig


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    """A whole fast study, written by the command line (about half a minute on a laptop CPU)."""
    out = tmp_path_factory.mktemp("study") / "study.json"
    assert study.main(["--fast", "--out", str(out)]) == 0
    return out, study.load_study(out)


def test_a_fast_study_holds_every_planned_run_with_its_measures(fast):
    _, s = fast
    assert s["complete"] and study.missing(s) == [] and len(s["runs"]) == len(study.planned(s)) == 48
    c = study.config_of(s)
    for r in s["runs"]:
        steps = {"size": c.long_steps, "long": c.longest_steps}.get(
            r["stage"], c.steps
        )  # sizes: to convergence; stage 3 longer
        assert r["steps"] == steps and r["history"]["step"][-1] == steps
        for split in ("train", "val", "test"):
            assert r["exact_match"][split] == pytest.approx(r["correct"][split] / r["total"][split], abs=1e-5)
        assert r["total"] == {"train": c.train_eval, "val": c.n_val, "test": c.n_test}
        g = r["geometry"]
        assert 0 <= g["retrieval_at_1"] <= 1 and g["chance"] == pytest.approx(1 / c.n_test, rel=1e-4)
        assert len(g["spectrum"]) == c.n_test and g["spectrum"] == sorted(g["spectrum"], reverse=True)
        assert r["paired_config"]["precision"] == "fp32" and r["lr"] == c.lr[r["start"]]
    assert s["best_lambda"] == study.best_lambdas(s["runs"], c)
    sizes = {r["n_train"] for r in study.select(s, stage="size")}
    assert sizes == {*c.sizes, c.n_train}  # the full set too, at long_steps


def test_a_run_is_a_pure_function_of_its_spec(fast, tmp_path):
    c = StudyConfig.fast()
    paths = study.prepare(c, tmp_path)
    spec = RunSpec("lambda", "pretrained", 1.0, seed=1)
    a, b = study.run_one(spec, c, paths), study.run_one(spec, c, paths)
    timing = ("seconds", "fit_seconds")
    assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}
    other = study.run_one(dataclasses.replace(spec, seed=0), c, paths)
    assert other["history"]["lm_loss"] != a["history"]["lm_loss"]  # the seed matters


def test_at_lambda_zero_k_changes_nothing_so_k_runs_compare_with_k_0(tmp_path):
    c = StudyConfig.fast()
    paths = study.prepare(c, tmp_path)
    k0 = study.run_one(RunSpec("lambda", "scratch", 0.0, seed=0), c, paths)
    k2 = study.run_one(RunSpec("k", "scratch", 0.0, seed=0, predictors=2), c, paths)
    assert k0["history"]["lm_loss"] == k2["history"]["lm_loss"] and k0["exact_match"] == k2["exact_match"]


def _run(stage="lambda", start="scratch", lbd=0.0, seed=0, val=0.0, test=0.0, **kw):
    spec = dataclasses.asdict(RunSpec(stage, start, lbd, seed, **kw))
    return {**spec, "n_train": spec["n_train"] or 3000, "exact_match": {"val": val, "test": test}}


def test_the_best_lambda_is_chosen_on_validation_not_test():
    c = StudyConfig(lbds=(0.0, 0.1, 1.0), seeds=(0, 1))
    runs = [
        _run(start=s, lbd=lbd, seed=i, val=v, test=t)
        for s in study.STARTS
        for i in (0, 1)
        for lbd, v, t in ((0.0, 0.5, 0.5), (0.1, 0.6, 0.1), (1.0, 0.2, 0.9))
    ]
    assert study.best_lambdas(runs, c) == {"scratch": 0.1, "pretrained": 0.1}


def test_an_effect_is_paired_by_seed_against_its_own_baseline():
    scipy_stats = pytest.importorskip("scipy.stats")
    base = [0.40, 0.45, 0.42, 0.50, 0.38]
    jepa = [0.43, 0.47, 0.41, 0.55, 0.40]
    runs = [_run(lbd=0.0, seed=i, test=v) for i, v in enumerate(base)]
    runs += [_run(lbd=0.1, seed=i, test=v) for i, v in reversed(list(enumerate(jepa)))]  # any order in the file
    runs += [_run(stage="size", lbd=0.0, seed=i, test=0.9, n_train=250) for i in range(5)]  # another baseline
    e = study.effect({"runs": runs}, "exact_match.test", stage="lambda", lbd=0.1)
    ref = scipy_stats.ttest_rel(jepa, base)
    assert e["seeds"] == [0, 1, 2, 3, 4] and e["diff"] == pytest.approx(sum(jepa) / 5 - sum(base) / 5)
    assert e["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval()
    assert (e["ci_low"], e["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-7)
    assert e["within_noise"] == (ci.low <= 0 <= ci.high) and e["boot_low"] <= e["diff"] <= e["boot_high"]
    # a stage-2 size run is compared with λ = 0 at the same size, over the seeds both have
    runs += [_run(stage="size", lbd=0.1, seed=i, test=0.8, n_train=250) for i in range(3)]
    e = study.effect({"runs": runs}, "exact_match.test", stage="size", lbd=0.1, n_train=250)
    assert e["seeds"] == [0, 1, 2] and e["diff"] == pytest.approx(-0.1) and not e["within_noise"]


def test_the_t_distribution_matches_scipy():
    """The paired test at every sample size the study meets and beyond (df = n − 1 = 1 … 40): the
    two-sided p, t and the 95 % interval of scipy's ttest_rel, and the 90 % interval at level 0.9."""
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for df in (1, 2, 4, 9, 40):
        b = [rng.random() for _ in range(df + 1)]
        for shift in (-0.4, 0.0, 0.05, 0.3):
            a = [x + shift + rng.gauss(0, 0.1) for x in b]
            ref, got = scipy_stats.ttest_rel(a, b), stats.paired_t(a, b)
            assert (got["t"], got["p"], got["df"]) == pytest.approx((ref.statistic, ref.pvalue, df), rel=1e-9)
            ci = ref.confidence_interval()
            assert (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
            ci90, got90 = ref.confidence_interval(0.9), stats.paired_t(a, b, level=0.9)
            assert (got90["ci_low"], got90["ci_high"]) == pytest.approx((ci90.low, ci90.high), rel=1e-9)
    same = stats.paired_t([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert same["p"] == 1.0 and same["ci_low"] == same["ci_high"] == 0.0
    shifted = stats.paired_t([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])  # every difference exactly 0.5
    assert shifted["p"] == 0.0 and math.isinf(shifted["t"])


def test_welch_t_follows_its_formula_for_unpaired_settings():
    """d̄ = ā − b̄, se = √(s_a²/n_a + s_b²/n_b), df by Welch–Satterthwaite, interval d̄ ± t_df · se: written out
    here from the formula with the t quantile alone, against `stats.welch_t` (which calls scipy's ttest_ind)."""
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(1)
    for na, nb in ((2, 2), (3, 10), (10, 10), (5, 40)):
        a = [rng.gauss(0.3, 0.05) for _ in range(na)]
        b = [rng.gauss(0.5, 0.2) for _ in range(nb)]
        ma, mb = sum(a) / na, sum(b) / nb
        va = sum((x - ma) ** 2 for x in a) / (na - 1)
        vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
        se = math.sqrt(va / na + vb / nb)
        df = se**4 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
        half = scipy_stats.t.ppf(0.975, df) * se
        got = stats.welch_t(a, b)
        assert (got["diff"], got["t"], got["df"]) == pytest.approx((ma - mb, (ma - mb) / se, df), rel=1e-9)
        assert (got["ci_low"], got["ci_high"]) == pytest.approx((ma - mb - half, ma - mb + half), rel=1e-9)
        assert got["p"] == pytest.approx(2 * scipy_stats.t.sf(abs(ma - mb) / se, df), rel=1e-9)
    flat = stats.welch_t([0.0, 0.0], [0.0, 0.0, 0.0])  # e.g. two settings that never get a regex right
    assert flat["p"] == 1.0 and flat["ci_low"] == flat["ci_high"] == 0.0
    with pytest.raises(ValueError):
        stats.welch_t([0.5], [0.4, 0.6])


def test_the_bootstrap_interval_is_the_percentile_interval_of_resampled_means():
    a, b = [0.43, 0.47, 0.41, 0.55, 0.40], [0.40, 0.45, 0.42, 0.50, 0.38]
    d = [x - y for x, y in zip(a, b)]
    wide, narrow = stats.bootstrap_interval(a, b), stats.bootstrap_interval(a, b, level=0.5)
    assert wide == stats.bootstrap_interval(a, b) and wide != stats.bootstrap_interval(a, b, seed=1)  # seeded
    assert wide["diff"] == pytest.approx(sum(d) / 5)
    # a resampled mean lies between the smallest and the largest difference; 95 % holds the 50 % interval
    assert min(d) <= wide["low"] <= narrow["low"] <= wide["diff"] <= narrow["high"] <= wide["high"] <= max(d)
    assert wide["low"] < narrow["low"] and narrow["high"] < wide["high"]
    # the percentile interval of the mean of many normal draws is close to the normal one, ± 1.96 σ/√n
    rng = random.Random(0)
    x = [rng.gauss(0.0, 1.0) for _ in range(400)]
    big = stats.bootstrap_interval(x, [0.0] * 400, resamples=4000)
    half = 1.96 * stats.mean_sd(x)["sd"] / math.sqrt(400)
    assert (big["low"], big["high"]) == pytest.approx((big["diff"] - half, big["diff"] + half), abs=0.01)
    same = stats.bootstrap_interval([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])  # no spread: every resample means 0.5
    assert same == {"diff": 0.5, "low": 0.5, "high": 0.5}


def test_the_cli_refuses_a_file_it_did_not_write(tmp_path, capsys):
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "data"}')
    assert study.main(["--fast", "--out", str(mine)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and mine.read_text() == '{"my": "data"}'
    assert study.main(["--fast", "--out", str(tmp_path / "no" / "s.json")]) == 2
    assert study.main(["--fast", "--workers", "0"]) == 2


def test_resume_runs_only_what_is_missing(fast, tmp_path):
    out, s = fast
    cut = dict(
        s, complete=False, runs=[r for r in s["runs"] if not (r["stage"] == "size" and r["start"] == "pretrained")]
    )
    path = tmp_path / "study.json"
    path.write_text(json.dumps(cut))
    assert len(study.missing(study.load_study(path))) == 8  # 2 λ × 2 sizes × 2 seeds
    lines = []
    study.run_study(
        dataclasses.replace(study.config_of(s), model_dir=str(study.KIT_LM)), path, resume=True, log=lines.append
    )
    resumed = study.load_study(path)
    assert resumed["complete"] and study.missing(resumed) == [] and len(lines) == 8 + 1  # 8 runs + the best-λ line


def test_the_committed_study_file_is_consistent():
    s = study.load_study()
    c = study.config_of(s)
    assert s["best_lambda"] == study.best_lambdas(s["runs"], c)  # the selection can be checked from the file
    assert not [m for m in study.missing(s) if m.stage in ("lambda", "failure")]  # stage 1 is complete
    assert s["complete"] == (study.missing(s) == [])
    keys = [study.record_key(r) for r in s["runs"]]
    assert len(keys) == len(set(keys))
    for r in s["runs"]:
        assert (
            r["steps"] == {"size": c.long_steps, "long": c.longest_steps}.get(r["stage"], c.steps)
            and r["total"]["test"] == c.n_test
        )
        assert r["exact_match"]["test"] == pytest.approx(r["correct"]["test"] / r["total"]["test"], abs=1e-5)
    assert s["pretrained"]["heldout_loss"] == study.load_recipe(study.KIT_LM)["heldout_loss"]


def test_the_study_page_quotes_the_files_own_times_and_counts():
    from pathlib import Path

    readme = " ".join(
        (Path(__file__).resolve().parent.parent / "docs" / "study.md").read_text(encoding="utf-8").split()
    )  # moved from the README
    s, recipe = study.load_study(), study.load_recipe(study.KIT_LM)
    assert f"took {recipe['seconds']:.0f} s on one H200 GPU" in readme and recipe["device"] == "cuda"
    assert f"holds all {len(s['runs'])} planned runs and took {s['seconds']:.0f} s on one H200" in readme
    assert s["complete"] and not study.missing(s) and len(s["runs"]) == len(study.planned(s))
    assert (
        len(s["config"]["seeds"]) == 5
        and len(s["config"]["later_seeds"]) == 3
        and s["config"]["longest_steps"] == 9 * s["config"]["steps"]
    )


def test_the_scratch_start_is_pretrainings_own_initialisation(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    study.write_scratch_start(study.KIT_LM, tmp_path / "scratch")
    scratch = AutoModelForCausalLM.from_pretrained(tmp_path / "scratch").state_dict()
    pretrained = AutoModelForCausalLM.from_pretrained(study.KIT_LM).state_dict()
    from jepa_lite.paired.pretrain import PretrainConfig, Pretrainer

    config = PretrainConfig(**{**study.load_recipe(study.KIT_LM)["config"], "device": "cpu"})
    start = Pretrainer(config, log=lambda s: None).model.state_dict()
    assert scratch.keys() == pretrained.keys() == start.keys()
    assert all(torch.equal(scratch[k], start[k]) for k in start)  # the step-0 weights of the recipe
    assert not torch.equal(scratch["model.embed_tokens.weight"], pretrained["model.embed_tokens.weight"])


def _children(pid):
    """Process ids whose parent is `pid` (from /proc)."""
    import os

    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find the worker processes")
def test_sigterm_stops_the_study_and_its_workers_at_once(tmp_path):
    """A stopped study leaves no worker computing, writes nothing more, and says so (exit 130).
    (Before: the main process waited for every queued run, and the workers ran on unseen.)"""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "s.json"
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jepa_lite.paired.study", "--fast", "--workers", "2", "--out", str(out)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(json.loads(out.read_text())["runs"]) >= 2:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    workers = _children(proc.pid)
    assert proc.poll() is None and workers, "the study ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "interrupted" in err
    kept = json.loads(out.read_text())
    assert not kept["complete"] and 2 <= len(kept["runs"]) < len(study.planned(kept) or [0] * 99)
    time.sleep(3)
    assert not [p for p in workers if _alive(p)]
    assert json.loads(out.read_text()) == kept  # nothing written after the stop


ROOT = Path(__file__).resolve().parent.parent


def study_page(section: str = "") -> str:
    """docs/study.md with each run of whitespace one space, from the heading `section` on (the whole page without)."""
    import re

    page = re.sub(r"\s+", " ", (ROOT / "docs" / "study.md").read_text(encoding="utf-8"))
    return page[page.index(section) :] if section else page


ESTIMATE_ROWS = {"kit": "| kit's pairs, `study.json`", "nlrx": "| NL-RX-SYNTH, `study_nlrx.json`"}


def estimate_row(name: str, grid: dict, before: list, after: list) -> tuple:
    """(the docs/study.md table row of a before/after CPU timing of study `name`, the before/after ratio)."""
    b = study.estimate_seconds({"runs": before}, grid, workers=2)
    a = study.estimate_seconds({"runs": after}, grid, workers=2)
    per = lambda e: f"{e['per_step']['lm_only']:.3f}, {e['per_step']['with_jepa']:.3f}"  # noqa: E731
    ratio = b["seconds"] / a["seconds"]
    row = (
        f"{ESTIMATE_ROWS[name]} ({sum(b['steps'].values()):,}) | {per(b)} | {per(a)} | {b['hours']:.1f} h → "
        f"{a['hours']:.1f} h ({ratio:.2f}×) |"
    )
    return row, ratio


def test_the_study_page_quotes_the_cpu_estimates_the_timing_files_give():

    from jepa_lite.paired import nlrx_study

    root, page = ROOT, study_page()
    bench = root / "assets" / "bench" / "study_cpu_2026-12-07"
    before, after = (json.loads((bench / f"{k}.json").read_text()) for k in ("before", "after"))
    grids = {"kit": study.load_study(), "nlrx": nlrx_study.load(nlrx_study.RESULTS_FILE)}
    for name, grid in grids.items():
        assert (
            {r["lbd"] > 0 for r in before["runs"][name]} == {False, True} == {r["lbd"] > 0 for r in after["runs"][name]}
        )
        row, _ = estimate_row(name, grid, before["runs"][name], after["runs"][name])
        assert row in page, row
    # the earlier estimate, and how its steps compare with this timing's "before"
    timed = study.load_study(root / "assets" / "bench" / "study_cpu_2cores.json")
    assert timed["config"]["device"] == "cpu" and not timed["complete"]
    old = study.estimate_seconds(timed, study.load_study(), workers=2)
    now = study.estimate_seconds({"runs": before["runs"]["kit"]}, study.load_study(), workers=2)
    assert f"An earlier estimate, {old['hours']:.1f} hours for the kit's study" in page
    assert "11 runs on 2026-12-01" in page and old["timed_runs"] == 11
    slower = [old["per_step"][k] / now["per_step"][k] for k in ("lm_only", "with_jepa")]
    assert (
        f"had {old['per_step']['lm_only']:.2f} s per LM-only step and {old['per_step']['with_jepa']:.2f} s with the "
        f"JEPA term, {slower[0]:.1f} and {slower[1]:.1f} times this timing's" in page
    )
    with pytest.raises(study.StudyError):  # a timing file without a λ > 0 run cannot estimate
        study.estimate_seconds(dict(timed, runs=[r for r in timed["runs"] if r["lbd"] == 0]), study.load_study())


def test_the_study_page_quotes_the_four_seed_check_of_the_cpu_path_as_the_files_hold_it():

    from jepa_lite.paired import stats

    root, page = ROOT, study_page()
    bench = root / "assets" / "bench" / "study_cpu_2026-12-07"
    before, after = (json.loads((bench / f"seeds_{k}.json").read_text())["runs"] for k in ("before", "after"))
    assert [r["seed"] for r in before] == [r["seed"] for r in after] == [1, 2, 3, 4]  # paired by seed
    t = stats.paired_t([r["exact_match"]["test"] for r in after], [r["exact_match"]["test"] for r in before])
    assert (
        f"test exact match moved by {t['diff']:+.3f} (95% paired t interval {t['ci_low']:.3f} to {t['ci_high']:+.3f})"
        in page
    )
    committed = [
        r["exact_match"]["test"] for r in study.select(study.load_study(), stage="lambda", start="scratch", lbd=1.0)
    ]
    assert len(committed) == 5
    assert (
        f"the five seeds of that setting in the committed file span {min(committed):.3f}–{max(committed):.3f}" in page
    )
    assert max(abs(t["ci_low"]), abs(t["ci_high"])) <= 0.035  # "to within ±0.03", as the page says


def test_the_study_page_quotes_the_compiled_cpu_timing_as_the_files_hold_it():

    from jepa_lite.paired import nlrx_study, stats

    root, page = ROOT, study_page("### With the model compiled")
    bench = root / "assets" / "bench" / "study_cpu_compile_2026-12-07"
    before, after = (json.loads((bench / f"{k}.json").read_text(encoding="utf-8")) for k in ("before", "after"))
    assert before["code"] == "02b5bc3" and before["torch"] == after["torch"]
    grids = {"kit": study.load_study(), "nlrx": nlrx_study.load(nlrx_study.RESULTS_FILE)}
    ratios = []
    for name, grid in grids.items():
        row, ratio = estimate_row(name, grid, before["runs"][name], after["runs"][name])
        ratios.append(ratio)
        assert row in page, row
    assert ("Neither study's laptop time is halved." in page) == (max(ratios) < 2)
    # "before" against the earlier timing's "before", per kit step with the JEPA term
    earlier = json.loads((root / "assets/bench/study_cpu_2026-12-07/before.json").read_text(encoding="utf-8"))
    then = study.estimate_seconds({"runs": earlier["runs"]["kit"]}, grids["kit"], workers=2)["per_step"]["with_jepa"]
    now = study.estimate_seconds({"runs": before["runs"]["kit"]}, grids["kit"], workers=2)["per_step"]["with_jepa"]
    assert now > then and f"({now:.3f} s against {then:.3f} s per kit step with the JEPA term)" in page
    warm = after["warm_up"]
    assert f"took {warm['kit_1']:.1f} s against {warm['kit_2']:.1f} s for the second" in page
    assert abs(warm["nlrx_1"] - warm["nlrx_2"]) < 0.05 * warm["nlrx_2"]  # "its NL-RX runs reused the compiled program"
    evaluation = [r["seconds"] - r["fit_seconds"] for r in after["runs"]["nlrx"]]
    shares = [100 * (r["seconds"] - r["fit_seconds"]) / r["seconds"] for r in after["runs"]["nlrx"]]
    assert f"about {statistics.mean(evaluation):.0f} s in evaluation" in page
    assert f"{min(shares):.0f}–{max(shares):.0f}% of a compiled run" in page
    seeds = {k: [r["exact_match"]["test"] for r in f["seeds"]] for k, f in (("b", before), ("a", after))}
    assert [r["seed"] for r in before["seeds"]] == [r["seed"] for r in after["seeds"]] == [1, 2, 3, 4]
    t = stats.paired_t(seeds["a"], seeds["b"])
    assert f"by {t['diff']:+.3f} (95% paired t interval {t['ci_low']:.3f} to {t['ci_high']:+.3f})" in page
    assert t["ci_low"] < 0 < t["ci_high"]  # "no sign of a change"
    prof = json.loads((bench / "profile.json").read_text(encoding="utf-8"))
    lone = prof["lone_mm_gflop_per_s"]["2048x128 @ 128x384"]
    assert prof["threads"] == 1 and prof["mm_share_of_cpu_time"] > 0.45  # "half", the biggest item by far
    assert (
        f"take {100 * prof['mm_share_of_cpu_time']:.0f}% of the CPU time and run at {prof['mm_gflop_per_s']:.1f} "
        f"GFLOP/s, {100 * prof['mm_gflop_per_s'] / lone:.0f}% of the {lone:.1f} GFLOP/s a lone product" in page
    )
    top = list(prof["top_self_cpu_ms_per_step"])
    assert top[0] == "aten::mm" and any("CompiledFxGraph" in k for k in top[1:3]) and any("attention" in k for k in top)


def test_the_study_page_quotes_the_bf16_cpu_timing_and_seeds_as_the_files_hold_them():

    from jepa_lite.paired import nlrx_study

    root, page = ROOT, study_page("### In bf16")
    bench = root / "assets" / "bench" / "study_cpu_bf16_2026-12-08"
    files = {
        k: [json.loads((bench / f"{k}_{i}.json").read_text(encoding="utf-8")) for i in (0, 1)]
        for k in ("before", "bf16")
    }
    assert [f["precision"] for k in ("before", "bf16") for f in files[k]] == ["fp32", "fp32", "bf16", "bf16"]
    grids = {"kit": study.load_study(), "nlrx": nlrx_study.load(nlrx_study.RESULTS_FILE)}
    ratios = {}
    for name, grid in grids.items():
        runs = {k: [r for f in fs for r in f["runs"][name]] for k, fs in files.items()}
        assert [r["lbd"] for r in runs["before"]] == [r["lbd"] for r in runs["bf16"]] == [0.0, 1.0, 0.0, 1.0]
        row, ratios[name] = estimate_row(name, grid, runs["before"], runs["bf16"])
        assert row in page, row
    assert ("Both studies' laptop time is halved" in page) == (min(ratios.values()) >= 2)
    nlrx_runs = [r for f in files["bf16"] for r in f["runs"]["nlrx"]]
    scoring = [r["seconds"] - r["fit_seconds"] for r in nlrx_runs]
    whole = [r["seconds"] for r in nlrx_runs]
    assert f"{min(scoring):.0f}–{max(scoring):.0f} s of a {min(whole):.0f}–{max(whole):.0f} s NL-RX run" in page
    assert f"smallest reported gain ({nlrx_study.MARGIN:.3f}, `nlrx_study.MARGIN`)" in page
    # eight seeds in bf16 against the committed (fp32, GPU) runs of the same settings, seed for seed
    seeds = json.loads((bench / "seeds_bf16.json").read_text(encoding="utf-8"))["runs"]
    committed = {
        (r["lbd"], r["seed"]): r["exact_match"]["test"]
        for r in grids["nlrx"]["runs"]
        if r["stage"] == "lambda" and r["start"] == "pretrained" and r["lr"] == 0.002
    }
    mine = {(r["lbd"], r["seed"]): r["exact_match"]["test"] for r in seeds}
    assert sorted(mine) == [(lbd, s) for lbd in (0.0, 0.01) for s in range(2, 10)]
    for lbd in (0.0, 0.01):
        t = stats.paired_t([mine[lbd, s] for s in range(2, 10)], [committed[lbd, s] for s in range(2, 10)])
        assert (
            f"{t['diff']:+.3f} at λ = {lbd:g} (95% paired t interval {t['ci_low']:+.3f} to {t['ci_high']:+.3f})" in page
        )
        assert t["ci_low"] < 0 < t["ci_high"] and max(-t["ci_low"], t["ci_high"]) < nlrx_study.MARGIN
    for name, runs in (("bf16", mine), ("committed", committed)):
        e = stats.paired_t([runs[0.01, s] for s in range(2, 10)], [runs[0.0, s] for s in range(2, 10)])
        assert f"{name} {e['diff']:+.3f} ({e['ci_low']:+.3f} to {e['ci_high']:+.3f})" in page

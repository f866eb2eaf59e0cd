"""The NL-RX-SYNTH study: each λ at its own learning rate, chosen on validation; paired comparisons; resume."""

import copy
import dataclasses
import json

import pytest

from jepa_lite.paired import nlrx_study as ns
from jepa_lite.paired.nlrx_study import NlrxConfig, RunSpec
from jepa_lite.paired.study import groups

TINY = dict(lbds=(0.0, 1.0), lrs=(2e-3,), sweep_seeds=(0,), seeds=(0, 1), sizes=(), epochs=0.25)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A whole tiny study (8 runs of 2 steps each), written by `run_study`."""
    out = tmp_path_factory.mktemp("nlrx") / "study.json"
    c = NlrxConfig.fast(**TINY)
    lines = []
    s = ns.run_study(c, out, log=lines.append)
    return out, s, lines


def test_a_tiny_study_holds_every_planned_run(tiny):
    out, s, _ = tiny
    assert s["complete"] and ns.missing(s) == [] and len(s["runs"]) == len(ns.planned(s)) == 8
    assert ns.load(out) == json.loads(json.dumps(s))
    c = ns.config_of(s)
    for r in s["runs"]:
        assert r["steps"] == c.steps_for(c.n_train) == r["history"]["step"][-1] == 2
        assert r["total"] == {"train": c.train_eval, "val": c.n_val, "test": c.n_test}
        for split in ("train", "val", "test"):
            assert r["exact_match"][split] == pytest.approx(r["correct"][split] / r["total"][split], abs=1e-5)
        assert r["lr"] == s["best_lr"][r["start"]][ns.lam(r["lbd"])]  # one rate only: every run uses it
    assert s["data"]["sha256"] == ns.nlrx.SHA256 and s["best_lambda"] == {"scratch": 1.0, "pretrained": 1.0}


def test_resume_runs_only_what_is_missing(tiny, tmp_path):
    _, s, _ = tiny
    partial = dict(s, complete=False, runs=s["runs"][:5], best_lr=None, best_lambda=None)
    out = tmp_path / "partial.json"
    out.write_text(json.dumps(partial))
    lines = []
    again = ns.run_study(ns.config_of(s), out, resume=True, log=lines.append)
    timing = ("seconds", "fit_seconds")

    def strip(runs):  # as JSON text: NaN (the λ = 0 runs' JEPA loss) equals itself there
        return [json.dumps({k: v for k, v in r.items() if k not in timing}) for r in runs]

    assert strip(again["runs"][:5]) == strip(s["runs"][:5])  # kept as they were
    assert len(again["runs"]) == 8 and sum(line.startswith("[") for line in lines) == 3  # 3 runs trained
    assert sorted(strip(again["runs"])) == sorted(strip(s["runs"]))  # the same runs as in one sitting
    assert len(again["sittings"]) == 2 and again["sittings"][1]["runs_before"] == 5
    other = dataclasses.replace(ns.config_of(s), epochs=0.5)
    with pytest.raises(ns.StudyError, match="another config"):
        ns.run_study(other, out, resume=True, log=lambda _: None)


def test_runs_trained_together_are_the_runs_trained_alone(tiny, tmp_path):
    """`together`: each worker trains a group of runs as one (batched.py); the same runs, the same results."""
    c = dataclasses.replace(ns.config_of(tiny[1]), views="packed")  # what runs trained as one train
    alone = ns.run_study(c, tmp_path / "alone.json", log=lambda _: None)
    s = ns.run_study(c, tmp_path / "together.json", together=4, log=lambda _: None)
    assert "together" not in alone["sittings"][-1] and all("runs_together" not in r for r in alone["runs"])
    assert s["complete"] and len(s["runs"]) == 8 and s["sittings"][-1]["together"] == 4
    assert {k: s["sittings"][-1][k] for k in ("length_groups", "compile")} == {
        k: alone["sittings"][-1][k] for k in ("length_groups", "compile")
    }  # what a run alone would do on this CPU
    mine = {ns.record_key(r, ns.config_of(s)): r for r in alone["runs"]}
    for r in s["runs"]:
        a = mine[ns.record_key(r, ns.config_of(s))]
        # groups of ⌈4 runs of a stage / 1 worker⌉ capped at 4, one start each: two runs per group here
        assert r["runs_together"] == 2 and r["fit_seconds"] <= r["seconds"]
        assert r["exact_match"] == a["exact_match"] and r["history"]["step"] == a["history"]["step"]
        for name in ("lm_loss", "jepa_monitor"):
            assert r["history"][name] == pytest.approx(a["history"][name], rel=1e-4), name
    assert s["best_lr"] == alone["best_lr"] and s["best_lambda"] == alone["best_lambda"]


def test_a_grid_that_cannot_train_runs_as_one_says_so_and_trains_them_alone(tiny, tmp_path):
    lines = []
    s = ns.run_study(ns.config_of(tiny[1]), tmp_path / "separate.json", together=4, log=lines.append)
    assert lines[0] == "--together 4: this grid trains llm_jepa with separate views; its runs train alone"
    assert "together" not in s["sittings"][-1] and all("runs_together" not in r for r in s["runs"])


def test_groups_keep_runs_of_one_key_together_and_every_worker_busy():
    specs = [RunSpec("lr", start, lbd, 1e-3, seed, 0) for start in ("scratch", "pretrained") for lbd in (0, 1)
             for seed in range(5)]  # fmt: skip
    key = ns.together_key
    g = groups(specs, most=8, workers=4, key=key)  # ⌈20 / 4⌉ = 5 runs a group
    assert [len(x) for x in g] == [5, 5, 5, 5] and all(len({key(s) for s in x}) == 1 for x in g)
    assert [s for x in g for s in x] == specs  # nothing lost, nothing twice, in order
    assert [len(x) for x in groups(specs, most=3, workers=2, key=key)] == [3, 3, 3, 1, 3, 3, 3, 1]
    assert [len(x) for x in groups(specs, most=8, workers=32, key=key)] == [1] * 20


def _r(stage="lr", start="scratch", lbd=0.0, lr=1e-3, seed=0, val=0.0, test=0.0, n_train=0):
    return {
        **dataclasses.asdict(RunSpec(stage, start, lbd, lr, seed, n_train)),
        "exact_match": {"val": val, "test": test},
    }


def test_each_lambda_gets_the_rate_best_on_validation_not_test():
    c = NlrxConfig(lbds=(0.0, 1.0), lrs=(1e-3, 4e-3), sweep_seeds=(0, 1))
    runs = []
    for s in ns.STARTS:
        for seed in (0, 1):
            runs += [
                _r(start=s, lbd=0.0, lr=1e-3, seed=seed, val=0.6, test=0.1),
                _r(start=s, lbd=0.0, lr=4e-3, seed=seed, val=0.5, test=0.9),
                _r(start=s, lbd=1.0, lr=1e-3, seed=seed, val=0.4, test=0.9),
                _r(start=s, lbd=1.0, lr=4e-3, seed=seed, val=0.7, test=0.1),
            ]
    best = ns.best_lrs(runs, c)
    assert best == {s: {"0": 1e-3, "1": 4e-3} for s in ns.STARTS}
    tie = [dict(r, exact_match={"val": 0.5, "test": 0}) for r in runs]
    assert ns.best_lrs(tie, c)["scratch"] == {"0": 1e-3, "1": 1e-3}  # ties: the smaller rate
    specs = ns.lambda_stage(dataclasses.replace(c, seeds=(0, 1, 2)), best)
    assert {(s.lbd, s.lr, s.seed) for s in specs if s.start == "scratch"} == {(0.0, 1e-3, 2), (1.0, 4e-3, 2)}


def test_a_comparison_pairs_each_lambda_at_its_rate_with_lambda_0_at_its_rate():
    scipy_stats = pytest.importorskip("scipy.stats")
    base = [0.60, 0.62, 0.58, 0.65, 0.61]
    jepa = [0.63, 0.66, 0.57, 0.70, 0.64]
    runs = [_r(stage="lr" if i < 2 else "lambda", lbd=0.0, lr=2e-3, seed=i, test=v) for i, v in enumerate(base)]
    runs += [_r(stage="lr" if i < 2 else "lambda", lbd=1.0, lr=4e-3, seed=i, test=v) for i, v in enumerate(jepa)]
    runs += [_r(lbd=0.0, lr=4e-3, seed=i, test=0.0) for i in range(2)]  # λ = 0 at λ = 1's rate: not its baseline
    runs += [_r(stage="size", lbd=0.0, lr=2e-3, seed=i, test=0.9, n_train=500) for i in range(5)]
    study = {"runs": runs, "best_lr": {"scratch": {"0": 2e-3, "1": 4e-3}}}
    c = ns.comparison(study, "scratch", 1.0)
    ref = scipy_stats.ttest_rel(jepa, base)
    assert c["seeds"] == [0, 1, 2, 3, 4] and c["up"] == 4
    assert c["diff"] == pytest.approx(sum(jepa) / 5 - sum(base) / 5)
    assert c["p"] == pytest.approx(ref.pvalue, rel=1e-6)
    assert (c["lr"], c["baseline_lr"]) == (4e-3, 2e-3)
    assert c["verdict"] == ns.verdict(c) and (c["verdict"] == "helps") == (c["ci_low"] > 0)


def test_two_settings_at_zero_are_nothing_to_compare_not_no_effect():
    runs = [_r(stage="lr", lbd=lbd, lr=1e-3, seed=i, test=0.0) for lbd in (0.0, 1.0) for i in range(3)]
    c = ns.comparison({"runs": runs, "best_lr": {"scratch": {"0": 1e-3, "1": 1e-3}}}, "scratch", 1.0)
    assert c["verdict"] == "both score 0: nothing to compare"


def test_verdict_names_no_effect_only_when_a_paper_sized_gain_is_excluded():
    assert ns.MARGIN == pytest.approx((66.83 - 57.29) / 100)
    assert ns.verdict({"ci_low": 0.001, "ci_high": 0.2}) == "helps"
    assert ns.verdict({"ci_low": -0.2, "ci_high": -0.001}) == "hurts"
    assert ns.verdict({"ci_low": -0.02, "ci_high": 0.03}) == "no gain of the paper's size"
    assert ns.verdict({"ci_low": -0.09, "ci_high": 0.14}) == "can't tell"  # issue 23's example interval


def test_bad_command_lines_are_one_error_line(tmp_path, capsys):
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}')
    assert ns.main(["--fast", "--out", str(mine)]) == 2
    assert mine.read_text() == '{"my": "notes"}'
    assert ns.main(["--fast", "--out", str(tmp_path / "x.json"), "--workers", "0"]) == 2
    assert ns.main(["--fast", "--out", str(tmp_path / "no" / "x.json")]) == 2
    assert ns.main(["--fast", "--out", str(tmp_path / "x.json"), "--together", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)


def test_the_study_page_quotes_the_files_own_counts_and_times():
    from pathlib import Path

    page = " ".join((Path(__file__).resolve().parent.parent / "docs" / "study.md").read_text(encoding="utf-8").split())
    s = ns.load()
    c = ns.config_of(s)
    assert s["complete"] and ns.missing(s) == [] and len(s["runs"]) == len(ns.planned(s))
    steps = sum(r["steps"] for r in s["runs"])
    assert f"holds all {len(s['runs'])} planned runs ({steps:,} optimizer steps) and took {s['seconds']:.0f} s" in page
    sit = s["sittings"]
    assert f"in two sittings of {sit[0]['seconds']:.0f} s and {sit[1]['seconds']:.0f} s" in page and len(sit) == 2
    assert all(x["workers"] == 16 and x["device"] == "cuda" for x in sit) and "16 processes" in page
    assert "four peak learning rates, two seeds" in page and len(c.lrs) == 4 and len(c.sweep_seeds) == 2
    assert (
        "over ten seeds" in page and len(c.seeds) == 10 and f"({c.steps_for(7000)} steps for the 7,000 pairs)" in page
    )
    assert "carves 1,000 validation pairs" in page and c.n_val == 1000


def test_one_study_per_results_file(tmp_path, capsys):
    from jepa_lite.writer import PathLock

    out = tmp_path / "nlrx.json"
    held = PathLock(out, "--out")
    held.acquire()  # another study on this file
    try:
        assert ns.main(["--fast", "--out", str(out)]) == 2
    finally:
        held.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and not out.exists()


TINY_TUBE = dict(lrs=(2e-3,), sweep_seeds=(0,), seeds=(0, 1), epochs=0.25)


@pytest.fixture(scope="module")
def tube_files(tmp_path_factory):
    """Tiny versions of notebook 07's two studies (16 runs of 2 steps each): {"tube", "tube_jepa"}."""
    out = tmp_path_factory.mktemp("tube")
    return {
        grid: ns.run_study(NlrxConfig.grid(grid, fast=True, **TINY_TUBE), out / f"{grid}.json", log=lambda _: None)
        for grid in ("tube", "tube_jepa")
    }


def test_the_stp_study_trains_the_tube_objective_on_the_lm_row(tube_files):
    """`--grid tube`: the same protocol, λ weighting the tube term; runs at λ > 0 log a tube loss, λ = 0
    runs none; the grid is STP_LBDS around the official 0.02; the smaller sets train as many steps as the
    full one; packed views are refused (STP reads one row)."""
    c = NlrxConfig.grid("tube", fast=True, **TINY_TUBE)
    assert (c.objective, c.views, c.lbds, c.size_steps) == ("stp", "separate", (0.0, 0.02), "steps")
    full = NlrxConfig.grid("tube")
    assert full.lbds == ns.STP_LBDS and 0.02 in ns.STP_LBDS and [7000 // n for n in full.sizes] == [16, 4]
    s = tube_files["tube"]
    assert s["complete"] and len(s["runs"]) == 16 and ns.config_of(s).objective == "stp"
    for r in s["runs"]:
        tube = r["history"]["jepa_loss"]
        assert all(x != x for x in tube) if r["lbd"] == 0 else all(0 <= x <= 2 for x in tube), (r["lbd"], tube)
        assert r["steps"] == c.steps_for(c.n_train) == 2 > c.steps_for(16)  # 16 pairs train as long as the 48
    assert {r["n_train"] for r in s["runs"] if r["stage"] == "size"} == {16}
    with pytest.raises(ns.StudyError, match="views 'separate'"):
        dataclasses.replace(c, views="packed").validate()
    with pytest.raises(ns.StudyError, match="size_steps"):
        dataclasses.replace(c, size_steps="tokens").validate()
    with pytest.raises(ns.StudyError, match="grid must be"):
        NlrxConfig.grid("stp")


def test_a_results_file_from_before_stp_reads_as_llm_jepa():
    study = ns.load()  # the shipped NL-RX study, written before the objective was a setting
    assert "objective" not in study["config"] and ns.config_of(study).objective == "llm_jepa"
    assert ns.config_of(study).size_steps == "epochs"  # its sizes trained 4 epochs: fewer steps


def test_the_grid_picks_the_default_results_file(tmp_path, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(
        ns, "run_study", lambda c, out, *a, **k: seen.update(c=c, out=out) or {"runs": [], "seconds": 0.0}
    )
    assert ns.main(["--fast", "--grid", "tube", "--out", str(tmp_path / "t.json")]) == 0
    assert seen["c"].objective == "stp" and seen["out"] == tmp_path / "t.json"
    names = {grid: path.name for grid, path in ns.GRIDS.items()}
    assert names == {"nlrx": "study_nlrx.json", "tube": "study_tube.json", "tube_jepa": "study_tube_jepa.json"}


def test_the_tube_jepa_grid_takes_lambda_and_rate_from_notebook_06s_validation_choice():
    study = ns.load()
    c = NlrxConfig.grid("tube_jepa")
    assert c.objective == "llm_jepa" and c.sizes == ns.STP_SIZES and c.size_steps == "steps"
    assert c.lbds == (0.0, *sorted(set(study["best_lambda"].values())))
    assert set(c.lrs) == {study["best_lr"][s][ns.lam(lbd)] for s in ns.STARTS for lbd in c.lbds}
    assert (c.lbds, c.lrs) == ((0.0, 0.01), (0.002,))  # what study_nlrx.json chose: one rate, one λ


def test_notebook_07s_reading_draws_and_words_three_objectives(tube_files):
    """With both files (LLM-JEPA's included), every reading of § 7 covers LM only, STP and LLM-JEPA."""
    from jepa_lite.course import tube_study_view as view

    assert [name for name, _ in view.objectives(tube_files)] == ["STP", "LLM-JEPA"]
    assert tube_files["tube_jepa"]["config"]["objective"] == "llm_jepa"
    curves = view.curves(tube_files, "scratch")
    assert list(curves) == ["LM only", "STP", "LLM-JEPA"]
    assert [r["n_train"] for r in curves["STP"]["rows"]] == [16, 48] and curves["STP"]["rows"][0]["n"] == 2
    fig = view.efficiency_figure(tube_files)
    assert [len(ax.get_legend().get_texts()) for ax in fig.axes] == [3, 3]
    assert len(view.same_size_lines(tube_files)) == 2 * 2 * 2  # starts × objectives × (16, 48 pairs)
    lines = view.claim_lines(tube_files)
    assert len(lines) == 2 * 3 and all("pairs (1/3) − LM only on 48" in line for line in lines)
    assert set(view.claim_verdicts(tube_files)["scratch"]) == {"STP", "LLM-JEPA"}
    assert any(line.startswith("LLM-JEPA on the same sizes: 16 runs") for line in view.describe(tube_files))
    alone = {"tube": tube_files["tube"]}
    assert list(view.curves(alone, "scratch")) == ["LM only", "STP"]
    assert view.describe(alone)[-1].startswith("LLM-JEPA on the same sizes: not shipped yet")


def test_the_study_page_quotes_the_tube_files_own_counts_and_time():
    from pathlib import Path

    page = " ".join((Path(__file__).resolve().parent.parent / "docs" / "study.md").read_text(encoding="utf-8").split())
    s = ns.load(ns.TUBE_RESULTS_FILE)
    c = ns.config_of(s)
    assert s["complete"] and ns.missing(s) == [] and len(s["runs"]) == len(ns.planned(s))
    assert f"holds all {len(s['runs'])} planned runs and took {s['seconds']:.0f} s of work on one H100 GPU" in page
    assert len(s["sittings"]) == 2 and all("H100" in x["card"] for x in s["sittings"]) and "in two sittings" in page
    assert "λ ∈ {0, 0.005, 0.02, 0.1, 0.3, 1}" in page and c.lbds == ns.STP_LBDS and len(c.lrs) == 4
    assert "each trained for the full set's 875 steps" in page and c.steps_for(7000) == 875
    assert "at four epochs a 437-pair set gets 55 steps" in page and ns.NlrxConfig().steps_for(437) == 55
    fit = {
        k: [r["fit_seconds"] for r in study["runs"] if r["lbd"] > 0 and r["stage"] == "lr"]
        for k, study in (("tube", s), ("nlrx", ns.load()))
    }
    mean = {k: sum(v) / len(v) for k, v in fit.items()}
    assert "about 50 s against 30 s per run" in page and abs(mean["tube"] - 50) < 5 and abs(mean["nlrx"] - 30) < 5
    jepa = ns.load(ns.TUBE_JEPA_RESULTS_FILE)
    trained = [r for r in jepa["runs"] if not r.get("copied_from")]
    assert jepa["complete"] and len(jepa["runs"]) == len(ns.planned(jepa)) == 120
    cards = [x["card"] for x in jepa["sittings"]]
    assert cards == ["NVIDIA H200", "NVIDIA H100 80GB HBM3"] and "in two sittings" in page
    assert (
        f"104 trained for it in two sittings ({jepa['seconds']:.0f} s of work, on one H200 and then one H100 GPU)"
        in page
    )
    assert len(trained) == 104 and jepa["copied"] == [{"from": "study_tube.json", "runs": 16}]
    assert {(r["lbd"], r["n_train"], r["stage"]) for r in jepa["runs"] if r.get("copied_from")} == {(0.0, 1750, "size")}
    assert "Its file holds all 120 planned runs" in page and "16 LM-only runs on 1,750 pairs copied" in page
    assert "The 44 LM-only runs that both files trained are identical" in page  # test above: 44


def _same_run(a: dict, b: dict) -> bool:
    """Same exact match and loss history (as JSON text: NaN, the λ = 0 runs' JEPA loss, equals itself there)."""
    return json.dumps([a["exact_match"], a["history"]]) == json.dumps([b["exact_match"], b["history"]])


def _lm_only(study: dict) -> dict:
    c = ns.config_of(study)
    return {ns.record_key(r, c): r for r in study["runs"] if r["lbd"] == 0}


@pytest.mark.parametrize("shipped", [False, True])
def test_the_lm_only_runs_of_the_tube_and_tube_jepa_grids_are_the_same_runs(shipped, tube_files):
    """The premise of `baseline_from`: a λ = 0 run is the same computation in both grids. Tiny studies on
    the CPU, and the shipped files (trained on H200 and H100 GPUs in three sittings): every LM-only run both
    files trained is identical, exact match and loss history."""
    files = {g: ns.load(ns.GRIDS[g]) for g in ("tube", "tube_jepa")} if shipped else tube_files
    tube, jepa = _lm_only(files["tube"]), _lm_only(files["tube_jepa"])
    trained = {k: r for k, r in jepa.items() if not r.get("copied_from")}
    both = trained.keys() & tube.keys()
    assert len(both) == (44 if shipped else len(trained)) and len(both) >= 4
    for k in both:
        assert _same_run(trained[k], tube[k])
    for k, r in jepa.items():  # and the copied ones are the donor's records, marked
        if r.get("copied_from"):
            assert r["copied_from"] == "study_tube.json" and {**r, "copied_from": None} == {
                **tube[k],
                "copied_from": None,
            }


def test_baseline_from_fills_the_missing_lm_only_runs_and_refuses_other_settings(tube_files, tmp_path, capsys):
    jepa = copy.deepcopy(tube_files["tube_jepa"])
    dropped = [r for r in jepa["runs"] if r["lbd"] == 0 and r["stage"] == "size"]
    jepa["runs"] = [r for r in jepa["runs"] if r not in dropped]
    jepa["complete"] = False
    out, donor = tmp_path / "tube_jepa.json", tmp_path / "tube.json"
    out.write_text(json.dumps(jepa), encoding="utf-8")
    donor.write_text(json.dumps(tube_files["tube"]), encoding="utf-8")
    assert ns.main(["--grid", "tube_jepa", "--out", str(out), "--baseline_from", str(donor)]) == 0
    filled = ns.load(out)
    assert (
        filled["complete"]
        and ns.missing(filled) == []
        and filled["copied"] == [{"from": "tube.json", "runs": len(dropped)}]
    )
    c = ns.config_of(filled)
    copied = {ns.record_key(r, c): r for r in filled["runs"] if r.get("copied_from") == "tube.json"}
    assert copied.keys() == {ns.record_key(r, c) for r in dropped}
    for r in dropped:  # the same runs as those trained for the grid itself
        assert _same_run(copied[ns.record_key(r, c)], r)
    gone = tmp_path / "no such dir" / "tube.json"  # a missing donor: one error line, its path quoted for the shell
    assert ns.main(["--grid", "tube_jepa", "--out", str(out), "--baseline_from", str(gone)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {gone} not found: run `python -m jepa_lite.paired.nlrx_study --out '{gone}'`\n"
    )
    other = copy.deepcopy(tube_files["tube"])
    other["config"]["epochs"] = 1.0
    with pytest.raises(ns.StudyError, match="trained differently: epochs differ"):
        ns.baseline_from(copy.deepcopy(jepa), other, "other.json")


def test_precision_is_chosen_for_a_new_study_and_kept_by_a_resumed_one(tiny, tmp_path, capsys):
    import argparse

    from jepa_lite.paired.study import study_config

    out, s, _ = tiny

    def config(**given):
        args = argparse.Namespace(out=str(out), resume=False, device=None, model_dir=None, precision=None)
        vars(args).update(given)
        fresh = lambda **over: NlrxConfig.fast(**over)  # noqa: E731
        return study_config(args, ("device", "model_dir"), fresh, lambda path: ns.config_of(ns.load(path)))

    assert config().precision == "fp32" and config(precision="bf16").precision == "bf16"
    assert config(resume=True).precision == "fp32" == ns.config_of(s).precision  # the file's
    with pytest.raises(ns.StudyError, match="was run in fp32, and a study keeps one precision"):
        config(resume=True, precision="bf16")
    before = out.read_text()
    assert ns.main(["--out", str(out), "--resume", "--fast", "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --precision bf16:") and out.read_text() == before

"""Is a difference between two settings more than seed noise? The paired t-test and a bootstrap.

The study trains each setting with the same seeds as its baseline (λ = 0): same batches in the
same order, same starting weights. So the honest comparison is *paired*: for seed i take
d_i = a_i − b_i (setting minus baseline) and ask whether the mean of the d_i is far from 0,
measured in units of its own spread:

    d̄ = (1/n) Σ d_i,   s = sqrt(Σ (d_i − d̄)² / (n − 1)),   t = d̄ / (s / √n),   df = n − 1

Under "no effect" t follows Student's t distribution with n − 1 degrees of freedom; the two-sided
p-value is P(|T| ≥ |t|), and the 95 % confidence interval is d̄ ± t₀.₉₇₅ · s / √n. The bootstrap
gives a second interval that assumes no distribution: resample the n differences with replacement
many times and take the 2.5 % and 97.5 % quantiles of their means.

The distributions come from `scipy.stats` (`ttest_rel`, `t.ppf`, `bootstrap`); this module fixes
what the study needs on top: the pairing, the two-sided test, the zero-spread cases, the keys.

With 5 seeds both are coarse: a true effect of one standard deviation of the seed noise is often
missed. An interval that contains 0 means "not distinguishable from no effect with these seeds",
not "no effect".
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np
from scipy import stats as scipy_stats


def paired_t(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Dict[str, float]:
    """Paired t-test of a against b (a[i] and b[i] share seed i).

    Returns {"n", "mean_a", "mean_b", "diff" (d̄), "sd" (s of the d_i), "t", "df", "p" (two-sided),
    "ci_low", "ci_high"}. With s = 0, t is ±inf (p = 0) unless d̄ = 0 too (t = 0, p = 1).
    """
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired test needs two equally long lists of at least 2 values; got {len(a)} and {len(b)}")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b  # (n,) one difference per seed
    n = len(d)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if se == 0:  # scipy answers nan here; every seed moved by exactly d̄
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        test = scipy_stats.ttest_rel(a, b)  # t = d̄ / (s / √n), p = P(|T| ≥ |t|), T ~ Student's t with n − 1 df
        t, p = float(test.statistic), float(test.pvalue)
    half = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * se  # t₀.₉₇₅ · s / √n at level 0.95
    return {
        "n": n,
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "diff": mean,
        "sd": sd,
        "t": t,
        "df": n - 1,
        "p": p,
        "ci_low": mean - half,
        "ci_high": mean + half,
    }


def mean_ci(values: Sequence[float]) -> Dict[str, float]:
    """Mean and the half-width of its 95 % t interval over seeds: x̄ ± t₀.₉₇₅,ₙ₋₁ · s / √n.
    {"mean", "sd", "half", "n"}; `half` is NaN for a single value."""
    m = mean_sd(values)
    n = m["n"]
    half = float(scipy_stats.t.ppf(0.975, n - 1)) * m["sd"] / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": m["mean"], "sd": m["sd"], "half": half, "n": n}


def welch_t(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Dict[str, float]:
    """Unpaired (Welch) t-test of a against b: for settings that share no training data, where pairing
    by seed has nothing to pair (e.g. a run on 437 pairs against runs on 7,000).

        d̄ = ā − b̄,   se = sqrt(s_a²/n_a + s_b²/n_b),   t = d̄ / se,
        df = se⁴ / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1))   (Welch–Satterthwaite)

    Returns the keys of `paired_t` ("n" is n_a + n_b). With both spreads 0, t is ±inf unless d̄ = 0."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a t-test needs at least 2 values on each side; got {len(a)} and {len(b)}")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    mean = float(a.mean() - b.mean())
    out = {"n": len(a) + len(b), "mean_a": float(a.mean()), "mean_b": float(b.mean()), "diff": mean}
    if a.std() == 0 and b.std() == 0:  # scipy answers nan: nothing varies
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
        return {**out, "sd": 0.0, "t": t, "df": float(len(a) + len(b) - 2), "p": p, "ci_low": mean, "ci_high": mean}
    test = scipy_stats.ttest_ind(a, b, equal_var=False)
    ci = test.confidence_interval(level)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return {
        **out,
        "sd": se,  # the standard error of d̄ (no per-seed differences here)
        "t": float(test.statistic),
        "df": float(test.df),
        "p": float(test.pvalue),
        "ci_low": float(ci.low),
        "ci_high": float(ci.high),
    }


def bootstrap_interval(
    a: Sequence[float], b: Sequence[float], level: float = 0.95, resamples: int = 10000, seed: int = 0
) -> Dict[str, float]:
    """Percentile bootstrap interval of the mean paired difference: {"diff", "low", "high"}."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if np.ptp(d) == 0:  # every resample has the same mean (scipy warns and answers nan)
        return {"diff": float(d.mean()), "low": float(d[0]), "high": float(d[0])}
    res = scipy_stats.bootstrap(
        (d,),
        np.mean,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return {
        "diff": float(d.mean()),
        "low": float(res.confidence_interval.low),
        "high": float(res.confidence_interval.high),
    }


def mean_sd(values: Sequence[float]) -> Dict[str, float]:
    """{"mean", "sd", "n"} of `values` (sd with n − 1; 0 for a single value)."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}

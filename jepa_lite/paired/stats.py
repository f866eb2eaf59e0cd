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

With 5 seeds both are coarse: a true effect of one standard deviation of the seed noise is often
missed. An interval that contains 0 means "not distinguishable from no effect with these seeds",
not "no effect".
"""

from __future__ import annotations

import math
import random
from typing import Dict, Sequence


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function, for a, b > 0 and 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with `df` degrees of freedom: 1 − ½ I_{df/(df+t²)}(df/2, ½) for t ≥ 0."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(q: float, df: float) -> float:
    """The t with P(T ≤ t) = q (bisection on `t_cdf`; q in (0, 1))."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
    return (lo + hi) / 2


def paired_t(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Dict[str, float]:
    """Paired t-test of a against b (a[i] and b[i] share seed i).

    Returns {"n", "mean_a", "mean_b", "diff" (d̄), "sd" (s of the d_i), "t", "df", "p" (two-sided),
    "ci_low", "ci_high"}. With s = 0, t is ±inf (p = 0) unless d̄ = 0 too (t = 0, p = 1).
    """
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired test needs two equally long lists of at least 2 values; got {len(a)} and {len(b)}")
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    se = sd / math.sqrt(n)
    if se == 0:
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / se
        p = 2.0 * (1.0 - t_cdf(abs(t), n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * se
    return {"n": n, "mean_a": sum(a) / n, "mean_b": sum(b) / n, "diff": mean, "sd": sd, "t": t, "df": n - 1,
            "p": p, "ci_low": mean - half, "ci_high": mean + half}


def bootstrap_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95, resamples: int = 10000,
                       seed: int = 0) -> Dict[str, float]:
    """Percentile bootstrap interval of the mean paired difference: {"diff", "low", "high"}."""
    d = [x - y for x, y in zip(a, b)]
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(d) for _ in d) / len(d) for _ in range(resamples))
    lo = means[int(math.floor((1 - level) / 2 * resamples))]
    hi = means[min(resamples - 1, int(math.ceil((1 + level) / 2 * resamples)) - 1)]
    return {"diff": sum(d) / len(d), "low": lo, "high": hi}


def mean_sd(values: Sequence[float]) -> Dict[str, float]:
    """{"mean", "sd", "n"} of `values` (sd with n − 1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": n}

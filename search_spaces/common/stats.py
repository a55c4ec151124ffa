"""Statistics of repeated training runs: intervals, comparisons and the one verdict rule.

Shared by ``scaling`` (families, curves, the grid's tie set) and ``nas`` (re-evaluating the top
candidates), so it sits with the other shared utilities (errors, atomic writes) at the bottom of
the package graph. docs/statistics.md states the rule for users; in short:

* an **interval** is the 95 % Student-t interval of the mean over seeds (``n = 1`` has none);
* a **comparison** of A with B is a paired t-test on the seeds both share when at least two seeds
  match, Welch's t-test otherwise; given a measured noise floor (the pooled seed-to-seed standard
  deviation of many points, :func:`noise_floor`) the test uses that instead of the two samples'
  own spread, which lets single-seed points be compared;
* the **verdict** is ``better`` / ``worse`` when the two-sided p-value is below 0.05 (the 95 %
  interval of the difference excludes 0), ``tied within noise`` otherwise, and ``too few seeds``
  when there is no estimate of the noise (fewer than two runs on a side and no noise floor);
* ``seeds_needed`` is the smallest number of seeds per side at which a t-test would detect the
  observed difference with 80 % power, given the observed noise;
* a statistic of a sample that is not a mean over seeds (a rank correlation over candidates) gets a
  **bootstrap** interval: the 2.5 and 97.5 percentiles of the statistic over ``BOOTSTRAP`` seeded
  resamples of the sample's units (:func:`resample_indices`, :func:`bootstrap_interval`); two such
  statistics of the same units are compared on the same resamples (:func:`bootstrap_compare`), with
  the same verdict rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

#: Confidence level of every interval, and the two-sided test level that goes with it.
LEVEL = 0.95
ALPHA = 1 - LEVEL
#: Power at which ``seeds_needed`` is computed.
POWER = 0.8
BETTER, WORSE, TIED, TOO_FEW, NOT_COMPARABLE = "better", "worse", "tied within noise", "too few seeds", "not comparable"
VERDICTS = (BETTER, WORSE, TIED, TOO_FEW, NOT_COMPARABLE)
#: The largest ``seeds_needed`` reported; beyond it the difference is, in practice, not detectable.
MAX_SEEDS = 1000
#: Resamples of a bootstrap interval (percentile method; the interval's ends move by about 0.01 of
#: its width between seeds of the resampling at this count).
BOOTSTRAP = 2000


def _values(xs: Iterable[float] | np.ndarray) -> np.ndarray:
    a = np.asarray([float(x) for x in xs], dtype=float)
    return a[np.isfinite(a)]


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` runs with its 95 % t-interval (``low``/``high`` are NaN for ``n < 2``)."""

    n: int
    mean: float
    low: float
    high: float
    sd: float
    method: str = "t"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def text(self, *, scale: float = 100.0, digits: int = 1, unit: str = "") -> str:
        """``'63.1 [61.2, 65.0] (n = 3)'``; ``'63.1 (n = 1)'`` when there is no interval."""
        m = f"{scale * self.mean:.{digits}f}{unit}"
        if self.n < 2 or not math.isfinite(self.low):
            return f"{m} (n = {self.n})"
        return f"{m} [{scale * self.low:.{digits}f}, {scale * self.high:.{digits}f}] (n = {self.n})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def interval(values: Iterable[float], *, level: float = LEVEL) -> Interval:
    """The mean of ``values`` (NaN dropped) and its Student-t interval.

    >>> iv = interval([0.60, 0.62, 0.64])
    >>> round(iv.mean, 3), round(iv.low, 3), round(iv.high, 3), iv.n
    (0.62, 0.57, 0.67, 3)
    >>> interval([0.5]).text()
    '50.0 (n = 1)'
    """
    v = _values(values)
    n = len(v)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan, "none")
    mean = float(v.mean())
    if n < 2:
        return Interval(1, mean, math.nan, math.nan, math.nan, "none")
    sd = float(v.std(ddof=1))
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(n, mean, mean - half, mean + half, sd, "t")


@dataclass(frozen=True)
class NoiseFloor:
    """Pooled seed-to-seed standard deviation of repeated runs and its degrees of freedom."""

    sd: float
    df: int
    groups: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def noise_floor(groups: Iterable[Sequence[float]]) -> NoiseFloor | None:
    """The pooled within-group standard deviation of several groups of repeated runs (e.g. the
    seeds of every grid point): ``sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1))``. None when no group
    has two runs."""
    ss, df, k = 0.0, 0, 0
    for g in groups:
        v = _values(g)
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            df += len(v) - 1
            k += 1
    return NoiseFloor(math.sqrt(ss / df), df, k) if df else None


@dataclass(frozen=True)
class Comparison:
    """A minus B: the difference of means, its 95 % interval, the p-value and the verdict."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p: float
    test: str
    verdict: str
    seeds_needed: int | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _power(effect: float, n: int, *, paired: bool) -> float:
    """Power of a two-sided t-test at level ALPHA for a standardised ``effect`` (diff / sd) with
    ``n`` seeds per side (``n`` pairs when paired)."""
    df = n - 1 if paired else 2 * n - 2
    nc = effect * math.sqrt(n) if paired else effect * math.sqrt(n / 2)
    crit = float(_st.t.ppf(1 - ALPHA / 2, df))
    p = float(_st.nct.sf(crit, df, nc) + _st.nct.cdf(-crit, df, nc))
    # scipy's noncentral t returns NaN far in its tails: there the power is ~1 (or ~0).
    return p if math.isfinite(p) else float(nc > crit)


def seeds_needed(diff: float, sd: float, *, paired: bool, power: float = POWER) -> int | None:
    """The smallest number of seeds per side (>= 2) at which a t-test detects ``diff`` with
    ``power`` when runs vary by ``sd``; None when ``diff`` is 0 or needs more than MAX_SEEDS.

    >>> seeds_needed(0.02, 0.005, paired=False)
    3
    """
    if not (math.isfinite(diff) and math.isfinite(sd)) or diff == 0:
        return None
    if sd == 0:
        return 2
    effect = abs(diff) / sd
    lo, hi = 2, MAX_SEEDS
    if _power(effect, hi, paired=paired) < power:
        return None
    while lo < hi:  # power grows with n: bisect
        mid = (lo + hi) // 2
        if _power(effect, mid, paired=paired) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


def verdict(diff: float, p: float) -> str:
    """The verdict word of a difference ``diff`` (A - B) with two-sided p-value ``p``: ``better`` /
    ``worse`` below ALPHA, ``tied within noise`` otherwise, ``too few seeds`` when ``p`` is NaN.

    >>> verdict(0.02, 0.01), verdict(-0.02, 0.01), verdict(0.02, 0.2)
    ('better', 'worse', 'tied within noise')
    """
    if not math.isfinite(p):
        return TOO_FEW
    if p < ALPHA:
        return BETTER if diff > 0 else WORSE
    return TIED



def compare(a: Sequence[float], b: Sequence[float], *, seeds_a: Sequence[Any] | None = None,
            seeds_b: Sequence[Any] | None = None, floor: NoiseFloor | None = None,
            level: float = LEVEL) -> Comparison:
    """Compare the runs ``a`` with the runs ``b`` (A minus B).

    With ``seeds_a``/``seeds_b`` and at least two seeds in common, the test is a paired t-test on
    the shared seeds (runs of other seeds are left out of the test, not of the means). With a
    ``floor`` the noise is the floor's pooled standard deviation (its degrees of freedom for the
    t quantile). Otherwise Welch's t-test on the two samples.

    >>> compare([0.62, 0.63, 0.61], [0.60, 0.61, 0.59], seeds_a=[0, 1, 2], seeds_b=[0, 1, 2]).verdict
    'better'
    >>> compare([0.62], [0.60]).verdict
    'too few seeds'
    """
    if seeds_a is not None and len(seeds_a) != len(a):
        raise ValueError("seeds_a and a differ in length")
    if seeds_b is not None and len(seeds_b) != len(b):
        raise ValueError("seeds_b and b differ in length")
    va, vb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ka, kb = np.isfinite(va), np.isfinite(vb)
    xa, xb = va[ka], vb[kb]
    n_a, n_b = len(xa), len(xb)
    mean_a = float(xa.mean()) if n_a else math.nan
    mean_b = float(xb.mean()) if n_b else math.nan
    diff = mean_a - mean_b
    q = 0.5 + level / 2
    nan = math.nan

    def result(low: float, high: float, p: float, test: str, need: int | None, note: str = "") -> Comparison:
        return Comparison(n_a, n_b, mean_a, mean_b, diff, low, high, p, test, verdict(diff, p), need, note)

    if n_a == 0 or n_b == 0:
        return result(nan, nan, nan, "none", None, "no runs on one side")
    pairs: list[tuple[float, float]] = []
    if seeds_a is not None and seeds_b is not None and floor is None:
        sb = {s: float(x) for s, x, k in zip(seeds_b, vb, kb, strict=True) if k}
        pairs = [(float(x), sb[s]) for s, x, k in zip(seeds_a, va, ka, strict=True) if k and s in sb]
    if len(pairs) >= 2:
        d = np.array([x - y for x, y in pairs])
        n = len(d)
        sd = float(d.std(ddof=1))
        if sd == 0:
            p = 1.0 if d.mean() == 0 else 0.0
            need = seeds_needed(diff, sd, paired=True)
            return result(float(d.mean()), float(d.mean()), p, f"paired t ({n} seeds)", need)
        se = sd / math.sqrt(n)
        t = float(d.mean()) / se
        p = float(2 * _st.t.sf(abs(t), n - 1))
        half = float(_st.t.ppf(q, n - 1)) * se
        note = f"{n_a + n_b - 2 * n} unpaired runs left out of the test" if n_a + n_b > 2 * n else ""
        return result(float(d.mean()) - half, float(d.mean()) + half, p, f"paired t ({n} seeds)",
                      seeds_needed(float(d.mean()), sd, paired=True), note)
    if floor is not None:
        se = floor.sd * math.sqrt(1 / n_a + 1 / n_b)
        df: float = floor.df
        sd = floor.sd
        test = f"t with the noise floor (sd {floor.sd:.4f}, {floor.df} df)"
    else:
        if n_a < 2 or n_b < 2:
            return result(nan, nan, nan, "none", None, "one run on a side and no noise floor: no estimate of the noise")
        sa2, sb2 = float(xa.var(ddof=1)), float(xb.var(ddof=1))
        se = math.sqrt(sa2 / n_a + sb2 / n_b)
        if se == 0:
            return result(diff, diff, 1.0 if diff == 0 else 0.0, "Welch t", seeds_needed(diff, 0.0, paired=False))
        df = se**4 / ((sa2 / n_a) ** 2 / (n_a - 1) + (sb2 / n_b) ** 2 / (n_b - 1))
        sd = math.sqrt((sa2 + sb2) / 2)
        test = "Welch t"
    if se == 0:
        return result(diff, diff, 1.0 if diff == 0 else 0.0, test, seeds_needed(diff, 0.0, paired=False))
    t = diff / se
    p = float(2 * _st.t.sf(abs(t), df))
    half = float(_st.t.ppf(q, df)) * se
    return result(diff - half, diff + half, p, test, seeds_needed(diff, sd, paired=False))


# -- bootstrap: statistics of one sample of units (candidates, cells) that are not means over seeds ----------


def resample_indices(n: int, *, resamples: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """``(resamples, n)`` indices into ``n`` units, drawn with replacement by a seeded generator:
    evaluate a statistic on each row to get its bootstrap distribution (the same rows for every
    statistic of the same units make their comparison paired).

    >>> resample_indices(4, resamples=3, seed=0).shape
    (3, 4)
    """
    if n < 1 or resamples < 1:
        raise ValueError(f"need n >= 1 units and resamples >= 1, got n={n}, resamples={resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_interval(point: float, replicates: Sequence[float] | np.ndarray, *, n: int,
                       level: float = LEVEL) -> Interval:
    """The statistic ``point`` (computed on all ``n`` units) with the percentile interval of its
    bootstrap ``replicates`` (NaN replicates, e.g. a correlation of a constant resample, dropped).

    >>> iv = bootstrap_interval(0.5, [i / 1000 for i in range(1001)], n=30)
    >>> iv.method, iv.n, round(iv.low, 3), round(iv.high, 3)
    ('bootstrap', 30, 0.025, 0.975)
    """
    r = _values(replicates)
    if len(r) < 2:
        return Interval(n, float(point), math.nan, math.nan, math.nan, "none")
    q = (1 - level) / 2
    return Interval(n, float(point), float(np.quantile(r, q)), float(np.quantile(r, 1 - q)), float(r.std(ddof=1)),
                    "bootstrap")


def bootstrap_compare(point_a: float, replicates_a: Sequence[float] | np.ndarray, point_b: float,
                      replicates_b: Sequence[float] | np.ndarray | None = None, *, n: int,
                      level: float = LEVEL) -> Comparison:
    """A minus B for two statistics of the same ``n`` units, from bootstrap replicates computed on
    the same resamples (``replicates_b`` None: B is a constant, e.g. a published value). The interval
    is the percentile interval of the replicated differences, the p-value twice the smaller share of
    them on either side of 0, the verdict the one rule (:func:`verdict`); ``seeds_needed`` does not
    apply (None).

    >>> c = bootstrap_compare(0.5, [0.45, 0.5, 0.55, 0.6] * 50, 0.1, n=30)
    >>> c.verdict, round(c.diff, 2)
    ('better', 0.4)
    """
    ra = np.asarray(replicates_a, dtype=float)
    rb = np.full_like(ra, float(point_b)) if replicates_b is None else np.asarray(replicates_b, dtype=float)
    if ra.shape != rb.shape:
        raise ValueError("replicates_a and replicates_b differ in length: compute them on the same resamples")
    d = (ra - rb)[np.isfinite(ra - rb)]
    diff = float(point_a) - float(point_b)
    what = f"paired bootstrap ({len(d)} resamples of {n})" if replicates_b is not None else \
        f"bootstrap against a constant ({len(d)} resamples of {n})"
    if len(d) < 2:
        return Comparison(n, n, float(point_a), float(point_b), diff, math.nan, math.nan, math.nan, what,
                          TOO_FEW, None, "fewer than two finite resamples")
    q = (1 - level) / 2
    p = min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return Comparison(n, n, float(point_a), float(point_b), diff, float(np.quantile(d, q)),
                      float(np.quantile(d, 1 - q)), p, what, verdict(diff, p), None)


__all__ = ["ALPHA", "BETTER", "BOOTSTRAP", "LEVEL", "NOT_COMPARABLE", "POWER", "TIED", "TOO_FEW", "VERDICTS",
           "WORSE", "Comparison", "Interval", "NoiseFloor", "bootstrap_compare", "bootstrap_interval", "compare",
           "interval", "noise_floor", "resample_indices", "seeds_needed", "verdict"]

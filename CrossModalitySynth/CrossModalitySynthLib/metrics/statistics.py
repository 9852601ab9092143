"""Paired comparisons over patients: bootstrap confidence interval and Wilcoxon signed-rank test.

Inputs are one score per patient for two methods (same patients, same order). The difference
is ``x - y`` (first minus second method).

- Paired bootstrap: draw ``n_boot`` (10 000) resamples of the patients with replacement
  (``numpy.random.default_rng(seed)``), take the mean difference of each, and report the
  percentile interval (2.5 and 97.5 percentiles for 95 %). Patients, not slices, are resampled:
  give one number per patient.
- Wilcoxon signed-rank test, computed here so that the same data give the same p with every
  scipy release (scipy's own choice of method changed in 1.15). Zero differences are dropped
  (``zero_method="wilcox"``), the absolute differences are ranked with midranks for ties, and
  ``W+`` is the sum of the ranks of the positive differences. With ``n`` non-zero differences:

  - ``n <= 50`` (:data:`EXACT_MAX_N`): ``method = "exact"``, the exact null distribution of
    ``W+`` over all ``2^n`` equally likely sign patterns of the observed (mid)ranks, counted by
    dynamic programming; exact with ties too (the permutation test). Two-sided
    ``p = min(1, 2 min(P(W+ <= w), P(W+ >= w)))``.
  - ``n > 50``: ``method = "normal approximation"``, ``z = (W+ - n(n+1)/4) / s`` with
    ``s^2 = (n(n+1)(2n+1) - sum(t^3 - t)/2) / 24`` (``t`` the sizes of the groups of tied
    ranks), no continuity correction.

  The statistic reported is ``min(W+, W-)`` for the two-sided test and ``W+`` otherwise (as
  scipy). Without ties or zeros this equals ``scipy.stats.wilcoxon(x, y, method="exact")`` up to
  50 patients and scipy's normal approximation above.
"""

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np
from scipy import stats

from ..errors import InputError

#: up to this many non-zero differences the Wilcoxon p is exact (all 2^n sign patterns)
EXACT_MAX_N = 50
WILCOXON_METHODS = ("exact", "normal approximation")
ALTERNATIVES = ("two-sided", "greater", "less")


def _paired(x, y) -> Tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InputError("Paired scores need one value per patient for both methods; got {} and {}.".format(a.size, b.size))
    if a.size < 2:
        raise InputError("At least 2 patients are needed for a paired comparison; got {}.".format(a.size))
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError("The paired scores contain NaN or infinite values (e.g. a distance of an empty mask).")
    return a, b


@dataclass(frozen=True)
class BootstrapCI:
    """Mean paired difference ``x - y`` with its percentile bootstrap confidence interval."""

    mean_difference: float
    low: float
    high: float
    confidence: float
    n_patients: int
    n_boot: int
    seed: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def paired_bootstrap_ci(
    x,
    y,
    n_boot: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap CI of the mean of ``x - y``, resampling patients (seeded)."""
    a, b = _paired(x, y)
    if not 0.0 < confidence < 1.0:
        raise InputError("The confidence level must be between 0 and 1; got {}.".format(confidence))
    d = a - b
    n = d.size
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_boot), dtype=np.float64)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, int(n_boot), chunk):
        stop = min(int(n_boot), start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = d[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return BootstrapCI(float(d.mean()), float(low), float(high), float(confidence), int(n), int(n_boot), int(seed))


@dataclass(frozen=True)
class WilcoxonResult:
    """Wilcoxon signed-rank test of ``x - y``."""

    statistic: float
    p_value: float
    n_patients: int
    n_nonzero: int  #: patients with a non-zero difference (the ones the test uses)
    median_difference: float
    alternative: str
    method: str  #: "exact" (n_nonzero <= 50, ties included) or "normal approximation"; "" when all differences are 0
    n_ties: int = 0  #: non-zero differences whose absolute value is shared with another one


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values`` with ties given the mean of their ranks."""
    return stats.rankdata(values, method="average")


def _exact_counts(doubled_ranks: np.ndarray) -> np.ndarray:
    """``counts[k]`` = number of the ``2^n`` sign patterns whose ``2 W+`` equals ``k``.

    ``doubled_ranks`` are the midranks times 2 (integers). int64 is exact: counts <= 2^50."""
    total = int(doubled_ranks.sum())
    counts = np.zeros(total + 1, dtype=np.int64)
    counts[0] = 1
    reach = 0
    for r in doubled_ranks.astype(np.int64):
        # a positive sign adds the rank: counts'[k] = counts[k] + counts[k - r]
        counts[r: reach + r + 1] += counts[: reach + 1].copy()
        reach += int(r)
    return counts


def wilcoxon_signed_rank(x, y, alternative: str = "two-sided") -> WilcoxonResult:
    """Wilcoxon signed-rank test of ``x - y`` by the rule in the module text; all-zero
    differences give p = 1 (method ``""``)."""
    if alternative not in ALTERNATIVES:
        raise InputError("The alternative must be one of {}; got {!r}.".format(", ".join(ALTERNATIVES), alternative))
    a, b = _paired(x, y)
    d = a - b
    nz = d[d != 0]
    n = int(nz.size)
    if n == 0:
        return WilcoxonResult(0.0, 1.0, int(d.size), 0, 0.0, alternative, "", 0)
    ranks = _midranks(np.abs(nz))
    _, group_sizes = np.unique(ranks, return_counts=True)
    n_ties = int(group_sizes[group_sizes > 1].sum())
    r_plus = float(ranks[nz > 0].sum())
    r_minus = float(ranks[nz < 0].sum())
    if n <= EXACT_MAX_N:
        method = "exact"
        doubled = np.rint(2.0 * ranks).astype(np.int64)
        counts = _exact_counts(doubled)
        w2 = int(np.rint(2.0 * r_plus))
        below = int(counts[: w2 + 1].sum())  # sign patterns with W+ <= observed
        above = int(counts[w2:].sum())  # W+ >= observed
        total = 2 ** n
        if alternative == "two-sided":
            p = min(1.0, 2.0 * min(below, above) / total)
        elif alternative == "greater":
            p = above / total
        else:
            p = below / total
    else:
        method = "normal approximation"
        tie_term = float(np.sum(group_sizes.astype(np.float64) ** 3 - group_sizes))
        se = math.sqrt((n * (n + 1.0) * (2.0 * n + 1.0) - tie_term / 2.0) / 24.0)
        z = (r_plus - n * (n + 1.0) / 4.0) / se
        if alternative == "two-sided":
            p = math.erfc(abs(z) / math.sqrt(2.0))
        elif alternative == "greater":
            p = 0.5 * math.erfc(z / math.sqrt(2.0))
        else:
            p = 0.5 * math.erfc(-z / math.sqrt(2.0))
    statistic = min(r_plus, r_minus) if alternative == "two-sided" else r_plus
    return WilcoxonResult(float(statistic), float(p), int(d.size), n, float(np.median(d)), alternative, method, n_ties)


@dataclass(frozen=True)
class PairedComparison:
    bootstrap: BootstrapCI
    wilcoxon: WilcoxonResult


def compare_paired(x, y, n_boot: int = 10000, confidence: float = 0.95, seed: int = 0) -> PairedComparison:
    """Bootstrap CI of the mean difference and the Wilcoxon test of one paired comparison."""
    return PairedComparison(paired_bootstrap_ci(x, y, n_boot, confidence, seed), wilcoxon_signed_rank(x, y))

"""Paired comparisons over patients: bootstrap confidence interval and Wilcoxon signed-rank test.

Inputs are one score per patient for two methods (same patients, same order). The difference
is ``x - y`` (first minus second method).

- Paired bootstrap: draw ``n_boot`` (10 000) resamples of the patients with replacement
  (``numpy.random.default_rng(seed)``), take the mean difference of each, and report the
  percentile interval (2.5 and 97.5 percentiles for 95 %). Patients, not slices, are resampled:
  give one number per patient.
- Wilcoxon signed-rank test: ``scipy.stats.wilcoxon(x, y)`` (zero differences dropped,
  ``zero_method="wilcox"``; exact or normal approximation chosen by scipy), two-sided by default.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np
from scipy import stats

from ..errors import InputError


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


def wilcoxon_signed_rank(x, y, alternative: str = "two-sided") -> WilcoxonResult:
    """``scipy.stats.wilcoxon(x, y)``; all-zero differences give p = 1."""
    a, b = _paired(x, y)
    d = a - b
    nz = int(np.count_nonzero(d))
    if nz == 0:
        return WilcoxonResult(0.0, 1.0, int(d.size), 0, 0.0, alternative)
    res = stats.wilcoxon(a, b, zero_method="wilcox", alternative=alternative)
    return WilcoxonResult(float(res.statistic), float(res.pvalue), int(d.size), nz, float(np.median(d)), alternative)


@dataclass(frozen=True)
class PairedComparison:
    bootstrap: BootstrapCI
    wilcoxon: WilcoxonResult


def compare_paired(x, y, n_boot: int = 10000, confidence: float = 0.95, seed: int = 0) -> PairedComparison:
    """Bootstrap CI of the mean difference and the Wilcoxon test of one paired comparison."""
    return PairedComparison(paired_bootstrap_ci(x, y, n_boot, confidence, seed), wilcoxon_signed_rank(x, y))

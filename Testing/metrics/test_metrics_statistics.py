"""Paired bootstrap confidence interval and Wilcoxon signed-rank test over patients."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.metrics.statistics import (
    EXACT_MAX_N,
    compare_paired,
    paired_bootstrap_ci,
    wilcoxon_signed_rank,
)

# Dice-like gains of 16 patients, rounded as a report rounds them: many ties and one zero
TIED = np.array([0.02, 0.02, -0.01, 0.03, 0.02, -0.01, 0.04, 0.0, 0.03, 0.01, 0.02, -0.02, 0.05, 0.01, 0.03, 0.02])


def brute_force_p(d, alternative="two-sided"):
    """p of the signed-rank test by listing every sign pattern of the non-zero |d| (midranks)."""
    d = np.asarray(d, dtype=np.float64)
    d = d[d != 0]
    ranks = stats.rankdata(np.abs(d))  # midranks for ties
    observed = ranks[d > 0].sum()
    w_plus = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=d.size)])
    below = np.mean(w_plus <= observed + 1e-9)
    above = np.mean(w_plus >= observed - 1e-9)
    return {"two-sided": min(1.0, 2 * min(below, above)), "greater": above, "less": below}[alternative]


def normal_p(d):
    """Two-sided p of the tie-corrected normal approximation, no continuity correction."""
    d = np.asarray(d, dtype=np.float64)
    d = d[d != 0]
    n = d.size
    ranks = stats.rankdata(np.abs(d))
    _, t = np.unique(ranks, return_counts=True)
    var = (n * (n + 1) * (2 * n + 1) - np.sum(t.astype(float) ** 3 - t) / 2) / 24
    z = (ranks[d > 0].sum() - n * (n + 1) / 4) / math.sqrt(var)
    return math.erfc(abs(z) / math.sqrt(2))


def test_bootstrap_ci_contains_true_difference_and_is_seeded():
    rng = np.random.default_rng(0)
    base = rng.normal(0.85, 0.05, size=30)
    new = base + 0.02 + rng.normal(0.0, 0.01, size=30)  # true mean difference 0.02
    ci = paired_bootstrap_ci(new, base)
    assert ci.contains(0.02) and ci.low > 0
    assert ci.low < ci.mean_difference < ci.high
    assert ci.n_patients == 30 and ci.n_boot == 10000 and ci.confidence == 0.95
    assert paired_bootstrap_ci(new, base) == ci
    assert paired_bootstrap_ci(new, base, seed=1) != ci
    # scipy's percentile bootstrap of the differences (another random stream) agrees
    ref = stats.bootstrap((new - base,), np.mean, n_resamples=10000, method="percentile", rng=np.random.default_rng(9))
    width = ci.high - ci.low
    assert abs(ci.low - ref.confidence_interval.low) < 0.05 * width
    assert abs(ci.high - ref.confidence_interval.high) < 0.05 * width
    # the normal-theory interval of the mean difference has about the same width
    d = new - base
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert (ci.high - ci.low) == pytest.approx(2 * half, rel=0.2)


def test_bootstrap_coverage_close_to_nominal():
    rng = np.random.default_rng(1)
    hits = 0
    trials = 60
    for t in range(trials):
        x = rng.normal(1.0, 1.0, size=25)
        y = x - 0.5 + rng.normal(0.0, 1.0, size=25)  # true difference x - y = 0.5
        hits += paired_bootstrap_ci(x, y, n_boot=2000, seed=t).contains(0.5)
    assert hits >= 0.85 * trials


def test_wilcoxon_detects_shift_and_matches_scipy():
    rng = np.random.default_rng(2)
    a = rng.normal(60.0, 10.0, size=20)
    b = a - 5.0 + rng.normal(0.0, 2.0, size=20)
    res = wilcoxon_signed_rank(a, b)
    ref = stats.wilcoxon(a, b, method="exact")  # no ties, no zeros, n <= 50: scipy's exact distribution
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12) and res.statistic == pytest.approx(ref.statistic)
    assert res.method == "exact" and res.n_ties == 0
    assert res.p_value < 0.05 and res.median_difference > 0 and res.n_nonzero == 20
    null = wilcoxon_signed_rank(a, a + rng.normal(0.0, 2.0, size=20))
    assert null.p_value > 0.05
    assert wilcoxon_signed_rank(a, a).p_value == 1.0
    both = compare_paired(a, b, n_boot=1000)
    assert both.bootstrap.low > 0 and both.wilcoxon.p_value < 0.05


def test_wilcoxon_with_ties_is_the_exact_permutation_p_on_any_scipy():
    # scipy >= 1.15 'auto' gives a permutation test for n <= 13 with ties, the normal approximation
    # for 14..50 with ties; older releases always the approximation: the p is pinned here instead
    res = wilcoxon_signed_rank(TIED, np.zeros_like(TIED))
    assert res.method == "exact" and res.n_nonzero == 15 and res.n_patients == 16 and res.n_ties == 13
    assert res.p_value == pytest.approx(brute_force_p(TIED), rel=1e-12)
    assert abs(res.p_value - normal_p(TIED)) > 1e-3  # the approximation would give another p
    ranks = stats.rankdata(np.abs(TIED[TIED != 0]))
    assert res.statistic == min(ranks[TIED[TIED != 0] > 0].sum(), ranks[TIED[TIED != 0] < 0].sum())
    # x - y is what is tested: the same data as two score columns give the same p
    real = np.full(16, 0.90)
    assert wilcoxon_signed_rank(real + TIED, real).p_value == pytest.approx(res.p_value, rel=1e-9)
    few = TIED[:8]
    for alternative in ("two-sided", "greater", "less"):
        r = wilcoxon_signed_rank(few, np.zeros(8), alternative=alternative)
        assert r.method == "exact"
        assert r.p_value == pytest.approx(brute_force_p(few, alternative), rel=1e-12), alternative


def test_wilcoxon_normal_approximation_above_the_exact_limit():
    rng = np.random.default_rng(7)
    d = np.round(rng.normal(0.3, 1.0, size=EXACT_MAX_N + 10), 1)  # ties
    res = wilcoxon_signed_rank(d, np.zeros_like(d))
    assert res.method == "normal approximation" and res.n_ties > 0
    assert res.p_value == pytest.approx(normal_p(d), rel=1e-12)
    at_limit = d[:EXACT_MAX_N]
    assert wilcoxon_signed_rank(at_limit, np.zeros_like(at_limit)).method == "exact"
    # exact at n = 50: the sign-pattern count must not overflow (2^50 patterns), p within [0, 1]
    p = wilcoxon_signed_rank(at_limit, np.zeros_like(at_limit)).p_value
    assert 0.0 < p <= 1.0 and p == pytest.approx(normal_p(at_limit), abs=0.01)


def test_bad_inputs():
    with pytest.raises(InputError, match="one value per patient"):
        paired_bootstrap_ci([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="infinite"):
        wilcoxon_signed_rank([1, 2, np.inf], [1, 2, 3])
    with pytest.raises(InputError, match="alternative"):
        wilcoxon_signed_rank([1, 2, 3], [0, 0, 0], alternative="bigger")

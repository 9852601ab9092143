"""Paired bootstrap confidence interval and Wilcoxon signed-rank test over patients."""

import numpy as np
import pytest
from scipy import stats

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.metrics.statistics import compare_paired, paired_bootstrap_ci, wilcoxon_signed_rank


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
    ref = stats.wilcoxon(a, b)
    assert res.p_value == pytest.approx(ref.pvalue) and res.statistic == pytest.approx(ref.statistic)
    assert res.p_value < 0.05 and res.median_difference > 0 and res.n_nonzero == 20
    null = wilcoxon_signed_rank(a, a + rng.normal(0.0, 2.0, size=20))
    assert null.p_value > 0.05
    assert wilcoxon_signed_rank(a, a).p_value == 1.0
    both = compare_paired(a, b, n_boot=1000)
    assert both.bootstrap.low > 0 and both.wilcoxon.p_value < 0.05


def test_bad_inputs():
    with pytest.raises(InputError, match="one value per patient"):
        paired_bootstrap_ci([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="infinite"):
        wilcoxon_signed_rank([1, 2, np.inf], [1, 2, 3])

"""Reader-study statistics: simulated readers, and each statistic against an independent computation."""

import math

import numpy as np
import pytest
from scipy import stats

from CrossModalitySynthLib.reader_study.analysis import (
    Reading,
    analyze_readings,
    auc_delong,
    cohen_kappa,
    fleiss_kappa,
    proportion,
    rating_score,
    roc_points,
)
from testsupport.readers import simulated_readings

N_IMAGES = 800
READERS = ["A", "B", "C"]


def test_random_responders_are_at_chance():
    results = analyze_readings(simulated_readings(N_IMAGES, READERS, "random", seed=11))
    for r in results.readers + [results.pooled]:
        n = r.n
        # 4 binomial standard deviations around the chance level
        assert abs(r.accuracy.value - 0.5) < 4 * math.sqrt(0.25 / n)
        for prop, m in ((r.sensitivity, r.n_real), (r.specificity, r.n_synthetic)):
            assert abs(prop.value - 0.5) < 4 * math.sqrt(0.25 / m)
        # SD of the Mann-Whitney AUC under the null hypothesis
        m, k = r.n_real, r.n_synthetic
        assert abs(r.auc.auc - 0.5) < 4 * math.sqrt((m + k + 1) / (12.0 * m * k))
    for pair in results.kappa_pairs:
        assert pair.n_common == N_IMAGES
        assert abs(pair.kappa) < 4 / math.sqrt(pair.n_common)  # SD of kappa at chance ~ 1/sqrt(n)
    f = results.fleiss
    assert (f.n_images, f.n_raters, f.n_images_excluded) == (N_IMAGES, 3, 0)
    assert abs(f.kappa) < 4 * math.sqrt(2.0 / (N_IMAGES * 3 * 2))  # Fleiss (1971) null variance, 2 categories


def test_perfect_readers():
    results = analyze_readings(simulated_readings(200, ["A", "B"], "perfect", seed=3))
    for r in results.readers + [results.pooled]:
        assert r.accuracy.value == 1.0 and r.sensitivity.value == 1.0 and r.specificity.value == 1.0
        assert r.auc.auc == 1.0
        assert r.accuracy.p_value < 1e-10
    assert results.kappa_pairs[0].kappa == pytest.approx(1.0)
    assert results.mean_cohen_kappa == pytest.approx(1.0)
    assert results.fleiss.kappa == pytest.approx(1.0)


def test_an_always_wrong_reader_has_auc_0():
    perfect = simulated_readings(100, ["A"], "perfect", seed=4)
    flipped = [Reading(r.reader_id, r.trial_index, r.image_id, r.truth,
                       "synthetic" if r.answer == "real" else "real", r.confidence) for r in perfect]
    res = analyze_readings(flipped)
    assert res.pooled.accuracy.value == 0.0 and res.pooled.auc.auc == 0.0


def test_rating_score_has_ten_ordered_levels():
    order = [("synthetic", 5), ("synthetic", 4), ("synthetic", 3), ("synthetic", 2), ("synthetic", 1),
             ("real", 1), ("real", 2), ("real", 3), ("real", 4), ("real", 5)]
    assert [rating_score(a, c) for a, c in order] == list(range(1, 11))


def test_exact_binomial_ci_is_clopper_pearson():
    for k, n in [(0, 10), (3, 10), (59, 100), (178, 300), (10, 10)]:
        p = proportion(k, n)
        low = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
        high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        assert p.ci_low == pytest.approx(low, abs=1e-9) and p.ci_high == pytest.approx(high, abs=1e-9)
        # two-sided exact test against 0.5: symmetric, so twice the smaller tail (capped at 1)
        tail = min(stats.binom.cdf(k, n, 0.5), stats.binom.sf(k - 1, n, 0.5))
        assert p.p_value == pytest.approx(min(1.0, 2 * tail), rel=1e-9)
    assert math.isnan(proportion(0, 0).value)


def test_auc_is_mann_whitney_and_delong_se_matches_the_definition():
    rng = np.random.default_rng(5)
    pos = rng.integers(1, 11, size=37).astype(float)
    neg = rng.integers(1, 9, size=23).astype(float)
    res = auc_delong(pos, neg)
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    assert res.auc == pytest.approx(u / (pos.size * neg.size))
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = math.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)
    assert res.se == pytest.approx(se)
    assert res.ci_low == pytest.approx(max(0.0, res.auc - 1.959963984540054 * se))
    assert res.method == "DeLong"
    fpr, tpr = roc_points(pos, neg)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    trapezoid = getattr(np, "trapezoid", None) or np.trapz
    assert trapezoid(tpr, fpr) == pytest.approx(res.auc)  # the trapezoid area of the empirical ROC
    assert math.isnan(auc_delong([], [1.0]).auc)


def test_kappas_against_hand_computed_values():
    # 10 items: agreement 0.7; A says real 5 times, B 4 times -> pe = 0.5*0.4 + 0.5*0.6 = 0.5
    a = ["real"] * 5 + ["synthetic"] * 5
    b = ["real", "real", "real", "synthetic", "synthetic", "real", "synthetic", "synthetic", "synthetic", "synthetic"]
    assert cohen_kappa(a, b) == pytest.approx((0.7 - 0.5) / 0.5)
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa(["real"] * 4, ["real"] * 4))  # no variation: undefined
    # Fleiss' worked example shape: 3 raters, 4 items
    table = np.array([[3, 0], [0, 3], [2, 1], [1, 2]])
    p_items = np.array([1.0, 1.0, 1 / 3, 1 / 3])
    pe = 0.5 ** 2 + 0.5 ** 2
    assert fleiss_kappa(table) == pytest.approx((p_items.mean() - pe) / (1 - pe))


def test_readers_without_common_images_get_no_kappa():
    a = simulated_readings(20, ["A"], "random", seed=1)
    b = [Reading("B", r.trial_index, r.image_id + "b", r.truth, r.answer, r.confidence) for r in
         simulated_readings(20, ["B"], "random", seed=2)]
    res = analyze_readings(a + b)
    pair = res.kappa_pairs[0]
    assert pair.n_common == 0 and math.isnan(pair.kappa)
    assert res.fleiss is None and math.isnan(res.mean_cohen_kappa)


def test_results_per_model_version():
    readings = simulated_readings(400, ["A", "B"], "perfect", seed=8, versions=("good", "bad"))
    # readers are fooled by every "good" image
    readings = [
        Reading(r.reader_id, r.trial_index, r.image_id, r.truth, "real" if r.model_version == "good" else r.answer,
                r.confidence, r.patient_id, r.model_version)
        for r in readings
    ]
    res = analyze_readings(readings)
    pooled = {v.model_version: v for v in res.versions if v.reader_id == "pooled"}
    assert set(pooled) == {"good", "bad"} and res.model_versions == ["bad", "good"]
    assert pooled["good"].detected.value == 0.0 and pooled["good"].fooled_rate == 1.0
    assert pooled["bad"].detected.value == 1.0 and pooled["bad"].auc.auc == 1.0
    assert pooled["good"].auc.auc == 0.5  # real/5 vs real/5: all ties
    assert {v.reader_id for v in res.versions} == {"pooled", "A", "B"}

"""Histogram distances: KL, Jensen-Shannon, Wasserstein-1, intersection."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.metrics.histogram import (
    histogram_edges,
    histogram_intersection,
    histogram_metrics,
    hu_histogram,
    js_divergence,
    kl_divergence,
    wasserstein_binned,
    wasserstein_hu,
)

counts = st.lists(st.integers(0, 50), min_size=8, max_size=8).filter(lambda c: sum(c) > 0)


@settings(max_examples=60, deadline=None)
@given(counts, counts)
def test_kl_nonnegative_and_js_symmetric_bounded(p, q):
    p, q = np.array(p, float), np.array(q, float)
    assert kl_divergence(p, q) >= 0.0
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    js = js_divergence(p, q)
    assert js == pytest.approx(js_divergence(q, p), abs=1e-12)
    assert -1e-15 <= js <= np.log(2) + 1e-12
    assert js_divergence(p, q, base=2) <= 1.0 + 1e-12
    assert js == pytest.approx(jensenshannon(p, q) ** 2, abs=1e-10)  # scipy returns the distance
    if not np.allclose(p / p.sum(), q / q.sum()):
        assert kl_divergence(p, q) > 0.0
        assert js > 0.0


def test_kl_asymmetric_smoothed_and_matches_scipy():
    p = np.array([0.7, 0.2, 0.1, 0.0])
    q = np.array([0.25, 0.25, 0.25, 0.25])
    assert kl_divergence(p, q) != pytest.approx(kl_divergence(q, p), rel=1e-3)
    eps = 1e-10
    ps, qs = p + eps, q + eps
    assert kl_divergence(p, q, eps) == pytest.approx(entropy(ps / ps.sum(), qs / qs.sum()), rel=1e-12)
    # a zero bin of q under mass of p is finite thanks to the smoothing, and large
    assert 5.0 < kl_divergence(q, p) < np.inf


def test_js_disjoint_is_ln2_and_intersection():
    p = np.array([1.0, 2.0, 0.0, 0.0])
    q = np.array([0.0, 0.0, 3.0, 1.0])
    assert js_divergence(p, q) == pytest.approx(np.log(2), abs=1e-12)
    assert js_divergence(p, q, base=2) == pytest.approx(1.0, abs=1e-12)
    assert histogram_intersection(p, q) == 0.0
    assert histogram_intersection(p, 5 * p) == pytest.approx(1.0)


def test_volume_histograms_wasserstein_shift():
    rng = np.random.default_rng(0)
    vol = rng.normal(50.0, 200.0, size=(10, 30, 30))
    mask = np.zeros(vol.shape, bool)
    mask[2:8, 5:25, 5:25] = True
    h = hu_histogram(vol, mask)
    assert h.counts.sum() == mask.sum()
    assert len(h.edges) == 411 and h.edges[0] == -1024 and h.edges[-1] == 3076
    shifted = vol + 100.0  # 10 bins of 10 HU, all inside the range
    m = histogram_metrics(vol, shifted, mask, mask)
    assert m.wasserstein == pytest.approx(100.0, abs=1e-9)
    assert wasserstein_hu(vol, shifted, mask, mask) == pytest.approx(100.0, abs=1e-9)
    assert m.kl_real_synth > 0 and m.kl_synth_real > 0 and 0 < m.js < np.log(2)
    assert 0 < m.intersection < 1 and m.n_real == m.n_synth == mask.sum() and m.eps == 1e-10
    same = histogram_metrics([vol, vol], [vol, vol], [mask, mask], [mask, mask])
    assert same.kl_real_synth == pytest.approx(0.0, abs=1e-12) and same.wasserstein == 0.0
    assert same.intersection == pytest.approx(1.0) and same.n_real == 2 * mask.sum()


def test_values_beyond_range_go_to_end_bins_and_errors():
    h = hu_histogram(np.array([[[-3000.0, 5000.0, 0.0]]]))
    assert h.counts[0] == 1 and h.counts[-1] == 1 and h.counts.sum() == 3
    assert np.allclose(np.diff(histogram_edges((0, 100), 30)), 30)
    with pytest.raises(InputError):
        kl_divergence(np.zeros(4), np.ones(4))
    with pytest.raises(InputError):
        wasserstein_binned(hu_histogram(np.zeros((2, 2, 2))), hu_histogram(np.zeros((2, 2, 2)), bin_width=5))

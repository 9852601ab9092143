"""FID / KID definitions, feature extractors and slice extraction."""

import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.metrics import (
    HistogramSpectrumExtractor,
    RandomProjectionExtractor,
    distribution_metrics,
    extract_slices,
    fid_from_features,
    frechet_distance,
    kid_from_features,
)

def fid_by_nuclear_norm(x, y):
    """FID without any matrix square root: with centred features A (n1 x d) and B (n2 x d),
    S1 = A'A / (n1 - 1), S2 = B'B / (n2 - 1) and the non-zero eigenvalues of S1 S2 are the squared
    singular values of A B' / sqrt((n1 - 1)(n2 - 1)), so Tr((S1 S2)^1/2) is its nuclear norm."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a = x - x.mean(axis=0)
    b = y - y.mean(axis=0)
    c1, c2 = x.shape[0] - 1.0, y.shape[0] - 1.0
    root_trace = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt(c1 * c2)
    diff = x.mean(axis=0) - y.mean(axis=0)
    return float(diff @ diff + (a * a).sum() / c1 + (b * b).sum() / c2 - 2.0 * root_trace)


def relu_features(seed, n, d, scale):
    """Non-negative features like InceptionV3 pool features (a pool of ReLU outputs), times ``scale``."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(size=(n, d)), 0.0) * scale


TOY_X = np.array([[1.0, 2.0]] * 3)
TOY_Y = np.array([[2.0, 2.0], [1.0, 2.0], [1.0, 2.0]])


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_fid_toy_case(method):
    # |mu1 - mu2|^2 = 1/9, Tr S2 = 1/3 (N - 1 normalisation), S1 = 0
    res = fid_from_features(TOY_X, TOY_Y, method=method)
    assert round(res.fid, 4) == 0.4444
    assert res.n_real == 3 and res.n_synth == 3 and res.dim == 2


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_fid_identity_and_symmetry(method):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = rng.normal(size=(250, 8)) @ rng.normal(size=(8, 8)) + 0.3
    assert abs(fid_from_features(x, x, method=method).fid) < 1e-8
    a = fid_from_features(x, y, method=method).fid
    b = fid_from_features(y, x, method=method).fid
    assert a > 0.1
    assert a == pytest.approx(b, rel=1e-8)


def test_fid_methods_agree_and_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6))
    y = rng.normal(size=(400, 6)) * 1.5 + 0.2
    assert fid_from_features(x, y).fid == pytest.approx(fid_from_features(x, y, method="eigh").fid, rel=1e-8)
    # N > d: the default is pytorch-fid's sqrtm, value for value
    assert fid_from_features(x, y).method == "sqrtm"
    assert fid_from_features(x, y).fid == fid_from_features(x, y, method="sqrtm").fid
    assert fid_from_features(x, y).fid == pytest.approx(fid_by_nuclear_norm(x, y), rel=1e-9)
    # N(0, I) vs N(1, 4I) in 3-d: 3 + (3 + 12) - 2 * Tr(2 I) = 6
    assert frechet_distance(np.zeros(3), np.eye(3), np.ones(3), 4 * np.eye(3)) == pytest.approx(6.0, abs=1e-12)


def test_fid_warns_when_n_below_dim():
    rng = np.random.default_rng(2)
    with pytest.warns(UserWarning, match="N <= d"):
        res = fid_from_features(rng.normal(size=(5, 10)), rng.normal(size=(6, 10)))
    assert res.biased_small_n and res.n_real == 5 and res.method == "eigh"
    with pytest.warns(UserWarning, match="N <= d"):  # N = d: rank N - 1 < d, still singular
        assert fid_from_features(rng.normal(size=(10, 10)), rng.normal(size=(12, 10))).biased_small_n
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not fid_from_features(rng.normal(size=(50, 10)), rng.normal(size=(60, 10))).biased_small_n
    with pytest.raises(InputError, match="dimension"):
        fid_from_features(rng.normal(size=(5, 3)), rng.normal(size=(5, 4)))


def test_fid_of_fewer_samples_than_2048_features_is_finite_eigh_with_the_warning():
    # issue 13 item 19: InceptionV3 features (d = 2048) of a few slices. The covariances have rank
    # N - 1; pytorch-fid's sqrtm of their product has an imaginary part far above its 1e-3
    # tolerance at these feature values and raised (a traceback from cmsynth evaluate)
    real = relu_features(0, 12, 2048, 1000.0)
    synth = relu_features(1, 10, 2048, 1000.0) + 50.0
    with pytest.warns(UserWarning) as caught:
        res = fid_from_features(real, synth)
    msgs = [str(w.message) for w in caught]
    assert any("N = 12 real and 10 synthetic samples of dimension 2048: N <= d, the covariance is singular" in m
               for m in msgs), msgs
    assert res.method == "eigh" and res.biased_small_n and (res.n_real, res.n_synth, res.dim) == (12, 10, 2048)
    assert np.isfinite(res.fid) and res.fid > 0
    assert res.fid == pytest.approx(fid_by_nuclear_norm(real, synth), rel=1e-9)


def test_sqrtm_failure_gives_the_error_when_asked_for_and_eigh_by_default():
    # singular products make sqrtm fail at a small dimension too (fast enough to run it here)
    real = relu_features(2, 10, 64, 1000.0)
    synth = relu_features(3, 12, 64, 1000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="imaginary component"):
            fid_from_features(real, synth, method="sqrtm")
        res = fid_from_features(real, synth)
    assert res.method == "eigh" and res.fid == pytest.approx(fid_by_nuclear_norm(real, synth), rel=1e-9)
    # N > d with nearly rank-1 features: sqrtm fails although N > d; the default falls back to eigh
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(8, 1)) @ rng.normal(size=(1, 6)) + 1e-9 * rng.normal(size=(8, 6))) * 1e6
    y = (rng.normal(size=(9, 1)) @ rng.normal(size=(1, 6)) + 1e-9 * rng.normal(size=(9, 6))) * 1e6
    with pytest.raises(ValueError, match="imaginary component"):
        fid_from_features(x, y, method="sqrtm")
    with pytest.warns(RuntimeWarning, match="computed by the eigenvalue method"):
        res = fid_from_features(x, y)
    assert res.method == "eigh" and not res.biased_small_n
    assert res.fid == pytest.approx(fid_by_nuclear_norm(x, y), rel=1e-6)


def test_kid_near_zero_for_one_distribution_and_positive_for_shift():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 16))
    same = kid_from_features(x, rng.normal(size=(300, 16)), subset_size=150)
    shifted = kid_from_features(x, rng.normal(size=(300, 16)) + 0.3, subset_size=150)
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert shifted.mean > 0.1 and shifted.mean > 5 * shifted.std
    assert same.subset_size == 150 and same.n_subsets == 100
    again = kid_from_features(x, x[::-1] + 0.3, n_subsets=5, subset_size=100, seed=5)
    assert again == kid_from_features(x, x[::-1] + 0.3, n_subsets=5, subset_size=100, seed=5)
    assert again != kid_from_features(x, x[::-1] + 0.3, n_subsets=5, subset_size=100, seed=6)


def test_kid_matches_direct_unbiased_mmd():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 5))
    y = rng.normal(size=(30, 5)) + 0.5
    d, m = 5, 30
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    ref = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    # a subset of size N is a permutation of all rows: the estimate is the full-sample one
    res = kid_from_features(x, y, n_subsets=3, subset_size=1000)
    assert res.subset_size == 30
    assert res.mean == pytest.approx(ref, rel=1e-10)
    assert res.std == pytest.approx(0.0, abs=1e-10)


def _volume(seed, shape=(12, 40, 44)):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    vol = np.full(shape, -1000.0)
    body = ((yy - 20) / 16.0) ** 2 + ((xx - 22) / 19.0) ** 2 <= 1
    vol[body] = 40.0 + 30.0 * rng.normal(size=body.sum())
    vol[body & (((yy - 20) / 5.0) ** 2 + ((xx - 15) / 4.0) ** 2 <= 1)] = 700.0
    return vol


def test_extract_slices_planes_and_reorientation():
    arr = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    assert extract_slices(arr, "axial", None).shape == (4, 5, 6)
    assert extract_slices(arr, "coronal", None).shape == (5, 4, 6)
    assert extract_slices(arr, "sagittal", None).shape == (6, 4, 5)
    assert extract_slices(arr, "axial", None, step=2).shape == (2, 5, 6)
    # an image stored with flipped L and P axes gives the same slices once reoriented
    img = sitk.GetImageFromArray(arr[:, ::-1, ::-1].copy())
    img.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    for plane in ("axial", "coronal", "sagittal"):
        assert np.array_equal(extract_slices(img, plane, None), extract_slices(arr, plane, None))
    ct = extract_slices(np.array([[[-2000.0, -1024.0, 1023.5, 5000.0]] * 4] * 2), "axial", "ct")
    assert ct.min() == 0.0 and ct.max() == 1.0 and ct[0, 0, 2] == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(InputError, match="Unknown plane"):
        extract_slices(arr, "oblique")
    mask = np.zeros(arr.shape, bool)
    mask[1:3] = True
    assert extract_slices(arr, "axial", None, mask=mask, min_mask_fraction=0.5).shape == (2, 5, 6)
    with pytest.raises(InputError, match="both as SimpleITK images or both as arrays"):
        extract_slices(img, "axial", None, mask=mask)


def test_cheap_extractors_deterministic_and_sensitive():
    vols = [_volume(s) for s in range(3)]
    sl = extract_slices(vols[0])
    for ex in (HistogramSpectrumExtractor(), RandomProjectionExtractor()):
        f1, f2 = ex(sl), ex(sl)
        assert f1.shape == (sl.shape[0], ex.dim) and np.array_equal(f1, f2)
    real = [_volume(s) for s in range(10, 14)]
    same = [_volume(s) for s in range(20, 24)]
    blurred = [ndimage.gaussian_filter(v, (0, 1.5, 1.5)) for v in same]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few slices for 64-d features
        near = distribution_metrics(real, same, kid_subset_size=40)
        far = distribution_metrics(real, blurred, kid_subset_size=40)
        both = distribution_metrics(real, blurred, planes=("axial", "coronal", "sagittal"), with_kid=False)
    assert far.fid > 3 * near.fid
    assert far.kid > near.kid
    assert [p.plane for p in both.planes] == ["axial", "coronal", "sagittal"]
    assert both.fid == pytest.approx(np.mean([p.fid.fid for p in both.planes]))
    assert both.kid is None

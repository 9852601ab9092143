"""Normalisation to [-1, 1] and back, and the CT/MRI modality check, on synthetic volumes."""

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings, strategies as st

from CrossModalitySynthLib.preprocess import (
    IntensityScale,
    ct_scale,
    denormalise,
    foreground_mask,
    guess_modality,
    mr_scale,
    normalise_ct,
    normalise_mr,
    warn_if_modality_mismatch,
)
from CrossModalitySynthLib.errors import InputError


def _body(shape=(8, 64, 64), a=0.8, b=0.6):
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    return (x / a) ** 2 + (y / b) ** 2 <= 1.0, x, y


def synthetic_ct(seed=0, shape=(8, 64, 64)) -> sitk.Image:
    """Air -1000 outside a body ellipse; fat rim, soft tissue ~40 HU, a bone; -1024 outside the
    scanned circle; integer HU."""
    rng = np.random.default_rng(seed)
    body, x, y = _body(shape)
    inner, _, _ = _body(shape, 0.7, 0.5)
    arr = np.full(shape, -1000.0) + rng.normal(0, 10, shape)
    arr[body] = -100 + rng.normal(0, 15, body.sum())  # subcutaneous fat
    arr[inner] = 40 + rng.normal(0, 12, inner.sum())  # soft tissue
    arr[(x ** 2 + (y + 0.35) ** 2) < 0.01] = 700  # vertebra
    arr[(x ** 2 + y ** 2) > 1.0] = -1024  # outside the reconstruction circle
    img = sitk.GetImageFromArray(np.round(arr).astype(np.int16))
    img.SetSpacing((0.8, 0.8, 3.0))
    return img


def synthetic_mri(seed=0, shape=(8, 64, 64), scale=1.0) -> sitk.Image:
    """Non-negative, arbitrary scale: tissue 300-800 in a body ellipse, dark air, Rician noise."""
    rng = np.random.default_rng(seed)
    body, x, y = _body(shape)
    signal = np.zeros(shape)
    signal[body] = 500 + 250 * np.sin(3 * x[body]) * np.cos(2 * y[body])
    sigma = 15.0
    noisy = np.sqrt((signal + rng.normal(0, sigma, shape)) ** 2 + rng.normal(0, sigma, shape) ** 2)
    img = sitk.GetImageFromArray((noisy * scale).astype(np.float32))
    img.SetSpacing((1.5, 1.5, 6.0))
    return img


# ---------------------------------------------------------------- CT window


def test_ct_window_inverse_exact_on_every_in_window_value():
    hu = np.arange(-1024, 3072, dtype=np.int16)
    norm, scale = normalise_ct(hu)
    assert norm.dtype == np.float32 and norm.min() == -1.0 and norm.max() == 1.0
    back = denormalise(norm, scale)
    np.testing.assert_allclose(back, hu, atol=2e-3)
    np.testing.assert_array_equal(np.round(back).astype(np.int16), hu)


def test_ct_window_clips_outside_values():
    norm, scale = normalise_ct(np.array([-3024, -2000, 5000, 0]), window=(-1000, 1000))
    np.testing.assert_allclose(norm, [-1, -1, 1, 0])
    np.testing.assert_allclose(denormalise(norm, scale), [-1000, -1000, 1000, 0])


@settings(max_examples=30, deadline=None)
@given(lo=st.floats(-2000, 0), width=st.floats(1, 5000), values=st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_any_scale_inverse_is_exact_inside_range(lo, width, values):
    scale = IntensityScale(lo, lo + width, "ct_window")
    x = lo + np.asarray(values) * width
    y = scale.forward(x)
    assert np.all(y >= -1) and np.all(y <= 1)
    np.testing.assert_allclose(scale.inverse(y), x, atol=1e-6 * max(1.0, abs(lo) + width))


def test_scale_dict_roundtrip_and_validation():
    s = IntensityScale(12.5, 800.0, "mr_percentiles", (0.5, 99.5))
    assert IntensityScale.from_dict(s.to_dict()) == s
    assert IntensityScale.from_dict(ct_scale().to_dict()) == ct_scale()
    with pytest.raises(ValueError):
        IntensityScale(5.0, 5.0)


# ---------------------------------------------------------------- MRI percentiles


def test_mri_normalisation_range_and_body_percentiles():
    img = synthetic_mri(1)
    arr = sitk.GetArrayFromImage(img)
    norm, scale = normalise_mr(arr)
    assert norm.dtype == np.float32
    assert norm.min() >= -1.0 and norm.max() <= 1.0
    assert norm.min() == -1.0 and norm.max() == 1.0
    body, _, _ = _body(arr.shape)
    # percentiles come from the body, not the air: the low one is a tissue value, far above noise
    assert scale.low > 150 and scale.high < 800 + 5 * 15
    assert scale.percentiles == (0.5, 99.5)
    np.testing.assert_allclose(scale.low, np.percentile(arr[foreground_mask(arr)], 0.5))
    # the mask is the body
    mask = foreground_mask(arr)
    iou = (mask & body).sum() / (mask | body).sum()
    assert iou > 0.95
    # inverse is exact for in-range values
    inside = (arr >= scale.low) & (arr <= scale.high)
    np.testing.assert_allclose(denormalise(norm, scale)[inside], arr[inside], rtol=1e-5, atol=1e-3)


def test_mri_normalisation_is_scale_invariant():
    a = sitk.GetArrayFromImage(synthetic_mri(2))
    b = sitk.GetArrayFromImage(synthetic_mri(2, scale=37.0))
    na, sa = normalise_mr(a)
    nb, sb = normalise_mr(b)
    np.testing.assert_allclose(na, nb, atol=1e-4)
    assert sb.high == pytest.approx(37.0 * sa.high, rel=1e-4)


def test_mri_percentiles_configurable():
    arr = sitk.GetArrayFromImage(synthetic_mri(3))
    s1 = mr_scale(arr, (0.5, 99.5))
    s2 = mr_scale(arr, (5.0, 95.0))
    assert s2.low > s1.low and s2.high < s1.high and s2.percentiles == (5.0, 95.0)


def test_mri_without_contrast_in_body_raises():
    arr = np.zeros((4, 16, 16), dtype=np.float32)
    arr[:, 4:12, 4:12] = 100.0
    # body is flat but the volume has air and body: fall back to min/max, still usable
    s = mr_scale(arr)
    assert s.low < s.high
    with pytest.raises(InputError, match="no intensity range"):
        mr_scale(np.full((4, 16, 16), 3.0))


# ---------------------------------------------------------------- modality


def test_guess_ct_and_mri():
    ct = guess_modality(synthetic_ct())
    assert ct.modality == "CT" and "-1000" in ct.reason
    mr = guess_modality(synthetic_mri())
    assert mr.modality == "MR" and "negative" in mr.reason
    assert guess_modality(sitk.GetArrayFromImage(synthetic_mri(scale=0.01))).modality == "MR"


def test_guess_unknown_for_zscored_data():
    rng = np.random.default_rng(0)
    assert guess_modality(rng.normal(size=(4, 20, 20))).modality == "unknown"


@pytest.mark.parametrize("expected", ["MR", "MRI", "mri"])
def test_ct_given_as_mri_is_flagged(expected):
    msg = warn_if_modality_mismatch(synthetic_ct(1), expected)
    assert msg is not None and "given as an MRI looks like a CT" in msg
    assert msg.endswith(".")


def test_mri_given_as_ct_is_flagged():
    msg = warn_if_modality_mismatch(synthetic_mri(1), "CT")
    assert msg is not None and "given as a CT looks like an MRI" in msg


def test_matching_modality_no_warning():
    assert warn_if_modality_mismatch(synthetic_ct(2), "CT") is None
    assert warn_if_modality_mismatch(synthetic_mri(2), "MR") is None
    assert warn_if_modality_mismatch(np.random.default_rng(0).normal(size=(3, 8, 8)), "CT") is None  # unknown


def test_bad_expected_modality():
    with pytest.raises(ValueError):
        warn_if_modality_mismatch(synthetic_ct(), "PET")


def test_foreground_mask_covers_the_body_on_every_phantom_sequence():
    """The body mask behind the MRI percentiles must cover the body also on a fat-suppressed
    T2, where fat is dark (a linear Otsu threshold covered about 30 % of it)."""
    import SimpleITK as sitk

    from CrossModalitySynthLib.phantom import make_case
    from CrossModalitySynthLib.preprocess.intensity import foreground_mask

    case = make_case(5, size="small")
    body = sitk.GetArrayFromImage(case.images["body.nii.gz"]) > 0
    for seq in ("t1_in.nii.gz", "t1_opp.nii.gz", "t2.nii.gz"):
        mask = foreground_mask(sitk.GetArrayFromImage(case.images[seq]))
        covered = np.count_nonzero(mask & body) / np.count_nonzero(body)
        outside = np.count_nonzero(mask & ~body) / np.count_nonzero(body)
        assert covered > 0.9, (seq, covered)
        assert outside < 0.1, (seq, outside)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.2, 0.8), shape=st.sampled_from([(1, 9, 7), (3, 16, 16), (2, 5, 30)]))
def test_fill_holes_per_slice_matches_scipy_slice_by_slice(seed, density, shape):
    """The one-pass hole filling gives exactly what binary_fill_holes gives on each axial slice
    (random masks: holes touching edges, holes within holes, empty and full slices)."""
    from scipy import ndimage

    from CrossModalitySynthLib.preprocess.intensity import fill_holes_per_slice

    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    mask[0] = False  # an empty slice
    if shape[0] > 1:
        mask[-1] = True  # a full slice
    before = mask.copy()
    expected = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    np.testing.assert_array_equal(fill_holes_per_slice(mask), expected)
    np.testing.assert_array_equal(mask, before)  # input untouched


def test_fill_holes_per_slice_fills_a_ring_only_within_its_slice():
    from CrossModalitySynthLib.preprocess.intensity import fill_holes_per_slice

    mask = np.zeros((3, 9, 9), dtype=bool)
    mask[1, 2:7, 2:7] = True
    mask[1, 3:6, 3:6] = False  # a hole in slice 1 only; slices 0 and 2 stay empty
    out = fill_holes_per_slice(mask)
    assert out[1, 2:7, 2:7].all() and out.sum() == 25

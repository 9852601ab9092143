"""Dice, IoU and surface distances in mm (MONAI definitions), empty-mask conventions."""

import math

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.metrics.segmentation import multilabel_scores, segmentation_scores


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 0.6))
def test_dice_iou_relation_per_case(seed, density):
    rng = np.random.default_rng(seed)
    a = rng.random((6, 7, 8)) < density
    b = rng.random((6, 7, 8)) < density
    s = segmentation_scores(a, b, distances=False)
    inter = np.logical_and(a, b).sum()
    if a.any() and b.any():
        assert s.dice == pytest.approx(2 * inter / (a.sum() + b.sum()))
        assert s.iou == pytest.approx(inter / np.logical_or(a, b).sum())
    assert s.dice == pytest.approx(2 * s.iou / (1 + s.iou), abs=1e-12)


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy.*:FutureWarning")
def test_distances_equal_monai_functions():
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance
    from scipy import ndimage

    rng = np.random.default_rng(3)
    spacing = (3.0, 0.7, 0.9)
    for _ in range(3):
        a = ndimage.gaussian_filter(rng.normal(size=(14, 30, 28)), 2.0) > 0.05
        b = ndimage.gaussian_filter(rng.normal(size=(14, 30, 28)), 2.0) > 0.05
        s = segmentation_scores(a, b, spacing=spacing)
        yp, yt = a[None, None].astype(np.float32), b[None, None].astype(np.float32)
        kw = dict(include_background=True, spacing=spacing)
        assert s.hd == pytest.approx(float(compute_hausdorff_distance(yp, yt, **kw)), rel=1e-5)
        assert s.hd95 == pytest.approx(float(compute_hausdorff_distance(yp, yt, percentile=95, **kw)), rel=1e-5)
        assert s.msd == pytest.approx(float(compute_average_surface_distance(yp, yt, symmetric=True, **kw)), rel=1e-5)
        assert 0 < s.msd < s.hd95 <= s.hd


def _box(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(l, h) for l, h in zip(lo, hi))] = True
    return m


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3])
def test_shifted_box_distance_is_shift_times_spacing(axis, k):
    spacing = (2.5, 0.8, 1.1)
    shape = (20, 24, 26)
    lo, hi = [4, 5, 6], [12, 17, 19]  # box 8 x 12 x 13 voxels, well inside the volume
    ref = _box(shape, lo, hi)
    lo2, hi2 = list(lo), list(hi)
    lo2[axis] += k
    hi2[axis] += k
    pred = _box(shape, lo2, hi2)
    s = segmentation_scores(pred, ref, spacing=spacing)
    expected = k * spacing[axis]
    assert s.hd == pytest.approx(expected, rel=1e-6)
    assert s.hd95 == pytest.approx(expected, rel=1e-6)
    assert 0.0 < s.msd < expected
    n = ref.sum()
    inter = n * (hi[axis] - lo[axis] - k) / (hi[axis] - lo[axis])
    assert s.dice == pytest.approx(inter / n)


def test_image_spacing_is_used_in_numpy_order():
    shape = (20, 24, 26)
    ref = _box(shape, (4, 5, 6), (12, 17, 19))
    pred = _box(shape, (6, 5, 6), (14, 17, 19))  # shifted 2 voxels along z (array axis 0)

    def img(a):
        i = sitk.GetImageFromArray(a.astype(np.uint8))
        i.SetSpacing((0.8, 1.1, 2.5))  # x, y, z
        return i

    s = segmentation_scores(img(pred), img(ref))
    assert s.hd == pytest.approx(5.0, rel=1e-6) and s.hd95 == pytest.approx(5.0, rel=1e-6)
    other = img(pred)
    other.SetSpacing((0.8, 1.1, 3.0))
    with pytest.raises(InputError, match="grid"):
        segmentation_scores(other, img(ref))


def test_identical_and_empty_conventions():
    shape = (10, 12, 14)
    box = _box(shape, (2, 3, 4), (7, 9, 10))
    same = segmentation_scores(box, box, spacing=(2.0, 1.0, 1.0))
    assert (same.dice, same.iou, same.hd, same.hd95, same.msd) == (1.0, 1.0, 0.0, 0.0, 0.0)
    empty = np.zeros(shape, bool)
    both = segmentation_scores(empty, empty)
    assert (both.dice, both.iou, both.hd, both.hd95, both.msd) == (1.0, 1.0, 0.0, 0.0, 0.0)
    one = segmentation_scores(empty, box)
    assert one.dice == 0.0 and one.iou == 0.0 and math.isinf(one.hd95) and math.isinf(one.hd)
    diag = segmentation_scores(box, empty, spacing=(2.0, 1.0, 1.0), one_empty="diagonal")
    assert diag.hd95 == pytest.approx(math.sqrt(20 ** 2 + 12 ** 2 + 14 ** 2))
    labels = np.zeros(shape, np.uint8)
    labels[box] = 2
    res = multilabel_scores(labels, labels, [1, 2])
    assert res[1].dice == 1.0 and res[1].n_ref == 0 and res[2].dice == 1.0 and res[2].n_ref == box.sum()

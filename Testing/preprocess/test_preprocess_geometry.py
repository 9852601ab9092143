"""Orientation, pad/crop and resampling: exact inverses and correct physical mapping."""

import itertools

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings, strategies as st

from testsupport.images import random_rotation
from CrossModalitySynthLib.geometry import Grid
from CrossModalitySynthLib.preprocess import (
    orientation_code,
    pad_crop,
    plan_orientation,
    plan_pad_crop,
    reorient,
    resample_to_grid,
    resample_to_spacing,
    resampled_grid,
)

SETTINGS = settings(max_examples=25, deadline=None)


def _direction(seed: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "oblique":
        d = random_rotation(rng)
    else:  # a signed axis permutation
        d = np.eye(3)[list(rng.permutation(3))] * rng.choice([-1.0, 1.0], size=3)
    if rng.random() < 0.3:  # improper (left-handed) directions occur in real files too
        d = d @ np.diag([1.0, 1.0, -1.0])
    return d


grids = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "kind": st.sampled_from(["oblique", "axis"]),
        "size": st.tuples(*[st.integers(2, 9)] * 3),
        "spacing": st.tuples(*[st.floats(0.4, 5.0)] * 3),
        "origin": st.tuples(*[st.floats(-300.0, 300.0)] * 3),
    }
)


def _index_image(g: dict) -> sitk.Image:
    """Integer image whose value encodes its own (x, y, z) index: x + 100 y + 10000 z."""
    sx, sy, sz = g["size"]
    z, y, x = np.meshgrid(np.arange(sz), np.arange(sy), np.arange(sx), indexing="ij")
    img = sitk.GetImageFromArray((x + 100 * y + 10000 * z).astype(np.int32))
    img.SetSpacing(g["spacing"])
    img.SetOrigin(g["origin"])
    img.SetDirection(tuple(_direction(g["seed"], g["kind"]).ravel()))
    return img


def _assert_voxels_kept_in_place(src: sitk.Image, dst: sitk.Image, mask=None, atol=1e-6):
    """Every voxel of ``dst`` (holding an encoded source index; only where ``mask``) lies where
    that source voxel lay."""
    a = sitk.GetArrayFromImage(dst).astype(np.int64)
    if mask is None:
        mask = np.ones(a.shape, dtype=bool)
    z, y, x = np.nonzero(mask)
    v = a[mask]
    idx_dst = np.stack([x, y, z, np.ones(v.size)])
    idx_src = np.stack([v % 100, (v // 100) % 100, v // 10000, np.ones(v.size)])
    p_dst = Grid.of(dst).index_to_physical_matrix() @ idx_dst
    p_src = Grid.of(src).index_to_physical_matrix() @ idx_src
    np.testing.assert_allclose(p_dst, p_src, atol=atol)


def _assert_grid_equal(a: sitk.Image, b: sitk.Image, tol=1e-6):
    ga, gb = Grid.of(a), Grid.of(b)
    assert ga.size == gb.size
    np.testing.assert_allclose(ga.origin, gb.origin, atol=tol, rtol=0)
    np.testing.assert_allclose(ga.spacing, gb.spacing, atol=tol, rtol=0)
    np.testing.assert_allclose(ga.direction, gb.direction, atol=tol, rtol=0)


# ---------------------------------------------------------------- orientation


@SETTINGS
@given(g=grids, code=st.sampled_from(["LPS", "RAS", "LPI", "SAR"]))
def test_reorient_roundtrip_is_exact(g, code):
    img = _index_image(g)
    out, change = reorient(img, code)
    # no voxel moves in space, and the result is the orientation closest to the code
    _assert_voxels_kept_in_place(img, out)
    assert orientation_code(out.GetDirection()) == code
    np.testing.assert_array_equal(np.sort(sitk.GetArrayFromImage(out), axis=None), np.sort(sitk.GetArrayFromImage(img), axis=None))
    back = change.invert(out)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    assert back.GetPixelID() == img.GetPixelID()
    _assert_grid_equal(back, img, 1e-6)
    assert Grid.of(back) == Grid.of(img)  # the exact inverse gives the stored input grid


@SETTINGS
@given(g=grids)
def test_lps_result_direction_is_closest_to_identity(g):
    img = _index_image(g)
    out, _ = reorient(img, "LPS")
    d = np.asarray(out.GetDirection()).reshape(3, 3)
    assert np.all(np.diag(d) > 0)
    # no other signed permutation of the axes is closer to the identity
    best = np.trace(np.abs(d))
    for perm in itertools.permutations(range(3)):
        assert sum(abs(d[k, perm[k]]) for k in range(3)) <= best + 1e-9


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("signs", [(1, 1, 1), (-1, 1, -1), (1, -1, 1), (-1, -1, -1)])
def test_matches_simpleitk_dicomorient_for_axis_aligned(perm, signs):
    g = {"seed": 0, "kind": "axis", "size": (3, 4, 5), "spacing": (0.7, 1.1, 2.9), "origin": (5.0, -7.0, 11.0)}
    img = _index_image(g)
    img.SetDirection(tuple((np.eye(3)[list(perm)] * np.asarray(signs, float)).ravel()))
    for code in ("LPS", "RAS"):
        ours, _ = reorient(img, code)
        theirs = sitk.DICOMOrient(img, code)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(theirs))
        _assert_grid_equal(ours, theirs, 1e-9)


def test_identity_orientation_is_a_no_op():
    g = {"seed": 0, "kind": "axis", "size": (3, 4, 5), "spacing": (0.7, 1.1, 2.9), "origin": (5.0, -7.0, 11.0)}
    img = _index_image(g)
    img.SetDirection(tuple(np.eye(3).ravel()))
    change = plan_orientation(Grid.of(img), "LPS")
    assert change.is_identity and change.target == Grid.of(img)


def test_orientation_code_examples():
    assert orientation_code(np.eye(3)) == "LPS"
    assert orientation_code(np.diag([-1.0, -1.0, 1.0])) == "RAS"
    assert orientation_code([[0, 0, 1], [1, 0, 0], [0, 1, 0]]) == "PSL"


def test_invert_refuses_an_image_on_another_grid():
    g = {"seed": 1, "kind": "axis", "size": (3, 4, 5), "spacing": (1.0, 2.0, 3.0), "origin": (0.0, 0.0, 0.0)}
    img = _index_image(g)
    img.SetDirection((0, 0, 1, 1, 0, 0, 0, 1, 0))
    out, change = reorient(img)
    assert not change.is_identity
    with pytest.raises(ValueError, match="not on the expected grid"):
        change.invert(img)
    with pytest.raises(ValueError, match="not on the expected grid"):
        change.apply(out)


# ---------------------------------------------------------------- pad / crop


@SETTINGS
@given(g=grids, multiple=st.integers(1, 16))
def test_pad_to_multiple_roundtrip_is_exact(g, multiple):
    img = _index_image(g)
    out, plan = pad_crop(img, multiple=multiple, value=-7)
    sx, sy, sz = out.GetSize()
    assert sx % multiple == 0 and sy % multiple == 0 and sz == img.GetSize()[2]
    assert sx - img.GetSize()[0] < multiple and sy - img.GetSize()[1] < multiple
    for k in range(2):  # symmetric: the odd voxel goes after
        assert 0 <= plan.before[k] <= plan.after[k] <= plan.before[k] + 1
    arr = sitk.GetArrayFromImage(out)
    kept = arr != -7
    assert kept.sum() == np.prod(img.GetSize())
    # kept voxels are where they were in space: the origin moved by -pad * spacing along each column
    _assert_voxels_kept_in_place(img, out, mask=kept)
    expected_origin = Grid.of(img).index_to_physical_matrix() @ np.array([-plan.before[0], -plan.before[1], 0, 1])
    np.testing.assert_allclose(out.GetOrigin(), expected_origin[:3], atol=1e-9)
    back = plan.invert(out, value=-7)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    assert Grid.of(back) == Grid.of(img)


@SETTINGS
@given(g=grids, size_xy=st.tuples(st.integers(1, 12), st.integers(1, 12)))
def test_pad_or_crop_to_fixed_size(g, size_xy):
    img = _index_image(g)
    out, plan = pad_crop(img, size_xy=size_xy, value=-1)
    assert out.GetSize()[:2] == size_xy
    arr = sitk.GetArrayFromImage(out)
    mask = arr >= 0
    _assert_voxels_kept_in_place(img, out, mask=mask)
    back = plan.invert(out, value=-1)
    assert Grid.of(back) == Grid.of(img)
    b, orig = sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img)
    restored = b != -1
    np.testing.assert_array_equal(b[restored], orig[restored])  # what was kept is exact
    assert restored.sum() == mask.sum()  # what was cropped comes back as the pad value
    if not plan.crops:
        np.testing.assert_array_equal(b, orig)


def test_pad_origin_shift_example():
    img = sitk.Image([5, 6, 2], sitk.sitkInt16)
    img.SetSpacing((2.0, 3.0, 4.0))
    img.SetOrigin((10.0, 20.0, 30.0))
    img.SetDirection((0, -1, 0, 1, 0, 0, 0, 0, 1))  # x runs along +y, y along -x
    plan = plan_pad_crop(Grid.of(img), multiple=8)
    assert plan.before == (1, 1, 0) and plan.after == (2, 1, 0)
    # origin - 1*2.0 along column x (0, 1, 0) - 1*3.0 along column y (-1, 0, 0)
    np.testing.assert_allclose(plan.target.origin, (10.0 + 3.0, 20.0 - 2.0, 30.0))


# ---------------------------------------------------------------- resampling


@SETTINGS
@given(g=grids, target=st.tuples(*[st.one_of(st.none(), st.floats(0.3, 6.0))] * 3))
def test_resampled_grid_keeps_direction_centre_and_extent(g, target):
    grid = Grid.of(_index_image(g))
    new = resampled_grid(grid, target)
    assert new.direction == grid.direction
    centre = lambda gr: gr.index_to_physical_matrix() @ np.append((np.asarray(gr.size) - 1) / 2.0, 1.0)
    np.testing.assert_allclose(centre(new), centre(grid), atol=1e-6)
    for k in range(3):
        if target[k] is None:
            assert new.size[k] == grid.size[k] and new.spacing[k] == grid.spacing[k]
        else:
            assert new.spacing[k] == pytest.approx(target[k], abs=1e-6)
            extent = grid.size[k] * grid.spacing[k]
            # covers the old extent, by less than one new voxel more
            assert extent - 1e-5 <= new.size[k] * new.spacing[k] < extent + new.spacing[k] + 1e-6


def _label_image(seed=0, shape=(10, 12, 14), spacing=(0.9, 1.1, 2.5), direction=None):
    rng = np.random.default_rng(seed)
    ids = np.array([0, 3, 7, 200], dtype=np.uint8)
    coarse = rng.integers(0, 4, size=(3, 4, 4))
    arr = ids[np.kron(coarse, np.ones((4, 4, 4), dtype=int))[: shape[0], : shape[1], : shape[2]]]
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((1.0, -2.0, 3.0))
    if direction is not None:
        img.SetDirection(tuple(np.asarray(direction).ravel()))
    return img


@pytest.mark.parametrize("interp", ["nearest", "label_gaussian", "label_linear"])
@pytest.mark.parametrize("seed", [0, 1])
def test_label_resampling_invents_no_ids(interp, seed):
    rot = random_rotation(np.random.default_rng(seed))
    lab = _label_image(seed, direction=rot)
    out = resample_to_spacing(lab, (0.7, 1.7, 1.3), interp)
    assert out.GetPixelID() == lab.GetPixelID()
    ids_in = set(np.unique(sitk.GetArrayFromImage(lab)).tolist())
    ids_out = set(np.unique(sitk.GetArrayFromImage(out)).tolist())
    assert ids_out <= ids_in
    assert len(ids_out) >= 3
    # onto an unrelated oblique grid as well
    ref = Grid.of(_label_image(seed + 10, direction=random_rotation(np.random.default_rng(seed + 10))))
    out2 = resample_to_grid(lab, ref, interp, default_value=0)
    assert set(np.unique(sitk.GetArrayFromImage(out2)).tolist()) <= ids_in | {0}
    assert Grid.of(out2) == ref


@pytest.mark.parametrize("interp", ["nearest", "label_linear"])
def test_label_resampling_onto_own_grid_is_identity(interp):
    lab = _label_image(2)
    out = resample_to_grid(lab, lab, interp)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(lab))


def test_label_gaussian_onto_own_grid_is_nearly_identity():
    # a Gaussian vote (sigma ~ spacing) smooths corners of structures: close, not identical
    lab = _label_image(2)
    out = resample_to_grid(lab, lab, "label_gaussian")
    assert np.mean(sitk.GetArrayFromImage(out) == sitk.GetArrayFromImage(lab)) > 0.98


def test_label_linear_outside_gets_default():
    lab = _label_image(3)
    g = Grid.of(lab)
    far = Grid(g.size, tuple(np.asarray(g.origin) + 1000.0), g.spacing, g.direction)
    out = resample_to_grid(lab, far, "label_linear", default_value=0)
    assert not sitk.GetArrayFromImage(out).any()


def test_resample_to_spacing_no_change_returns_input():
    lab = _label_image(4)
    assert resample_to_spacing(lab, (None, lab.GetSpacing()[1], None)) is lab


def test_unknown_interpolator():
    with pytest.raises(ValueError, match="interpolator"):
        resample_to_grid(_label_image(), _label_image(), "cubic")

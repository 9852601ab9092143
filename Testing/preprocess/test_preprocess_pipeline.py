"""prepare -> (network) -> restore: outputs land exactly on the input's grid, values come back."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings, strategies as st

from testsupport.images import random_rotation
from CrossModalitySynthLib.errors import ConfigError, InputError
from CrossModalitySynthLib.geometry import Grid
from CrossModalitySynthLib.preprocess import ModelGridSpec, prepare, prepare_label

SETTINGS = settings(max_examples=20, deadline=None)


def _direction(seed: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = random_rotation(rng) if kind == "oblique" else np.eye(3)[list(rng.permutation(3))] * rng.choice([-1.0, 1.0], size=3)
    if rng.random() < 0.3:
        d = d @ np.diag([1.0, 1.0, -1.0])
    return d


grids = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "kind": st.sampled_from(["oblique", "axis"]),
        "size": st.tuples(*[st.integers(3, 12)] * 3),
        "spacing": st.tuples(*[st.floats(0.5, 4.0)] * 3),
        "origin": st.tuples(*[st.floats(-300.0, 300.0)] * 3),
    }
)
layouts = st.one_of(
    st.fixed_dictionaries({"inplane_multiple": st.sampled_from([1, 4, 16])}),
    st.fixed_dictionaries(
        {"inplane_multiple": st.none(), "inplane_size": st.tuples(st.integers(2, 16), st.integers(2, 16))}
    ),
)


def _ct_image(g: dict) -> sitk.Image:
    """Integer HU inside the default window: air, tissue and random values."""
    rng = np.random.default_rng(g["seed"])
    sx, sy, sz = g["size"]
    arr = rng.integers(-1024, 3072, size=(sz, sy, sx)).astype(np.int16)
    kind = rng.random(arr.shape)
    arr[kind < 0.2] = -1000  # air (so the modality check sees a CT)
    soft = kind > 0.6
    arr[soft] = rng.integers(-100, 101, size=int(soft.sum()))  # soft tissue
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(g["spacing"])
    img.SetOrigin(g["origin"])
    img.SetDirection(tuple(_direction(g["seed"], g["kind"]).ravel()))
    return img


def _assert_on_grid(out: sitk.Image, ref: sitk.Image):
    go, gr = Grid.of(out), Grid.of(ref)
    assert go.size == gr.size
    np.testing.assert_allclose(go.origin, gr.origin, atol=1e-6, rtol=0)
    np.testing.assert_allclose(go.spacing, gr.spacing, atol=1e-6, rtol=0)
    np.testing.assert_allclose(go.direction, gr.direction, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- spec


def test_spec_json_roundtrip():
    spec = ModelGridSpec(spacing=(1.0, None, 3.0), inplane_multiple=None, inplane_size=(256, 256),
                         mri_percentiles=(1.0, 99.0), ct_window=(-1000.0, 2000.0), image_interpolator="bspline",
                         label_interpolator="label_gaussian", orientation="RAS")
    d = json.loads(json.dumps(spec.to_dict()))
    assert d["version"] == 1 and d["spacing"] == [1.0, None, 3.0]
    assert ModelGridSpec.from_dict(d) == spec
    assert ModelGridSpec.from_dict({}) == ModelGridSpec()
    assert ModelGridSpec.from_dict({"inplane_size": [128, 96]}).inplane_multiple is None


@pytest.mark.parametrize(
    "bad, word",
    [
        ({"inplane_multiple": 4, "inplane_size": [256, 256]}, "not both"),
        ({"spacing": [1.0, -1.0, None]}, "spacing"),
        ({"spacing": [1.0, 1.0]}, "spacing"),
        ({"mri_percentiles": [99.0, 1.0]}, "mri_percentiles"),
        ({"ct_window": [100, -100]}, "ct_window"),
        ({"image_interpolator": "nearest"}, "image_interpolator"),
        ({"label_interpolator": "linear"}, "label_interpolator"),
        ({"orientation": "LPX"}, "orientation"),
        ({"orientaton": "LPS"}, "unknown"),
        ({"version": 99}, "newer"),
        ({"inplane_multiple": "four"}, "wrong type"),
    ],
)
def test_spec_validation(bad, word):
    with pytest.raises(ConfigError, match=word):
        ModelGridSpec.from_dict(bad)


# ---------------------------------------------------------------- grids and exact values


@SETTINGS
@given(g=grids, layout=layouts, target=st.tuples(*[st.one_of(st.none(), st.floats(0.6, 5.0))] * 3))
def test_restore_lands_exactly_on_input_grid(g, layout, target):
    img = _ct_image(g)
    spec = ModelGridSpec(spacing=target, **layout)
    prep = prepare(img, spec, modality="CT")
    c, z, y, x = prep.array.shape
    assert c == 1 and prep.array.dtype == np.float32
    assert (x, y, z) == prep.model_grid.size
    assert prep.array.min() >= -1.0 and prep.array.max() <= 1.0
    if spec.inplane_multiple:
        assert x % spec.inplane_multiple == 0 and y % spec.inplane_multiple == 0
    else:
        assert (x, y) == tuple(spec.inplane_size)
    out = prep.restore(prep.array[0], output="CT")
    _assert_on_grid(out, img)
    assert out.GetPixelID() == sitk.sitkFloat32
    lab = prep.restore((prep.array[0] > 0).astype(np.uint8), kind="label")
    _assert_on_grid(lab, img)
    assert set(np.unique(sitk.GetArrayFromImage(lab)).tolist()) <= {0, 1}


@SETTINGS
@given(g=grids, multiple=st.sampled_from([1, 4, 16]), same=st.booleans())
def test_no_resampling_gives_integer_ct_back_exactly(g, multiple, same):
    img = _ct_image(g)
    probe = prepare(img, ModelGridSpec(inplane_multiple=multiple), modality="CT")
    # target spacing "equal to the input's" is stated along the reoriented axes
    spacing = probe.orientation.target.spacing if same else (None, None, None)
    prep = prepare(img, ModelGridSpec(spacing=spacing, inplane_multiple=multiple), modality="CT")
    assert not prep.resampled
    out = prep.restore(prep.array[0], output="CT")
    assert Grid.of(out) == Grid.of(img)  # bit-exact grid on the exact path
    got = sitk.GetArrayFromImage(out)
    np.testing.assert_allclose(got, sitk.GetArrayFromImage(img), atol=2e-3)
    np.testing.assert_array_equal(np.round(got).astype(np.int16), sitk.GetArrayFromImage(img))


def test_crop_to_fixed_size_fills_cropped_voxels_with_air():
    g = {"seed": 5, "kind": "oblique", "size": (12, 10, 4), "spacing": (1.0, 1.0, 2.0), "origin": (0.0, 0.0, 0.0)}
    img = _ct_image(g)
    prep = prepare(img, ModelGridSpec(inplane_multiple=None, inplane_size=(6, 6)), modality="CT")
    assert prep.padcrop.crops
    got = np.round(sitk.GetArrayFromImage(prep.restore(prep.array[0], output="CT"))).astype(np.int16)
    orig = sitk.GetArrayFromImage(img)
    kept = prep.orientation.invert_array(prep.padcrop.invert_array(np.ones(prep.array.shape[1:], bool), False))
    np.testing.assert_array_equal(got[kept], orig[kept])
    assert np.all(got[~kept] == -1024)
    assert kept.sum() == 6 * 6 * 4


def _ramp_ct(g: dict, coef=(3.0, -2.0, 1.5), const=200.0) -> sitk.Image:
    img = _ct_image(g)
    grid = Grid.of(img)
    sx, sy, sz = grid.size
    z, y, x = np.meshgrid(np.arange(sz), np.arange(sy), np.arange(sx), indexing="ij")
    phys = grid.index_to_physical_matrix() @ np.stack([x.ravel(), y.ravel(), z.ravel(), np.ones(x.size)])
    values = (np.asarray(coef) @ phys[:3] + const).reshape(z.shape)
    out = sitk.GetImageFromArray(values.astype(np.float32))
    out.CopyInformation(img)
    return out


def _interior(shape_zyx, spacing_xyz, margin_mm):
    m = np.ones(shape_zyx, bool)
    for axis in range(3):
        n, s = shape_zyx[axis], spacing_xyz[2 - axis]
        i = np.arange(n)
        ok = np.minimum(i, n - 1 - i) * s >= margin_mm
        shape = [1, 1, 1]
        shape[axis] = n
        m &= ok.reshape(shape)
    return m


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    spacing=st.tuples(*[st.floats(0.8, 2.0)] * 3),
    target=st.tuples(*[st.floats(0.7, 2.0)] * 3),
    interp=st.sampled_from(["linear", "bspline"]),
    multiple=st.sampled_from([1, 16]),
)
def test_resampled_smooth_image_comes_back_in_physical_space(seed, spacing, target, interp, multiple):
    """A ramp in physical coordinates survives prepare -> restore with resampling: this checks
    the physical mapping (a flipped axis or shifted origin would show as errors of many HU)."""
    g = {"seed": seed, "kind": "oblique", "size": (24, 22, 20), "spacing": spacing, "origin": (-10.0, 12.0, -8.0)}
    img = _ramp_ct(g)
    spec = ModelGridSpec(spacing=target, inplane_multiple=multiple, image_interpolator=interp)
    prep = prepare(img, spec, modality="CT")
    out = prep.restore(prep.array[0], output="CT")
    _assert_on_grid(out, img)
    got, exp = sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(img)
    inside = _interior(exp.shape, spacing, margin_mm=1.5 * (max(spacing) + max(target)))
    assert inside.sum() > 0
    tol = 0.05 if interp == "linear" else 0.5
    np.testing.assert_allclose(got[inside], exp[inside], atol=tol)
    # the border is close too: no padding or default value leaks in (edges are clamped)
    step = 3.0 * 2.0 * max(max(spacing), max(target))  # gradient |(3, -2, 1.5)| < 4 HU/mm, 2 voxels
    assert np.max(np.abs(got - exp)) < step


def test_ramp_with_resampling_fixed_example():
    g = {"seed": 11, "kind": "oblique", "size": (24, 22, 20), "spacing": (0.9, 1.3, 1.8), "origin": (5.0, -3.0, 2.0)}
    img = _ramp_ct(g)
    prep = prepare(img, ModelGridSpec(spacing=(1.6, 1.6, 1.0), inplane_multiple=16), modality="CT")
    assert prep.resampled and prep.model_grid.spacing == (1.6, 1.6, 1.0)
    got = sitk.GetArrayFromImage(prep.restore(prep.array[0], output="CT"))
    exp = sitk.GetArrayFromImage(img)
    inside = _interior(exp.shape, (0.9, 1.3, 1.8), margin_mm=4.0)
    np.testing.assert_allclose(got[inside], exp[inside], atol=0.05)


def test_mri_output_goes_back_to_the_stored_mri_scale():
    rng = np.random.default_rng(0)
    arr = np.zeros((6, 20, 24), np.float32)
    arr[:, 4:16, 4:20] = rng.uniform(200, 900, size=(6, 12, 16))
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.2, 1.1, 5.0))
    img.SetDirection(tuple(random_rotation(np.random.default_rng(1)).ravel()))
    prep = prepare(img, ModelGridSpec(mri_percentiles=(0.0, 100.0)), modality="MR")
    assert prep.warnings == ()
    s = prep.scales[0]
    assert s.kind == "mr_percentiles" and s.low >= 200 and s.high <= 900
    out = prep.restore(prep.array[0], output="MR")
    assert Grid.of(out) == Grid.of(img)
    body = arr > 0
    np.testing.assert_allclose(sitk.GetArrayFromImage(out)[body], arr[body], rtol=1e-5)
    # a CT -> MR model's output uses the spec's MR output range instead
    ct_prep = prepare(_ct_image({"seed": 1, "kind": "axis", "size": (6, 6, 3), "spacing": (1, 1, 1), "origin": (0, 0, 0)}),
                      ModelGridSpec(), modality="CT")
    mr = ct_prep.restore(np.zeros(ct_prep.array.shape[1:], np.float32), output="MR")
    np.testing.assert_allclose(sitk.GetArrayFromImage(mr), 500.0)


def test_restore_rejects_array_not_on_model_grid():
    img = _ct_image({"seed": 1, "kind": "axis", "size": (6, 6, 3), "spacing": (1, 1, 1), "origin": (0, 0, 0)})
    prep = prepare(img, ModelGridSpec(), modality="CT")
    with pytest.raises(ValueError, match="model grid"):
        prep.restore(np.zeros((3, 6, 6), np.float32))
    with pytest.raises(ValueError, match="kind"):
        prep.restore(prep.array[0], kind="mask")


# ---------------------------------------------------------------- multi-channel and modality


def test_multichannel_mri_on_different_grids():
    rng = np.random.default_rng(2)
    rot = random_rotation(rng)
    a = sitk.GetImageFromArray(rng.uniform(100, 900, size=(6, 16, 18)).astype(np.float32))
    a.SetSpacing((1.2, 1.2, 6.0))
    a.SetDirection(tuple(rot.ravel()))
    b = sitk.GetImageFromArray(rng.uniform(100, 900, size=(8, 20, 22)).astype(np.float32))
    b.SetSpacing((1.0, 1.0, 4.5))
    b.SetDirection(tuple(rot.ravel()))
    b.SetOrigin(tuple(rot @ np.array([-1.0, -1.0, -2.0])))
    prep = prepare([a, b], ModelGridSpec(spacing=(1.5, 1.5, None)), modality="MR", names=["T1 in-phase", "T2"])
    assert prep.array.shape[0] == 2 and len(prep.scales) == 2
    assert Grid.of(prep.restore(prep.array[1], output="MR", channel=1)) == Grid.of(a)
    far = sitk.GetImageFromArray(sitk.GetArrayFromImage(b))
    far.CopyInformation(b)
    far.SetOrigin((900.0, 0.0, 0.0))
    with pytest.raises(InputError, match="do not overlap"):
        prepare([a, far], ModelGridSpec(), modality="MR")


def test_ct_given_as_mri_warns():
    img = _ct_image({"seed": 3, "kind": "axis", "size": (12, 12, 3), "spacing": (1, 1, 1), "origin": (0, 0, 0)})
    prep = prepare(img, ModelGridSpec(), modality="MR")
    assert len(prep.warnings) == 1 and "looks like a CT" in prep.warnings[0]
    assert prepare(img, ModelGridSpec(), modality="CT").warnings == ()


def test_bad_input_raises_input_error():
    arr = np.random.default_rng(0).normal(size=(4, 6, 6)).astype(np.float32)
    arr[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        prepare(sitk.GetImageFromArray(arr), ModelGridSpec(), modality="MR")


def test_describe_is_json_ready():
    img = _ct_image({"seed": 1, "kind": "oblique", "size": (6, 7, 3), "spacing": (1, 1, 2), "origin": (0, 0, 0)})
    d = prepare(img, ModelGridSpec(spacing=(0.8, 0.8, None)), modality="CT").describe()
    again = json.loads(json.dumps(d))
    assert again["resampled"] is True and again["scales"][0]["kind"] == "ct_window"
    assert again["input_grid"]["size"] == [6, 7, 3]


# ---------------------------------------------------------------- labels


def _sphere_label(img: sitk.Image, radius_mm: float, value: int = 1) -> sitk.Image:
    grid = Grid.of(img)
    sx, sy, sz = grid.size
    z, y, x = np.meshgrid(np.arange(sz), np.arange(sy), np.arange(sx), indexing="ij")
    phys = grid.index_to_physical_matrix() @ np.stack([x.ravel(), y.ravel(), z.ravel(), np.ones(x.size)])
    centre = grid.index_to_physical_matrix() @ np.append((np.asarray(grid.size) - 1) / 2.0, 1.0)
    inside = np.linalg.norm(phys[:3] - centre[:3, None], axis=0) <= radius_mm
    lab = sitk.GetImageFromArray((inside.reshape(z.shape) * value).astype(np.uint8))
    lab.CopyInformation(img)
    return lab


def test_prepare_label_exact_without_resampling_and_back():
    g = {"seed": 7, "kind": "oblique", "size": (14, 13, 6), "spacing": (1.0, 1.3, 3.0), "origin": (4.0, 5.0, 6.0)}
    img = _ct_image(g)
    lab = _sphere_label(img, 7.0, value=6)
    prep = prepare(img, ModelGridSpec(inplane_multiple=8), modality="CT")
    on_model = prepare_label(lab, prep)
    assert on_model.shape == prep.array.shape[1:] and on_model.dtype == np.uint8
    assert on_model.sum() == sitk.GetArrayFromImage(lab).sum()  # nothing interpolated
    back = prep.restore(on_model, kind="label")
    assert Grid.of(back) == Grid.of(img)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(lab))


@pytest.mark.parametrize("interp", ["nearest", "label_gaussian", "label_linear"])
def test_prepare_label_with_resampling_keeps_ids_and_shape(interp):
    g = {"seed": 8, "kind": "oblique", "size": (36, 32, 14), "spacing": (0.9, 1.1, 2.5), "origin": (0.0, 0.0, 0.0)}
    img = _ct_image(g)
    lab = sitk.GetArrayFromImage(_sphere_label(img, 14.0, 3)) + sitk.GetArrayFromImage(_sphere_label(img, 7.0, 4))
    lab_img = sitk.GetImageFromArray(lab.astype(np.uint8))
    lab_img.CopyInformation(img)
    spec = ModelGridSpec(spacing=(1.4, 1.4, 2.0), label_interpolator=interp)
    prep = prepare(img, spec, modality="CT")
    on_model = prepare_label(lab_img, prep)
    assert set(np.unique(on_model).tolist()) <= {0, 3, 7}
    back = sitk.GetArrayFromImage(prep.restore(on_model, kind="label"))
    assert set(np.unique(back).tolist()) <= {0, 3, 7}
    for v in (3, 7):
        a, b = lab == v, back == v
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.8


def test_prepare_label_on_other_grid_and_bad_labels():
    g = {"seed": 9, "kind": "axis", "size": (12, 12, 6), "spacing": (1.0, 1.0, 2.0), "origin": (0.0, 0.0, 0.0)}
    img = _ct_image(g)
    prep = prepare(img, ModelGridSpec(), modality="CT")
    lab = _sphere_label(img, 5.0, 2)
    shifted = sitk.Resample(lab, sitk.Transform(), sitk.sitkNearestNeighbor, 0)  # same grid copy
    shifted.SetOrigin(tuple(np.asarray(lab.GetOrigin()) + 0.25))
    on_model = prepare_label(shifted, prep)
    assert set(np.unique(on_model).tolist()) == {0, 2}
    far = sitk.Image(lab)
    far.SetOrigin((500.0, 0.0, 0.0))
    with pytest.raises(InputError, match="do not overlap"):
        prepare_label(far, prep)
    frac = sitk.GetImageFromArray(np.full((6, 12, 12), 0.5, np.float32))
    frac.CopyInformation(img)
    with pytest.raises(InputError, match="not a label map"):
        prepare_label(frac, prep)

"""Input checks: every bad input raises InputError with a message naming the problem."""

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.images import make_image, random_rotation
from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.geometry import Grid, same_grid
from CrossModalitySynthLib.preprocess import check_channels, check_volume, overlap_fraction


def test_good_volume_passes():
    check_volume(make_image(), "T1")


@pytest.mark.parametrize(
    "image, words",
    [
        (sitk.Image([8, 8], sitk.sitkFloat32) + 1.0, ["2D", "3D"]),
        (sitk.GetImageFromArray(np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5), isVector=False), ["4D", "3D"]),
        (sitk.GetImageFromArray(np.random.default_rng(0).random((4, 5, 6, 3)), isVector=True), ["vector", "3 components"]),
        (sitk.GetImageFromArray(np.full((4, 5, 6), 7, dtype=np.int16)), ["constant", "7"]),
    ],
    ids=["2d", "4d", "rgb", "constant"],
)
def test_bad_volumes_raise_with_key_word(image, words):
    with pytest.raises(InputError) as err:
        check_volume(image, "T2 scan")
    msg = str(err.value)
    assert "T2 scan" in msg
    for w in words:
        assert w in msg


def test_nan_and_inf_are_counted():
    arr = np.random.default_rng(1).normal(size=(4, 5, 6)).astype(np.float32)
    arr[0, 0, :3] = np.nan
    arr[1, 2, 3] = np.inf
    arr[2, 2, 2] = -np.inf
    with pytest.raises(InputError) as err:
        check_volume(sitk.GetImageFromArray(arr), "input")
    msg = str(err.value)
    assert "NaN" in msg and "5 NaN or infinite" in msg and "3 NaN" in msg and "2 Inf" in msg


def test_sheared_direction_rejected():
    img = make_image()
    img.SetDirection((1, 0.3, 0, 0, 1, 0, 0, 0, 1))
    with pytest.raises(InputError, match="sheared"):
        check_volume(img)


def test_not_an_image():
    with pytest.raises(InputError, match="not an image"):
        check_volume(np.zeros((3, 3, 3)))


def test_too_many_or_no_channels():
    with pytest.raises(InputError, match="1 to 3"):
        check_channels([make_image(seed=i) for i in range(4)])
    with pytest.raises(InputError, match="1 to 3"):
        check_channels([])


def test_bad_channel_is_named():
    bad = make_image()
    arr = sitk.GetArrayFromImage(bad)
    arr[0, 0, 0] = np.nan
    bad2 = sitk.GetImageFromArray(arr)
    bad2.CopyInformation(bad)
    with pytest.raises(InputError, match="T2.*NaN"):
        check_channels([make_image(), bad2], ["T1", "T2"])


def _ramp_image(shape_zyx, spacing, origin, direction, coef=(2.0, -1.0, 0.5), const=100.0):
    img = make_image(shape_zyx, spacing, origin, direction)
    g = Grid.of(img)
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape_zyx], indexing="ij")
    idx = np.stack([x, y, z, np.ones_like(x)], axis=-1).reshape(-1, 4).T
    phys = (g.index_to_physical_matrix() @ idx)[:3]
    values = (np.asarray(coef) @ phys + const).reshape(shape_zyx).astype(np.float32)
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(img)
    return out, phys.T.reshape(shape_zyx + (3,))


def test_oblique_channel_on_other_grid_is_resampled_onto_channel0():
    rot = random_rotation(np.random.default_rng(3))
    c0, _ = _ramp_image((8, 10, 12), (1.0, 1.2, 2.5), (3.0, -4.0, 10.0), rot)
    g0 = Grid.of(c0)
    centre = g0.corners().mean(axis=0)
    # channel 1: another oblique direction and spacing, centred on channel 0 and larger than it
    rot2 = random_rotation(np.random.default_rng(4))
    size1, spacing1 = np.array([24, 24, 20]), np.array([1.5, 1.5, 2.0])
    origin1 = centre - rot2 @ (spacing1 * (size1 - 1) / 2.0)
    c1, _ = _ramp_image(tuple(int(v) for v in size1[::-1]), tuple(spacing1), tuple(origin1), rot2)
    assert not same_grid(c0, c1) and overlap_fraction(c0, c1) == pytest.approx(1.0)
    out = check_channels([c0, c1], ["T1", "T2"])
    assert out[0] is c0
    assert same_grid(out[1], c0) and Grid.of(out[1]) == g0
    assert out[1].GetPixelID() == sitk.sitkFloat32
    # linear interpolation of a ramp in physical space is exact: the values prove the mapping
    np.testing.assert_allclose(sitk.GetArrayFromImage(out[1]), sitk.GetArrayFromImage(c0), atol=1e-3)


def test_same_grid_channel_returned_unchanged():
    a, b = make_image(seed=1), make_image(seed=2)
    out = check_channels([a, b])
    assert out[1] is b


def test_non_overlapping_channel_raises():
    a = make_image((6, 7, 8), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    b = make_image((6, 7, 8), (1.0, 1.0, 2.0), (500.0, 0.0, 0.0))
    with pytest.raises(InputError) as err:
        check_channels([a, b], ["T1 in-phase", "T2"])
    assert "do not overlap" in str(err.value) and "same patient/session" in str(err.value)
    # partly overlapping (30 % of the smaller box) also raises
    c = make_image((6, 7, 8), (1.0, 1.0, 2.0), (8.0 * 0.7, 0.0, 0.0))
    assert overlap_fraction(a, c) == pytest.approx(0.3, abs=1e-6)
    with pytest.raises(InputError, match="overlap"):
        check_channels([a, c])

"""Data set loaders, each tested on a small tree written in exactly the real layout
(real DICOM files from Testing/testsupport/dicom.py, real PNGs, real NIfTI / MetaImage files)."""

import os
import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from testsupport.dicom import oblique_direction, write_series
from CrossModalitySynthLib import labels as L
from CrossModalitySynthLib.datasets import DatasetWarning, amos, chaos, synthrad
from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.geometry import same_grid

# ============================================================================== CHAOS


def _blocks(rng, shape, values, block=2):
    """A blocky random texture choosing among ``values`` (mixed tissue: fat / muscle / bowel)."""
    nz, ny, nx = shape
    small = rng.choice(values, size=(nz, -(-ny // block), -(-nx // block)))
    return np.repeat(np.repeat(small, block, axis=1), block, axis=2)[:, :ny, :nx].astype(np.float64)


def _ellipse(ny, nx, cy, cx, ry, rx):
    y, x = np.mgrid[:ny, :nx]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def synthetic_ct(n=12, size=32, seed=0, homogeneous=False):
    """HU volume [z, y, x] (z = position order) and its liver mask; the liver sits in the upper
    slices on one side, lungs above it, mixed fat/muscle tissue elsewhere."""
    rng = np.random.default_rng(seed)
    hu = np.full((n, size, size), -1000.0)
    body = _ellipse(size, size, size / 2, size / 2, size * 0.42, size * 0.46)
    tissue = np.full((n, size, size), 60.0) if homogeneous else _blocks(rng, (n, size, size), [-100.0, 40.0, -100.0])
    hu[:, body] = tissue[:, body]
    liver = np.zeros(hu.shape, dtype=bool)
    for z in range(n):
        t = (z - 0.72 * n) / (0.2 * n)
        if abs(t) < 1:
            r = np.sqrt(1 - t * t)
            liver[z] = _ellipse(size, size, size * 0.45, size * 0.33, size * 0.25 * r + 1, size * 0.2 * r + 1) & body
        if z >= n - 2 and not homogeneous:  # lung bases
            hu[z, _ellipse(size, size, size * 0.45, size * 0.7, size * 0.15, size * 0.1)] = -800.0
    hu[liver] = 60.0
    hu += rng.normal(0.0, 8.0, size=hu.shape) * (hu > -900)
    return np.round(hu).astype(np.int32), liver


def write_chaos_ct(root, case_id, hu, liver, *, instance_decreasing_with_z, png_reversed, split="Train_Sets",
                   direction=None, seed=0, instance_numbers=None):
    """One CHAOS CT case: DICOM_anon/i####,0000b.dcm (names shuffled) + Ground/liver_GT_###.png.

    PNG i marks the slice whose InstanceNumber ranks i (or the reverse when ``png_reversed``)."""
    case = os.path.join(root, split, "CT", str(case_id))
    n = hu.shape[0]
    inst = instance_numbers or ([n - k for k in range(n)] if instance_decreasing_with_z else [k + 1 for k in range(n)])
    w = write_series(os.path.join(case, "DICOM_anon"), hu, modality="CT", origin=(-120.0, -150.0, -300.0),
                     spacing=(0.78, 0.78, 3.0), direction=direction, instance_numbers=inst,
                     name_pattern="i{:04d},0000b.dcm", seed=seed)
    if split == "Train_Sets":
        os.makedirs(os.path.join(case, "Ground"))
        z_by_rank = sorted(range(n), key=lambda k: (inst[k], w.paths[k]))
        if png_reversed:
            z_by_rank = z_by_rank[::-1]
        for i, z in enumerate(z_by_rank):
            Image.fromarray((liver[z] * 255).astype(np.uint8)).save(os.path.join(case, "Ground", f"liver_GT_{i:03d}.png"))
    return w


def _assert_label_on_grid(case):
    assert same_grid(case.label, case.image, tol=0.0)
    assert case.label.GetPixelID() == sitk.sitkUInt8


def test_chaos_ct_png_in_instance_order_reversed_to_position(tmp_path):
    """The real CHAOS situation: InstanceNumber grows as z falls, PNG order follows InstanceNumber,
    i.e. runs opposite to slice position. Names shuffled, oblique geometry."""
    hu, liver = synthetic_ct(seed=1)
    d = oblique_direction((0.0, 0.0, 12.0))
    w = write_chaos_ct(str(tmp_path), 1, hu, liver, instance_decreasing_with_z=True, png_reversed=False, direction=d)
    names = [os.path.basename(p) for p in w.paths]
    assert names != sorted(names) and names != sorted(names)[::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        case = chaos.load_ct(str(tmp_path), "1")
    assert case.modality == "CT" and case.sequence == "CT" and case.split == "train"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.image), hu)
    np.testing.assert_allclose(case.image.GetDirection(), d.ravel(), atol=1e-6)
    _assert_label_on_grid(case)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.label), liver.astype(np.uint8) * L.LIVER)
    assert case.order_check.chosen == "instance" and case.order_check.reason == "image data"
    assert case.order_check.slot_order == "InstanceNumber"
    assert case.order_check.scores["instance"] > case.order_check.scores["reversed"] + 0.3
    # the PNG on the top slice (highest z) is the first one: opposite to position order
    assert os.path.basename(case.label_files[-1]) == "liver_GT_000.png"
    assert case.dicom_files == w.paths


def test_chaos_ct_reversed_png_order_detected_from_image(tmp_path):
    """PNGs reversed relative to InstanceNumber (which here follows position): the check must
    override the default pairing, warn, and still put the liver on the liver."""
    hu, liver = synthetic_ct(seed=2)
    write_chaos_ct(str(tmp_path), 7, hu, liver, instance_decreasing_with_z=False, png_reversed=True, seed=5)
    with pytest.warns(chaos.LabelOrderWarning, match="REVERSED"):
        case = chaos.load_ct(str(tmp_path), 7)
    _assert_label_on_grid(case)
    lab = sitk.GetArrayFromImage(case.label)
    np.testing.assert_array_equal(lab, liver.astype(np.uint8))
    assert case.order_check.chosen == "reversed"
    # the label really covers the written liver: soft-tissue HU inside, body around
    assert np.all(np.abs(hu[lab == 1] - 60) < 50)
    # forcing the order skips the check
    forced = chaos.load_ct(str(tmp_path), 7, label_order="instance")
    assert forced.order_check.reason == "forced"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(forced.label), liver[::-1].astype(np.uint8))


def test_chaos_ct_ambiguous_order_warns_and_keeps_instance_order(tmp_path):
    hu, liver = synthetic_ct(seed=3, homogeneous=True)
    write_chaos_ct(str(tmp_path), 2, hu, liver, instance_decreasing_with_z=False, png_reversed=False)
    with pytest.warns(chaos.LabelOrderWarning, match="could not be verified"):
        case = chaos.load_ct(str(tmp_path), 2)
    assert case.order_check.chosen == "instance" and case.order_check.reason == "ambiguous"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.label), liver.astype(np.uint8))


def test_chaos_ct_file_name_order_when_instance_numbers_repeat(tmp_path):
    hu, liver = synthetic_ct(n=8, size=24, seed=4)
    names = [f"i{k:04d},0000b.dcm" for k in range(8)][::-1]  # file-name order = reverse position
    case_dir = tmp_path / "Train_Sets" / "CT" / "3"
    write_series(str(case_dir / "DICOM_anon"), hu, names=names, instance_numbers=[1] * 8, spacing=(0.8, 0.8, 3.0))
    (case_dir / "Ground").mkdir()
    for i in range(8):  # PNG i <-> file i in name order = z index 7 - i
        Image.fromarray((liver[7 - i] * 255).astype(np.uint8)).save(str(case_dir / "Ground" / f"liver_GT_{i:03d}.png"))
    case = chaos.load_ct(str(tmp_path), 3)
    assert case.order_check.slot_order == "file name"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.label), liver.astype(np.uint8))


def test_chaos_ct_test_split_and_listing(tmp_path):
    hu, liver = synthetic_ct(n=6, size=16, seed=5)
    for cid in (10, 2, 1):
        write_chaos_ct(str(tmp_path), cid, hu, liver, instance_decreasing_with_z=True, png_reversed=False)
    write_chaos_ct(str(tmp_path), 40, hu, liver, instance_decreasing_with_z=True, png_reversed=False, split="Test_Sets")
    os.makedirs(tmp_path / "Train_Sets" / "CT" / "notes")  # not a case folder
    assert chaos.list_cases(str(tmp_path), "CT") == ["1", "2", "10"]
    assert chaos.list_cases(str(tmp_path / "Train_Sets"), "ct") == ["1", "2", "10"]
    assert chaos.list_cases(str(tmp_path), "CT", split="test") == ["40"]
    test_case = chaos.load_ct(str(tmp_path), "40", split="test")
    assert test_case.label is None and test_case.order_check is None
    with pytest.raises(InputError, match=r"Train_Sets[/\\]MR"):
        chaos.list_cases(str(tmp_path), "MR")


# ------------------------------------------------------------------------------ CHAOS MR

MR_INTENSITY = {L.LIVER: 420.0, L.RIGHT_KIDNEY: 900.0, L.LEFT_KIDNEY: 950.0, L.SPLEEN: 620.0}
PNG_VALUE = {L.LIVER: 63, L.RIGHT_KIDNEY: 126, L.LEFT_KIDNEY: 189, L.SPLEEN: 252}
PNG_TOLERANT = {L.LIVER: 60, L.RIGHT_KIDNEY: 120, L.LEFT_KIDNEY: 180, L.SPLEEN: 245}


def synthetic_mr_labels(n=8, size=24):
    """Organ label volume [z, y, x] in position order, asymmetric along z (liver high, kidneys low)."""
    lab = np.zeros((n, size, size), dtype=np.uint8)
    for z in range(n):
        if z >= n // 2:
            lab[z][_ellipse(size, size, size * 0.42, size * 0.3, size * 0.2, size * 0.16)] = L.LIVER
        if 1 <= z <= n // 2:
            lab[z][_ellipse(size, size, size * 0.7, size * 0.28, 2.2, 2.0)] = L.RIGHT_KIDNEY
            lab[z][_ellipse(size, size, size * 0.7, size * 0.72, 2.2, 2.0)] = L.LEFT_KIDNEY
        if n // 4 <= z <= n - 2:
            lab[z][_ellipse(size, size, size * 0.4, size * 0.75, 3.0, 2.5)] = L.SPLEEN
    return lab


def synthetic_mr(lab, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    n, ny, nx = lab.shape
    img = np.full(lab.shape, 5.0)
    body = _ellipse(ny, nx, ny / 2, nx / 2, ny * 0.45, nx * 0.47)
    tissue = _blocks(rng, lab.shape, [150.0, 700.0, 260.0])
    img[:, body] = tissue[:, body]
    for value, intensity in MR_INTENSITY.items():
        img[lab == value] = intensity
    img += rng.normal(0, 6.0, size=img.shape)
    return np.clip(np.round(img * scale), 0, 4095).astype(np.int32)


def _mr_png(lab_slice, tolerant=False, stray=False):
    table = PNG_TOLERANT if tolerant else PNG_VALUE
    out = np.zeros(lab_slice.shape, dtype=np.uint8)
    for value, png in table.items():
        out[lab_slice == value] = png
    if stray:
        out[0, 0] = 90  # outside every CHAOS range, in the background
    return out


def write_chaos_mr(root, case_id, lab_t1, lab_t2, *, t2_png_reversed):
    case = os.path.join(root, "Train_Sets", "MR", str(case_id))
    n1, n2 = lab_t1.shape[0], lab_t2.shape[0]
    uid = pydicom.uid.generate_uid()  # in- and opposed-phase share one series, as scanners write them
    common = dict(modality="MR", origin=(-180.0, -160.0, -40.0), spacing=(1.5, 1.5, 7.0), series_uid=uid,
                  instance_numbers=[2 * k + 1 for k in range(n1)][::-1])
    t1_dir = os.path.join(case, "T1DUAL", "DICOM_anon")
    write_series(os.path.join(t1_dir, "InPhase"), synthetic_mr(lab_t1, 1), echo_time=4.6,
                 names=[f"IMG-0004-{2 * k + 2:05d}.dcm" for k in range(n1)][::-1], **common)
    write_series(os.path.join(t1_dir, "OutPhase"), synthetic_mr(lab_t1, 2, scale=0.8), echo_time=2.3,
                 names=[f"IMG-0004-{2 * k + 1:05d}.dcm" for k in range(n1)][::-1], **common)
    ground = os.path.join(case, "T1DUAL", "Ground")
    os.makedirs(ground)
    # instance numbers fall with z, so PNG i (InstanceNumber rank i) is z index n1 - 1 - i
    for i in range(n1):
        png = _mr_png(lab_t1[n1 - 1 - i], tolerant=(i % 3 == 1), stray=(i == 2))
        Image.fromarray(png).save(os.path.join(ground, f"IMG-0004-{2 * i + 2:05d}.png"))
    t2 = write_series(os.path.join(case, "T2SPIR", "DICOM_anon"), synthetic_mr(lab_t2, 3), modality="MR",
                      origin=(-170.0, -150.0, -35.0), spacing=(1.4, 1.4, 8.0),
                      direction=oblique_direction((8.0, 0.0, 0.0)), name_pattern="IMG-0002-{:05d}.dcm", seed=9)
    ground = os.path.join(case, "T2SPIR", "Ground")
    os.makedirs(ground)
    for i in range(n2):  # instance numbers grow with z; PNGs written reversed when asked
        z = n2 - 1 - i if t2_png_reversed else i
        Image.fromarray(_mr_png(lab_t2[z])).save(os.path.join(ground, f"IMG-0002-{i + 1:05d}.png"))
    return t2


def test_chaos_mr_sequences_labels_and_values(tmp_path):
    lab_t1 = synthetic_mr_labels(8, 24)
    lab_t2 = synthetic_mr_labels(7, 24)
    write_chaos_mr(str(tmp_path), 5, lab_t1, lab_t2, t2_png_reversed=True)
    assert chaos.list_cases(str(tmp_path), "MR") == ["5"]

    with pytest.warns(DatasetWarning, match="outside the CHAOS ranges"):
        t1in = chaos.load_mr(str(tmp_path), 5, "T1in")
    with pytest.warns(DatasetWarning, match="outside the CHAOS ranges"):
        t1out = chaos.load_mr(str(tmp_path), 5, "InPhase".replace("In", "Out"))
    for case in (t1in, t1out):
        _assert_label_on_grid(case)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(case.label), lab_t1)
        assert case.order_check.chosen == "instance" and case.order_check.reason == "image data"
    assert t1in.sequence == "T1in" and t1out.sequence == "T1out"
    assert same_grid(t1in.image, t1out.image, tol=1e-9)
    assert int(sitk.GetArrayFromImage(t1in.image).max()) > int(sitk.GetArrayFromImage(t1out.image).max())
    assert set(np.unique(sitk.GetArrayFromImage(t1in.label))) == {0, 1, 2, 3, 4}

    with pytest.warns(chaos.LabelOrderWarning, match="REVERSED"):
        t2 = chaos.load_mr(str(tmp_path), "5", "T2")
    _assert_label_on_grid(t2)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(t2.label), lab_t2)
    assert t2.order_check.chosen == "reversed"
    # labels sit on their organs: the image intensity under each label is that organ's
    img = sitk.GetArrayFromImage(t2.image)
    for value, intensity in MR_INTENSITY.items():
        assert abs(np.median(img[sitk.GetArrayFromImage(t2.label) == value]) - intensity) < 20

    with pytest.warns(DatasetWarning, match="outside the CHAOS ranges"):
        generic = chaos.load_case(str(tmp_path), "MR", 5, sequence="T1in", label_order="instance")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(generic.label), lab_t1)


def test_chaos_bad_layouts(tmp_path):
    with pytest.raises(InputError, match="not found"):
        chaos.list_cases(str(tmp_path / "missing"), "CT")
    (tmp_path / "wrong").mkdir()
    with pytest.raises(InputError, match=r"Train_Sets.*not found.*DICOM_anon"):
        chaos.list_cases(str(tmp_path / "wrong"), "CT")
    hu, liver = synthetic_ct(n=6, size=16, seed=6)
    write_chaos_ct(str(tmp_path), 1, hu, liver, instance_decreasing_with_z=True, png_reversed=False)
    with pytest.raises(InputError, match=r"CT[/\\]9"):
        chaos.load_ct(str(tmp_path), 9)
    with pytest.raises(InputError, match="sequence"):
        chaos.load_mr(str(tmp_path), 1, "DWI")
    ground = tmp_path / "Train_Sets" / "CT" / "1" / "Ground"
    os.remove(ground / "liver_GT_005.png")
    with pytest.raises(InputError, match="5 PNG masks but .* 6 DICOM slices"):
        chaos.load_ct(str(tmp_path), 1)
    Image.fromarray(np.zeros((16, 20), dtype=np.uint8)).save(str(ground / "liver_GT_005.png"))
    with pytest.raises(InputError, match="16x20 pixels"):
        chaos.load_ct(str(tmp_path), 1)
    for p in ground.iterdir():
        p.unlink()
    ground.rmdir()
    with pytest.raises(InputError, match="Ground"):
        chaos.load_ct(str(tmp_path), 1)


# ============================================================================== AMOS


def _nifti(path, arr, origin=(0.0, 0.0, 0.0), spacing=(0.8, 0.8, 2.0), dtype=np.int16):
    img = sitk.GetImageFromArray(np.asarray(arr).astype(dtype))
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sitk.WriteImage(img, path)
    return img


def _amos_tree(root):
    rng = np.random.default_rng(0)
    shape = (4, 6, 5)
    raw = rng.integers(0, 16, size=shape)
    for split, num in (("Tr", 1), ("Tr", 507), ("Tr", 42), ("Va", 100), ("Va", 540), ("Ts", 200)):
        _nifti(os.path.join(root, f"images{split}", f"amos_{num:04d}.nii.gz"), rng.integers(-1000, 1000, size=shape))
        if split != "Ts":
            _nifti(os.path.join(root, f"labels{split}", f"amos_{num:04d}.nii.gz"), raw, dtype=np.uint8)
    return raw


def test_amos_listing_and_modality(tmp_path):
    _amos_tree(str(tmp_path))
    assert amos.list_cases(str(tmp_path)) == ["amos_0001", "amos_0042", "amos_0507"]
    assert amos.list_cases(str(tmp_path), modality="CT") == ["amos_0001", "amos_0042"]
    assert amos.list_cases(str(tmp_path), modality="MRI", split="Va") == ["amos_0540"]
    assert amos.list_cases(str(tmp_path), split="imagesTs") == ["amos_0200"]
    assert amos.modality_of(499) == "CT" and amos.modality_of(500) == "MR"


def test_amos_label_mapping_and_grid(tmp_path):
    raw = _amos_tree(str(tmp_path))
    case = amos.load_case(str(tmp_path), "amos_0507", keep_raw_label=True)
    assert case.modality == "MR" and case.split == "Tr" and case.number == 507
    lab = sitk.GetArrayFromImage(case.label)
    expected = np.zeros_like(lab)
    expected[raw == 6] = L.LIVER
    expected[raw == 1] = L.SPLEEN
    expected[raw == 2] = L.RIGHT_KIDNEY
    expected[raw == 3] = L.LEFT_KIDNEY
    np.testing.assert_array_equal(lab, expected)
    assert set(np.unique(lab)) <= {0, 1, 2, 3, 4}
    assert same_grid(case.label, case.image, tol=0.0)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.raw_label), raw)
    va = amos.load_case(str(tmp_path), 100)
    assert va.split == "Va" and va.modality == "CT"
    ts = amos.load_case(str(tmp_path), "0200")
    assert ts.label is None and ts.split == "Ts"


def test_amos_float_noise_grid_accepted_real_mismatch_rejected(tmp_path):
    _amos_tree(str(tmp_path))
    lab_path = str(tmp_path / "labelsTr" / "amos_0001.nii.gz")
    arr = sitk.GetArrayFromImage(sitk.ReadImage(lab_path))
    _nifti(lab_path, arr, origin=(2e-5, 0.0, -1e-5), dtype=np.uint8)
    case = amos.load_case(str(tmp_path), 1)
    assert same_grid(case.label, case.image, tol=0.0)
    _nifti(lab_path, arr, origin=(1.5, 0.0, 0.0), dtype=np.uint8)
    with pytest.raises(InputError, match="not on the same voxel grid.*origins differ by 1.5"):
        amos.load_case(str(tmp_path), 1)


def test_amos_bad_input(tmp_path):
    _amos_tree(str(tmp_path))
    with pytest.raises(InputError, match="imagesTr"):
        amos.list_cases(str(tmp_path / "imagesTr"))
    with pytest.raises(InputError, match="amos_0999 not found"):
        amos.load_case(str(tmp_path), 999)
    os.remove(tmp_path / "labelsTr" / "amos_0042.nii.gz")
    with pytest.raises(InputError, match=r"labelsTr[/\\]amos_0042.nii.gz not found"):
        amos.load_case(str(tmp_path), 42)
    _nifti(str(tmp_path / "labelsTr" / "amos_0042.nii.gz"), np.full((4, 6, 5), 40), dtype=np.uint8)
    with pytest.raises(InputError, match="outside the AMOS label ids"):
        amos.load_case(str(tmp_path), 42)
    with pytest.raises(InputError, match="not an AMOS case id"):
        amos.load_case(str(tmp_path), "liver_3")


# ============================================================================== SynthRAD2025


def _mha(path, arr, origin=(-100.0, -90.0, -50.0), spacing=(1.0, 1.0, 3.0), dtype=np.int16):
    img = sitk.GetImageFromArray(np.asarray(arr).astype(dtype))
    img.SetOrigin(origin)
    img.SetSpacing(spacing)
    img.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, -1))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sitk.WriteImage(img, path)


def _synthrad_case(root, region, cid, with_ct=True, mr_origin=(-100.0, -90.0, -50.0)):
    rng = np.random.default_rng(len(cid))
    folder = os.path.join(root, "Task1", region, cid)
    shape = (5, 8, 7)
    _mha(os.path.join(folder, "mr.mha"), rng.integers(0, 1000, size=shape), origin=mr_origin)
    if with_ct:
        _mha(os.path.join(folder, "ct.mha"), rng.integers(-1024, 2000, size=shape))
    mask = np.zeros(shape)
    mask[:, 2:6, 2:5] = 1
    _mha(os.path.join(folder, "mask.mha"), mask, dtype=np.uint8)
    return mask


def test_synthrad_listing_and_loading(tmp_path):
    mask = _synthrad_case(str(tmp_path), "AB", "1ABA010")
    _synthrad_case(str(tmp_path), "AB", "1ABA002")
    _synthrad_case(str(tmp_path), "TH", "1THA001")
    os.makedirs(tmp_path / "Task1" / "AB" / "overview")
    assert synthrad.list_regions(str(tmp_path)) == ["AB", "TH"]
    assert synthrad.list_cases(str(tmp_path), "AB") == ["1ABA002", "1ABA010"]
    assert synthrad.list_cases(str(tmp_path / "Task1"), "th") == ["1THA001"]
    case = synthrad.load_case(str(tmp_path), "1ABA010")
    assert case.region == "AB"
    assert same_grid(case.mr, case.ct, tol=0.0) and same_grid(case.mask, case.ct, tol=0.0)
    assert case.mask.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.mask), mask)
    np.testing.assert_allclose(case.ct.GetDirection(), (1, 0, 0, 0, -1, 0, 0, 0, -1))
    assert synthrad.load_case(str(tmp_path / "Task1" / "TH"), "1THA001").region == "TH"


def test_synthrad_grid_mismatch_and_missing_files(tmp_path):
    _synthrad_case(str(tmp_path), "AB", "1ABA001", mr_origin=(-100.0, -90.0, -47.0))
    with pytest.raises(InputError, match=r"mr.mha and .*ct.mha are not on the same voxel grid"):
        synthrad.load_case(str(tmp_path), "1ABA001")
    _synthrad_case(str(tmp_path), "AB", "1ABA003", with_ct=False)
    val = synthrad.load_case(str(tmp_path), "1ABA003", region="AB")
    assert val.ct is None and same_grid(val.mask, val.mr, tol=0.0)
    os.remove(tmp_path / "Task1" / "AB" / "1ABA003" / "mask.mha")
    with pytest.raises(InputError, match=r"mask.mha not found"):
        synthrad.load_case(str(tmp_path), "1ABA003")
    with pytest.raises(InputError, match="1ABA404 not found"):
        synthrad.load_case(str(tmp_path), "1ABA404")
    (tmp_path / "other").mkdir()
    with pytest.raises(InputError, match=r"Task1 not found"):
        synthrad.list_cases(str(tmp_path / "other"))
    with pytest.raises(InputError, match="region"):
        synthrad.list_cases(str(tmp_path), "PELVIS")

"""DICOM reading: real files written with pydicom (Testing/testsupport/dicom.py), read back and checked
against the geometry and values that were written."""

import os
import shutil
import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import RLELossless

from testsupport.dicom import (
    oblique_direction,
    truncate_file,
    write_enhanced_ct,
    write_non_image,
    write_series,
)
from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.io import read_volume
from CrossModalitySynthLib.io.dicom import (
    list_dicom_series,
    load_dicom_files,
    load_dicom_series,
    read_dicom_file,
    read_dicom_series,
)

TOL = 1e-6


def _hu_volume(shape=(6, 9, 11), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-1024, 3071, size=shape).astype(np.int32)


def _assert_geometry(image, written, shape):
    assert image.GetSize() == (shape[2], shape[1], shape[0])
    np.testing.assert_allclose(image.GetOrigin(), written.origin, atol=TOL, rtol=0)
    np.testing.assert_allclose(image.GetSpacing(), written.spacing, atol=TOL, rtol=0)
    np.testing.assert_allclose(image.GetDirection(), written.direction, atol=TOL, rtol=0)


# ------------------------------------------------------------------ geometry and voxel order


def test_oblique_shuffled_series_geometry_and_order(tmp_path):
    hu = _hu_volume()
    d = oblique_direction((25.0, -40.0, 15.0))
    w = write_series(str(tmp_path / "ct"), hu, origin=(-120.5, 33.25, 410.0), spacing=(0.68, 0.91, 2.5),
                     direction=d, seed=3)
    names = [os.path.basename(p) for p in w.paths]
    assert names != sorted(names), "the factory must write names out of position order"
    img = read_dicom_series(str(tmp_path / "ct"))
    _assert_geometry(img, w, hu.shape)
    arr = sitk.GetArrayFromImage(img)
    np.testing.assert_array_equal(arr, hu)
    # every voxel centre maps to the physical point the written slice says
    for k in (0, 3, 5):
        p = img.TransformIndexToPhysicalPoint((4, 2, k))
        expected = w.positions[k] + 4 * 0.68 * d[:, 0] + 2 * 0.91 * d[:, 1]
        np.testing.assert_allclose(p, expected, atol=1e-6)


def test_slices_sorted_by_position_not_instance_number(tmp_path):
    hu = _hu_volume((5, 4, 6), seed=1)
    # instance numbers and names both disagree with position order
    w = write_series(str(tmp_path / "ct"), hu, spacing=(1, 1, 3), instance_numbers=[3, 5, 1, 4, 2],
                     names=["e.dcm", "a.dcm", "d.dcm", "b.dcm", "c.dcm"])
    vol = load_dicom_series(str(tmp_path / "ct"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(vol.image), hu)
    assert vol.slice_files == w.paths
    assert vol.instance_numbers == [3, 5, 1, 4, 2]


def test_normal_pointing_against_file_order(tmp_path):
    """Slices written with decreasing position along the normal still come out in +normal order."""
    hu = _hu_volume((4, 5, 5), seed=2)
    d = oblique_direction((0.0, 0.0, 30.0))
    positions = np.array([np.array([5.0, 6.0, 7.0]) - k * 2.0 * d[:, 2] for k in range(4)])
    write_series(str(tmp_path / "ct"), hu, direction=d, positions=positions, spacing=(1, 1, 2))
    img = read_dicom_series(str(tmp_path / "ct"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), hu[::-1])
    np.testing.assert_allclose(img.GetOrigin(), positions[-1], atol=TOL)
    np.testing.assert_allclose(img.GetSpacing(), (1, 1, 2), atol=TOL)
    np.testing.assert_allclose(np.array(img.GetDirection()).reshape(3, 3), d, atol=TOL)


def test_agrees_with_simpleitk_gdcm_reader(tmp_path):
    hu = _hu_volume((5, 8, 7), seed=4)
    write_series(str(tmp_path / "ct"), hu, origin=(1, 2, 3), spacing=(0.5, 0.75, 1.25),
                 direction=oblique_direction((10, 20, 30)))
    ours = read_dicom_series(str(tmp_path / "ct"))
    uid = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(tmp_path / "ct"))[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path / "ct"), uid))
    theirs = reader.Execute()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(theirs))
    for get in ("GetOrigin", "GetSpacing", "GetDirection"):
        np.testing.assert_allclose(getattr(ours, get)(), getattr(theirs, get)(), atol=1e-6)


# ------------------------------------------------------------------ values


def test_hu_rescale_exact(tmp_path):
    hu = np.array([[[-1024, -1000, 0], [40, 1000, 3071]]] * 3, dtype=np.int32)
    w = write_series(str(tmp_path / "ct"), hu, stored_dtype="uint16", rescale_intercept=-1024)
    raw = pydicom.dcmread(w.paths[0])
    assert raw.pixel_array.dtype == np.uint16 and int(raw.pixel_array.min()) == 0  # stored, not HU
    img = read_dicom_series(str(tmp_path / "ct"))
    assert img.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), hu)


def test_fractional_rescale_gives_float(tmp_path):
    values = np.array([[[0.0, 0.5, 1.5], [2.0, 10.5, -3.5]]] * 2)
    w = write_series(str(tmp_path / "mr"), values, modality="MR", stored_dtype="int16",
                     rescale_slope=0.5, rescale_intercept=0.0)
    assert w.stored_dtype == "int16"
    img = read_dicom_series(str(tmp_path / "mr"))
    assert img.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(img), values, atol=0)


def test_mr_without_rescale_keeps_values(tmp_path):
    values = np.arange(2 * 4 * 5).reshape(2, 4, 5) * 100
    write_series(str(tmp_path / "mr"), values, modality="MR", write_rescale=False)
    img = read_dicom_series(str(tmp_path / "mr"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), values)


def test_large_integers_use_int32(tmp_path):
    values = np.array([[[0, 65535]]] * 2)
    write_series(str(tmp_path / "mr"), values, modality="MR", write_rescale=False)
    img = read_dicom_series(str(tmp_path / "mr"))
    assert img.GetPixelID() == sitk.sitkInt32
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), values)


def test_rle_compressed_and_gdcm_fallback(tmp_path, monkeypatch):
    # 8x8 frames: GDCM cannot decode pydicom's RLE of tiny frames (< ~40 pixels), a GDCM quirk
    hu = (np.arange(3 * 8 * 8).reshape(3, 8, 8) * 19 - 1000).astype(np.int32)
    w = write_series(str(tmp_path / "ct"), hu)
    for p in w.paths:
        ds = pydicom.dcmread(p)
        ds.compress(RLELossless)
        ds.save_as(p)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_dicom_series(str(tmp_path / "ct"))), hu)

    # without a pydicom decoder the file is decoded by GDCM (which rescales itself): same HU
    def no_decoder(self):
        raise RuntimeError("no pixel data handler available")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_decoder))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_dicom_series(str(tmp_path / "ct"))), hu)


# ------------------------------------------------------------------ several series


def _two_series(folder):
    a = write_series(folder, _hu_volume((3, 4, 5), 10), description="CT abdomen", series_number=2,
                     name_pattern="A{:03d}.dcm")
    b = write_series(folder, _hu_volume((4, 4, 5), 11), description="CT thorax", series_number=3,
                     name_pattern="B{:03d}.dcm", origin=(0, 0, 100))
    return a, b


def test_two_series_listed_and_selected(tmp_path):
    folder = str(tmp_path / "mixed")
    a, b = _two_series(folder)
    write_non_image(os.path.join(folder, "rtstruct.dcm"))
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not dicom")
    infos = list_dicom_series(folder)
    assert [i["series_instance_uid"] for i in infos] == [a.series_instance_uid, b.series_instance_uid]
    assert [i["description"] for i in infos] == ["CT abdomen", "CT thorax"]
    assert [i["n_files"] for i in infos] == [3, 4]
    assert all(i["modality"] == "CT" for i in infos)

    by_uid = read_dicom_series(folder, series=b.series_instance_uid)
    by_desc = read_dicom_series(folder, series="CT thorax")
    assert by_uid.GetSize()[2] == by_desc.GetSize()[2] == 4
    np.testing.assert_array_equal(sitk.GetArrayFromImage(by_desc), _hu_volume((4, 4, 5), 11))
    assert read_volume(folder, series="CT abdomen").GetSize()[2] == 3


def test_several_series_without_choice_lists_them(tmp_path):
    folder = str(tmp_path / "mixed")
    a, b = _two_series(folder)
    with pytest.raises(InputError) as err:
        read_dicom_series(folder)
    msg = str(err.value)
    assert "2 DICOM image series" in msg and "--series" in msg
    assert a.series_instance_uid in msg and "CT thorax" in msg


def test_ambiguous_and_unknown_selection(tmp_path):
    folder = str(tmp_path / "mixed")
    write_series(folder, _hu_volume((3, 4, 5), 1), description="T2", name_pattern="A{:03d}.dcm", modality="MR",
                 rescale_intercept=-1024)
    write_series(folder, _hu_volume((3, 4, 5), 2), description="T2", name_pattern="B{:03d}.dcm", modality="MR",
                 rescale_intercept=-1024)
    with pytest.raises(InputError, match="matches 2 DICOM series.*--series"):
        read_dicom_series(folder, series="T2")
    with pytest.raises(InputError, match="No DICOM series 'T1'.*--series"):
        read_dicom_series(folder, series="T1")
    uid = list_dicom_series(folder)[1]["series_instance_uid"]
    assert read_dicom_series(folder, series=uid).GetSize() == (5, 4, 3)


def test_cli_info_lists_series(tmp_path, cli):
    folder = str(tmp_path / "mixed")
    a, b = _two_series(folder)
    code, out, err = cli("info", folder, "--series", "CT abdomen")
    assert code == 0, err
    assert a.series_instance_uid in out and b.series_instance_uid in out and "CT thorax" in out


def test_dual_echo_series_split_by_echo_time(tmp_path):
    folder = str(tmp_path / "t1dual")
    uid = pydicom.uid.generate_uid()
    inp = write_series(folder, np.full((3, 4, 4), 100), modality="MR", series_uid=uid, echo_time=4.6,
                       description="T1 dual", name_pattern="IN{:02d}.dcm")
    write_series(folder, np.full((3, 4, 4), 50), modality="MR", series_uid=uid, echo_time=2.3,
                 description="T1 dual", name_pattern="OUT{:02d}.dcm")
    infos = list_dicom_series(folder)
    assert sorted(i["echo_time"] for i in infos) == [2.3, 4.6]
    assert all(i["series_instance_uid"] == uid for i in infos)
    with pytest.raises(InputError, match="matches 2"):
        read_dicom_series(folder, series=uid)
    img = read_dicom_series(folder, series=f"{uid}/TE=4.6")
    assert int(sitk.GetArrayFromImage(img).max()) == 100
    assert inp.series_instance_uid == uid


def test_per_file_uids_are_merged(tmp_path):
    """Anonymisers that give every file its own SeriesInstanceUID: one folder, one geometry -> one series."""
    folder = tmp_path / "anon"
    hu = _hu_volume((4, 5, 6), 7)
    for k in range(4):
        write_series(str(folder), hu[k:k + 1], origin=(0, 0, 2.0 * k), spacing=(1, 1, 2), names=[f"x{3 - k}.dcm"])
    infos = list_dicom_series(str(folder))
    assert len(infos) == 1 and infos[0]["n_files"] == 4 and infos[0]["id"] == "merged-1"
    img = read_dicom_series(str(folder))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), hu)
    np.testing.assert_allclose(img.GetSpacing(), (1, 1, 2), atol=TOL)


def test_recursive_and_flat_scan(tmp_path):
    root = tmp_path / "export"
    write_series(str(root / "patient" / "study" / "s1"), _hu_volume((3, 4, 4), 1))
    assert len(list_dicom_series(str(root))) == 1
    assert list_dicom_series(str(root), recursive=False) == []
    assert read_dicom_series(str(root)).GetSize() == (4, 4, 3)


# ------------------------------------------------------------------ inconsistent series


def test_mixed_orientation_rejected(tmp_path):
    folder = str(tmp_path / "s")
    uid = pydicom.uid.generate_uid()
    write_series(folder, _hu_volume((3, 4, 4), 1), series_uid=uid, name_pattern="a{}.dcm")
    write_series(folder, _hu_volume((2, 4, 4), 2), series_uid=uid, name_pattern="b{}.dcm",
                 direction=oblique_direction((0, 90, 0)), origin=(50, 0, 0))
    with pytest.raises(InputError, match="mixes slice orientations"):
        read_dicom_series(folder)


def test_mixed_sizes_rejected(tmp_path):
    folder = str(tmp_path / "s")
    uid = pydicom.uid.generate_uid()
    write_series(folder, _hu_volume((3, 4, 4), 1), series_uid=uid, name_pattern="a{}.dcm")
    write_series(folder, _hu_volume((2, 5, 4), 2), series_uid=uid, name_pattern="b{}.dcm", origin=(0, 0, 10))
    with pytest.raises(InputError, match="different sizes"):
        read_dicom_series(folder)


def test_duplicate_positions_rejected(tmp_path):
    folder = str(tmp_path / "s")
    uid = pydicom.uid.generate_uid()
    write_series(folder, _hu_volume((3, 4, 4), 1), series_uid=uid, name_pattern="a{}.dcm")
    write_series(folder, _hu_volume((3, 4, 4), 2), series_uid=uid, name_pattern="b{}.dcm")
    with pytest.raises(InputError, match="position already taken"):
        read_dicom_series(folder)


def test_missing_slice_rejected(tmp_path):
    folder = str(tmp_path / "s")
    w = write_series(folder, _hu_volume((6, 4, 4), 1), spacing=(1, 1, 2.5))
    os.remove(w.paths[3])
    with pytest.raises(InputError, match="non-uniform slice gaps.*2.500 to 5.000"):
        read_dicom_series(folder)


def test_small_position_jitter_accepted(tmp_path):
    positions = np.array([[0, 0, 0], [0, 0, 3.004], [0, 0, 5.998], [0, 0, 9.0]])
    write_series(str(tmp_path / "s"), _hu_volume((4, 4, 4), 1), positions=positions)
    img = read_dicom_series(str(tmp_path / "s"))
    np.testing.assert_allclose(img.GetSpacing()[2], 3.0, atol=TOL)


def test_gantry_tilt_rejected(tmp_path):
    positions = np.array([[0, 0.5 * k, 2.0 * k] for k in range(4)])
    write_series(str(tmp_path / "s"), _hu_volume((4, 4, 4), 1), positions=positions)
    with pytest.raises(InputError, match="shift sideways"):
        read_dicom_series(str(tmp_path / "s"))


# ------------------------------------------------------------------ bad input


def test_folder_without_images(tmp_path):
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    write_non_image(str(folder / "struct.dcm"))
    assert list_dicom_series(str(folder)) == []
    with pytest.raises(InputError, match="holds no DICOM image series"):
        read_dicom_series(str(folder))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no DICOM image series"):
        read_volume(str(empty))


@pytest.mark.parametrize("fraction", [0.98, 0.9, 0.6, 0.3, 0.12, 0.05])
def test_truncated_file_in_series(tmp_path, fraction):
    folder = str(tmp_path / "s")
    w = write_series(folder, _hu_volume((4, 16, 16), 1))
    truncate_file(w.paths[2], fraction)
    with pytest.raises(InputError, match="truncated or corrupt") as err:
        read_dicom_series(folder)
    assert os.path.basename(w.paths[2]) in str(err.value)
    with pytest.raises(InputError, match="truncated or corrupt"):
        list_dicom_series(folder)


def test_every_truncation_of_a_file_is_detected(tmp_path):
    w = write_series(str(tmp_path / "s"), _hu_volume((1, 8, 8), 1), names=["one.dcm"])
    data = open(w.paths[0], "rb").read()
    cut_path = str(tmp_path / "cut.dcm")
    for cut in range(0, len(data) - 1, 5):
        with open(cut_path, "wb") as f:
            f.write(data[:cut])
        with pytest.raises(InputError, match="truncated or corrupt|not a DICOM"):
            read_dicom_file(cut_path)
    shutil.copy(w.paths[0], cut_path)
    assert read_dicom_file(cut_path).GetSize() == (8, 8, 1)


def test_single_file(tmp_path):
    hu = _hu_volume((3, 5, 7), 9)
    d = oblique_direction((5, 10, 15))
    w = write_series(str(tmp_path / "s"), hu, origin=(7, 8, 9), spacing=(0.6, 0.8, 4.0), direction=d,
                     slice_thickness=3.0)
    img = read_dicom_file(w.paths[1])
    assert img.GetSize() == (7, 5, 1)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img)[0], hu[1])
    np.testing.assert_allclose(img.GetOrigin(), w.positions[1], atol=TOL)
    np.testing.assert_allclose(img.GetSpacing(), (0.6, 0.8, 3.0), atol=TOL)
    np.testing.assert_allclose(img.GetDirection(), w.direction, atol=TOL)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_volume(w.paths[1])), hu[1:2])


def test_single_file_errors(tmp_path):
    p = write_non_image(str(tmp_path / "rs.dcm"))
    with pytest.raises(InputError, match="without an image"):
        read_dicom_file(p)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 50)
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_dicom_file(str(junk))


def test_enhanced_multiframe_file(tmp_path):
    hu = _hu_volume((5, 6, 7), 12)
    d = oblique_direction((30, 0, -20))
    p = write_enhanced_ct(str(tmp_path / "mf.dcm"), hu, origin=(3, 2, 1), spacing=(0.5, 0.6, 1.5), direction=d,
                          frame_order=[2, 4, 0, 1, 3])
    img = read_dicom_file(p)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), hu)
    np.testing.assert_allclose(img.GetOrigin(), (3, 2, 1), atol=TOL)
    np.testing.assert_allclose(img.GetSpacing(), (0.5, 0.6, 1.5), atol=TOL)
    np.testing.assert_allclose(np.array(img.GetDirection()).reshape(3, 3), d, atol=TOL)


def test_load_dicom_files_ignores_uids(tmp_path):
    hu = _hu_volume((3, 4, 4), 3)
    paths = []
    for k in range(3):
        paths += write_series(str(tmp_path / "f"), hu[k:k + 1], origin=(0, 0, k), names=[f"{k}.dcm"]).paths
    vol = load_dicom_files(paths[::-1])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(vol.image), hu)
    assert vol.slice_files == paths
    with pytest.raises(InputError, match="not a DICOM"):
        txt = tmp_path / "f" / "x.txt"
        txt.write_text("x")
        load_dicom_files(paths + [str(txt)])


def test_no_warnings_on_clean_series(tmp_path):
    write_series(str(tmp_path / "s"), _hu_volume((3, 4, 4), 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_dicom_series(str(tmp_path / "s"))


# ------------------------------------------------------------------ property: any geometry round-trips


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    angles=st.tuples(*[st.floats(-180, 180, allow_nan=False)] * 3),
    spacing=st.tuples(st.floats(0.3, 2.0), st.floats(0.3, 2.0), st.floats(0.5, 8.0)),
    origin=st.tuples(*[st.floats(-500, 500, allow_nan=False)] * 3),
    n=st.integers(2, 6),
    seed=st.integers(0, 1000),
)
def test_any_geometry_round_trips(tmp_path_factory, angles, spacing, origin, n, seed):
    folder = str(tmp_path_factory.mktemp("geo"))
    hu = _hu_volume((n, 3, 4), seed)
    w = write_series(folder, hu, origin=origin, spacing=spacing, direction=oblique_direction(angles), seed=seed)
    img = read_dicom_series(folder)
    _assert_geometry(img, w, hu.shape)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), hu)

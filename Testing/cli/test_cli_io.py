"""`cmsynth info` and `cmsynth convert`: output, exit codes, messages, nothing partial written."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import SimpleITK as sitk

from testsupport.images import make_image, random_rotation
from CrossModalitySynthLib.geometry import same_grid
from CrossModalitySynthLib.io import read_volume, write_volume


def _oblique_image(seed=3):
    rng = np.random.default_rng(seed)
    return make_image((4, 5, 6), spacing=(0.7, 0.9, 3.0), origin=(1.5, -2.0, 30.0),
                      direction=random_rotation(rng), dtype=np.int16, seed=seed)


def test_info_json_reports_geometry(tmp_path, cli):
    img = _oblique_image()
    path = str(tmp_path / "ct.nrrd")
    write_volume(img, path)
    code, out, err = cli("info", path, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["size"] == [6, 5, 4]
    np.testing.assert_allclose(info["spacing"], img.GetSpacing(), atol=1e-12)
    np.testing.assert_allclose(info["origin"], img.GetOrigin(), atol=1e-12)
    np.testing.assert_allclose(info["direction"], img.GetDirection(), atol=1e-12)
    arr = sitk.GetArrayFromImage(img)
    assert info["min"] == arr.min() and info["max"] == arr.max()
    assert info["pixel_type"] == "16-bit signed integer"


def test_info_text(tmp_path, cli):
    path = str(tmp_path / "a.nii.gz")
    write_volume(_oblique_image(), path)
    code, out, _ = cli("info", path)
    assert code == 0
    assert "spacing:" in out and "6 x 5 x 4" in out


def test_info_flags_nan_voxels(tmp_path, cli):
    arr = np.zeros((3, 4, 5), np.float32)
    arr[1, 2, 3] = np.nan
    path = str(tmp_path / "nan.mha")
    write_volume(sitk.GetImageFromArray(arr), path)
    code, out, _ = cli("info", path, "--json")
    assert code == 0 and json.loads(out)["non_finite_voxels"] == 1


def test_convert_between_formats_keeps_everything(tmp_path, cli):
    img = _oblique_image()
    src = str(tmp_path / "in.mha")
    write_volume(img, src)
    for suffix in (".nrrd", ".nhdr", ".mhd", ".nii.gz"):
        dst = str(tmp_path / f"out{suffix}")
        code, out, err = cli("convert", src, dst)
        assert code == 0, err
        back = read_volume(dst)
        tol = 1e-4 if ".nii" in suffix else 1e-9
        assert same_grid(img, back, tol=tol)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))


def test_convert_refuses_existing_output(tmp_path, cli):
    src = str(tmp_path / "in.nrrd")
    dst = str(tmp_path / "out.nrrd")
    write_volume(_oblique_image(1), src)
    write_volume(_oblique_image(2), dst)
    before = open(dst, "rb").read()
    code, _, err = cli("convert", src, dst)
    assert code != 0 and "already exists" in err and "--overwrite" in err
    assert open(dst, "rb").read() == before
    code, _, err = cli("convert", src, dst, "--overwrite")
    assert code == 0 and open(dst, "rb").read() != before


def test_convert_bad_input_writes_nothing(tmp_path, cli):
    src = tmp_path / "broken.nii.gz"
    write_volume(_oblique_image(), str(src))
    src.write_bytes(src.read_bytes()[:100])
    dst = tmp_path / "out.nrrd"
    code, out, err = cli("convert", str(src), str(dst))
    assert code != 0
    assert "truncated" in err or "corrupt" in err
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["broken.nii.gz"]


def test_missing_input_one_line_message(tmp_path, cli):
    code, _, err = cli("info", str(tmp_path / "nope.nii.gz"))
    assert code != 0
    assert err.strip().count("\n") == 0 and "No such file" in err


def test_console_script_runs_as_subprocess(tmp_path):
    """The installed `cmsynth` entry point: real process, exit code, no traceback on bad input."""
    exe = shutil.which("cmsynth", path=os.path.dirname(sys.executable)) or shutil.which("cmsynth")
    assert exe, "cmsynth console script is not installed"
    ok = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "info" in ok.stdout and "convert" in ok.stdout
    bad = subprocess.run([exe, "info", str(tmp_path / "missing.nrrd")], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr and "No such file" in bad.stderr


def test_convert_dicom_folder_to_nifti(tmp_path, cli):
    """A real DICOM series (oblique, shuffled file names, HU rescale) converted keeps HU and geometry."""
    from testsupport.dicom import oblique_direction, write_series

    hu = np.random.default_rng(5).integers(-1000, 1500, size=(5, 6, 7)).astype(np.int16)
    direction = oblique_direction()
    folder = tmp_path / "dicom"
    write_series(str(folder), hu, origin=(10.0, -20.0, 35.0), spacing=(0.75, 0.8, 3.0), direction=direction,
                 rescale_intercept=-1024)
    dst = str(tmp_path / "ct.nii.gz")
    code, _, err = cli("convert", str(folder), dst)
    assert code == 0, err
    back = read_volume(dst)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), hu)
    np.testing.assert_allclose(back.GetSpacing(), (0.75, 0.8, 3.0), atol=1e-5)
    np.testing.assert_allclose(np.array(back.GetDirection()).reshape(3, 3), direction, atol=1e-5)
    np.testing.assert_allclose(back.GetOrigin(), (10.0, -20.0, 35.0), atol=1e-4)


def test_convert_folder_without_dicom_fails_cleanly(tmp_path, cli):
    folder = tmp_path / "notdicom"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    code, _, err = cli("convert", str(folder), str(tmp_path / "out.nrrd"))
    assert code != 0 and "no DICOM image series" in err
    assert not (tmp_path / "out.nrrd").exists()

"""What a real ``cmsynth`` process prints about a DICOM input it can read with an assumption (issue 13 item 17).

A :class:`DicomWarning` used to reach the console as a raw Python warning ("/.../geometry.py:44:
DicomWarning: ..." followed by the source line), and pydicom's own decoder notes as
"UserWarning: ..." lines with a path into site-packages. The files here are real DICOM files
written with pydicom and then tampered with as exports in the wild are.
"""

import os
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from testsupport.dicom import write_series
from CrossModalitySynthLib.io import read_volume
from CrossModalitySynthLib.io.dicom import DicomWarning

EXE = os.path.join(os.path.dirname(sys.executable), "cmsynth")
VALUES = (np.arange(3 * 4 * 5).reshape(3, 4, 5) * 10).astype(np.int64)


def _cmsynth(*argv):
    proc = subprocess.run([EXE, *[str(a) for a in argv]], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _assert_plain(stderr):
    """No Python warning format: no source path, no 'XxxWarning:' category, no source line."""
    assert ".py:" not in stderr and "Warning:" not in stderr and "warnings.warn" not in stderr, stderr
    assert "Traceback" not in stderr, stderr


def _retag(path, tag, vr, raw: bytes):
    """Put a raw (unvalidated) value into a file, as a nonconforming exporter writes it."""
    ds = pydicom.dcmread(path)
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, True)
    ds.save_as(path)


def test_single_file_without_position_one_plain_line(tmp_path):
    w = write_series(str(tmp_path / "s"), VALUES[:1])
    ds = pydicom.dcmread(w.paths[0])
    del ds.ImagePositionPatient
    del ds.ImageOrientationPatient
    ds.save_as(w.paths[0])
    code, out, err = _cmsynth("info", w.paths[0])
    assert code == 0, err
    _assert_plain(err)
    lines = err.strip().splitlines()
    assert lines == [f"cmsynth info: warning: {w.paths[0]} has no position/orientation; using origin 0 and "
                     "identity direction."]
    assert "size:        5 x 4 x 1" in out


def test_nonconforming_pixel_spacing_one_plain_line(tmp_path):
    """PixelSpacing written with decimal commas ("0,7\\0,7"): unusable, so 1 mm is assumed; said once, plainly."""
    w = write_series(str(tmp_path / "s"), VALUES, spacing=(0.7, 0.7, 2.0))
    for p in w.paths:
        _retag(p, 0x00280030, "DS", b"0,7\\0,7 ")
    out = tmp_path / "ct.nii.gz"
    code, _, err = _cmsynth("convert", tmp_path / "s", out)
    assert code == 0, err
    _assert_plain(err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmsynth convert: warning: DICOM series ")
    assert lines[0].endswith("has no PixelSpacing; assuming 1 mm pixels.")
    back = read_volume(str(out))
    np.testing.assert_allclose(back.GetSpacing(), (1.0, 1.0, 2.0), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), VALUES)


def test_padded_pixel_data_is_read_quietly(tmp_path):
    """Pixel data 4 bytes longer than the image (padding): pydicom drops it with a UserWarning; we say nothing."""
    w = write_series(str(tmp_path / "s"), VALUES)
    for p in w.paths:
        ds = pydicom.dcmread(p)
        ds.PixelData = ds.PixelData + b"\0\0\0\0"
        ds.save_as(p)
    out = tmp_path / "ct.nrrd"
    code, _, err = _cmsynth("convert", tmp_path / "s", out)
    assert code == 0, err
    assert err == ""
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_volume(str(out))), VALUES)


def test_library_still_raises_dicom_warning(tmp_path):
    """For Python callers it stays a filterable warning; only the command line prints it as a line."""
    w = write_series(str(tmp_path / "s"), VALUES)
    for p in w.paths:
        ds = pydicom.dcmread(p)
        del ds.PixelSpacing
        ds.save_as(p)
    with pytest.warns(DicomWarning, match="no PixelSpacing"):
        read_volume(str(tmp_path / "s"))


def test_plain_dicom_warnings_leaves_other_warnings_alone(capsys):
    import warnings

    from CrossModalitySynthLib.io.dicom import plain_dicom_warnings

    seen = []
    previous = warnings.showwarning
    warnings.showwarning = lambda message, category, *a, **k: seen.append((category, str(message)))
    try:
        with plain_dicom_warnings("cmsynth test"):
            warnings.warn("a dicom note", DicomWarning)
            warnings.warn("something else", RuntimeWarning)
    finally:
        warnings.showwarning = previous
    assert capsys.readouterr().err == "cmsynth test: warning: a dicom note\n"
    assert seen == [(RuntimeWarning, "something else")]

"""NaN and Inf voxels in NIfTI files: ITK's reader turns them into 0, so they are found in the
raw data, put back where they were, counted by `info` and refused by the models like NRRD's."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.io import read_volume


def nifti_with(path, arr):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.5, 1.5, 3.0))
    sitk.WriteImage(img, path)  # stores NaN/Inf as they are
    return path


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_voxels_come_back_where_they_were(tmp_path, suffix, dtype):
    arr = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(dtype)
    arr[0, 0, 0], arr[2, 3, 4], arr[4, 5, 6] = np.nan, np.inf, -np.inf
    back = sitk.GetArrayFromImage(read_volume(nifti_with(str(tmp_path / ("v" + suffix)), arr)))
    np.testing.assert_array_equal(np.isnan(back), np.isnan(arr))
    np.testing.assert_array_equal(back[np.isfinite(arr)], arr[np.isfinite(arr)])
    assert back[2, 3, 4] == np.inf and back[4, 5, 6] == -np.inf


def test_info_counts_them(tmp_path, cli):
    arr = np.ones((4, 5, 6), np.float32)
    arr[1, 1, 1], arr[2, 2, 2] = np.nan, np.inf
    code, out, err = cli("info", "--json", nifti_with(str(tmp_path / "v.nii.gz"), arr))
    assert code == 0, err
    assert json.loads(out)["non_finite_voxels"] == 2


def test_all_nan_nifti_is_refused_as_nan_not_constant(tmp_path, cli):
    model = tmp_path / "m"
    make_test_bundle(model, "MR->CT", ("t1_in",))
    path = nifti_with(str(tmp_path / "nan.nii.gz"), np.full((8, 16, 16), np.nan, np.float32))
    out = tmp_path / "s.nii.gz"
    code, _, err = cli("synthesize", "--model", model, "--progress", "none", "--out", out, path)
    assert code != 0
    assert "NaN or infinite voxels" in err and "constant" not in err and "Traceback" not in err
    assert not out.exists()

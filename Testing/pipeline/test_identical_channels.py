"""The same volume in two channel slots is refused; two near-identical channels run with a
warning (in the CLI output and summary.json)."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.phantom import write_cases


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("d")
    make_test_bundle(root / "m", "MR->CT", ("t1_in", "t1_opp"))
    write_cases(str(root / "src"), n_cases=1, seed=8, size="small")
    return str(root / "m"), str(root / "src" / "case_000")


def test_same_file_twice_is_refused(tmp_path, cli, setup):
    model, case = setup
    t1 = os.path.join(case, "t1_in.nii.gz")
    out = tmp_path / "s.nii.gz"
    code, _, err = cli("synthesize", "--model", model, "--progress", "none", "--out", out, t1, t1)
    assert code != 0 and "are the same volume" in err and "Traceback" not in err
    assert not out.exists()


def test_a_copy_in_another_format_is_refused(tmp_path, cli, setup):
    model, case = setup
    t1 = os.path.join(case, "t1_in.nii.gz")
    copy = str(tmp_path / "copy.nrrd")
    sitk.WriteImage(sitk.ReadImage(t1), copy)
    code, _, err = cli("run", "--model", model, "--progress", "none", "--out", tmp_path / "case", t1, copy)
    assert code != 0 and "are the same volume" in err
    assert not (tmp_path / "case").exists()


def test_near_identical_channels_warn(tmp_path, cli, setup):
    model, case = setup
    t1 = os.path.join(case, "t1_in.nii.gz")
    img = sitk.ReadImage(t1)
    arr = sitk.GetArrayFromImage(img)
    noisy = sitk.GetImageFromArray(arr + np.random.default_rng(0).normal(0, 1e-3 * arr.std(), arr.shape).astype(arr.dtype))
    noisy.CopyInformation(img)
    other = str(tmp_path / "t1_again.nii.gz")
    sitk.WriteImage(noisy, other)
    out = tmp_path / "case"
    code, stdout, err = cli("run", "--model", model, "--progress", "none", "--no-overlays", "--out", out, t1, other)
    assert code == 0, err
    assert "nearly identical" in err and "nearly identical" not in stdout
    with open(out / "summary.json") as f:
        assert any("nearly identical" in w for w in json.load(f)["warnings"])

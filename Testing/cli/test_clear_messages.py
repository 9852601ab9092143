"""Messages that used to mislead: a non-integer confidence, an all-zero volume called an MRI, and
a reference CT elsewhere in space reported as having no body."""

import os

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import bundles_and_case
from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.reader_study.session import check_confidence


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("d")
    return str(root), bundles_and_case(root, extra=(("ct2mr", "CT->MR", ("ct",)),))


@pytest.mark.parametrize("value", ["2.5", "high", ""])
def test_confidence_message_says_what_is_wanted(value):
    with pytest.raises(InputError, match="must be a whole number from 1 .* to 5"):
        check_confidence(value)


def test_all_zero_volume_is_called_constant_not_mri(tmp_path, cli, setup):
    root, _ = setup
    zero = sitk.GetImageFromArray(np.zeros((8, 16, 16), np.int16))
    path = str(tmp_path / "zero.nii.gz")
    sitk.WriteImage(zero, path)
    code, _, err = cli("synthesize", "--model", os.path.join(root, "ct2mr"), "--progress", "none",
                       "--out", tmp_path / "s.nii.gz", path)
    assert code != 0 and "constant" in err
    assert "looks like" not in err and "MRI" not in err


def test_reference_ct_elsewhere_is_named_as_not_overlapping(tmp_path, cli, setup):
    root, case = setup
    ref = sitk.ReadImage(os.path.join(case, "ct_on_mr.nii.gz"))
    ref.SetOrigin(tuple(o + 2000.0 for o in ref.GetOrigin()))
    ref_path = str(tmp_path / "far_ct.nii.gz")
    sitk.WriteImage(ref, ref_path)
    out = tmp_path / "case"
    code, _, err = cli("run", "--model", os.path.join(root, "m"), "--progress", "none", "--out", out,
                       "--reference-ct", ref_path, os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz"))
    assert code != 0 and "does not overlap the MRI" in err and "above -500 HU" not in err
    assert not out.exists()

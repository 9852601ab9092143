"""Meaningless engine options are refused with one sentence, and a single-slice volume runs the
whole pipeline (overlays included) without a traceback."""

import os

import pytest
import SimpleITK as sitk

from testsupport.bundles import bundles_and_case


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("d")
    c = bundles_and_case(root)
    return str(root / "m"), str(root / "liver"), [os.path.join(c, "t1_in.nii.gz"), os.path.join(c, "t1_opp.nii.gz")]


@pytest.mark.parametrize("option,value,expect", [
    ("--threads", "-1", "--threads"), ("--threads", "0", "--threads"),
    ("--batch-size", "0", "--batch-size"), ("--batch-size", "-3", "--batch-size"),
    ("--memory-budget", "-5", "positive number of MB"), ("--memory-budget", "0", "positive number of MB"),
])
def test_meaningless_option_refused(tmp_path, cli, setup, option, value, expect):
    model, _, inputs = setup
    out = tmp_path / "s.nii.gz"
    code, _, err = cli("synthesize", "--model", model, "--progress", "none", "--out", out, option, value, *inputs)
    assert code != 0
    assert expect in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_single_slice_case_runs_with_overlays(tmp_path, cli, setup):
    model, liver, inputs = setup
    one = []
    for p in inputs:
        path = str(tmp_path / ("one_" + os.path.basename(p)))
        img = sitk.ReadImage(p)
        sitk.WriteImage(img[:, :, img.GetSize()[2] // 2:img.GetSize()[2] // 2 + 1], path)
        one.append(path)
    out = tmp_path / "case"
    code, _, err = cli("run", "--model", model, "--liver-model", liver, "--progress", "none", "--out", out, *one)
    assert code == 0, err
    assert sitk.ReadImage(str(out / "synthetic.nii.gz")).GetSize()[2] == 1
    assert (out / "overlay_coronal.png").stat().st_size > 0

"""`cmsynth run` overlays in both directions (issue 13 item 11): each panel is titled by what it
shows and drawn with the window of its own modality. A CT -> MR run used to title the input CT
"input MRI" and draw the synthetic MRI with the CT's window (body saturated white, air grey).

Real condition: the shipped demo bundles on a small phantom case, the PNGs `cmsynth run` wrote
read back with PIL (pixels, and the Title / Description text the overlay writes into each PNG).
"""

import os
import re

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CrossModalitySynthLib.phantom import write_cases

PLANES = ("axial", "coronal", "sagittal")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return write_cases(str(tmp_path_factory.mktemp("ov") / "src"), n_cases=1, seed=3, size="small")[0]


def panels(png_path):
    """(left, right) grey-level arrays of the two image panels of an overlay PNG: in each half of
    the figure, the rows and columns mostly not white (the figure background is pure white)."""
    grey = np.asarray(Image.open(png_path).convert("L")).astype(float)
    out = []
    half = grey.shape[1] // 2
    for part in (grey[:, :half], grey[:, half:]):
        ink = part < 255
        rows = np.flatnonzero(ink.mean(axis=1) > 0.5)
        cols = np.flatnonzero(ink[rows].mean(axis=0) > 0.5)
        out.append(part[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
    return out


def corners(panel, frac=0.06, size=6):
    """Mean grey of four small patches just inside the panel's corners (air around the body)."""
    h, w = panel.shape
    r0, c0 = int(frac * h), int(frac * w)
    patches = [panel[r0:r0 + size, c0:c0 + size], panel[r0:r0 + size, w - c0 - size:w - c0],
               panel[h - r0 - size:h - r0, c0:c0 + size], panel[h - r0 - size:h - r0, w - c0 - size:w - c0]]
    return [float(p.mean()) for p in patches]


def centre_slice(path):
    """The axial slice an overlay shows without a liver: the middle one of the LPS-oriented volume."""
    arr = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(path), "LPS"))
    return arr[arr.shape[0] // 2]


def test_ct_to_mr_overlay_titles_and_windows(tmp_path, cli, case):
    out = tmp_path / "case"
    ct = os.path.join(case, "ct.nii.gz")
    code, _, err = cli("run", "--model", "demo-ct-to-t1in-essnet", "--progress", "none", "--out", out, ct)
    assert code == 0, err
    smr = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "synthetic.nii.gz")))
    lo, hi = np.percentile(smr, [1, 99.5])
    for plane in PLANES:
        png = out / f"overlay_{plane}.png"
        info = Image.open(png).info
        assert info["Title"] == f"input CT | synthetic MRI ({plane})"
        left, right = info["Description"].split("; right: ")
        assert left == "left: input CT (window level 40 width 400 HU)"
        # the synthetic MRI's own 1st-99.5th percentiles, not the CT's
        shown = [float(v) for v in re.fullmatch(r"synthetic MRI \(window (\S+) to (\S+) \(1st to 99\.5th percentile\)\)",
                                                 right).groups()]
        np.testing.assert_allclose(shown, [lo, hi], rtol=1e-3)
    left, right = panels(out / "overlay_axial.png")
    # air outside the body is dark in both panels (it was grey in the synthetic MRI: the CT window)
    assert max(corners(left)) < 40 and max(corners(right)) < 40, (corners(left), corners(right))
    # the body of the synthetic MRI is not saturated (it was mostly white)
    h, w = right.shape
    body = right[int(0.35 * h):int(0.65 * h), int(0.35 * w):int(0.65 * w)]
    assert float(np.mean(body >= 250)) < 0.05 and 40 < float(body.mean()) < 220, float(body.mean())
    # each panel's window, from its pixels: the shown slice (the volume centre, no liver model) in
    # LPS; with the window [a, b] the share of black pixels is the share of voxels <= a, of white ones
    # the share >= b (interpolation blurs only the edges). Measured on this case: 0.739 black and 0.026
    # white CT pixels for 0.734 and 0.025 of the voxels; the old CT panel (the CT's own percentiles,
    # -1024 to about 700 HU) had 0.655 and 0.012, the old synthetic MRI 0.163 white for 0.006.
    ct_slice = centre_slice(ct)
    assert abs(float(np.mean(left < 8)) - float(np.mean(ct_slice <= -160))) < 0.02
    assert abs(float(np.mean(left > 247)) - float(np.mean(ct_slice >= 240))) < 0.01
    smr_slice = centre_slice(str(out / "synthetic.nii.gz"))
    assert abs(float(np.mean(right > 247)) - float(np.mean(smr_slice >= hi))) < 0.01


def test_mr_to_ct_overlay_titles_and_windows(tmp_path, cli, case):
    out = tmp_path / "case"
    t1 = [os.path.join(case, f"{n}.nii.gz") for n in ("t1_in", "t1_opp")]
    code, _, err = cli("run", "--model", "demo-t1dual-to-ct", "--progress", "none", "--out", out, *t1)
    assert code == 0, err
    mri = sitk.GetArrayFromImage(sitk.ReadImage(t1[0]))
    lo, hi = np.percentile(mri, [1, 99.5])
    for plane in PLANES:
        info = Image.open(out / f"overlay_{plane}.png").info
        assert info["Title"] == f"input MRI | synthetic CT ({plane})"
        left, right = info["Description"].split("; right: ")
        shown = [float(v) for v in re.fullmatch(r"left: input MRI \(window (\S+) to (\S+) \(1st to 99\.5th percentile\)\)",
                                                 left).groups()]
        np.testing.assert_allclose(shown, [lo, hi], rtol=1e-3)
        assert right == "synthetic CT (window level 40 width 400 HU)"
    left, right = panels(out / "overlay_axial.png")
    assert max(corners(left)) < 40 and max(corners(right)) < 40

"""The demo models' held-out figures against the targets of the demo models' issue, measured on
CHAOS-size phantom cases never used in training, through ``cmsynth run`` / ``synthesize`` /
``segment`` (the installed command, run in-process), with the library's metric functions.

``python -m cmsynth_training.demo_targets [--heldout DIR] [--cases case_000,...] [--json FILE]``
prints, per model and averaged over the cases:

- T1 dual / T2 -> CT (``cmsynth run`` with the liver model and ``--reference-ct ct_on_mr``): body
  MAE (HU) beside a constant 0 HU, Pearson r inside the body, the mean HU of liver, kidneys,
  spleen, bone, muscle and subcutaneous fat minus the true CT's, and the ratio of the mean power
  above half the Nyquist frequency (sCT / CT, axial slices through the body, arithmetic mean of
  the FFT power: a checkerboard raises it, smoothing lowers it). For T1 dual also the body MAE when the opposed-phase input is replaced by the
  in-phase one (the model must do worse: it uses its channels; one voxel of the copy differs by 1,
  since the command refuses two bit-identical channels).
- Liver U-Net (``cmsynth segment`` on T1 in-phase): Dice against the phantom's liver label and the
  in-plane mean outline distance (mm; ``metrics.inplane_outline_distances``: every outline pixel
  of either mask, in the axial slices holding liver in both, to the other's outline), and the
  number of slices with liver in one mask only.
- EssNet CT -> T1 in-phase (``cmsynth run`` on the case's ``ct_on_mr``): MAE of the normalised
  synthetic MRI against the true MRI inside the body (the engine's own normalisations), beside the
  best constant (the true MRI's median), and the Dice of the liver U-Net run on the synthetic MRI
  against the liver label.

Targets: sCT MAE <= 60 HU, r >= 0.95, each organ within 40 HU, spectrum ratio within [0.5, 2];
liver Dice >= 0.93, outline distance <= 1 mm; U-Net on synthetic MRI Dice >= 0.9.
"""

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from CrossModalitySynthLib import labels as L
from CrossModalitySynthLib.errors import CMSynthError, InputError
from CrossModalitySynthLib.io import read_volume
from CrossModalitySynthLib.metrics import inplane_outline_distances, segmentation_scores

ORGANS = {"liver": (L.LIVER,), "kidneys": (L.RIGHT_KIDNEY, L.LEFT_KIDNEY), "spleen": (L.SPLEEN,),
          "bone": (L.BONE,), "muscle": (L.MUSCLE,), "subcutaneous_fat": (L.SUBCUTANEOUS_FAT,)}
MODELS = {"t1dual": ("demo-t1dual-to-ct", ("t1_in", "t1_opp")), "t2": ("demo-t2-to-ct", ("t2",))}
LIVER_MODEL = "demo-liver-unet-t1in"
ESSNET = "demo-ct-to-t1in-essnet"
TARGETS = {"sct_mae_hu": 60.0, "sct_pearson_r": 0.95, "organ_abs_diff_hu": 40.0, "spectrum_ratio": (0.5, 2.0),
           "liver_dice": 0.93, "liver_outline_mm": 1.0, "liver_dice_on_synthetic_mri": 0.9}


def cmsynth(*argv) -> None:
    """The ``cmsynth`` command, in-process; its errors become one exception."""
    from CrossModalitySynthLib.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    if code != 0:
        raise InputError("cmsynth {} failed: {}".format(argv[0], err.getvalue().strip()))


def _arr(path: str) -> np.ndarray:
    return sitk.GetArrayFromImage(read_volume(path)).astype(np.float64)


def high_frequency_power(volume: np.ndarray, body: np.ndarray) -> float:
    """Mean power (|FFT|^2 / pixels, arithmetic mean) at spatial frequencies above half the Nyquist
    frequency (radius > 0.25 cycles/pixel) over the axial slices through the body. Arithmetic, not
    the log-average of the radial profile: a checkerboard is a few strong frequencies, which a
    log-average over a ring would hide."""
    h, w = volume.shape[1:]
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    high = np.sqrt(fy * fy + fx * fx) > 0.25
    powers = [float((np.abs(np.fft.fft2(volume[z])) ** 2)[high].mean() / (h * w))
              for z in range(volume.shape[0]) if body[z].sum() >= 100]
    return float(np.mean(powers))


def sct_case(case: str, model: str, inputs: Sequence[str], work: str, ablate: bool) -> Dict[str, float]:
    out = os.path.join(work, model)
    liver = ["--liver-model", LIVER_MODEL] if "t1_in" in inputs else []  # the liver model reads T1 in-phase
    cmsynth("run", "--model", model, *liver, "--reference-ct", os.path.join(case, "ct_on_mr.nii.gz"), "--out", out,
            "--no-overlays", *[os.path.join(case, s + ".nii.gz") for s in inputs])
    ct, sct = _arr(os.path.join(case, "ct_on_mr.nii.gz")), _arr(os.path.join(out, "synthetic.nii.gz"))
    body = _arr(os.path.join(case, "body.nii.gz")) > 0
    lab = _arr(os.path.join(case, "labels.nii.gz")).astype(np.int64)
    row = {"sct_mae_hu": float(np.abs(sct - ct)[body].mean()), "water_baseline_mae_hu": float(np.abs(ct)[body].mean()),
           "sct_pearson_r": float(np.corrcoef(sct[body], ct[body])[0, 1]),
           "spectrum_ratio": high_frequency_power(sct, body) / high_frequency_power(ct, body)}
    for organ, values in ORGANS.items():
        m = np.isin(lab, values) & body
        row["{}_diff_hu".format(organ)] = float(sct[m].mean() - ct[m].mean())
    if ablate:  # opposed phase replaced by in-phase
        swapped = os.path.join(work, model + "_in_in.nii.gz")
        cmsynth("synthesize", "--model", model, "--out", swapped, os.path.join(case, "t1_in.nii.gz"),
                _in_phase_copy(case, work))
        row["sct_mae_hu_in_phase_twice"] = float(np.abs(_arr(swapped) - ct)[body].mean())
    return row


def _in_phase_copy(case: str, work: str) -> str:
    """The case's T1 in-phase as a second file, one voxel (of millions) raised by 1: the command
    refuses two bit-identical channels (a file picked twice), and one voxel changes no figure."""
    img = read_volume(os.path.join(case, "t1_in.nii.gz"))
    arr = sitk.GetArrayFromImage(img)
    arr.flat[0] += 1
    copy = sitk.GetImageFromArray(arr)
    copy.CopyInformation(img)
    path = os.path.join(work, "t1_in_copy.nii.gz")
    sitk.WriteImage(copy, path)
    return path


def liver_case(case: str, work: str, image: Optional[str] = None) -> Dict[str, float]:
    out = os.path.join(work, "liver.nii.gz")
    cmsynth("segment", "--model", LIVER_MODEL, "--out", out, "--overwrite", image or os.path.join(case, "t1_in.nii.gz"))
    pred = _arr(out) > 0
    ref = L.liver_mask(_arr(os.path.join(case, "labels.nii.gz")).astype(np.int64))
    spacing = read_volume(out).GetSpacing()
    d_pred, d_ref = inplane_outline_distances(pred, ref, spacing)
    one_only = int(sum(1 for p, r in zip(pred, ref) if p.any() != r.any()))
    return {"liver_dice": segmentation_scores(pred, ref, spacing=spacing[::-1], distances=False).dice,
            "liver_outline_mm": float(np.concatenate([d_pred, d_ref]).mean()),
            "liver_slices_in_one_mask_only": float(one_only)}


def essnet_case(case: str, work: str) -> Dict[str, float]:
    from CrossModalitySynthLib.preprocess import IntensityScale, mr_scale
    from CrossModalitySynthLib.registry import Registry

    out = os.path.join(work, "essnet")
    cmsynth("run", "--model", ESSNET, "--out", out, "--no-overlays", os.path.join(case, "ct_on_mr.nii.gz"))
    grid = Registry().resolve(ESSNET).contract.grid_spec()  # the normalisations the engine uses
    smr, real = _arr(os.path.join(out, "synthetic.nii.gz")), _arr(os.path.join(case, "t1_in.nii.gz"))
    body = _arr(os.path.join(case, "body.nii.gz")) > 0
    syn_n = IntensityScale(*grid.mr_output_range).forward(smr)
    real_n = mr_scale(real, grid.mri_percentiles).forward(real)
    row = {"smr_mae": float(np.abs(syn_n - real_n)[body].mean()),
           "smr_constant_baseline_mae": float(np.abs(real_n - np.median(real_n[body]))[body].mean())}
    liver = liver_case(case, work, os.path.join(out, "synthetic.nii.gz"))
    row["liver_dice_on_synthetic_mri"] = liver["liver_dice"]
    return row


def measure(heldout: str, cases: Sequence[str], models: Sequence[str]) -> Dict[str, Dict[str, float]]:
    rows: Dict[str, List[Dict[str, float]]] = {}
    for name in cases:
        case = os.path.join(heldout, name)
        with tempfile.TemporaryDirectory() as work:
            for m in models:
                if m in MODELS:
                    bundle, inputs = MODELS[m]
                    rows.setdefault(bundle, []).append(sct_case(case, bundle, inputs, work, ablate=(m == "t1dual")))
                elif m == "unet":
                    rows.setdefault(LIVER_MODEL, []).append(liver_case(case, work))
                elif m == "essnet":
                    rows.setdefault(ESSNET, []).append(essnet_case(case, work))
    means = {b: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for b, rs in rows.items()}
    for b in means:
        means[b]["n_cases"] = len(rows[b])
    return means


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cmsynth_training.demo_targets", description=__doc__.splitlines()[0])
    p.add_argument("--heldout", default=os.path.join("demo_output", "training", "phantom_heldout"))
    p.add_argument("--cases", default="case_000,case_001,case_002")
    p.add_argument("--models", default="t1dual,t2,unet,essnet")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    try:
        figures = measure(args.heldout, [c for c in args.cases.split(",") if c], args.models.split(","))
    except CMSynthError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 1
    for bundle, f in figures.items():
        print(bundle + ": " + ", ".join("{} {:.3f}".format(k, v) for k, v in f.items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"targets": TARGETS, "figures": figures}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One case of the clinical pipeline, written atomically into one output folder.

Outputs (names fixed so batch runs and the Slicer module can find them)::

    OUT/synthetic.nii.gz        synthetic CT in HU (or synthetic MRI for a CT -> MR model)
    OUT/liver.nii.gz            liver label (0/1) on the input grid        (with a liver model)
    OUT/liver.seg.nrrd          the same as a 3D Slicer segmentation       (with a liver model)
    OUT/overlay_{axial,coronal,sagittal}.png
    OUT/summary.json            models, inputs, grid, device, precision used (and why), timings,
                                warnings, metrics vs a reference
"""

import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..errors import ConfigError, InputError, OutputError
from ..geometry import Grid, same_grid
from ..inference import CancelToken, LoadedModel, segment, synthesize
from ..inference.progress import ProgressCallback
from ..io import atomic_folder, read_volume, write_volume
from ..io.writer import check_folder_replaceable
from ..io.segnrrd import write_seg_nrrd
from ..io.guard import refuse_input_as_output
from ..preprocess.modality import modality_mismatch
from .overlay import save_overlays

SUMMARY = "summary.json"
#: every file a case folder may hold: --overwrite replaces a folder holding nothing else
OUTPUTS = ("synthetic.nii.gz", "liver.nii.gz", "liver.seg.nrrd", "overlay_*.png", SUMMARY)


@dataclass
class CaseInputs:
    """Input files of one case, in the synthesis model's input order."""

    case_id: str
    paths: List[Optional[str]]
    reference_ct: Optional[str] = None
    names: List[str] = field(default_factory=list)
    #: why the case cannot run (an input missing), or None; a batch records it as failed
    problem: Optional[str] = None


def _seg_channels(synth: LoadedModel, seg: LoadedModel, images: List[sitk.Image]) -> List[sitk.Image]:
    by_name = dict(zip(synth.input_names, images))
    missing = [n for n in seg.input_names if n not in by_name]
    if missing:
        raise ConfigError(
            f"The liver model {seg.bundle.id} needs {', '.join(seg.input_sequences)} but the synthesis model "
            f"{synth.bundle.id} takes {', '.join(synth.input_sequences)}; pick models with matching inputs."
        )
    return [by_name[n] for n in seg.input_names]


def check_output_folder(out_dir: str, overwrite: bool) -> None:
    """The overwrite rule (``io.writer.OVERWRITE_RULE``) for a case folder, and a writable parent."""
    check_folder_replaceable(out_dir, overwrite, OUTPUTS, "cmsynth run")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise OutputError(f"Output folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"Output folder {parent} is not writable; choose another location.")


@dataclass
class CaseCheck:
    """What :func:`check_case` found, so that :func:`run_case` does not check (or read) it again."""

    reference: Optional[sitk.Image] = None
    reference_warning: Optional[str] = None
    seconds: float = 0.0


def check_case(case: CaseInputs, out_dir: str, overwrite: bool, output_modality: str, force: bool = False) -> CaseCheck:
    """Every check of a case that needs no model: the output folder is not an input and follows
    the overwrite rule, and the reference CT (read here) is a CT. The command line runs it before
    loading any model; :func:`run_case` runs it unless given its result."""
    t0 = time.perf_counter()
    refuse_input_as_output(out_dir, list(case.paths) + [case.reference_ct], folder_output=True)
    check_output_folder(out_dir, overwrite)
    reference = read_volume(case.reference_ct) if case.reference_ct else None
    warning = None
    if reference is not None:  # before the inputs are read: a wrong reference stops the case at once
        warning = check_reference_ct(reference, case.reference_ct, output_modality, force)
    return CaseCheck(reference, warning, time.perf_counter() - t0)


def run_case(
    case: CaseInputs,
    synth: LoadedModel,
    out_dir: str,
    seg: Optional[LoadedModel] = None,
    overwrite: bool = False,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    overlays: bool = True,
    checked: Optional[CaseCheck] = None,
) -> Dict:
    """Run synthesis (+ liver segmentation) for one case; returns the summary dict.

    ``checked``: the result of :func:`check_case` when the caller ran it already (with the same
    case, folder and ``overwrite``); otherwise it is run here. Everything is written into a hidden
    temporary folder beside ``out_dir`` and renamed into place at the end: after an error or a
    cancel nothing is left behind.
    """
    t_start = time.perf_counter()
    checked_before = 0.0 if checked is None else checked.seconds  # the reference was read then
    if checked is None:
        checked = check_case(case, out_dir, overwrite, synth.contract.output.modality, synth.options.force)
    reference, reference_warning = checked.reference, checked.reference_warning
    images = [read_volume(p) for p in case.paths]
    stages = {"read": time.perf_counter() - t_start + checked_before}
    if reference is not None:
        _check_reference_overlap(reference, images[0], case.reference_ct)
    if cancel:
        cancel.check()
    # sources: the training-range check tells a phantom case by its files (inference.training_range)
    res = synthesize(synth, images, progress=progress, cancel=cancel, sources=case.paths)
    if reference_warning:
        res.warnings.append(reference_warning)  # summary.json and the command's stderr
    seg_res = None
    if seg is not None:
        seg_sources = [dict(zip(synth.input_names, case.paths))[n] for n in seg.input_names
                       if n in synth.input_names]
        seg_res = segment(seg, _seg_channels(synth, seg, images), progress=progress, cancel=cancel,
                          sources=seg_sources)
    if cancel:
        cancel.check()

    with atomic_folder(out_dir, overwrite, OUTPUTS, "cmsynth run", check=False, prefix=".cmsynth-run-") as staging:
        summary = _write_outputs(staging, case, synth, seg, res, seg_res, images, reference, overlays,
                                 progress, t_start, stages)
        if cancel:
            cancel.check()
    if progress:
        progress("write", 2, 2)
    return summary


def _write_outputs(staging, case, synth, seg, res, seg_res, images, reference, overlays, progress, t_start,
                   stages) -> Dict:
    """Write every output of one case into ``staging``; returns the summary written there.

    ``stages`` (stage -> seconds) gets ``write`` and ``overlays`` here; the summary records them.
    """
    t_write = time.perf_counter()
    liver = seg_res.image if seg_res is not None else None
    outputs = {"synthetic": "synthetic.nii.gz"}
    write_volume(res.image, os.path.join(staging, outputs["synthetic"]))
    if liver is not None:
        outputs["liver"] = "liver.nii.gz"
        outputs["liver_segmentation"] = "liver.seg.nrrd"
        write_volume(liver, os.path.join(staging, outputs["liver"]))
        write_seg_nrrd(liver, os.path.join(staging, outputs["liver_segmentation"]))
    if progress:
        progress("write", 1, 2)
    stages["write"] = time.perf_counter() - t_write
    t_overlays = time.perf_counter()
    if overlays:
        pics = save_overlays(images[0], res.image, liver, staging, input_modality=synth.contract.input_modality,
                             output_modality=synth.contract.output.modality)
        outputs.update({f"overlay_{k}": os.path.basename(v) for k, v in pics.items()})
        stages["overlays"] = time.perf_counter() - t_overlays
    summary = _summary(case, synth, seg, res, seg_res, images, reference, outputs, t_start, stages)
    with open(os.path.join(staging, SUMMARY), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    return summary


def _summary(case, synth, seg, res, seg_res, images, reference, outputs, t_start, stages) -> Dict:
    grid = Grid.of(images[0])
    summary = {
        "case_id": case.case_id,
        "cmsynth_version": __version__,
        "inputs": [{"path": os.path.abspath(p), "sequence": s} for p, s in zip(case.paths, synth.input_sequences)],
        "model": {"id": synth.bundle.id, "version": synth.bundle.version, "direction": synth.contract.direction.value},
        "liver_model": ({"id": seg.bundle.id, "version": seg.bundle.version, "precision": seg.precision}
                        if seg is not None else None),
        "outputs": outputs,
        "grid": {"size": list(grid.size), "origin": list(grid.origin), "spacing": list(grid.spacing),
                 "direction": list(grid.direction)},
        "device": res.device,
        "precision": synth.precision,
        "precision_reason": synth.precision_reason,
        "batch_size": res.batch_size,
        "slices": res.slices,
        "timings_s": {f"synthesis_{k}": round(v, 3) for k, v in res.timings_s.items()},
        "warnings": list(dict.fromkeys(res.warnings + (seg_res.warnings if seg_res else []))),
    }
    if seg_res is not None:
        summary["timings_s"].update({f"liver_{k}": round(v, 3) for k, v in seg_res.timings_s.items()})
        voxel_ml = float(np.prod(seg_res.image.GetSpacing())) / 1000.0
        summary["liver_volume_ml"] = round(float((sitk.GetArrayViewFromImage(seg_res.image) > 0).sum()) * voxel_ml, 1)
    if reference is not None:
        t_metrics = time.perf_counter()
        summary["reference_ct"] = os.path.abspath(case.reference_ct)
        summary["metrics"] = _reference_metrics(reference, res.image)
        stages["metrics"] = time.perf_counter() - t_metrics
    summary["timings_s"].update({k: round(v, 3) for k, v in stages.items()})
    # reading the inputs to the summary; the command's wall time (model loading too) is printed by the CLI
    summary["timings_s"]["total"] = round(time.perf_counter() - t_start, 3)
    return summary


def check_reference_ct(reference: sitk.Image, path: str, output_modality: str, force: bool = False) -> Optional[str]:
    """Refuse a ``--reference-ct`` that cannot be the synthetic CT's reference, with one sentence.

    A CT -> MR model has no reference CT (its metrics would compare an MRI with a CT): ConfigError.
    A reference that looks like an MRI (the check of :func:`preprocess.modality.modality_mismatch`,
    the one model inputs get) is an InputError unless ``force``; with ``force`` the sentence is
    returned as a warning (None when the reference looks like a CT or cannot be told).
    """
    if str(output_modality).upper() != "CT":
        raise ConfigError("--reference-ct is for MRI -> CT models, and this model makes a synthetic MRI; leave out "
                          "--reference-ct and compare the synthetic MRI with a real MRI by 'cmsynth evaluate --paired'.")
    guess = modality_mismatch(reference, "CT")
    if guess is None:
        return None
    msg = (f"The reference CT {path} looks like an MRI ({guess.reason}); give the patient's real CT registered to the "
           "MRI (e.g. ct_on_mr.nii.gz) or leave out --reference-ct")
    if not force:
        raise InputError(msg + ", or pass --force to compute the metrics against it anyway.")
    return msg + " (--force: the metrics against it were computed anyway)."


def _check_reference_overlap(reference: sitk.Image, mri: sitk.Image, path: str) -> None:
    from ..preprocess.checks import MIN_OVERLAP_FRACTION, overlap_fraction

    frac = overlap_fraction(reference, mri)
    if frac <= MIN_OVERLAP_FRACTION:
        raise InputError(f"The reference CT {path} does not overlap the MRI in space (only {100 * frac:.0f}% shared); "
                         "give a CT of the same patient registered to the MRI (e.g. ct_on_mr), or leave out --reference-ct.")


def _reference_metrics(reference: sitk.Image, sct: sitk.Image) -> Dict:
    from ..metrics import paired_metrics

    note = None
    if not same_grid(reference, sct, tol=1e-4):
        from ..preprocess import resample_to_grid

        reference = resample_to_grid(reference, sct, "linear", -1024.0)
        note = "reference CT resampled (linear) onto the MRI grid"
    m = paired_metrics(reference, sct, None, with_ms_ssim=False)
    out = {"mae_hu": round(m.mae, 2), "psnr_db": round(m.psnr, 2), "ssim": round(m.ssim, 4),
           "mask": "body mask of the reference CT (> -500 HU)", "n_mask_voxels": m.n_mask_voxels}
    if note:
        out["note"] = note
    return out


__all__ = ["CaseInputs", "CaseCheck", "check_case", "run_case", "check_output_folder", "InputError"]

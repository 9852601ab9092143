"""Validation of networks in training and of exported bundles through the inference path: ``prepare`` -> network on slices -> ``restore``.

Validation, the bundle metrics written by the export and the augmentation experiment all use
these functions, so every reported number is measured on the input's own grid, after the same
preprocessing and the same way back that the Slicer module and ``cmsynth`` use: networks in
training run through the engine's slice runner and label rule
(:mod:`CrossModalitySynthLib.inference.slice_runner`), bundles are loaded and run by the engine.

Metrics (from :mod:`CrossModalitySynthLib.metrics`):

- ``sct_mae_hu``: MAE in HU of the synthetic CT made from the MRI against the same patient's CT
  on the MR grid (phantom ``ct_on_mr``), inside the body mask (phantom ``body``).
- ``smr_mae``: MAE of a synthetic MRI made from ``ct_on_mr`` against the real MRI, both on the
  model grid in normalised units ([-1, 1], per-volume body percentiles), inside the body.
- ``liver_dice`` / ``liver_iou`` / ``liver_hd95_mm``: a predicted liver (the engine's label rule:
  class probabilities resampled onto the input grid, then thresholded or arg-max) against the
  reference liver (lesions included).
"""

import os
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
import torch

from CrossModalitySynthLib.inference.slice_runner import restore_label, run_slices
from CrossModalitySynthLib.io import read_volume
from CrossModalitySynthLib.metrics import mae, segmentation_scores
from CrossModalitySynthLib.preprocess import ModelGridSpec, Prepared, prepare, prepare_label

from .data import CaseRef, load_case

SliceFn = Callable[[torch.Tensor], torch.Tensor]


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on ``device`` (CUDA or CPU) when ``enabled``, else nothing."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def slice_fn(fn: SliceFn, device: torch.device, amp: bool = False):
    """A torch network (N, C, H, W) -> (N, K, H, W) as the slice runner's numpy slice function,
    without gradients, under bf16 autocast when ``amp``."""
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad(), autocast(device, amp):
            return fn(torch.from_numpy(np.ascontiguousarray(x)).to(device)).float().cpu().numpy()
    return run


def apply_slices(fn: SliceFn, array_czyx: np.ndarray, device: torch.device, batch_size: int = 8,
                 amp: bool = False) -> np.ndarray:
    """Run ``fn`` on every axial slice by the engine's slice runner: (C, Z, Y, X) -> (K, Z, Y, X) float32."""
    return run_slices(slice_fn(fn, device, amp), array_czyx, batch_size)


def translate(fn: SliceFn, prepared: Prepared, output: str, device: torch.device, batch_size: int = 8,
              amp: bool = False) -> Tuple[List[sitk.Image], np.ndarray]:
    """Translate a prepared volume; returns (one restored image per output channel, model-grid array)."""
    out = apply_slices(fn, prepared.array, device, batch_size, amp)
    images = [prepared.restore(out[k], kind="image", output=output, channel=min(k, len(prepared.scales) - 1))
              for k in range(out.shape[0])]
    return images, out


def segment(fn: SliceFn, prepared: Prepared, device: torch.device, batch_size: int = 8, amp: bool = False) -> sitk.Image:
    """Liver label on the input grid by the engine's label rule (:func:`restore_label`)."""
    return restore_label(prepared, apply_slices(fn, prepared.array, device, batch_size, amp))


def _liver_scores(pred: sitk.Image, ref: sitk.Image, distances: bool = True) -> Dict[str, float]:
    s = segmentation_scores(pred, ref, one_empty="diagonal", distances=distances)
    out = {"liver_dice": s.dice, "liver_iou": s.iou}
    if distances:
        out["liver_hd95_mm"] = s.hd95
    return out


def _mean(rows: Sequence[Dict[str, float]]) -> Dict[str, float]:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))] if rows else []
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


# ------------------------------------------------------------------------------ per case


def sct_mae_case(fn: SliceFn, ref: CaseRef, spec: ModelGridSpec, device, batch_size=8, amp=False) -> Dict[str, float]:
    """sCT from the MRI channels of a phantom case vs its ``ct_on_mr``, MAE in HU inside ``body``."""
    images, names, _ = load_case(ref, with_label=False)
    prepared = prepare(images, spec, modality="MR", names=names)
    (sct,), _ = translate(fn, prepared, "CT", device, batch_size, amp)
    folder = os.path.join(ref.root, ref.case)
    ct = read_volume(os.path.join(folder, "ct_on_mr.nii.gz"))
    body = read_volume(os.path.join(folder, "body.nii.gz"))
    return {"sct_mae_hu": mae(ct, sct, mask=body)}


def smr_mae_case(fn: SliceFn, ref: CaseRef, spec: ModelGridSpec, device, batch_size=8, amp=False) -> Dict[str, float]:
    """Synthetic MRI from the phantom's ``ct_on_mr`` vs the real MRI, normalised units, body only."""
    ct_ref = CaseRef(ref.dataset, ref.root, ref.case, "CT_ON_MR")
    ct_images, _, _ = load_case(ct_ref, with_label=False)
    p_ct = prepare(ct_images, spec, modality="CT")
    mr_images, names, _ = load_case(ref, with_label=False)
    p_mr = prepare(mr_images, spec, modality="MR", names=names)
    out = apply_slices(fn, p_ct.array, device, batch_size, amp)
    if out.shape[1:] != p_mr.array.shape[1:]:  # pragma: no cover - both live on the MR grid
        raise RuntimeError("CT and MRI model grids differ for {}".format(ref.describe()))
    body = prepare_label(read_volume(os.path.join(ref.root, ref.case, "body.nii.gz")), p_mr) > 0
    diff = np.abs(out - p_mr.array)[:, body]
    return {"smr_mae": float(diff.mean())}


def liver_case(fn: SliceFn, ref: CaseRef, spec: ModelGridSpec, device, batch_size=8, amp=False,
               distances: bool = True) -> Dict[str, float]:
    """Liver segmentation of a case (MRI channels, or the CT for EssNet's S(G_A(CT))) vs its labels."""
    images, names, label = load_case(ref, with_label=True)
    prepared = prepare(images, spec, modality=ref.modality, names=names)
    pred = segment(fn, prepared, device, batch_size, amp)
    return _liver_scores(pred, label, distances)


def evaluate_cases(per_case: Callable[[CaseRef], Dict[str, float]], refs: Sequence[CaseRef]) -> Dict[str, float]:
    """Mean of ``per_case`` over ``refs`` plus the number of cases."""
    rows = [per_case(r) for r in refs]
    out = _mean(rows)
    out["n_cases"] = float(len(rows))
    return out


# ------------------------------------------------------------------------------- bundles


def load_bundle_network(folder: str, device: torch.device = torch.device("cpu")):
    """Load a bundle by the inference engine's loader (fp32): ``(bundle, network in eval mode, ModelGridSpec)``."""
    from CrossModalitySynthLib.inference import EngineOptions, load_model
    from CrossModalitySynthLib.registry import load_bundle

    device = torch.device(device)
    model = load_model(load_bundle(folder), EngineOptions(device=device.type, precision="fp32", force=True))
    return model.bundle, model.runner.net.to(device).eval(), model.grid_spec


def phantom_gate_cases(dataset_root: str, cases: Sequence[str],
                       input_names: Sequence[str]) -> List[Tuple[List[sitk.Image], sitk.Image]]:
    """``[(MRI input images in ``input_names`` order, body mask), ...]`` of phantom cases, loaded as
    :func:`evaluate_bundle` loads them: the cases of a bf16 quality gate."""
    out = []
    for case in cases:
        images, _, _ = load_case(CaseRef("phantom", dataset_root, case, "MR", tuple(input_names)), with_label=False)
        out.append((images, read_volume(os.path.join(dataset_root, case, "body.nii.gz"))))
    return out


def evaluate_bundle(folder: str, dataset_root: str, cases: Sequence[str], device: str = "cpu",
                    threads: Optional[int] = None) -> Dict[str, float]:
    """Held-out phantom metrics of a bundle, run by the inference engine in fp32 (the numbers its spec records).

    MR->CT: ``sct_mae_hu`` (inside ``body``, against ``ct_on_mr``) and, for scale,
    ``water_baseline_mae_hu`` (a constant 0 HU inside the body); CT->MR: ``smr_mae`` (the
    synthetic MRI made from ``ct_on_mr`` against the real MRI on the MR grid, both in normalised
    units: the real one by its body percentiles, the synthetic one by the spec's
    ``mr_output_range``); MR->LIVER: ``liver_dice``, ``liver_iou``, ``liver_hd95_mm``.
    """
    from CrossModalitySynthLib.inference import EngineOptions, load_model, segment as engine_segment, synthesize
    from CrossModalitySynthLib.preprocess import IntensityScale, mr_scale
    from CrossModalitySynthLib.registry import Direction, load_bundle

    # fp32 always: the recorded metrics must not depend on the CPU the export ran on
    model = load_model(load_bundle(folder), EngineOptions(device=device, precision="fp32", threads=threads, force=True))
    spec = model.contract
    names = spec.input_names
    direction = spec.direction
    rows = []
    for case in cases:
        folder_c = os.path.join(dataset_root, case)
        body = read_volume(os.path.join(folder_c, "body.nii.gz"))
        if direction == Direction.MR_TO_CT:
            images, _, _ = load_case(CaseRef("phantom", dataset_root, case, "MR", tuple(names)), with_label=False)
            sct = synthesize(model, images).image
            ct = read_volume(os.path.join(folder_c, "ct_on_mr.nii.gz"))
            water = sitk.Image(ct.GetSize(), sitk.sitkFloat32)
            water.CopyInformation(ct)
            rows.append({"sct_mae_hu": mae(ct, sct, mask=body),
                         # what a constant 0 HU (water) inside the body scores: the floor a model must beat
                         "water_baseline_mae_hu": mae(ct, water, mask=body)})
        elif direction == Direction.CT_TO_MR:
            seqs = list(spec.output.sequences or ["t1_in"])
            smr = sitk.GetArrayFromImage(synthesize(model, [read_volume(os.path.join(folder_c, "ct_on_mr.nii.gz"))]).image)
            real = sitk.GetArrayFromImage(read_volume(os.path.join(folder_c, "{}.nii.gz".format(seqs[0]))))
            syn_norm = IntensityScale(*model.grid_spec.mr_output_range).forward(smr)
            real_norm = mr_scale(real, model.grid_spec.mri_percentiles).forward(real)
            m = sitk.GetArrayFromImage(body) > 0
            rows.append({"smr_mae": float(np.abs(syn_norm - real_norm)[m].mean())})
        else:
            images, _, label = load_case(CaseRef("phantom", dataset_root, case, "MR", tuple(names)), with_label=True)
            rows.append(_liver_scores(engine_segment(model, images).image, label))
    out = _mean(rows)
    out["n_cases"] = float(len(rows))
    return out

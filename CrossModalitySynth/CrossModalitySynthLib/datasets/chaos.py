"""CHAOS 2019 (Combined Healthy Abdominal Organ Segmentation) loader.

Layout (``root`` is the folder holding ``Train_Sets/`` and/or ``Test_Sets/``; passing the
``Train_Sets`` folder itself also works)::

    Train_Sets/CT/<id>/DICOM_anon/*.dcm
    Train_Sets/CT/<id>/Ground/liver_GT_XXX.png              binary liver, 0/255
    Train_Sets/MR/<id>/T1DUAL/DICOM_anon/InPhase/*.dcm
    Train_Sets/MR/<id>/T1DUAL/DICOM_anon/OutPhase/*.dcm
    Train_Sets/MR/<id>/T1DUAL/Ground/*.png                  shared by InPhase and OutPhase
    Train_Sets/MR/<id>/T2SPIR/DICOM_anon/*.dcm
    Train_Sets/MR/<id>/T2SPIR/Ground/*.png
    Test_Sets/...                                           same, without Ground folders

CT and MR cases are different patients. MR sequences are named ``"T1in"``, ``"T1out"`` and
``"T2"`` here.

Conventions and checks
    * The DICOM files of one folder form one volume, whatever their SeriesInstanceUIDs; slices
      are sorted by position (see :mod:`CrossModalitySynthLib.io.dicom`).
    * Label values: CT PNG 255 (or 1) -> ``labels.LIVER``; MR PNG 63 (55-70) -> LIVER,
      126 (110-135) -> RIGHT_KIDNEY, 189 (175-200) -> LEFT_KIDNEY, 252 (240-255) -> SPLEEN, all
      other values -> 0 (a warning counts pixels outside these ranges).
    * In-plane, PNG row r / column c is DICOM pixel row r / column c (no flip, no transpose);
      a PNG whose shape is not (Rows, Columns) is an error.
    * Slice order is CHECKED, not assumed. PNG number i (natural file-name order) is paired
      with the DICOM file at rank i in InstanceNumber order (file-name order when
      InstanceNumbers are missing or repeated) and placed at that file's physical position, so
      the label image lies exactly on the DICOM volume's grid. Because the CT ground truth is
      reported to run opposite to the slice order, the reversed pairing is built as well and
      both are scored against the image: for CT, the fraction of mask voxels that are soft
      tissue (-50..300 HU) times the fraction within 60 HU of the mask's median (liver is a
      homogeneous soft-tissue organ inside the body); for MR, the fraction of label voxels
      inside the body times, per organ, its intensity homogeneity (voxels within 10 % of the
      body's intensity range of the organ's median) times its boundary contrast (voxels of a
      2-pixel ring around the organ that are NOT within that band). A pairing that scores at least 0.10 higher wins;
      a :class:`LabelOrderWarning` is issued when that overrides the InstanceNumber pairing, or
      when the two are too close to call (the InstanceNumber pairing is then kept). The
      decision and the scores are returned in :attr:`ChaosCase.order_check`; pass
      ``label_order="instance"`` or ``"reversed"`` to force a pairing.
"""

import os
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from .. import labels as L
from ..errors import InputError
from ..io.dicom import DicomVolume, load_dicom_files
from ..preprocess.modality import normalise_modality
from ._common import DatasetWarning, list_files, natural_key, natural_sorted, require_dir

__all__ = [
    "ChaosCase",
    "LabelOrderCheck",
    "LabelOrderWarning",
    "MR_SEQUENCES",
    "list_cases",
    "load_ct",
    "load_mr",
    "load_case",
]

SPLITS = {"train": "Train_Sets", "test": "Test_Sets"}

# sequence -> (DICOM folder, Ground folder), relative to the MR case folder
MR_SEQUENCES: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    "T1in": (("T1DUAL", "DICOM_anon", "InPhase"), ("T1DUAL", "Ground")),
    "T1out": (("T1DUAL", "DICOM_anon", "OutPhase"), ("T1DUAL", "Ground")),
    "T2": (("T2SPIR", "DICOM_anon"), ("T2SPIR", "Ground")),
}
_SEQUENCE_ALIASES = {
    "t1in": "T1in", "inphase": "T1in", "t1_in": "T1in", "t1dual_in": "T1in",
    "t1out": "T1out", "outphase": "T1out", "t1_out": "T1out", "t1dual_out": "T1out",
    "t2": "T2", "t2spir": "T2",
}

# (low, high, label id): inclusive PNG value ranges of the MR ground truth
MR_PNG_RANGES = ((55, 70, L.LIVER), (110, 135, L.RIGHT_KIDNEY), (175, 200, L.LEFT_KIDNEY), (240, 255, L.SPLEEN))

CT_SOFT_TISSUE_HU = (-50.0, 300.0)
CT_HOMOGENEITY_HU = 60.0
MR_HOMOGENEITY_FRACTION = 0.10
ORDER_MARGIN = 0.10  # score difference that counts as a clear decision
_NEARLY_IDENTICAL_DICE = 0.9  # candidate pairings this similar need no decision


class LabelOrderWarning(DatasetWarning):
    """The ground-truth slice order was taken from the image data, or could not be verified."""


@dataclass
class LabelOrderCheck:
    """How the PNG stack was paired with the DICOM slices.

    Attributes:
        chosen: "instance" (PNG i <-> i-th file in InstanceNumber order) or "reversed".
        reason: "image data", "ambiguous" (kept "instance"), "forced", "identical" (both pairings
            give the same labels) or "nearly identical".
        scores: agreement score per pairing (0..1, higher is better; NaN when not computed).
        slot_order: what ranked the DICOM files: "InstanceNumber" or "file name".
    """

    chosen: str
    reason: str
    scores: Dict[str, float] = field(default_factory=dict)
    slot_order: str = "InstanceNumber"


@dataclass
class ChaosCase:
    """One CHAOS volume with its labels on exactly the same grid.

    Attributes:
        case_id: the case folder name ("1", "2", ...).
        modality: "CT" or "MR".
        sequence: "CT", "T1in", "T1out" or "T2".
        split: "train" or "test".
        image: the DICOM volume (CT in HU).
        label: uint8 label image (ids from :mod:`CrossModalitySynthLib.labels`) on ``image``'s
            grid, or None when the case has no Ground folder (test sets).
        dicom_files: the DICOM file of each z slice (position order).
        label_files: the PNG placed on each z slice (empty without labels).
        order_check: how the PNG order was decided (None without labels).
    """

    case_id: str
    modality: str
    sequence: str
    split: str
    image: sitk.Image
    label: Optional[sitk.Image]
    dicom_files: List[str]
    label_files: List[str] = field(default_factory=list)
    order_check: Optional[LabelOrderCheck] = None


# ----------------------------------------------------------------------------- layout


def _split_dir(root: str, split: str) -> str:
    if split not in SPLITS:
        raise InputError(f"Unknown CHAOS split '{split}'; use one of {', '.join(SPLITS)}.")
    root = require_dir(root, "the CHAOS folder holding Train_Sets/ and Test_Sets/")
    name = SPLITS[split]
    candidate = os.path.join(root, name)
    if os.path.isdir(candidate):
        return candidate
    if os.path.basename(os.path.normpath(root)) == name:
        return root
    if os.path.isdir(os.path.join(root, "CT")) or os.path.isdir(os.path.join(root, "MR")):
        return root
    raise InputError(
        f"{candidate} not found: expected the CHAOS layout {name}/CT/<id>/DICOM_anon/*.dcm and "
        f"{name}/MR/<id>/T1DUAL|T2SPIR/...; point to the folder that holds {name}."
    )


def _sequence(sequence: str) -> str:
    key = str(sequence).replace("-", "_").lower()
    if sequence in MR_SEQUENCES:
        return sequence
    if key in _SEQUENCE_ALIASES:
        return _SEQUENCE_ALIASES[key]
    raise InputError(f"Unknown CHAOS MR sequence '{sequence}'; use one of {', '.join(MR_SEQUENCES)}.")


def _is_case_dir(path: str, modality: str) -> bool:
    if modality == "CT":
        return os.path.isdir(os.path.join(path, "DICOM_anon"))
    return os.path.isdir(os.path.join(path, "T1DUAL")) or os.path.isdir(os.path.join(path, "T2SPIR"))


def list_cases(root: str, modality: str, split: str = "train") -> List[str]:
    """Case ids (folder names, in natural order) of ``modality`` ("CT" or "MR") in ``split``.

    Raises:
        InputError: the data set root, the split folder or the modality folder is missing.
    """
    mod = normalise_modality(modality, InputError, "CHAOS modality")
    split_dir = _split_dir(root, split)
    mod_dir = require_dir(os.path.join(split_dir, mod), f"CHAOS {mod} cases as {split_dir}/{mod}/<id>/")
    ids = [n for n in os.listdir(mod_dir) if not n.startswith(".") and _is_case_dir(os.path.join(mod_dir, n), mod)]
    return natural_sorted(ids)


def _case_dir(root: str, modality: str, case_id, split: str) -> str:
    split_dir = _split_dir(root, split)
    mod_dir = require_dir(os.path.join(split_dir, modality), f"CHAOS {modality} cases as {split_dir}/{modality}/<id>/")
    return require_dir(os.path.join(mod_dir, str(case_id)), f"the CHAOS {modality} case folder {modality}/{case_id}/")


# ----------------------------------------------------------------------------- loading


def load_ct(root: str, case_id, split: str = "train", label_order: str = "auto") -> ChaosCase:
    """Load CHAOS CT case ``case_id``: the CT volume in HU and (train split) the liver label.

    ``label_order``: "auto" (check the PNG order against the image, see module docstring),
    "instance" or "reversed" (force a pairing).
    """
    case_dir = _case_dir(root, "CT", case_id, split)
    dicom_dir = require_dir(os.path.join(case_dir, "DICOM_anon"), f"the CT DICOM files in {case_dir}/DICOM_anon/*.dcm")
    ground = os.path.join(case_dir, "Ground")
    if split == "train":
        require_dir(ground, f"the CT ground truth in {case_dir}/Ground/liver_GT_XXX.png")
    return _load(str(case_id), "CT", "CT", split, dicom_dir, ground if os.path.isdir(ground) else None, label_order)


def load_mr(root: str, case_id, sequence: str, split: str = "train", label_order: str = "auto") -> ChaosCase:
    """Load one MR sequence ("T1in", "T1out" or "T2") of CHAOS MR case ``case_id`` with its labels.

    The T1 in-phase and opposed-phase volumes share the T1DUAL/Ground labels.
    """
    seq = _sequence(sequence)
    case_dir = _case_dir(root, "MR", case_id, split)
    dicom_rel, ground_rel = MR_SEQUENCES[seq]
    dicom_dir = require_dir(
        os.path.join(case_dir, *dicom_rel), f"the {seq} DICOM files in {os.path.join(case_dir, *dicom_rel)}/*.dcm"
    )
    ground = os.path.join(case_dir, *ground_rel)
    if split == "train":
        require_dir(ground, f"the {seq} ground truth PNGs in {ground}/")
    return _load(str(case_id), "MR", seq, split, dicom_dir, ground if os.path.isdir(ground) else None, label_order)


def load_case(root: str, modality: str, case_id, sequence: Optional[str] = None, split: str = "train",
              label_order: str = "auto") -> ChaosCase:
    """``load_ct`` or ``load_mr`` by modality (``sequence`` is required for MR)."""
    mod = normalise_modality(modality, InputError, "CHAOS modality")
    if mod == "CT":
        return load_ct(root, case_id, split=split, label_order=label_order)
    if sequence is None:
        raise InputError(f"CHAOS MR cases need a sequence; pass one of {', '.join(MR_SEQUENCES)}.")
    return load_mr(root, case_id, sequence, split=split, label_order=label_order)


def _load(case_id: str, modality: str, sequence: str, split: str, dicom_dir: str, ground: Optional[str],
          label_order: str) -> ChaosCase:
    if label_order not in ("auto", "instance", "reversed"):
        raise InputError(f"label_order must be 'auto', 'instance' or 'reversed', not '{label_order}'.")
    files = list_files(dicom_dir, (".dcm", ".ima"))
    if not files:
        raise InputError(f"{dicom_dir} holds no .dcm files: expected the CHAOS {sequence} DICOM slices there.")
    context = f"CHAOS {modality} case {case_id} ({sequence})"
    vol = load_dicom_files(files, what=f"{context} in {dicom_dir}")
    if len(vol.slice_files) != len(files):
        raise InputError(f"{dicom_dir} holds multi-frame DICOM files; CHAOS cases have one slice per file.")
    case = ChaosCase(case_id=case_id, modality=modality, sequence=sequence, split=split, image=vol.image,
                     label=None, dicom_files=list(vol.slice_files))
    if ground is None:
        return case
    pngs = list_files(ground, (".png",))
    if not pngs:
        raise InputError(f"{ground} holds no .png files: expected the CHAOS ground truth masks there.")
    if len(pngs) != len(files):
        raise InputError(
            f"{ground} holds {len(pngs)} PNG masks but {dicom_dir} holds {len(files)} DICOM slices; "
            "the case is incomplete, copy it again."
        )
    rows, cols = vol.image.GetSize()[1], vol.image.GetSize()[0]
    raw = np.stack([_read_png(p, (rows, cols)) for p in pngs])
    stack = _ct_png_labels(raw) if modality == "CT" else _mr_png_labels(raw, context)
    slots, slot_order = _slot_order(vol)
    z_of = {path: z for z, path in enumerate(vol.slice_files)}
    candidates = {
        "instance": _place(stack, slots, z_of),
        "reversed": _place(stack[::-1], slots, z_of),
    }
    image_arr = sitk.GetArrayViewFromImage(vol.image)
    check = _choose_order(image_arr, candidates, modality, label_order, context)
    check.slot_order = slot_order
    chosen = candidates[check.chosen]
    label = sitk.GetImageFromArray(chosen)
    label.CopyInformation(vol.image)
    png_order = pngs if check.chosen == "instance" else pngs[::-1]
    label_files = [""] * len(pngs)
    for i, path in enumerate(slots):
        label_files[z_of[path]] = png_order[i]
    case.label = label
    case.label_files = label_files
    case.order_check = check
    return case


# ----------------------------------------------------------------------------- PNG handling


def _read_png(path: str, shape: Tuple[int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "PA"):  # palette: use the grey levels the palette shows
                im = im.convert("RGBA")
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(f"{path} cannot be read as a PNG mask ({str(exc)[:100]}); copy the file again.") from None
    if arr.ndim == 3:  # grey stored as RGB(A): all colour channels must agree
        colour = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
        if not np.all(colour == colour[..., :1]):
            raise InputError(f"{path} is a colour image; CHAOS masks are grey-level PNGs.")
        arr = colour[..., 0]
    if arr.shape != tuple(shape):
        hint = " (transposed?)" if arr.shape == tuple(shape)[::-1] else ""
        raise InputError(
            f"{path} is {arr.shape[0]}x{arr.shape[1]} pixels{hint} but the DICOM slices are {shape[0]}x{shape[1]}; "
            "the mask does not belong to this series."
        )
    return arr.astype(np.uint16)


def _ct_png_labels(raw: np.ndarray) -> np.ndarray:
    """CT masks: 0/255 (or 0/1) -> LIVER."""
    threshold = 0 if raw.max() <= 1 else 127
    return np.where(raw > threshold, L.LIVER, 0).astype(np.uint8)


def _mr_png_labels(raw: np.ndarray, context: str) -> np.ndarray:
    out = np.zeros(raw.shape, dtype=np.uint8)
    known = raw == 0
    for lo, hi, label in MR_PNG_RANGES:
        sel = (raw >= lo) & (raw <= hi)
        out[sel] = label
        known |= sel
    n_unknown = int(np.count_nonzero(~known))
    if n_unknown:
        values = np.unique(raw[~known])[:8]
        warnings.warn(
            f"{context}: {n_unknown} mask pixels have values outside the CHAOS ranges "
            f"({', '.join(str(v) for v in values)}); they were set to background.",
            DatasetWarning,
            stacklevel=4,
        )
    return out


def _slot_order(vol: DicomVolume) -> Tuple[List[str], str]:
    """DICOM files ranked by InstanceNumber (or by natural file name when those are unusable)."""
    numbers = vol.instance_numbers
    if all(n is not None for n in numbers) and len(set(numbers)) == len(numbers):
        ranked = [p for _, p in sorted(zip(numbers, vol.slice_files))]
        return ranked, "InstanceNumber"
    return sorted(vol.slice_files, key=natural_key), "file name"


def _place(stack: np.ndarray, slots: Sequence[str], z_of: Dict[str, int]) -> np.ndarray:
    out = np.zeros_like(stack)
    for i, path in enumerate(slots):
        out[z_of[path]] = stack[i]
    return out


# ----------------------------------------------------------------------------- order check


def _ct_score(image: np.ndarray, label: np.ndarray) -> float:
    values = image[label > 0].astype(np.float64)
    if values.size == 0:
        return float("nan")
    lo, hi = CT_SOFT_TISSUE_HU
    soft = np.mean((values >= lo) & (values <= hi))
    homogeneous = np.mean(np.abs(values - np.median(values)) <= CT_HOMOGENEITY_HU)
    return float(soft * homogeneous)


def _dilate_inplane(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation within each slice (axes 1, 2) by a (2r+1)^2 square, numpy only."""
    out = mask.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[:, 1:, :] |= out[:, :-1, :]
        grown[:, :-1, :] |= out[:, 1:, :]
        grown[:, :, 1:] |= out[:, :, :-1]
        grown[:, :, :-1] |= out[:, :, 1:]
        out = grown
    return out


def _mr_score(image: np.ndarray, label: np.ndarray) -> float:
    """inside-body fraction x per-organ (homogeneity x boundary contrast), organs weighted by size.

    Homogeneity: fraction of organ voxels within +-w of the organ's median; contrast: fraction of
    a 2-pixel in-plane shell around the organ that lies OUTSIDE +-w. A wrong slice pairing puts
    the label either on mixed tissue (low homogeneity) or inside one uniform region (low contrast).
    """
    fg = label > 0
    if not fg.any():
        return float("nan")
    img = image.astype(np.float64)
    top = float(np.percentile(img, 99))
    if top <= 0:
        return float("nan")
    body_threshold = 0.1 * top
    body = img[img > body_threshold]
    lo, hi = np.percentile(body, [1, 99])
    width = MR_HOMOGENEITY_FRACTION * max(float(hi - lo), 1e-6)
    inside = float(np.mean(img[fg] > body_threshold))
    total, agree = 0, 0.0
    for value in np.unique(label[fg]):
        organ = label == value
        v = img[organ]
        median = np.median(v)
        homogeneous = float(np.mean(np.abs(v - median) <= width))
        shell = img[_dilate_inplane(organ, 2) & ~organ]
        contrast = float(np.mean(np.abs(shell - median) > width)) if shell.size else 0.0
        agree += v.size * homogeneous * contrast
        total += v.size
    return inside * agree / total


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    fa, fb = a > 0, b > 0
    denom = int(fa.sum()) + int(fb.sum())
    return 1.0 if denom == 0 else 2.0 * float(np.count_nonzero(fa & fb & (a == b))) / denom


def _choose_order(image: np.ndarray, candidates: Dict[str, np.ndarray], modality: str, label_order: str,
                  context: str) -> LabelOrderCheck:
    if label_order != "auto":
        return LabelOrderCheck(chosen=label_order, reason="forced", scores={})
    a, b = candidates["instance"], candidates["reversed"]
    if np.array_equal(a, b):
        return LabelOrderCheck(chosen="instance", reason="identical", scores={})
    score = _ct_score if modality == "CT" else _mr_score
    scores = {k: score(image, v) for k, v in candidates.items()}
    if _dice(a, b) >= _NEARLY_IDENTICAL_DICE:
        return LabelOrderCheck(chosen="instance", reason="nearly identical", scores=scores)
    s_inst = scores["instance"] if np.isfinite(scores["instance"]) else -1.0
    s_rev = scores["reversed"] if np.isfinite(scores["reversed"]) else -1.0
    shown = f"instance {scores['instance']:.2f}, reversed {scores['reversed']:.2f}"
    if abs(s_inst - s_rev) >= ORDER_MARGIN:
        chosen = "instance" if s_inst > s_rev else "reversed"
        if chosen != "instance":
            warnings.warn(
                f"{context}: the ground-truth PNGs fit the image in REVERSED InstanceNumber order "
                f"(agreement {shown}); using the reversed order. Pass label_order='instance' to override.",
                LabelOrderWarning,
                stacklevel=4,
            )
        return LabelOrderCheck(chosen=chosen, reason="image data", scores=scores)
    warnings.warn(
        f"{context}: the slice order of the ground-truth PNGs could not be verified from the image "
        f"(agreement {shown}); assuming InstanceNumber order. Check the overlay, or pass "
        "label_order='instance' or 'reversed'.",
        LabelOrderWarning,
        stacklevel=4,
    )
    return LabelOrderCheck(chosen="instance", reason="ambiguous", scores=scores)

"""AMOS 2022 (Abdominal Multi-Organ Segmentation) loader.

Layout (``root`` is the folder that holds the split folders, e.g. ``amos22/``)::

    imagesTr/amos_XXXX.nii.gz   labelsTr/amos_XXXX.nii.gz     training
    imagesVa/amos_XXXX.nii.gz   labelsVa/amos_XXXX.nii.gz     validation
    imagesTs/amos_XXXX.nii.gz                                 test (no labels)

Conventions
    * The case number XXXX decides the modality: numbers below 500 are CT, 500 and above MRI.
    * AMOS label ids are mapped to the project's ids (:mod:`CrossModalitySynthLib.labels`)::

          AMOS 1 spleen        -> 4 SPLEEN
          AMOS 2 right kidney  -> 2 RIGHT_KIDNEY
          AMOS 3 left kidney   -> 3 LEFT_KIDNEY
          AMOS 6 liver         -> 1 LIVER
          every other AMOS class (gallbladder, oesophagus, stomach, aorta, IVC, pancreas,
          adrenal glands, duodenum, bladder, prostate/uterus) -> 0 background

      The original map can be kept with ``keep_raw_label=True`` (``AmosCase.raw_label``).
    * The label must lie on the image's grid; float noise below 1e-3 mm / 1e-5 (NIfTI header
      round-off) is removed by giving the label the image's exact grid, anything larger is an
      InputError.
"""

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Union

import numpy as np
import SimpleITK as sitk

from .. import labels as L
from ..errors import InputError
from ..io.reader import read_volume
from ._common import integer_labels, on_same_grid, remap, require_dir

__all__ = ["AmosCase", "AMOS_CLASSES", "AMOS_TO_PROJECT", "SPLITS", "modality_of", "list_cases", "load_case",
           "map_labels"]

# split -> (image folder, label folder or None)
SPLITS: Dict[str, tuple] = {"Tr": ("imagesTr", "labelsTr"), "Va": ("imagesVa", "labelsVa"), "Ts": ("imagesTs", None)}

AMOS_CLASSES: Dict[int, str] = {
    1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gallbladder", 5: "esophagus", 6: "liver",
    7: "stomach", 8: "aorta", 9: "postcava", 10: "pancreas", 11: "right adrenal gland",
    12: "left adrenal gland", 13: "duodenum", 14: "bladder", 15: "prostate/uterus",
}
AMOS_TO_PROJECT: Dict[int, int] = {1: L.SPLEEN, 2: L.RIGHT_KIDNEY, 3: L.LEFT_KIDNEY, 6: L.LIVER}
MRI_FIRST_ID = 500

_NAME = re.compile(r"^amos_(\d+)\.nii(\.gz)?$")


@dataclass
class AmosCase:
    """One AMOS case.

    Attributes:
        case_id: "amos_XXXX".
        number: XXXX as an int.
        modality: "CT" (number < 500) or "MR".
        split: "Tr", "Va" or "Ts".
        image: the image (CT in HU as stored).
        label: uint8 project label ids on ``image``'s grid, or None (test split).
        raw_label: the original AMOS label map (only with ``keep_raw_label=True``).
    """

    case_id: str
    number: int
    modality: str
    split: str
    image: sitk.Image
    label: Optional[sitk.Image]
    raw_label: Optional[sitk.Image] = None


def modality_of(number: int) -> str:
    """"CT" for AMOS case numbers below 500, "MR" otherwise."""
    return "CT" if int(number) < MRI_FIRST_ID else "MR"


def _number(case_id: Union[str, int]) -> int:
    text = os.path.basename(str(case_id))
    m = re.match(r"^(?:amos_)?(\d+)(?:\.nii(?:\.gz)?)?$", text)
    if not m:
        raise InputError(f"'{case_id}' is not an AMOS case id; use e.g. 'amos_0001' or 1.")
    return int(m.group(1))


def _root(root: str) -> str:
    root = require_dir(root, "the AMOS folder holding imagesTr/, labelsTr/, imagesVa/, labelsVa/, imagesTs/")
    if not any(os.path.isdir(os.path.join(root, img)) for img, _ in SPLITS.values()):
        raise InputError(
            f"{os.path.join(root, 'imagesTr')} not found: expected the AMOS layout imagesTr/amos_XXXX.nii.gz with "
            "labelsTr/ (and imagesVa/, labelsVa/, imagesTs/); point to the folder that holds them."
        )
    return root


def _split(split: str) -> str:
    for key in SPLITS:
        if str(split).lower() in (key.lower(), SPLITS[key][0].lower()):
            return key
    raise InputError(f"Unknown AMOS split '{split}'; use one of {', '.join(SPLITS)}.")


def _case_files(root: str, split: str) -> Dict[int, str]:
    folder = os.path.join(root, SPLITS[split][0])
    if not os.path.isdir(folder):
        return {}
    out = {}
    for name in os.listdir(folder):
        m = _NAME.match(name)
        if m and not name.startswith("."):
            out[int(m.group(1))] = os.path.join(folder, name)
    return out


def list_cases(root: str, modality: Optional[str] = None, split: str = "Tr") -> List[str]:
    """Case ids ("amos_XXXX", sorted by number) of ``split``, optionally only "CT" or "MR".

    Raises:
        InputError: ``root`` is not an AMOS folder, or the split's image folder is missing.
    """
    root = _root(root)
    split = _split(split)
    require_dir(os.path.join(root, SPLITS[split][0]), f"the AMOS {split} images as {SPLITS[split][0]}/amos_XXXX.nii.gz")
    mod = None if modality is None else str(modality).upper().replace("MRI", "MR")
    if mod not in (None, "CT", "MR"):
        raise InputError(f"Unknown AMOS modality '{modality}'; use 'CT' or 'MR'.")
    numbers = sorted(n for n in _case_files(root, split) if mod is None or modality_of(n) == mod)
    return [f"amos_{n:04d}" for n in numbers]


def map_labels(amos_labels: np.ndarray) -> np.ndarray:
    """AMOS label ids -> project label ids (uint8), see the module docstring."""
    return remap(np.asarray(amos_labels), AMOS_TO_PROJECT)


def load_case(root: str, case_id: Union[str, int], split: Optional[str] = None,
              keep_raw_label: bool = False) -> AmosCase:
    """Load AMOS case ``case_id`` ("amos_0005", "0005" or 5) with its mapped label.

    ``split`` ("Tr", "Va", "Ts") defaults to the first split that holds the case.

    Raises:
        InputError: unknown case, missing label file in a labelled split, label off the image
            grid, non-integer or out-of-range label values.
    """
    root = _root(root)
    number = _number(case_id)
    splits = [_split(split)] if split is not None else list(SPLITS)
    for s in splits:
        files = _case_files(root, s)
        if number in files:
            break
    else:
        where = ", ".join(SPLITS[s][0] for s in splits)
        raise InputError(
            f"AMOS case amos_{number:04d} not found in {where} under {root}: expected "
            f"{os.path.join(root, SPLITS[splits[0]][0], f'amos_{number:04d}.nii.gz')}."
        )
    image_path = files[number]
    image = read_volume(image_path)
    label = raw = None
    label_dir = SPLITS[s][1]
    if label_dir is not None:
        label_path = os.path.join(root, label_dir, os.path.basename(image_path))
        if not os.path.isfile(label_path):
            raise InputError(
                f"{label_path} not found: expected the label map of {os.path.basename(image_path)} in {label_dir}/."
            )
        raw = on_same_grid(read_volume(label_path), image, label_path, image_path)
        arr = integer_labels(raw, label_path)
        bad = (arr < 0) | (arr > max(AMOS_CLASSES))
        if bad.any():
            raise InputError(
                f"{label_path} holds values outside the AMOS label ids 0..{max(AMOS_CLASSES)} "
                f"(e.g. {int(arr[bad][0])}); it is not an AMOS label map."
            )
        label = sitk.GetImageFromArray(map_labels(arr))
        label.CopyInformation(image)
    return AmosCase(
        case_id=f"amos_{number:04d}",
        number=number,
        modality=modality_of(number),
        split=s,
        image=image,
        label=label,
        raw_label=raw if keep_raw_label else None,
    )

"""The project's label table: ids, names and display colours.

Ids 1-4 follow the CHAOS convention after mapping (liver, right kidney, left kidney, spleen);
the rest are the digital phantom's extra tissues. Liver lesions have their own id but belong to
the liver for segmentation purposes: use :func:`liver_mask`.
"""

from typing import Dict, Tuple

import numpy as np

BACKGROUND = 0
LIVER = 1
RIGHT_KIDNEY = 2
LEFT_KIDNEY = 3
SPLEEN = 4
AORTA = 5
IVC = 6
BONE = 7
MUSCLE = 8
SUBCUTANEOUS_FAT = 9
VISCERAL_FAT = 10
BOWEL = 11
BOWEL_GAS = 12
LUNG = 13
LIVER_LESION = 14
SPINAL_CANAL = 15
INTERVERTEBRAL_DISC = 16
HEART = 17

# id -> (name, RGB colour in 0..1)
LABELS: Dict[int, Tuple[str, Tuple[float, float, float]]] = {
    LIVER: ("liver", (0.86, 0.55, 0.36)),
    RIGHT_KIDNEY: ("right kidney", (0.72, 0.26, 0.30)),
    LEFT_KIDNEY: ("left kidney", (0.82, 0.34, 0.38)),
    SPLEEN: ("spleen", (0.62, 0.36, 0.70)),
    AORTA: ("aorta", (0.85, 0.10, 0.10)),
    IVC: ("inferior vena cava", (0.20, 0.35, 0.85)),
    BONE: ("bone", (0.95, 0.93, 0.82)),
    MUSCLE: ("muscle", (0.75, 0.30, 0.25)),
    SUBCUTANEOUS_FAT: ("subcutaneous fat", (0.98, 0.88, 0.55)),
    VISCERAL_FAT: ("visceral fat", (0.93, 0.82, 0.50)),
    BOWEL: ("bowel", (0.90, 0.70, 0.60)),
    BOWEL_GAS: ("bowel gas", (0.30, 0.30, 0.30)),
    LUNG: ("lung", (0.60, 0.80, 0.95)),
    LIVER_LESION: ("liver lesion", (0.95, 0.85, 0.20)),
    SPINAL_CANAL: ("spinal canal", (0.55, 0.75, 0.95)),
    INTERVERTEBRAL_DISC: ("intervertebral disc", (0.70, 0.85, 0.75)),
    HEART: ("heart", (0.80, 0.20, 0.35)),
}

LIVER_LABELS = (LIVER, LIVER_LESION)


def liver_mask(labels: np.ndarray) -> np.ndarray:
    """Boolean liver mask (lesions included) from a label array."""
    return np.isin(labels, LIVER_LABELS)


def name_of(label: int) -> str:
    return LABELS[label][0] if label in LABELS else f"label {label}"

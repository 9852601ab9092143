"""One phantom case: the patient rendered as CT and as MRI, with labels and body masks.

Random streams: the case seed feeds a :class:`numpy.random.SeedSequence` spawned into
independent streams (anatomy, tissue values, grids, oblique rotation, CT noise, CT-on-MR noise,
MR bias, MR noise). The same seed therefore gives the same arrays bit for bit, and ``oblique``
or ``lesions=False`` change only what they name.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import SimpleITK as sitk

from .. import labels as L
from ..geometry import Grid, image_on_grid
from .anatomy import Anatomy
from .ct import CT_BLUR_MM, CT_NOISE_HU, ct_tissue_values, finish_ct
from .grids import case_grids, grid_dict
from .mri import MR_CHANNELS, Sequences, finish_mr, mr_tissue_values
from .render import render
from .tissues import TISSUE_TABLE_VERSION, case_tissues

# file name -> (grid, dtype, what it holds)
FILES = {
    "ct.nii.gz": ("ct", "int16", "CT, Hounsfield units"),
    "ct_labels.nii.gz": ("ct", "uint8", "label ids of labels.py on the CT grid"),
    "ct_body.nii.gz": ("ct", "uint8", "body mask (1 inside) on the CT grid"),
    "t1_in.nii.gz": ("mr", "float32", "T1 gradient echo, in phase (TE 4.6 ms), arbitrary units"),
    "t1_opp.nii.gz": ("mr", "float32", "T1 gradient echo, opposed phase (TE 2.3 ms), arbitrary units"),
    "t2.nii.gz": ("mr", "float32", "T2 fast spin echo with fat suppression (SPIR), arbitrary units"),
    "labels.nii.gz": ("mr", "uint8", "label ids of labels.py on the MR grid"),
    "body.nii.gz": ("mr", "uint8", "body mask (1 inside) on the MR grid"),
    "ct_on_mr.nii.gz": ("mr", "int16", "the same patient's CT rendered on the MR grid, Hounsfield units"),
}

_STREAMS = ("anatomy", "tissues", "grids", "orientation", "ct_noise", "ct_on_mr_noise", "mr_bias", "mr_noise")


@dataclass
class PhantomCase:
    """A rendered case: ``images`` maps the file names of :data:`FILES` to SimpleITK images."""

    seed: int
    size: str
    oblique: bool
    images: Dict[str, sitk.Image]
    meta: Dict = field(default_factory=dict)
    anatomy: Anatomy = field(default=None, repr=False)

    @property
    def mr_grid(self) -> Grid:
        return Grid.of(self.images["t1_in.nii.gz"])

    @property
    def ct_grid(self) -> Grid:
        return Grid.of(self.images["ct.nii.gz"])


def make_case(seed: int, size: str = "small", oblique: bool = False, lesions: bool = True,
              sequences: Sequences = Sequences(), ct_noise_hu: float = CT_NOISE_HU,
              liver_fat_fraction: Optional[float] = None) -> PhantomCase:
    """Render one synthetic patient.

    Args:
        seed: case seed (non-negative int); the same seed gives identical images.
        size: "small" (fast test grids) or "chaos" (CHAOS-like grids), see :mod:`.grids`.
        oblique: give both grids a small random rotation (5-10 degrees); anatomy unchanged.
        lesions: allow liver lesions (0-3 per case, drawn from the seed).
        sequences: MR sequence and noise parameters.
        ct_noise_hu: CT noise standard deviation (HU).
        liver_fat_fraction: force the liver's fat fraction (0..1; default: drawn, 1-8 %).

    Returns:
        :class:`PhantomCase` with the images of :data:`FILES` and ``meta`` (written as case.json).
    """
    seed = int(seed)
    streams = dict(zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS))))
    rng = {k: np.random.default_rng(v) for k, v in streams.items() if k != "anatomy"}
    anatomy = Anatomy.random(streams["anatomy"], lesions=lesions)
    tissues = case_tissues(rng["tissues"], liver_fat_fraction)
    mr_grid, ct_grid = case_grids(size, rng["grids"], oblique=oblique, orient_rng=rng["orientation"])

    ct_r = render(anatomy.components, ct_grid, ct_tissue_values(tissues), ("hu",), (-1000.0,), anatomy.deformation)
    ct = finish_ct(ct_r.values[0], ct_grid.spacing, rng["ct_noise"], noise_hu=ct_noise_hu)
    background = [-1000.0] + [0.0] * (len(MR_CHANNELS) - 1)
    mr_r = render(anatomy.components, mr_grid, mr_tissue_values(tissues, sequences), MR_CHANNELS, background,
                  anatomy.deformation)
    ct_on_mr = finish_ct(mr_r.values[0], mr_grid.spacing, rng["ct_on_mr_noise"], noise_hu=ct_noise_hu)
    mr = finish_mr(mr_r.values, mr_grid, sequences, rng["mr_bias"], rng["mr_noise"])

    arrays = {
        "ct.nii.gz": (ct, ct_grid),
        "ct_labels.nii.gz": (ct_r.labels, ct_grid),
        "ct_body.nii.gz": (ct_r.body, ct_grid),
        "t1_in.nii.gz": (mr["t1_in"], mr_grid),
        "t1_opp.nii.gz": (mr["t1_opp"], mr_grid),
        "t2.nii.gz": (mr["t2"], mr_grid),
        "labels.nii.gz": (mr_r.labels, mr_grid),
        "body.nii.gz": (mr_r.body, mr_grid),
        "ct_on_mr.nii.gz": (ct_on_mr, mr_grid),
    }
    images = {}
    for name, (arr, grid) in arrays.items():
        arr = np.ascontiguousarray(arr, dtype=np.dtype(FILES[name][1]))
        images[name] = image_on_grid(arr, grid)

    meta = {
        "format": "CrossModalitySynth phantom case",
        "format_version": 1,
        "seed": seed,
        "size": size,
        "oblique": bool(oblique),
        "lesions_allowed": bool(lesions),
        "lesion_count": len(anatomy.lesions),
        "lesions": [les.to_dict() for les in anatomy.lesions],
        "tissue_table_version": TISSUE_TABLE_VERSION,
        "coordinates": "LPS millimetres (ITK); arrays in the files are (z, y, x)",
        "grids": {"mr": grid_dict(mr_grid), "ct": grid_dict(ct_grid)},
        "files": {name: {"grid": g, "dtype": d, "content": c} for name, (g, d, c) in FILES.items()},
        "labels": {str(k): v[0] for k, v in sorted(L.LABELS.items())},
        "ct": {"noise_sd_hu": ct_noise_hu, "blur_mm": CT_BLUR_MM, "phase": "portal venous"},
        "mr": sequences.to_dict(),
        "case_tissues": {k: tissues[k].to_dict() for k in ("liver", "spleen", "kidney_cortex", "aorta_blood")},
        "anatomy": anatomy.summary(),
    }
    return PhantomCase(seed, size, bool(oblique), images, meta, anatomy)

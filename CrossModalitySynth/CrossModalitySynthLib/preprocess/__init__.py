"""Geometry-exact preprocessing shared by training and inference.

One module per step: :mod:`.checks` (is the input usable), :mod:`.modality` (does it look like
the modality claimed), :mod:`.orientation` (exact reorientation), :mod:`.resample` (spacing and
grids), :mod:`.padcrop` (in-plane size), :mod:`.intensity` (normalisation), and
:mod:`.model_grid` which composes them: :func:`prepare` -> network -> :meth:`Prepared.restore`,
whose result lies exactly on the input's grid.
"""

from .checks import MAX_CHANNELS, check_channels, check_volume, overlap_fraction
from .intensity import (
    DEFAULT_CT_WINDOW,
    DEFAULT_MRI_PERCENTILES,
    IntensityScale,
    ct_scale,
    denormalise,
    foreground_mask,
    mr_scale,
    normalise_ct,
    normalise_mr,
)
from .modality import ModalityGuess, guess_modality, warn_if_modality_mismatch
from .orientation import CANONICAL_ORIENTATION, OrientationChange, orientation_code, plan_orientation, reorient
from .padcrop import PadCrop, pad_crop, plan_pad_crop
from .model_grid import PAD_VALUE, ModelGridSpec, Prepared, prepare, prepare_label
from .resample import needs_resampling, resample_to_grid, resample_to_spacing, resampled_grid

__all__ = [
    "MAX_CHANNELS",
    "check_channels",
    "check_volume",
    "overlap_fraction",
    "DEFAULT_CT_WINDOW",
    "DEFAULT_MRI_PERCENTILES",
    "IntensityScale",
    "ct_scale",
    "denormalise",
    "foreground_mask",
    "mr_scale",
    "normalise_ct",
    "normalise_mr",
    "ModalityGuess",
    "guess_modality",
    "warn_if_modality_mismatch",
    "CANONICAL_ORIENTATION",
    "OrientationChange",
    "orientation_code",
    "plan_orientation",
    "reorient",
    "PadCrop",
    "pad_crop",
    "plan_pad_crop",
    "PAD_VALUE",
    "ModelGridSpec",
    "Prepared",
    "prepare",
    "prepare_label",
    "needs_resampling",
    "resample_to_grid",
    "resample_to_spacing",
    "resampled_grid",
]

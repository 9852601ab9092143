"""Constants, the public result and warning types, and the private records of a DICOM read."""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import SimpleITK as sitk

# Geometry tolerances (mm and direction cosines)
_ORIENTATION_TOL = 1e-4  # max difference between direction cosines of two slices
_ORTHOGONALITY_TOL = 1e-3  # |row . col| above this: not a valid orientation
_DUPLICATE_TOL_MM = 1e-3  # two slices closer than this along the normal share a position
_SPACING_TOL_MM = 1e-3  # pixel spacing agreement between slices
_UNIFORM_ABS_MM = 0.01  # allowed deviation of a slice from the regular grid: max(abs, rel * spacing)
_UNIFORM_REL = 0.05
_INPLANE_REL = 0.05  # allowed in-plane shift of slice positions, as a fraction of the pixel size

_DICOM_SUFFIXES = (".dcm", ".ima", ".dicom")
_DEFER_BYTES = 2048  # values larger than this are not loaded while scanning headers
_PIXEL_DATA_TAG = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF


class DicomWarning(UserWarning):
    """Something about a DICOM input was assumed (missing geometry, an unusual layout ...)."""


@dataclass
class DicomVolume:
    """A DICOM volume and where each of its slices came from.

    Attributes:
        image: the volume ([x, y, z] in ITK terms; LPS geometry as described in the package doc).
        slice_files: for each z index (position order), the file its pixels came from.
        slice_frames: for each z index, the frame number inside that file (0 for single-frame).
        instance_numbers: for each z index, the file's InstanceNumber (None when absent).
        series_instance_uid, description, modality: from the first file.
    """

    image: sitk.Image
    slice_files: List[str]
    slice_frames: List[int]
    instance_numbers: List[Optional[int]]
    series_instance_uid: str = ""
    description: str = ""
    modality: str = ""


@dataclass
class _Header:
    """What the scan keeps of one image file (no pixel data)."""

    path: str
    sop_class: str
    series_uid: str
    description: str
    modality: str
    series_number: Optional[int]
    instance_number: Optional[int]
    rows: int
    columns: int
    n_frames: int
    echo_time: Optional[float]
    position: Optional[Tuple[float, float, float]]
    orientation: Optional[Tuple[float, ...]]
    pixel_spacing: Optional[Tuple[float, float]]


@dataclass
class _Series:
    id: str
    series_uid: str
    headers: List[_Header] = field(default_factory=list)
    echo_time: Optional[float] = None
    merged: bool = False


@dataclass
class _Slice:
    """One 2D slice to stack: a file (and frame) with its geometry and rescale."""

    path: str
    frame: int
    instance_number: Optional[int]
    position: Optional[np.ndarray]
    orientation: Optional[np.ndarray]
    pixel_spacing: Optional[Tuple[float, float]]
    rows: int
    columns: int
    slope: float
    intercept: float
    thickness: Optional[float] = None
    pixels: Optional[np.ndarray] = None

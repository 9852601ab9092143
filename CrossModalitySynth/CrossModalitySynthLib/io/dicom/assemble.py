"""Loading whole files into slices and stacking slices into a checked, rescaled volume."""

from typing import List, Tuple

import SimpleITK as sitk

from ...errors import InputError
from .geometry import _geometry
from .pixels import _pixel_array, _read_dataset, _rescaled_volume
from .slices import _slices_of_dataset
from .types import DicomVolume, _Slice
from .values import _int_or_none


def _load_file(path: str) -> Tuple[List[_Slice], object]:
    """Read one file completely: its slices, each with its pixels attached; and the dataset header."""
    ds = _read_dataset(path)
    n_frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    slices = _slices_of_dataset(ds, path)
    arr, rescaled = _pixel_array(ds, path, n_frames)
    for s in slices:
        s.pixels = arr[s.frame]
        if rescaled:
            s.slope, s.intercept = 1.0, 0.0
    del ds.PixelData
    return slices, ds


def _assemble(slices: List[_Slice], what: str) -> DicomVolume:
    """Stack ``slices`` (in any order, pixels attached) into a checked volume with rescaled values."""
    if not slices:
        raise InputError(f"{what} holds no DICOM image slices; point to the folder with the image .dcm files.")
    slices, origin, spacing, direction = _geometry(slices, what)
    volume = _rescaled_volume([s.pixels for s in slices], [(s.slope, s.intercept) for s in slices])
    for s in slices:
        s.pixels = None
    image = sitk.GetImageFromArray(volume)
    image.SetOrigin(tuple(float(v) for v in origin))
    image.SetSpacing(tuple(float(v) for v in spacing))
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return DicomVolume(
        image=image,
        slice_files=[s.path for s in slices],
        slice_frames=[s.frame for s in slices],
        instance_numbers=[s.instance_number for s in slices],
    )

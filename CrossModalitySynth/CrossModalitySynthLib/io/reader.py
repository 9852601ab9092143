"""Reading volumes from any supported format into a :class:`SimpleITK.Image`."""

import os
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .dicom import read_dicom_file, read_dicom_series
from .dicom.headers import has_dicm_marker
from .formats import format_of
from .nifti_check import check_nifti_complete


def _check_exists(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"No such file or folder: {path}. Check the path and try again.")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise InputError(f"{path} is empty (0 bytes): the file was not written completely; export it again.")


def read_volume(path: str, series: Optional[str] = None) -> sitk.Image:
    """Read one volume.

    Args:
        path: a NIfTI/NRRD/MetaImage file, a single DICOM file, or a folder holding a DICOM series.
        series: for a DICOM folder with several series, the SeriesInstanceUID or the
            SeriesDescription of the one to read (see ``cmsynth info FOLDER``).

    Returns:
        The image with its origin, spacing and direction (LPS, as ITK defines them). DICOM CT
        comes out in Hounsfield units (rescale slope/intercept applied).

    Raises:
        InputError: missing, empty, corrupt or unsupported input, with a one-sentence reason.
    """
    path = os.fspath(path)
    _check_exists(path)
    fmt = format_of(path)
    if os.path.isdir(path):
        return read_dicom_series(path, series=series)
    if fmt == "DICOM" or (fmt is None and has_dicm_marker(path)):
        return read_dicom_file(path)
    if fmt is None:
        raise InputError(
            f"{path}: unknown file type; use .nii/.nii.gz, .nrrd/.nhdr, .mha/.mhd, .dcm or a DICOM folder."
        )
    non_finite = check_nifti_complete(path) if fmt == "NIfTI" else None
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(
            f"Could not read {path} as {fmt}: the file is truncated or corrupt ({_short(exc)})."
        ) from None
    if non_finite is not None:
        image = _restore_non_finite(image, non_finite, path)
    return image


def _restore_non_finite(image: sitk.Image, non_finite, path: str) -> sitk.Image:
    """Put back the NaN/Inf voxels ITK's NIfTI reader turned into 0, so they are counted and
    refused like those of any other format."""
    arr = sitk.GetArrayFromImage(image)
    if arr.dtype.kind != "f" or arr.size != int(np.prod(image.GetSize())) * image.GetNumberOfComponentsPerPixel():
        raise InputError(f"{path} holds {non_finite.indices.size} NaN or infinite voxels; "
                         "re-export the scan or fill those voxels before converting.")
    arr.reshape(-1)[non_finite.indices] = non_finite.values.astype(arr.dtype)
    out = sitk.GetImageFromArray(arr, isVector=image.GetNumberOfComponentsPerPixel() > 1)
    out.CopyInformation(image)
    for key in image.GetMetaDataKeys():
        out.SetMetaData(key, image.GetMetaData(key))
    return out


def read_label_volume(path: str) -> sitk.Image:
    """Read a label map and return it as an unsigned 8/16-bit integer image on the same grid.

    Raises InputError when the file holds non-integer or negative values.
    """
    image = read_volume(path)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path} is a vector image; a label map must have one value per voxel.")
    arr = sitk.GetArrayViewFromImage(image)
    if arr.size and (not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(np.mod(arr, 1) != 0)):
        raise InputError(f"{path} is not a label map: it holds negative or non-integer values.")
    pixel = sitk.sitkUInt8 if (arr.size == 0 or arr.max() < 256) else sitk.sitkUInt16
    return sitk.Cast(image, pixel)


def describe_volume(image: sitk.Image) -> dict:
    """A JSON-ready summary: size, spacing, origin, direction, pixel type, value range."""
    arr = sitk.GetArrayViewFromImage(image)
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else None
    n_nonfinite = int(arr.size - np.count_nonzero(finite)) if finite is not None else 0
    vals = arr[finite] if finite is not None else arr
    info = {
        "dimension": image.GetDimension(),
        "size": list(image.GetSize()),
        "spacing": [float(v) for v in image.GetSpacing()],
        "origin": [float(v) for v in image.GetOrigin()],
        "direction": [float(v) for v in image.GetDirection()],
        "pixel_type": image.GetPixelIDTypeAsString(),
        "components": image.GetNumberOfComponentsPerPixel(),
        "min": float(vals.min()) if vals.size else None,
        "max": float(vals.max()) if vals.size else None,
        "non_finite_voxels": n_nonfinite,
    }
    return info


def _short(exc: Exception) -> str:
    """The last meaningful line of an ITK error message."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    msg = lines[-1] if lines else type(exc).__name__
    return msg[:200]

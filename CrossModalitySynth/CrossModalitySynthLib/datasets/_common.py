"""Helpers shared by the data set loaders: layout checks, natural sorting, grid checks."""

import os
import re
from typing import List, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

# Two grids closer than this are "the same grid written with float noise" (NIfTI qform/sform
# round-trips, MetaImage text precision); the image's exact grid is then copied onto the other.
GRID_ORIGIN_TOL_MM = 1e-3
GRID_SPACING_TOL_REL = 1e-5
GRID_DIRECTION_TOL = 1e-5


class DatasetWarning(UserWarning):
    """A data set case was loaded, but something was assumed or corrected (see the message)."""


def natural_key(name: str):
    """Sort key that orders embedded numbers numerically ("img2" < "img10")."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", os.path.basename(str(name)))]


def natural_sorted(names: Sequence[str]) -> List[str]:
    return sorted(names, key=natural_key)


def require_dir(path: str, expected: str) -> str:
    """``path`` if it is a folder, else InputError naming the layout that was expected."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise InputError(f"{path} not found: expected {expected}; check the data set root and its layout.")
    return path


def list_files(folder: str, suffixes: Sequence[str]) -> List[str]:
    """Files directly in ``folder`` whose names end with one of ``suffixes`` (case-insensitive),
    hidden files excluded, in natural order."""
    low = tuple(s.lower() for s in suffixes)
    names = [
        n for n in os.listdir(folder)
        if not n.startswith(".") and n.lower().endswith(low) and os.path.isfile(os.path.join(folder, n))
    ]
    return [os.path.join(folder, n) for n in natural_sorted(names)]


def on_same_grid(image: sitk.Image, reference: sitk.Image, what: str, reference_what: str) -> sitk.Image:
    """``image`` with ``reference``'s exact grid, after checking the two grids agree.

    Grids that differ by less than the module tolerances (float noise from file formats) are
    unified by copying the reference grid; anything larger is an InputError naming both files.
    """
    size_a, size_b = tuple(image.GetSize()), tuple(reference.GetSize())
    problem = None
    if image.GetDimension() != reference.GetDimension() or size_a != size_b:
        problem = f"size {size_a} vs {size_b}"
    else:
        d_origin = float(np.max(np.abs(np.subtract(image.GetOrigin(), reference.GetOrigin()))))
        sp_a, sp_b = np.array(image.GetSpacing()), np.array(reference.GetSpacing())
        d_spacing = float(np.max(np.abs(sp_a - sp_b) / np.maximum(np.abs(sp_b), 1e-12)))
        d_direction = float(np.max(np.abs(np.subtract(image.GetDirection(), reference.GetDirection()))))
        if d_origin > GRID_ORIGIN_TOL_MM:
            problem = f"origins differ by {d_origin:.4g} mm"
        elif d_spacing > GRID_SPACING_TOL_REL:
            problem = f"spacing {tuple(round(v, 6) for v in sp_a)} vs {tuple(round(v, 6) for v in sp_b)}"
        elif d_direction > GRID_DIRECTION_TOL:
            problem = f"directions differ by up to {d_direction:.3g}"
    if problem:
        raise InputError(
            f"{what} and {reference_what} are not on the same voxel grid ({problem}); they must be "
            "resampled onto one grid before they can be used as a pair."
        )
    out = sitk.Image(image)
    out.CopyInformation(reference)
    return out


def integer_labels(image: sitk.Image, what: str) -> np.ndarray:
    """The label array of ``image`` as int64, after checking it holds integers only."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{what} is a vector image; a label map must have one value per voxel.")
    arr = sitk.GetArrayViewFromImage(image)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(np.mod(arr, 1) != 0):
            raise InputError(f"{what} is not a label map: it holds non-integer values.")
    return np.asarray(arr).astype(np.int64)


def remap(labels: np.ndarray, mapping: dict) -> np.ndarray:
    """uint8 array with ``mapping[v]`` where ``labels == v`` and 0 for every unmapped value."""
    out = np.zeros(labels.shape, dtype=np.uint8)
    for src, dst in mapping.items():
        out[labels == src] = dst
    return out

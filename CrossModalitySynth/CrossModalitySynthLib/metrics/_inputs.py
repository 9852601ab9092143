"""Input handling shared by the metrics: SimpleITK images or numpy arrays, grid checks, masks.

Arrays follow SimpleITK's numpy order (z, y, x); spacings returned here are in that order too
(``image.GetSpacing()`` reversed), so they can be used directly with the arrays.
"""

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import grid_difference, same_grid

ArrayOrImage = Union[np.ndarray, sitk.Image]


def to_array(x: ArrayOrImage, name: str, dtype=np.float64) -> np.ndarray:
    """The voxel array of ``x`` (a copy for images, a view or cast for arrays), order (z, y, x)."""
    if isinstance(x, sitk.Image):
        if x.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(
                "The {} has {} components per voxel; give a scalar (single-channel) volume.".format(
                    name, x.GetNumberOfComponentsPerPixel()
                )
            )
        arr = sitk.GetArrayFromImage(x)
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - defensive
            raise InputError("The {} is neither a SimpleITK image nor an array: {}.".format(name, exc))
    if arr.dtype == bool:
        return arr
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


def spacing_zyx(img: sitk.Image) -> Tuple[float, ...]:
    """Voxel spacing in mm in numpy (z, y, x) order."""
    return tuple(float(s) for s in reversed(img.GetSpacing()))


def _grid_message(ref_name: str, other_name: str, ref: sitk.Image, other: sitk.Image) -> str:
    d = grid_difference(ref, other)
    return (
        "The {o} is not on the {r}'s grid (size {s0} vs {s1}, max origin difference {od:.3g} mm, "
        "spacing {sd:.3g} mm, direction {dd:.3g}); resample the {o} onto the {r}'s grid first.".format(
            o=other_name,
            r=ref_name,
            s0=d["size"][0],
            s1=d["size"][1],
            od=d["origin"],
            sd=d["spacing"],
            dd=d["direction"],
        )
    )


def check_pair(
    a: ArrayOrImage,
    b: ArrayOrImage,
    names: Sequence[str],
    tol: float = 1e-4,
) -> Optional[Tuple[float, ...]]:
    """Check that ``a`` and ``b`` can be compared voxel by voxel; return the (z, y, x) spacing.

    Two images must share size, origin, spacing and direction (within ``tol``); an image and an
    array (or two arrays) must share the array shape. The spacing comes from whichever is an
    image (``None`` for two arrays).
    """
    spacing = None
    if isinstance(a, sitk.Image) and isinstance(b, sitk.Image):
        if not same_grid(a, b, tol=tol):
            raise InputError(_grid_message(names[0], names[1], a, b))
        spacing = spacing_zyx(a)
    else:
        sa = tuple(a.GetSize())[::-1] if isinstance(a, sitk.Image) else np.shape(a)
        sb = tuple(b.GetSize())[::-1] if isinstance(b, sitk.Image) else np.shape(b)
        if tuple(sa) != tuple(sb):
            raise InputError(
                "The {} (shape {}) and the {} (shape {}) differ in shape; resample them onto one grid "
                "first.".format(names[0], tuple(sa), names[1], tuple(sb))
            )
        if isinstance(a, sitk.Image):
            spacing = spacing_zyx(a)
        elif isinstance(b, sitk.Image):
            spacing = spacing_zyx(b)
    return spacing


def binary(mask: ArrayOrImage, name: str = "mask") -> np.ndarray:
    """Binarise a mask: voxels > 0 are inside."""
    arr = to_array(mask, name, dtype=None)
    return np.asarray(arr) > 0


def require_nonempty(mask: np.ndarray, name: str = "mask") -> None:
    if not mask.any():
        raise InputError("The {} is empty (no voxel > 0); give a mask that covers the body.".format(name))

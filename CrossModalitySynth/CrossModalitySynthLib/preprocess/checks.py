"""Input checks: is this a usable 3D scalar volume, and do the MRI channels belong together?

Every failure is an :class:`~CrossModalitySynthLib.errors.InputError` whose message is one
sentence: what is wrong and what to do. Inputs are never modified.
"""

from typing import List, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import Grid, same_grid

#: The most MRI channels a model may take (e.g. T1 in-phase, T1 opposed-phase, T2).
MAX_CHANNELS = 3

#: Two channels "overlap" when their physical bounding boxes share more than this fraction of
#: the smaller box's volume.
MIN_OVERLAP_FRACTION = 0.5


def check_volume(image: sitk.Image, name: str = "input volume") -> None:
    """Raise InputError unless ``image`` is a usable 3D scalar volume.

    Rejected: not a SimpleITK image; not 3D (a 2D slice or a 4D series: the dimension found is
    named); an empty axis; vector/RGB pixels (more than one component); a sheared (non-orthonormal)
    direction; NaN or infinite voxels (how many is named); a constant image (all voxels equal).
    """
    if not isinstance(image, sitk.Image):
        raise InputError(f"{name} is not an image ({type(image).__name__}); read it with read_volume first.")
    dim = image.GetDimension()
    if dim != 3:
        raise InputError(
            f"{name} is {dim}D but a 3D volume is needed; give a 3D scan (for a 4D series, extract one time point first)."
        )
    if any(int(s) < 1 for s in image.GetSize()):
        raise InputError(f"{name} is empty (size {tuple(image.GetSize())}); give a 3D scan with voxels in it.")
    ncomp = image.GetNumberOfComponentsPerPixel()
    if ncomp != 1:
        raise InputError(
            f"{name} is a vector/RGB image with {ncomp} components per voxel; give a grayscale (scalar) scan, not a screenshot or colour export."
        )
    d = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    if not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
        raise InputError(
            f"{name} has a sheared (non-orthonormal) direction matrix; resample it onto a regular grid first."
        )
    arr = sitk.GetArrayViewFromImage(image)
    if arr.dtype.kind in "fc":
        n_nan = int(np.count_nonzero(np.isnan(arr)))
        n_inf = int(np.count_nonzero(np.isinf(arr)))
        if n_nan or n_inf:
            raise InputError(
                f"{name} has {n_nan + n_inf} NaN or infinite voxels ({n_nan} NaN, {n_inf} Inf); "
                "re-export the scan or fill those voxels before converting."
            )
    if arr.size == 0 or arr.min() == arr.max():
        value = arr.flat[0] if arr.size else "nothing"
        raise InputError(
            f"{name} is constant (every voxel is {value}); it holds no image, check that you picked the right file."
        )


#: Two channels more correlated than this are almost surely the same scan given twice.
NEAR_IDENTICAL_CORRELATION = 0.999
_CORRELATION_SAMPLES = 250_000


def check_distinct_channels(channels: Sequence[sitk.Image], names: Sequence[str]) -> List[str]:
    """Refuse two channels that are the same volume; warn about near-identical ones.

    ``channels`` must already be on one grid (as :func:`check_channels` returns them). Raises
    InputError when two channels hold equal voxels; returns one warning per pair whose Pearson
    correlation (on an even sample of at most 250,000 voxels) is above
    :data:`NEAR_IDENTICAL_CORRELATION`.
    """
    arrays = [sitk.GetArrayViewFromImage(c).ravel() for c in channels]
    warnings = []
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            a, b = arrays[i], arrays[j]
            if a.shape == b.shape and np.array_equal(a, b):
                raise InputError(
                    f"{names[i]} and {names[j]} are the same volume; give the scan of each sequence "
                    "(the same file was probably selected twice)."
                )
            step = max(1, a.size // _CORRELATION_SAMPLES)
            x, y = a[::step].astype(np.float64), b[::step].astype(np.float64)
            if x.std() > 0 and y.std() > 0:
                r = float(np.corrcoef(x, y)[0, 1])
                if r > NEAR_IDENTICAL_CORRELATION:
                    warnings.append(
                        f"{names[i]} and {names[j]} are nearly identical (correlation {r:.4f}); check that each "
                        "channel is the right sequence."
                    )
    return warnings


def physical_bounding_box(image_or_grid) -> np.ndarray:
    """Axis-aligned physical (LPS, mm) box ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of the voxel corners."""
    grid = image_or_grid if isinstance(image_or_grid, Grid) else Grid.of(image_or_grid)
    c = grid.corners()
    return np.stack([c.min(axis=0), c.max(axis=0)])


def overlap_fraction(a, b) -> float:
    """Volume of the intersection of the physical bounding boxes of ``a`` and ``b`` (images or
    grids), as a fraction of the smaller box's volume (0 = disjoint, 1 = one inside the other)."""
    ba, bb = physical_bounding_box(a), physical_bounding_box(b)
    lo = np.maximum(ba[0], bb[0])
    hi = np.minimum(ba[1], bb[1])
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    smaller = min(float(np.prod(ba[1] - ba[0])), float(np.prod(bb[1] - bb[0])))
    return inter / smaller if smaller > 0 else 0.0


def check_channels(images: Sequence[sitk.Image], names: Optional[Sequence[str]] = None) -> List[sitk.Image]:
    """Check 1 to 3 MRI channels and bring them onto channel 0's grid.

    Each channel must pass :func:`check_volume`; each later channel must overlap channel 0 in
    space (bounding boxes share > 50 % of the smaller one). A channel on a different grid than
    channel 0 is resampled onto it with linear interpolation (Float32, 0 outside its field of
    view); a channel already on it (within 1e-6) is returned as is.

    Returns:
        the channels, all on channel 0's grid (channel 0 is the object given).
    """
    if isinstance(images, sitk.Image):
        images = [images]
    images = list(images)
    if names is None:
        names = [f"channel {i + 1}" for i in range(len(images))]
    names = list(names)
    if len(names) != len(images):
        raise ValueError("check_channels: give one name per image")
    if not 1 <= len(images) <= MAX_CHANNELS:
        raise InputError(
            f"{len(images)} MRI channels were given; give 1 to {MAX_CHANNELS} volumes (e.g. T1 in-phase, T1 opposed-phase, T2)."
        )
    for img, name in zip(images, names):
        check_volume(img, name)
    ref = images[0]
    out = [ref]
    for img, name in zip(images[1:], names[1:]):
        frac = overlap_fraction(ref, img)
        if frac <= MIN_OVERLAP_FRACTION:
            raise InputError(
                f"{name} and {names[0]} do not overlap in space (only {100 * frac:.0f}% shared); "
                "check you picked scans of the same patient/session."
            )
        if same_grid(ref, img):
            out.append(img)
        else:
            from .resample import resample_to_grid

            out.append(resample_to_grid(img, ref, "linear", 0.0, sitk.sitkFloat32))
    return out

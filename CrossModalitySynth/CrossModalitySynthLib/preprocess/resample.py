"""Resampling: to a target spacing (keeping direction and field of view), and onto a given grid.

How the new grid is computed (:func:`resampled_grid`), per index axis:

- target spacing ``None`` (or equal to the current spacing within 1e-6 mm): size and spacing kept;
- otherwise new size = ceil(size * spacing / new spacing) (1e-6 slack, at least 1): the new
  grid's extent (voxel edge to voxel edge) covers the old one and exceeds it by less than one
  new voxel;
- the direction is kept, and the *centre of the field of view* is kept: new origin =
  centre - direction @ (new spacing * (new size - 1) / 2), where centre = origin + direction @
  (spacing * (size - 1) / 2).

Covering the whole extent matters for the way back: every voxel centre of the old grid then lies
within half a new voxel of the new grid's outer voxel centres, where interpolation clamps to the
border instead of returning the default value (and vice versa on the way there).

Interpolators: ``"linear"`` and ``"bspline"`` (cubic) for images; for labels ``"nearest"``,
``"label_gaussian"`` (SimpleITK's label-aware Gaussian) and ``"label_linear"`` (each label's
mask resampled linearly, then the label of largest weight wins). None of the label interpolators
can produce a label id that is not in the input.
"""

import math
from typing import Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from ..geometry import Grid
from .grids import as_tuple3

IMAGE_INTERPOLATORS = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline}
LABEL_INTERPOLATORS = {"nearest": sitk.sitkNearestNeighbor, "label_gaussian": sitk.sitkLabelGaussian, "label_linear": None}
INTERPOLATORS = dict(IMAGE_INTERPOLATORS, **LABEL_INTERPOLATORS)

#: Spacings closer than this (mm) are treated as equal: no resampling along that axis.
SPACING_TOL = 1e-6


def _interpolator_name(name: str) -> str:
    if name not in INTERPOLATORS:
        raise ValueError(f"unknown interpolator {name!r}; use one of {', '.join(INTERPOLATORS)}")
    return name


def needs_resampling(grid: Grid, target_spacing: Sequence[Optional[float]]) -> bool:
    """True when some axis has a target spacing that differs from the grid's by more than 1e-6 mm."""
    target_spacing = as_tuple3(target_spacing)
    return any(t is not None and abs(float(t) - s) > SPACING_TOL for t, s in zip(target_spacing, grid.spacing))


def resampled_grid(grid: Grid, target_spacing: Sequence[Optional[float]]) -> Grid:
    """The grid with ``target_spacing`` (x, y, z; ``None`` keeps an axis), same direction, same
    field-of-view centre, size rounded up to cover the physical extent (see the module docstring)."""
    target_spacing = as_tuple3(target_spacing)
    if not needs_resampling(grid, target_spacing):
        return grid
    size, spacing = [], []
    for n, s, t in zip(grid.size, grid.spacing, target_spacing):
        if t is None or abs(float(t) - s) <= SPACING_TOL:
            size.append(int(n))
            spacing.append(float(s))
            continue
        t = float(t)
        if t <= 0:
            raise ValueError(f"target spacing must be positive, got {t}")
        size.append(max(1, int(math.ceil(n * s / t - 1e-6))))
        spacing.append(t)
    d = grid.direction_matrix
    centre = np.asarray(grid.origin) + d @ (np.asarray(grid.spacing) * (np.asarray(grid.size) - 1) / 2.0)
    origin = centre - d @ (np.asarray(spacing) * (np.asarray(size) - 1) / 2.0)
    return Grid(tuple(size), tuple(float(v) for v in origin), tuple(spacing), tuple(grid.direction))


def resample_to_grid(
    image: sitk.Image,
    reference: Union[Grid, sitk.Image],
    interpolator: str = "linear",
    default_value: float = 0.0,
    output_pixel_type: Optional[int] = None,
) -> sitk.Image:
    """Resample ``image`` onto ``reference`` (a Grid or an image whose grid is used).

    The result has exactly the reference's size, origin, spacing and direction. Voxels outside
    ``image``'s field of view get ``default_value``. ``output_pixel_type`` defaults to the
    input's pixel type (pass ``sitk.sitkFloat32`` to keep fractions of an integer image).
    """
    name = _interpolator_name(interpolator)
    grid = reference if isinstance(reference, Grid) else Grid.of(reference)
    ref = grid.reference_image()
    pixel = image.GetPixelID() if output_pixel_type is None else output_pixel_type
    if name == "label_linear":
        return _resample_label_linear(image, ref, default_value, pixel)
    return sitk.Resample(
        image, ref, sitk.Transform(), INTERPOLATORS[name], float(default_value), pixel
    )


def resample_to_spacing(
    image: sitk.Image,
    target_spacing: Sequence[Optional[float]],
    interpolator: str = "linear",
    default_value: float = 0.0,
    output_pixel_type: Optional[int] = None,
) -> sitk.Image:
    """Resample ``image`` to ``target_spacing`` (x, y, z in mm, ``None`` = keep that axis) on the
    grid :func:`resampled_grid` computes; returns ``image`` itself when nothing changes."""
    grid = Grid.of(image)
    target = resampled_grid(grid, target_spacing)
    if target is grid:
        return image
    return resample_to_grid(image, target, interpolator, default_value, output_pixel_type)


def _resample_label_linear(image: sitk.Image, ref: sitk.Image, default_value: float, pixel: int) -> sitk.Image:
    """Per-label linear resampling then arg-max; outside the input's field of view counts as
    ``default_value``. Memory: three float arrays on the output grid, whatever the label count."""
    arr = sitk.GetArrayViewFromImage(image)
    labels = np.unique(arr)
    out_shape = tuple(reversed(ref.GetSize()))
    best_w = np.full(out_shape, -1.0, dtype=np.float32)
    best_l = np.zeros(out_shape, dtype=np.float64)
    covered = np.zeros(out_shape, dtype=np.float32)
    for lab in labels:
        mask = sitk.Cast(sitk.BinaryThreshold(image, float(lab), float(lab), 1, 0), sitk.sitkFloat32)
        w = sitk.GetArrayFromImage(sitk.Resample(mask, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32))
        covered += w
        better = w > best_w
        best_w[better] = w[better]
        best_l[better] = lab
    outside = 1.0 - covered
    best_l[outside > best_w] = default_value
    out = sitk.GetImageFromArray(best_l)
    out.CopyInformation(ref)  # computed voxel for voxel on ref's grid
    return sitk.Cast(out, pixel)
